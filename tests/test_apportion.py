"""analysis/apportion.py: one largest-remainder rule for both map budgets."""

from __future__ import annotations

import numpy as np

from analysis.apportion import largest_remainder


def test_largest_remainder_known_answers():
    # exact shares 3.33 / 3.33 / 3.33: floors 3, 3, 3, the one left to the first (ties by order)
    assert largest_remainder(np.array([10, 10, 10]), 10).tolist() == [4, 3, 3]
    # exact 0.6 / 2.4 / 6.0: floors 0, 2, 6, the one left to the largest remainder (0.6)
    assert largest_remainder(np.array([1, 4, 10]), 9).tolist() == [1, 2, 6]
    assert largest_remainder(np.array([2, 0, 5]), 100).tolist() == [2, 0, 5]  # all fit
    assert largest_remainder(np.array([0, 0]), 3).tolist() == [0, 0]


def test_largest_remainder_sums_to_the_budget_and_stays_within_sizes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(0, 50, size=rng.integers(1, 6))
        total = int(rng.integers(0, 120))
        got = largest_remainder(sizes, total)
        assert got.sum() == min(total, sizes.sum()) and (got <= sizes).all() and (got >= 0).all()
