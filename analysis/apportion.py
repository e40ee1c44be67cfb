"""Splitting a point budget over groups in proportion to their sizes (largest remainders).

Used by the export's projection sample (:func:`analysis.projection.stratified_sample`) and the
app's map budget (:func:`analysis.point_budget.budget_sample`), so both strata follow one rule.
"""

from __future__ import annotations

import numpy as np


def largest_remainder(sizes: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``sizes``: each group gets the floor of its
    exact share, and the points left go to the largest remainders (ties to the earlier group).
    No group gets more than its size.

    Shapes:
        sizes ``[G]`` (non-negative ints) -> ``[G]`` int64 summing to ``min(total, sizes.sum())``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(sizes.sum())
    if total >= n:
        return sizes.copy()
    exact = sizes * (total / n) if n else np.zeros(len(sizes))
    share = np.floor(exact).astype(np.int64)
    left = int(total) - int(share.sum())
    order = np.argsort(-(exact - share), kind="stable")  # largest remainder first
    share[order[:left]] += 1
    return np.minimum(share, sizes)
