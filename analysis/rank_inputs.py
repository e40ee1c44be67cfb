"""Per-query rank vectors at the edge of the analysis: checks, pairing, per-query metric values.

Ranks are 1-based integers, ``rank = 1 + #{other items scoring at least the ground truth}`` (ties
count against the model: ``spec/data_and_metrics.md`` §11.2, computed once in
:mod:`tvr.metrics`). :mod:`analysis.rankings` (tables) and :mod:`analysis.stats` (paired tests)
read their inputs through here.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_RECALL = re.compile(r"^R@([1-9][0-9]*)$")


def as_ranks(ranks: Any, name: str) -> np.ndarray:
    """Return ``ranks`` as a 1-D int64 array, or raise naming ``name`` and the bad value."""
    arr = np.asarray(ranks)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of per-query ranks, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one query, got an empty array")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected integer ranks, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        finite = np.isfinite(arr)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{name}: rank of query {i} is {float(arr[i])}; ranks must be finite")
        frac = arr != np.round(arr)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ValueError(
                f"{name}: rank of query {i} is {float(arr[i])}; ranks must be integers"
            )
    arr = arr.astype(np.int64)
    bad = arr < 1
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: rank of query {i} is {arr[i]}; ranks are 1-based (>= 1)")
    return arr


def paired_ranks(ranks_a: Any, ranks_b: Any) -> tuple[np.ndarray, np.ndarray]:
    """``ranks_a`` and ``ranks_b`` checked (:func:`as_ranks`) and of equal length."""
    a = as_ranks(ranks_a, "ranks_a")
    b = as_ranks(ranks_b, "ranks_b")
    if a.shape != b.shape:
        raise ValueError(
            f"ranks_a has {a.size} queries but ranks_b has {b.size}; "
            "a paired comparison needs the same queries in the same order"
        )
    return a, b


def metric_values(ranks: np.ndarray, metric: str) -> tuple[np.ndarray, bool]:
    """Per-query values whose mean is ``metric``, and whether higher is better.

    Args:
        ranks: ``[N]`` 1-based int ranks.
        metric: ``"R@K"`` (any K >= 1; values 0 or 100, so the mean is R@K in percent),
            ``"MnR"`` (values = ranks) or ``"rr"`` (values = 1 / rank; the mean is MRR).

    Returns:
        ``(values [N] float64, higher_is_better)``.
    """
    match = _RECALL.match(metric)
    if match:
        k = int(match.group(1))
        return 100.0 * (ranks <= k).astype(np.float64), True
    if metric == "MnR":
        return ranks.astype(np.float64), False
    if metric == "rr":
        return 1.0 / ranks.astype(np.float64), True
    raise ValueError(f"metric={metric!r}: expected 'R@K' (e.g. 'R@1'), 'MnR' or 'rr'")
