"""Row-wise top-k over a similarity matrix with the project's tie rules, and the input checks.

``sim`` is a float ``[Nt, Nv]`` matrix with texts on rows; ``text_to_video[i]`` is the column of
text ``i``'s ground truth. :func:`top_k_stable` orders by score descending, then lower column;
:func:`negatives_block` is a block of rows with the ground truth masked out (``-inf``), so the
negatives of each text can be ranked without a second full-size copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_similarity(sim: Any, name: str = "sim") -> np.ndarray:
    arr = np.asarray(sim)
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D [Nt, Nv] similarity matrix, got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty similarity matrix of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        row, col = (int(x) for x in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name}[{row}, {col}] is {float(arr[row, col])}; similarity scores must be finite"
        )
    return arr


def check_text_to_video(text_to_video: Any, sim: np.ndarray) -> np.ndarray:
    t2v = np.asarray(text_to_video)
    n_text, n_video = sim.shape
    if t2v.shape != (n_text,):
        raise ValueError(
            f"text_to_video: expected shape ({n_text},) (one video per row of sim), got {t2v.shape}"
        )
    if not np.issubdtype(t2v.dtype, np.integer):
        raise ValueError(f"text_to_video: expected integer video indices, got dtype {t2v.dtype}")
    bad = (t2v < 0) | (t2v >= n_video)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"text_to_video[{i}] = {int(t2v[i])} is not a column of sim (0..{n_video - 1})"
        )
    return t2v.astype(np.int64)


def negatives_block(sim: np.ndarray, t2v: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of sim as float64 with the ground-truth column set to -inf."""
    block = sim[start:stop].astype(np.float64, copy=True)
    block[np.arange(stop - start), t2v[start:stop]] = -np.inf
    return block


def _tied_selection(block: np.ndarray, k: int) -> np.ndarray:
    """The exact selection of :func:`top_k_stable` (columns in ascending order): every score
    above the k-th best, then the lowest columns among those tied with it."""
    n_rows = block.shape[0]
    kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]  # [b, 1] k-th best score
    above = block > kth
    need = k - above.sum(axis=1, keepdims=True)  # slots left for scores tied with the k-th
    tied = block == kth
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need))
    return np.nonzero(chosen)[1].reshape(n_rows, k)  # exactly k per row, index ascending


def top_k_stable(block: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` best scores per row, by score descending then index ascending.

    An ``argpartition`` picks k best columns per row; only rows where a column left out ties
    the k-th best score (so the index rule decides) are selected again exactly.

    Shapes:
        block ``[b, n]`` -> ``[b, k]`` int64 (requires ``1 <= k <= n``).
    """
    n_rows, n_cols = block.shape
    if k >= n_cols:
        sel = np.broadcast_to(np.arange(n_cols), block.shape)
    else:
        sel = np.argpartition(-block, k - 1, axis=1)[:, :k]  # [b, k], ties at the k-th: any
        vals = np.take_along_axis(block, sel, axis=1)
        kth = vals.min(axis=1, keepdims=True)
        undecided = np.flatnonzero((block == kth).sum(axis=1) > (vals == kth).sum(axis=1))
        if undecided.size:
            sel[undecided] = _tied_selection(block[undecided], k)
    scores = np.take_along_axis(block, sel, axis=1)
    order = np.lexsort((sel, -scores), axis=1)  # score descending, then index ascending
    return np.take_along_axis(sel, order, axis=1).astype(np.int64)
