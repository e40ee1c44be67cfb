"""Test-time re-normalisation of score matrices (opt-in; results using it must be labelled).

- :func:`dual_softmax` (DSL, CAMoE): a softmax over the *query* axis per gallery item, times the
  score.
- :func:`qb_norm` (QB-Norm with the dynamic inverted softmax): rows whose top-1 item is a
  gallery "hub" of a bank of training queries are rescaled by the bank's column statistics.

Both return a matrix in the layout they were given, ready for :mod:`tvr.metrics`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import torch

from tvr.score_matrix import (
    ArrayLike,
    as_float32_matrix,
    check_chunk_size,
    check_finite_rows,
    chunks,
)

logger = logging.getLogger(__name__)

QB_NORM_PRESETS: dict[str, dict[str, Any]] = {
    # ioanacroi/qb-norm reference setting
    "reference": {"k": 1, "beta": 20.0, "theta": 1},
    # DiCoSA's released evaluation (t2v and v2t differ in theta)
    "dicosa_t2v": {"k": 1, "beta": 70.0, "theta": 3},
    "dicosa_v2t": {"k": 1, "beta": 70.0, "theta": 5},
}
"""QB-Norm presets (spec §12.2); use as ``qb_norm(sim, bank, **QB_NORM_PRESETS["reference"])``."""


def _like(out: np.ndarray, original: Any) -> ArrayLike:
    """Return ``out`` as a tensor on ``original``'s device when ``original`` is a tensor."""
    if isinstance(original, torch.Tensor):
        return torch.from_numpy(out).to(original.device)
    return out


def _check_positive_finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return v


def dual_softmax(
    sim: ArrayLike, temperature: float = 100.0, direction: Literal["t2v", "v2t"] = "t2v"
) -> ArrayLike:
    """Dual softmax (DSL, CAMoE): re-weight every score by a softmax over the *query* axis.

    t2v (queries are texts): ``S'_qv = S_qv * exp(tau S_qv) / sum_q' exp(tau S_q'v)``, a softmax
    over the texts of every video column. v2t (queries are videos) applies the same operation to
    ``S^T``: a softmax over the videos of every text, i.e. along each row of ``S``. The result is
    always returned in the text x video layout of ``sim``, so it can be passed to
    :func:`tvr.metrics.t2v_ranks` / :func:`tvr.metrics.v2t_ranks` (or as ``v2t_sim`` to :func:`tvr.metrics.evaluate_retrieval`).

    ``temperature`` = 100 is the spec default for cosine-scale scores (equivalently 1 on logits
    already multiplied by 100). Computed in float64 with the max subtracted (stable), returned as
    float32, as a tensor on the input's device when ``sim`` is a tensor.

    Shapes:
        sim: ``[Nt, Nv]``; returns ``[Nt, Nv]``.

    Raises:
        ValueError: a non-finite score (naming the row), a bad temperature or direction.
    """
    tau = _check_positive_finite(temperature, "temperature")
    if direction not in ("t2v", "v2t"):
        raise ValueError(f"direction: expected 't2v' or 'v2t', got {direction!r}")
    s = as_float32_matrix(sim)
    check_finite_rows(s, 0, "dual_softmax")
    axis = 0 if direction == "t2v" else 1  # the query axis in the text x video layout
    z = tau * s.astype(np.float64)
    z -= z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    weights = e / e.sum(axis=axis, keepdims=True)
    out = (s.astype(np.float64) * weights).astype(np.float32)
    return _like(out, sim)


def _column_logsumexp(bank: np.ndarray, beta: float, chunk_rows: int) -> np.ndarray:
    """``log sum_b exp(beta * bank[b, j])`` per column, in float64, chunked over bank rows."""
    col_max = np.full(bank.shape[1], -np.inf)
    for lo, hi in chunks(bank.shape[0], chunk_rows):
        col_max = np.maximum(col_max, beta * bank[lo:hi].astype(np.float64).max(axis=0))
    total = np.zeros(bank.shape[1])
    for lo, hi in chunks(bank.shape[0], chunk_rows):
        total += np.exp(beta * bank[lo:hi].astype(np.float64) - col_max).sum(axis=0)
    return col_max + np.log(total)


def _bank_hubs(bank: np.ndarray, k: int, theta: int, chunk_rows: int) -> np.ndarray:
    """Bool ``[Ng]``: gallery items in the top-k of at least ``theta`` bank queries.

    Ties inside a bank row's top-k go to the lower gallery index (stable order).
    """
    counts = np.zeros(bank.shape[1], dtype=np.int64)
    for lo, hi in chunks(bank.shape[0], chunk_rows):
        block = bank[lo:hi]
        if k == 1:
            top = np.argmax(block, axis=1)[:, None]
        else:
            top = np.argsort(-block, axis=1, kind="stable")[:, :k]
        counts += np.bincount(top.ravel(), minlength=bank.shape[1])
    return counts >= theta


