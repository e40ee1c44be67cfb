"""Tests for analysis.point_budget: the capped, stratified, deterministic map sample."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.embedding_map import KINDS, MapPoints
from analysis.point_budget import budget_sample


def _points(sizes: tuple[int, int, int, int] = (600, 300, 60, 40)) -> MapPoints:
    kind = np.repeat(np.arange(4), sizes)
    n = len(kind)
    rng = np.random.default_rng(1)
    item = np.concatenate([rng.integers(0, sizes[2], sizes[0]), rng.integers(0, sizes[3], sizes[1]),
                           np.arange(sizes[2]), np.arange(sizes[3])])
    minus = -np.ones(n, dtype=np.int64)
    return MapPoints(coords=rng.normal(size=(n, 2)).astype(np.float32), kind=kind,
                     item=item, position=minus, caption=minus, video=minus)


def test_budget_is_respected_and_shared_in_proportion_to_each_kind():
    p = _points()
    s = budget_sample(p, 100)
    assert len(s.ids) == 100 and s.candidates == 1000 and not s.complete
    assert np.all(np.diff(s.ids) > 0)  # sorted, unique
    counts = np.bincount(p.kind[s.ids], minlength=4)
    assert counts.tolist() == [60, 30, 6, 4]  # 10 % of each kind
    assert s.per_kind == {"words": (60, 600), "frames": (30, 300), "texts": (6, 60),
                          "videos": (4, 40)}


def test_largest_remainders_fill_the_budget_exactly():
    p = _points((7, 5, 3, 1))
    for budget in range(1, 17):
        s = budget_sample(p, budget)
        assert len(s.ids) == budget
        counts = np.bincount(p.kind[s.ids], minlength=4)
        exact = np.array([7, 5, 3, 1]) * budget / 16
        assert np.all(np.abs(counts - exact) < 1)  # each kind within one of its share


def test_forced_points_are_always_kept_even_past_the_budget():
    p = _points()
    forced = np.zeros(len(p), bool)
    forced[[3, 650, 905, 999]] = True
    s = budget_sample(p, 50, forced=forced)
    assert {3, 650, 905, 999} <= set(s.ids.tolist())
    assert len(s.ids) == 50 and s.forced == 4
    many = np.zeros(len(p), bool)
    many[:80] = True
    s = budget_sample(p, 50, forced=many)
    assert set(s.ids.tolist()) == set(range(80))  # forced beyond the budget: all kept, no more


def test_candidates_limit_the_kinds_drawn():
    p = _points()
    only_pooled = p.kind >= 2
    s = budget_sample(p, 50, candidates=only_pooled)
    assert set(p.kind[s.ids].tolist()) <= {2, 3} and len(s.ids) == 50
    forced = np.zeros(len(p), bool)
    forced[0] = True  # a word: not a candidate, so not drawn
    assert 0 not in budget_sample(p, 50, candidates=only_pooled, forced=forced).ids


def test_sample_is_deterministic_nested_and_complete_under_a_large_budget():
    p = _points()
    a, b = budget_sample(p, 200), budget_sample(p, 200)
    np.testing.assert_array_equal(a.ids, b.ids)
    small = budget_sample(p, 100)
    assert set(small.ids.tolist()) <= set(a.ids.tolist())  # a smaller budget: a subset
    assert not np.array_equal(budget_sample(p, 200, seed=1).ids, a.ids)
    full = budget_sample(p, 10**6)
    assert full.complete and full.ids.tolist() == list(range(len(p)))


def test_bad_budget_and_masks_are_named():
    p = _points()
    with pytest.raises(ValueError, match="point budget=0"):
        budget_sample(p, 0)
    with pytest.raises(ValueError, match="forced"):
        budget_sample(p, 10, forced=np.zeros(3, bool))
    assert KINDS == ("words", "frames", "texts", "videos")
