"""Tests for analysis.query_table (the joined per-query table), analysis.verdict and
analysis.rankings.rank_pairs: known answers on hand-made runs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from analysis.query_table import (
    BOTH_FAIL,
    BOTH_FINE,
    BROKEN,
    FIXED,
    NO_FAILURE,
    SORTS,
    STATUSES,
    UNTYPED,
    RunQueries,
    failure_status_counts,
    filter_queries,
    hardest_negatives,
    query_status,
    query_table,
    sort_queries,
    table_bytes,
)
from analysis.rankings import rank_pairs
from analysis.verdict import verdict

CAPTIONS = ["a red circle", "a blue square", "red square grows", "a green star", "blue circle"]
VIDEOS = ["v0", "v1", "v2", "v3"]
T2V = np.array([0, 1, 2, 3, 0])
RANKS_BASE = np.array([1, 3, 2, 1, 4])
RANKS_DRGI = np.array([1, 1, 4, 1, 2])


def _runs(**extra) -> tuple[RunQueries, RunQueries]:
    base = RunQueries(
        ranks=RANKS_BASE, margins=np.array([0.2, -0.1, -0.05, 0.3, -0.2]),
        hardest=np.array([1, 0, 3, 2, 1]),
        failure_types=[None, "colour swap", "order swap", None, "shape swap"])
    drgi = RunQueries(
        ranks=RANKS_DRGI, margins=np.array([0.25, 0.1, -0.3, 0.3, -0.1]),
        hardest=np.array([2, 2, 3, 2, 3]),
        failure_types=[None, None, "action swap", None, "colour swap"],
        disc_pos=np.array([0.9, 0.8, 0.7, 0.6, 0.5]),
        disc_neg=np.array([0.1, 0.2, 0.3, 0.4, np.nan]), **extra)
    return base, drgi


def _table(**kw) -> pd.DataFrame:
    base, drgi = _runs()
    return query_table(base, drgi, captions=CAPTIONS, text_to_video=T2V, video_ids=VIDEOS,
                       **kw)


def test_query_table_joins_both_runs_per_query_id():
    t = _table(families=[0, 0, 1, 1], edits=["none", "colour", "none", "swap"])
    assert t.index.name == "query" and list(t.index) == [0, 1, 2, 3, 4]
    assert t["gt_video"].tolist() == ["v0", "v1", "v2", "v3", "v0"]
    assert t["delta_rank"].tolist() == [0, -2, 2, 0, -2]
    np.testing.assert_allclose(t["delta_log2"], np.log2(RANKS_DRGI / RANKS_BASE))
    assert t["outcome"].tolist() == ["tie", "win", "loss", "tie", "win"]
    assert t["status"].tolist() == [BOTH_FINE, FIXED, BOTH_FAIL, BOTH_FINE, BOTH_FAIL]
    # the failing run's type: DRGI's where DRGI fails, else the base's
    assert t["failure_type"].tolist() == [NO_FAILURE, "colour swap", "action swap", NO_FAILURE,
                                          "colour swap"]
    assert t["failure_base"].fillna("-").tolist() == ["-", "colour swap", "order swap", "-",
                                                      "shape swap"]
    np.testing.assert_allclose(t["delta_margin"], [0.05, 0.2, -0.25, 0.0, 0.1])
    assert t["hardest_base"].tolist() == ["v1", "v0", "v3", "v2", "v1"]
    assert t["family"].tolist() == [0, 0, 1, 1, 0]
    assert t["edit"].tolist() == ["none", "colour", "none", "swap", "none"]
    assert t["sibling_base"].tolist() == [True, True, True, True, True]
    assert t["sibling_drgi"].tolist() == [False, False, True, True, False]
    np.testing.assert_allclose(t["disc_gap_drgi"][:4], [0.8, 0.6, 0.4, 0.2])
    assert np.isnan(t["disc_gap_drgi"][4])
    assert "disc_pos_base" not in t.columns  # the base run has no DRGI arrays


def test_query_table_k_moves_the_status_and_untyped_failures():
    base, drgi = _runs()
    untyped = RunQueries(ranks=base.ranks, margins=base.margins, hardest=base.hardest)
    t = query_table(untyped, drgi, captions=CAPTIONS, text_to_video=T2V, video_ids=VIDEOS, k=2)
    assert t["status"].tolist() == [BOTH_FINE, FIXED, BROKEN, BOTH_FINE, FIXED]
    assert t["failure_base"].fillna("-").tolist() == ["-", UNTYPED, "-", "-", UNTYPED]
    assert t["failure_type"].tolist() == [NO_FAILURE, UNTYPED, "action swap", NO_FAILURE,
                                          UNTYPED]
    assert "family" not in t.columns


def test_query_table_rejects_misaligned_inputs():
    base, drgi = _runs()
    with pytest.raises(ValueError, match="base ranks: expected 4 values"):
        query_table(base, drgi, captions=CAPTIONS[:4], text_to_video=T2V[:4],
                    video_ids=VIDEOS)
    with pytest.raises(ValueError, match="k=0"):
        query_status([1], [1], k=0)


def test_hardest_negatives_masks_the_ground_truth():
    sim = np.array([[0.9, 0.5, 0.7], [0.2, 0.1, 0.2], [0.3, 0.8, 0.8]], dtype=np.float32)
    hardest, margins = hardest_negatives(sim, [0, 1, 2])
    assert hardest.tolist() == [2, 0, 1]  # a tie between negatives: the lower column
    np.testing.assert_allclose(margins, [0.2, -0.1, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="Nv >= 2"):
        hardest_negatives(np.ones((2, 1)), [0, 0])


def test_filter_and_sort_queries():
    t = _table(families=[0, 0, 1, 1], edits=["none", "colour", "none", "swap"])
    assert list(filter_queries(t, statuses=[BOTH_FAIL]).index) == [2, 4]
    assert list(filter_queries(t, statuses=[BOTH_FAIL], failure_types=["colour swap"]).index) \
        == [4]
    assert list(filter_queries(t, text="RED  square").index) == [2]
    assert list(filter_queries(t, outcomes=["win"], edits=["none"]).index) == [4]
    assert list(filter_queries(t).index) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="'edit'"):
        filter_queries(_table(), edits=["none"])
    better = sort_queries(t, "Δ log2 rank (DRGI better first)")
    assert list(better.index) == [1, 4, 0, 3, 2]  # -1.58, -1, 0, 0 (ties by id), +1
    assert list(sort_queries(t, "Δ log2 rank (DRGI worse first)").index) == [2, 0, 3, 4, 1]
    assert list(sort_queries(t, "base rank (worst first)").index) == [4, 1, 2, 0, 3]
    assert list(sort_queries(t.iloc[::-1], "query id").index) == [0, 1, 2, 3, 4]
    assert all(list(sort_queries(t, s).columns) == list(t.columns) for s in SORTS)
    with pytest.raises(ValueError, match="expected one of"):
        sort_queries(t, "rank_a")


def test_failure_status_counts_cross_table():
    counts = failure_status_counts(_table())
    assert list(counts.columns) == [*STATUSES, "all"]
    assert list(counts.index) == ["action swap", "colour swap", NO_FAILURE, "all"]
    assert counts.loc["colour swap", FIXED] == 1
    assert counts.loc["colour swap", BOTH_FAIL] == 1
    assert counts.loc[NO_FAILURE, BOTH_FINE] == 2
    assert counts.loc["all", "all"] == 5
    assert counts.loc["all", BROKEN] == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_bytes_round_trip(fmt):
    t = _table()
    data = table_bytes(t.iloc[[1, 4]], fmt)
    back = pd.read_csv(io.BytesIO(data)) if fmt == "csv" else pd.read_parquet(io.BytesIO(data))
    assert back.columns[0] == "query"
    assert back["query"].tolist() == [1, 4]
    assert back["caption"].tolist() == [CAPTIONS[1], CAPTIONS[4]]
    assert back["rank_drgi"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="xlsx"):
        table_bytes(t, "xlsx")


def test_rank_pairs_counts_ties():
    pairs = rank_pairs([1, 1, 2, 1, 5, 2], [1, 1, 1, 1, 10, 1])
    assert pairs[["rank_a", "rank_b", "count"]].values.tolist() == [[1, 1, 3], [2, 1, 2],
                                                                    [5, 10, 1]]
    assert pairs["queries"].tolist() == [[0, 1, 3], [2, 5], [4]]
    np.testing.assert_allclose(pairs["delta_log2"], [0.0, -1.0, 1.0])
    assert pairs["count"].sum() == 6


@pytest.mark.parametrize(("diff", "p", "fixed", "broken", "expected"), [
    (2.4, 0.003, 30, 18, "DRGI is better than base: +2.40 pp t2v R@1, p = 0.003 (paired "
     "sign-flip test); 30 queries fixed, 18 broken."),
    (-1.2, 0.0004, 5, 11, "DRGI is worse than base: \u22121.20 pp t2v R@1, p < 0.001 (paired "
     "sign-flip test); 5 queries fixed, 11 broken."),
    (-0.4, 0.63, 12, 14, "DRGI is not better than base: \u22120.40 pp t2v R@1, p = 0.63 "
     "(paired sign-flip test); 12 queries fixed, 14 broken."),
    (0.4, 0.63, 1, 0, "DRGI is not significantly better than base: +0.40 pp t2v R@1, "
     "p = 0.63 (paired sign-flip test); 1 query fixed, 0 broken."),
    (0.0, 1.0, 3, 3, "DRGI is not better than base: ±0.00 pp t2v R@1, p = 1.00 (paired "
     "sign-flip test); 3 queries fixed, 3 broken."),
])
def test_verdict_wording(diff, p, fixed, broken, expected):
    assert verdict(diff, p, fixed, broken) == expected


def test_verdict_rejects_bad_numbers():
    with pytest.raises(ValueError, match="p-value"):
        verdict(0.1, float("nan"), 1, 1)
    with pytest.raises(ValueError, match="counts"):
        verdict(0.1, 0.5, -1, 1)
