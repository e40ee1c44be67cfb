"""Tests for app.components.figures.compare: rank change per pair of ranks."""

from __future__ import annotations

import numpy as np

from analysis.rankings import rank_pairs
from app.components.figures.compare import rank_change_figure
from app.components.palette import OUTCOME_COLOURS


def test_one_point_per_rank_pair_sized_and_counted_with_outcome_colours():
    ranks_a = np.array([1, 1, 1, 4, 2])
    ranks_b = np.array([1, 1, 1, 2, 8])
    pairs = rank_pairs(ranks_a, ranks_b)
    fig = rank_change_figure(pairs, what="caption", base_name="demo-base",
                             counts={"win": 1, "tie": 3, "loss": 1}, n=5)
    t = fig.data[0]
    assert t.type == "scatter" and len(t.x) == len(pairs) == 3
    by_rank = dict(zip(np.asarray(t.x).tolist(), zip(np.asarray(t.y).tolist(), t.marker.color,
                                                   t.text, strict=True), strict=True))
    assert by_rank[1] == (0.0, OUTCOME_COLOURS["tie"], "3")  # three tied queries, one point
    assert by_rank[4] == (-1.0, OUTCOME_COLOURS["win"], "")
    assert by_rank[2] == (2.0, OUTCOME_COLOURS["loss"], "")
    custom = np.asarray(t.customdata)
    assert custom.shape == (3, 3)  # [first query, queries in the point, DRGI rank]
    assert sorted(custom[:, 1].tolist()) == [1, 1, 3]
    assert fig.layout.xaxis.type == "log" and "demo-base" in fig.layout.xaxis.title.text
    assert "3 of 5 tie" in fig.layout.annotations[0].text
    assert fig.layout.dragmode == "lasso"
