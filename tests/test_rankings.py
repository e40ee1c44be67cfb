"""Tests for analysis.rankings: per-query table, win/tie/loss, rank checks, app tables.
Paired tests and bootstrap: tests/test_stats.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.rank_inputs import metric_values
from analysis.rankings import compare_rankings, win_tie_loss

RANKS_A = np.array([1, 2, 3, 1, 5])
RANKS_B = np.array([1, 1, 4, 2, 2])


def test_compare_rankings_known_table():
    table = compare_rankings(
        RANKS_A, RANKS_B, query_ids=["q0", "q1", "q2", "q3", "q4"], captions=list("abcde")
    )
    assert list(table.columns) == [
        "caption",
        "rank_a",
        "rank_b",
        "delta",
        "rr_a",
        "rr_b",
        "outcome",
    ]
    assert table.index.name == "query"
    assert list(table.index) == ["q0", "q1", "q2", "q3", "q4"]
    assert table["delta"].tolist() == [0, -1, 1, 1, -3]
    assert table["outcome"].tolist() == ["tie", "win", "loss", "loss", "win"]
    np.testing.assert_allclose(table["rr_a"], [1, 1 / 2, 1 / 3, 1, 1 / 5])
    np.testing.assert_allclose(table["rr_b"], [1, 1, 1 / 4, 1 / 2, 1 / 2])
    assert table.loc["q2", "caption"] == "c"


def test_compare_rankings_default_index_and_float_ranks():
    table = compare_rankings(RANKS_A.astype(float), RANKS_B)
    assert list(table.index) == [0, 1, 2, 3, 4]
    assert "caption" not in table.columns
    assert table["rank_a"].dtype == np.int64


def test_win_tie_loss_counts():
    assert win_tie_loss(compare_rankings(RANKS_A, RANKS_B)) == {"win": 2, "tie": 1, "loss": 2}
    assert win_tie_loss(compare_rankings([1, 1], [1, 1])) == {"win": 0, "tie": 2, "loss": 0}


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([1, 2], [1], "ranks_a has 2 queries but ranks_b has 1"),
        ([1, 0], [1, 1], "ranks_a: rank of query 1 is 0"),
        ([1, 1], [1.5, 1], "ranks_b: rank of query 0 is 1.5"),
        ([1, np.nan], [1, 1], "ranks_a: rank of query 1 is nan"),
        ([[1, 2]], [[1, 2]], "expected a 1-D array"),
        ([], [], "at least one query"),
    ],
)
def test_bad_ranks_raise_naming_the_argument(a, b, message):
    with pytest.raises(ValueError, match=message):
        compare_rankings(a, b)


def test_bad_ids_and_table_raise():
    with pytest.raises(ValueError, match="query_ids has 1 entries but there are 5 queries"):
        compare_rankings(RANKS_A, RANKS_B, query_ids=["x"])
    with pytest.raises(ValueError, match="id 'x' occurs more than once"):
        compare_rankings([1, 2], [1, 2], query_ids=["x", "x"])
    with pytest.raises(ValueError, match="lacks column"):
        win_tie_loss(pd.DataFrame({"rank_a": [1]}))


def test_metric_values():
    ranks = np.array([1, 3, 10])
    values, higher = metric_values(ranks, "R@5")
    assert higher and values.tolist() == [100.0, 100.0, 0.0]
    values, higher = metric_values(ranks, "MnR")
    assert not higher and values.tolist() == [1.0, 3.0, 10.0]
    values, _ = metric_values(ranks, "rr")
    np.testing.assert_allclose(values, [1, 1 / 3, 0.1])
    with pytest.raises(ValueError, match="metric='R@0'"):
        metric_values(ranks, "R@0")


# ------------------------------------------------------------------ app helpers (appended)


def test_metrics_table_deltas_and_direction_of_better():
    from analysis.rankings import metrics_table

    a = {"t2v/R@1": 10.0, "t2v/MnR": 5.0}
    b = {"t2v/R@1": 12.5, "t2v/MnR": 6.0}
    t = metrics_table(a, b, directions=("t2v",), keys=("R@1", "MnR", "R@5")).set_index("metric")
    assert t.loc["R@1", "delta"] == 2.5 and t.loc["R@1", "better"] == "B"
    assert t.loc["MnR", "delta"] == 1.0 and t.loc["MnR", "better"] == "A"  # lower is better
    assert np.isnan(t.loc["R@5", "a"]) and pd.isna(t.loc["R@5", "better"])
    single = metrics_table(a, None, directions=("t2v",), keys=("R@1",))
    assert np.isnan(single["b"].iloc[0]) and pd.isna(single["better"].iloc[0])


def test_largest_changes_orders_by_log_rank_ratio():
    from analysis.rankings import compare_rankings, largest_changes

    table = compare_rankings([1, 10, 5, 2, 4], [2, 1, 5, 20, 1])
    wins, losses = largest_changes(table, n=5)
    assert list(wins.index) == [1, 4]  # 10 -> 1 (log 0.1) before 4 -> 1 (log 0.25)
    assert list(losses.index) == [3, 0]  # 2 -> 20 before 1 -> 2
    assert wins["log_ratio"].iloc[0] == pytest.approx(np.log(0.1))
    with pytest.raises(ValueError, match="n=0"):
        largest_changes(table, n=0)


def test_top_k_breaks_ties_by_lower_index():
    from analysis.rankings import top_k

    idx, scores = top_k(np.array([0.5, 0.9, 0.9, 0.1], dtype=np.float32), 3)
    assert idx.tolist() == [1, 2, 0]
    assert scores.tolist() == pytest.approx([0.9, 0.9, 0.5])
    assert top_k(np.array([1.0, 2.0]), 10)[0].tolist() == [1, 0]
    with pytest.raises(ValueError, match="sim_row"):
        top_k(np.zeros((2, 2)), 1)


def test_rank_histogram_uses_log_bins():
    from analysis.rankings import rank_bins, rank_histogram

    assert rank_bins(1) == [(1, 1)]
    assert rank_bins(1000)[:5] == [(1, 1), (2, 2), (3, 5), (6, 10), (11, 20)]
    assert rank_bins(1000)[-1] == (501, 1000)
    h = rank_histogram([1, 1, 2, 4, 7, 8], max_rank=8)
    assert list(h["bin"]) == ["1", "2", "3-5", "6-10"]
    assert list(h["count"]) == [2, 1, 1, 2]
    assert h["share"].sum() == pytest.approx(100.0)
