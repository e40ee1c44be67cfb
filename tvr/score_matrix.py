"""Score matrices at the edge: the checks and the row chunking that the metrics
(:mod:`tvr.metrics`) and the test-time re-normalisations (:mod:`tvr.renorm`) share.

A score matrix is ``[queries, gallery]``, numpy or torch, real-valued; it is read as float32
numpy (no copy when it already is one). Rows are processed in chunks of about
:data:`AUTO_CHUNK_ELEMENTS` scores unless a ``chunk_size`` is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

# Auto chunking keeps one working block at about this many float32 scores (64 MiB).
AUTO_CHUNK_ELEMENTS = 1 << 24


def as_float32_matrix(sim: Any, name: str = "sim") -> np.ndarray:
    """Return ``sim`` as a 2-D float32 numpy array (no copy when already one)."""
    if isinstance(sim, torch.Tensor):
        if sim.is_complex() or not sim.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {sim.dtype}")
        arr = sim.detach().to(device="cpu", dtype=torch.float32).numpy()
    elif isinstance(sim, np.ndarray):
        if sim.dtype.kind not in "fiu" or sim.dtype == np.bool_:
            raise TypeError(f"{name}: expected a real numeric array, got dtype {sim.dtype}")
        arr = sim.astype(np.float32, copy=False)
    else:
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(sim).__name__}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D [queries, gallery] matrix, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty matrix, got shape {arr.shape}")
    return arr


def check_chunk_size(chunk_size: int | None, width: int) -> int:
    """Rows per chunk: ``chunk_size`` or an automatic value for a block ``width`` wide."""
    if chunk_size is None:
        return max(1, AUTO_CHUNK_ELEMENTS // max(1, width))
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int | np.integer)
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size: expected a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


def chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` row ranges of ``size`` rows covering ``0..n``."""
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def check_finite_rows(
    block: np.ndarray, row_offset: int, what: str, transposed: bool = False
) -> None:
    """Raise ValueError naming the first query row of ``block`` holding NaN or inf.

    ``block`` is ``[rows, cols]`` with query rows; ``transposed`` means the rows are columns of
    the original ``sim`` (v2t), which changes how the offending entry is named.
    """
    finite = np.isfinite(block)
    if finite.all():
        return
    r, c = (int(x) for x in np.argwhere(~finite)[0])
    q = row_offset + r
    value = block[r, c]
    entry = f"sim[{c}, {q}]" if transposed else f"sim[{q}, {c}]"
    n_bad = int((~finite).sum())
    raise ValueError(
        f"{what}: query {q} has a non-finite score {value} at {entry}; expected finite "
        f"similarities in every row used for ranking ({n_bad} non-finite in this block)"
    )
