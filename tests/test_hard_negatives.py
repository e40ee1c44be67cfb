"""Tests for analysis.hard_negatives: hardest negatives, margins, hubness, word-frame cosines."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import analysis.hard_negatives as hn
import analysis.ranked_negatives as rn
from analysis.hard_negatives import (
    hard_negatives,
    hubness,
    hubness_summary,
    margin_distribution,
    word_frame_matrix,
)

# 3 texts x 4 videos; GT columns 0, 1, 3
SIM = np.array(
    [
        [0.9, 0.5, 0.95, 0.1],  # video 2 beats the GT: margin -0.05
        [0.2, 0.8, 0.8, 0.3],  # video 2 ties the GT: margin 0
        [0.1, 0.2, 0.3, 0.7],  # clean: margin 0.4
    ],
    dtype=np.float32,
)
T2V = np.array([0, 1, 3])


def test_margins_by_hand():
    np.testing.assert_allclose(margin_distribution(SIM, T2V), [-0.05, 0.0, 0.4], atol=1e-6)
    assert margin_distribution(SIM, T2V).dtype == np.float32


def test_hard_negatives_by_hand():
    res = hard_negatives(SIM, T2V, k=2)
    assert res.video_ids.tolist() == [[2, 1], [2, 3], [2, 1]]
    np.testing.assert_allclose(res.scores, [[0.95, 0.5], [0.8, 0.3], [0.3, 0.2]], atol=1e-6)
    assert res.at_or_above_gt.tolist() == [[True, False], [True, False], [False, False]]
    assert res.n_at_or_above_gt.tolist() == [1, 1, 0]
    np.testing.assert_allclose(res.gt_scores, [0.9, 0.8, 0.7], atol=1e-6)
    np.testing.assert_allclose(res.margin, margin_distribution(SIM, T2V))
    assert res.same_family is None
    assert [(v, round(s, 4)) for v, s in res.confusers(0)] == [(2, 0.95)]
    assert res.confusers(2) == []


def test_hard_negatives_families_padding_and_ties():
    families = np.array(["a", "a", "b", "b"])
    res = hard_negatives(SIM, T2V, video_to_family=families, k=5)  # only 3 negatives exist
    assert res.video_ids.shape == (3, 5)
    assert res.video_ids[0].tolist() == [2, 1, 3, -1, -1]
    assert np.isnan(res.scores[0, 3:]).all()
    assert not res.at_or_above_gt[:, 3:].any()
    # text 0 (family a): negatives 2 (b), 1 (a), 3 (b); text 2 (family b): 2 (b), 1 (a), 0 (a)
    assert res.same_family[0].tolist() == [False, True, False, False, False]
    assert res.same_family[2].tolist() == [True, False, False, False, False]
    # equal negative scores come out by lower video index
    tied = np.array([[0.5, 0.3, 0.3, 0.3, 0.1]])
    assert hard_negatives(tied, [0], k=2).video_ids.tolist() == [[1, 2]]
    assert hard_negatives(tied, [4], k=3).video_ids.tolist() == [[0, 1, 2]]


def test_blocked_computation_matches(monkeypatch):
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(7, 9)).astype(np.float32)
    sim[3, 5] = sim[3, 2]  # a tie with the GT
    t2v = rng.integers(0, 9, 7)
    t2v[3] = 2
    full = hard_negatives(sim, t2v, k=4)
    margins = margin_distribution(sim, t2v)
    counts = hubness(sim, k=3)
    monkeypatch.setattr(hn, "_BLOCK_ROWS", 2)
    monkeypatch.setattr(rn, "_BLOCK_ROWS", 2)
    blocked = hard_negatives(sim, t2v, k=4)
    for name in ("video_ids", "scores", "at_or_above_gt", "n_at_or_above_gt", "margin"):
        np.testing.assert_array_equal(getattr(full, name), getattr(blocked, name))
    np.testing.assert_array_equal(margins, margin_distribution(sim, t2v))
    np.testing.assert_array_equal(counts, hubness(sim, k=3))
    assert full.n_at_or_above_gt[3] >= 1 and full.margin[3] <= 0


def test_consistent_with_tie_safe_ranks():
    metrics = pytest.importorskip("tvr.metrics")
    rng = np.random.default_rng(1)
    sim = rng.normal(size=(20, 12)).astype(np.float32)
    t2v = np.arange(20) % 12
    ranks = metrics.t2v_ranks(sim, t2v)
    res = hard_negatives(sim, t2v, k=11)
    strictly_above = (res.scores > res.gt_scores[:, None]).sum(axis=1)
    np.testing.assert_array_equal(ranks, 1 + strictly_above)
    np.testing.assert_array_equal(ranks == 1, res.margin > 0)
    np.testing.assert_array_equal(ranks, 1 + res.n_at_or_above_gt)
    # ties count against the model: a negative equal to the ground truth worsens the rank
    tied = np.round(sim, 0)
    ranks = metrics.t2v_ranks(tied, t2v)
    res = hard_negatives(tied, t2v, k=11)
    assert (res.margin == 0).any()
    np.testing.assert_array_equal(ranks, 1 + res.n_at_or_above_gt)
    np.testing.assert_array_equal(ranks, 1 + res.at_or_above_gt.sum(axis=1))
    np.testing.assert_array_equal(ranks == 1, res.margin > 0)


@pytest.mark.parametrize(
    ("sim", "t2v", "message"),
    [
        (np.array([[0.1, np.nan]]), [0], r"sim\[0, 1\] is nan; similarity scores must be finite"),
        (SIM, [0, 1], r"text_to_video: expected shape \(3,\)"),
        (SIM, [0, 1, 4], r"text_to_video\[2\] = 4 is not a column of sim \(0..3\)"),
        (SIM, [0.0, 1.0, 3.0], "expected integer video indices"),
        (np.ones((2, 1)), [0, 0], "need at least 2 videos"),
        (np.ones(3), [0], "expected a 2-D"),
    ],
)
def test_bad_inputs_raise(sim, t2v, message):
    with pytest.raises(ValueError, match=message):
        hard_negatives(sim, t2v)


def test_bad_family_and_k():
    with pytest.raises(ValueError, match=r"video_to_family: expected shape \(4,\)"):
        hard_negatives(SIM, T2V, video_to_family=[0, 1])
    with pytest.raises(ValueError, match="k=0"):
        hard_negatives(SIM, T2V, k=0)
    with pytest.raises(ValueError, match="margins need at least 2 videos"):
        margin_distribution(np.ones((2, 1)), [0, 0])


def test_hubness_by_hand():
    sim = np.array(
        [
            [0.9, 0.8, 0.1, 0.0],  # top-2: 0, 1
            [0.7, 0.1, 0.9, 0.2],  # top-2: 2, 0
            [0.6, 0.1, 0.2, 0.3],  # top-2: 0, 3
        ]
    )
    counts = hubness(sim, k=2)
    assert counts.tolist() == [3, 1, 1, 1]
    assert counts.sum() == 2 * 3
    summary = hubness_summary(counts, k=2)
    # centred values 1.5, -.5, -.5, -.5: m2 = .75, m3 = .75 -> skew = 1 / sqrt(.75)
    assert summary.skew == pytest.approx(1 / np.sqrt(0.75))
    assert summary.skew == pytest.approx(stats.skew(counts))
    assert (summary.k, summary.mean, summary.max, summary.antihub_share) == (2, 1.5, 3, 0.0)
    # v2t: each video's top-1 text
    assert hubness(sim, k=1, direction="v2t").tolist() == [2, 1, 1]
    # ties at the k-th score go to the lower index; k = gallery size counts everything
    assert hubness(np.array([[0.5, 0.5, 0.5]]), k=2).tolist() == [1, 1, 0]
    assert hubness(sim, k=4).tolist() == [3, 3, 3, 3]


def test_hubness_summary_edge_cases_and_errors():
    flat = hubness_summary(np.array([2, 2, 2]), k=2)
    assert flat.skew == 0.0 and flat.antihub_share == 0.0
    assert hubness_summary(np.array([0, 0, 6]), k=2).antihub_share == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"k=5: expected 1 <= k <= 4"):
        hubness(SIM, k=5)
    with pytest.raises(ValueError, match="direction='x'"):
        hubness(SIM, k=1, direction="x")
    with pytest.raises(ValueError, match="k-occurrences must be >= 0"):
        hubness_summary(np.array([-1, 2]), k=1)


def test_word_frame_matrix_by_hand():
    text = np.array([[1.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    text_mask = np.array([1, 1, 0])
    video = np.array([[1.0, 1.0], [0.0, -3.0]])
    out = word_frame_matrix(text, text_mask, video, np.array([True, True]))
    r = 1 / np.sqrt(2)
    np.testing.assert_allclose(out, [[r, 0.0], [r, -1.0]], atol=1e-6)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    only_first = word_frame_matrix(text, text_mask, video, np.array([1, 0]))
    assert only_first.shape == (2, 1)


def test_word_frame_matrix_errors():
    with pytest.raises(ValueError, match="text_tokens have dim 2 but video_tokens have dim 3"):
        word_frame_matrix(np.ones((2, 2)), [1, 1], np.ones((2, 3)), [1, 1])
    with pytest.raises(ValueError, match="video_mask has no valid position"):
        word_frame_matrix(np.ones((2, 2)), [1, 1], np.ones((2, 2)), [0, 0])
    with pytest.raises(ValueError, match=r"text_mask: expected shape \(2,\)"):
        word_frame_matrix(np.ones((2, 2)), [1], np.ones((2, 2)), [1, 1])


def test_top_k_stable_orders_by_score_then_column_with_and_without_ties():
    from analysis.top_k import top_k_stable

    rng = np.random.default_rng(1)
    cols = np.arange(30)
    for block in (rng.normal(size=(200, 30)),  # no ties: the argpartition alone decides
                  rng.integers(0, 4, size=(200, 30)).astype(np.float64)):  # ties at the k-th
        for k in (1, 3, 29, 30):
            got = top_k_stable(block, k)
            assert all(got[r].tolist() == sorted(cols, key=lambda c, r=r: (-block[r, c], c))[:k]
                       for r in range(200))