def qb_norm(
    sim: ArrayLike,
    bank: ArrayLike,
    k: int = 1,
    beta: float = 20.0,
    theta: int = 1,
    *,
    log_space: bool = False,
) -> ArrayLike:
    """Querybank normalisation with the dynamic inverted softmax (QB-Norm, spec §12.2).

    1. ``A`` = gallery items that are in the top-``k`` of at least ``theta`` bank queries.
    2. Every test query whose top-1 item (first index on ties) lies in ``A`` has its whole row
       replaced by ``S'_qj = exp(beta S_qj) / sum_b exp(beta bank[b, j])``.
    3. Other rows are left unchanged (ranking is per row, so mixed scales are harmless).

    Rows are queries: for t2v pass ``sim`` = test texts x test videos and ``bank`` = training
    texts x test videos. For v2t use transposed roles: ``sim`` = ``S^T`` (test videos x test
    texts) and ``bank`` = training videos x test texts; transpose the result back before
    passing it as ``v2t_sim`` to :func:`tvr.metrics.evaluate_retrieval`. Presets: :data:`QB_NORM_PRESETS`.

    Computed in float64 as ``exp(beta S_qj - logsumexp_b(beta bank[b, j]))`` (no overflow in
    the intermediate sums) and returned as float32. With a large ``beta`` the float32 result can
    underflow to 0 and create artificial ties; ``log_space=True`` returns
    ``beta S_qj - logsumexp_b(...)`` for the normalised rows instead, which ranks identically
    within each row and never under- or overflows.

    Args:
        sim: test queries x gallery scores (cosine scale).
        bank: bank queries x the same gallery.
        k: top-k of each bank query that counts as a hit.
        beta: inverse temperature of the inverted softmax.
        theta: minimum number of bank hits for a gallery item to be normalised.
        log_space: return log-domain scores on the normalised rows.

    Returns:
        float32 ``[Nq, Ng]``, a tensor on ``sim``'s device when ``sim`` is a tensor.

    Shapes:
        sim: ``[Nq, Ng]``; bank: ``[Nb, Ng]``; returns ``[Nq, Ng]``.

    Raises:
        ValueError: shape mismatch, bad hyper-parameters, non-finite scores, or an overflow of
            the normalised scores (use ``log_space=True``).
    """
    s = as_float32_matrix(sim, name="sim")
    b = as_float32_matrix(bank, name="bank")
    if b.shape[1] != s.shape[1]:
        raise ValueError(
            f"bank: expected {s.shape[1]} gallery columns like sim {s.shape}, got {b.shape}"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= s.shape[1]:
        raise ValueError(f"k: expected an integer in 1..{s.shape[1]} (gallery size), got {k!r}")
    if isinstance(theta, bool) or not isinstance(theta, int | np.integer) or theta < 1:
        raise ValueError(f"theta: expected an integer >= 1, got {theta!r}")
    beta_f = _check_positive_finite(beta, "beta")
    check_finite_rows(s, 0, "qb_norm sim")
    chunk_rows = check_chunk_size(None, b.shape[1])
    for lo, hi in chunks(b.shape[0], chunk_rows):
        check_finite_rows(b[lo:hi], lo, "qb_norm bank")

    hubs = _bank_hubs(b, int(k), int(theta), chunk_rows)  # [Ng]
    lse = _column_logsumexp(b, beta_f, chunk_rows)  # [Ng]
    rows = np.flatnonzero(hubs[np.argmax(s, axis=1)])  # queries whose top-1 is a hub
    out = s.copy()
    z = beta_f * s[rows].astype(np.float64) - lse[None, :]
    with np.errstate(over="ignore"):  # an overflow becomes inf, reported just below
        normalised = (z if log_space else np.exp(z)).astype(np.float32)
    if not np.isfinite(normalised).all():
        raise ValueError(
            f"qb_norm: exp(beta * sim - logsumexp(beta * bank)) overflows float32 with beta="
            f"{beta_f}; pass log_space=True or cosine-scale scores"
        )
    if not log_space and normalised.size and bool((normalised == 0).any()):
        logger.warning(
            "qb_norm: %d normalised scores underflowed to 0 in float32 (beta=%s); ties may "
            "appear, consider log_space=True",
            int((normalised == 0).sum()),
            beta_f,
        )
    out[rows] = normalised
    logger.info(
        "qb_norm: %d of %d gallery items are bank hubs; %d of %d query rows normalised "
        "(k=%d, beta=%s, theta=%d)",
        int(hubs.sum()),
        hubs.size,
        rows.size,
        s.shape[0],
        k,
        beta_f,
        theta,
    )
    return _like(out, sim)
