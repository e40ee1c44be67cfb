"""Tests for analysis.ranked_negatives: every view of the K kept negatives equals its
definition over the whole similarity row (brute-force sorts, tvr.metrics ranks and
analysis.hard_negatives.hubness), ties included."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.hard_negatives import hubness
from analysis.ranked_negatives import (
    NEGATIVES_K,
    RankedNegatives,
    negatives_from_arrays,
    ranked_negatives,
)
from tvr.metrics import t2v_ranks


def _tied_sim(seed: int, n_text: int = 120, n_video: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Scores on a coarse grid (many ties, also with the ground truth)."""
    rng = np.random.default_rng(seed)
    sim = (rng.integers(0, 7, size=(n_text, n_video)) / 6).astype(np.float32)
    return sim, rng.integers(0, n_video, size=n_text)


def _sorted_negatives(sim: np.ndarray, t2v: np.ndarray, q: int) -> list[int]:
    cols = [c for c in range(sim.shape[1]) if c != t2v[q]]
    return sorted(cols, key=lambda c: (-sim[q, c], c))


@pytest.mark.parametrize("seed", [0, 1])
def test_kept_negatives_are_the_sorted_row(seed):
    sim, t2v = _tied_sim(seed)
    neg = ranked_negatives(sim, t2v, k=8)
    assert neg.k == 8 and neg.num_texts == 120 and neg.num_videos == 30
    for q in range(sim.shape[0]):
        want = _sorted_negatives(sim, t2v, q)[:8]
        assert neg.video_ids[q].tolist() == want
        assert neg.scores[q].tolist() == sim[q, want].tolist()
    np.testing.assert_array_equal(neg.ranks, t2v_ranks(sim, t2v))
    np.testing.assert_array_equal(neg.gt_scores, sim[np.arange(120), t2v])
    # k above the gallery keeps every negative
    assert ranked_negatives(sim, t2v, k=NEGATIVES_K).k == 29


def test_hard_negatives_margins_and_hardest_match_the_full_rows():
    sim, t2v = _tied_sim(2)
    neg = ranked_negatives(sim, t2v, k=10)
    family = np.arange(30) // 3
    hn = neg.hard_negatives(6, video_to_family=family)
    margins = neg.margins()
    hardest, hardest_margin = neg.hardest()
    for q in range(sim.shape[0]):
        order = _sorted_negatives(sim, t2v, q)
        gt = float(sim[q, t2v[q]])
        assert hn.video_ids[q].tolist() == order[:6]
        assert hn.at_or_above_gt[q].tolist() == [float(sim[q, v]) >= gt for v in order[:6]]
        assert hn.n_at_or_above_gt[q] == sum(float(sim[q, v]) >= gt for v in order)
        assert hn.same_family[q].tolist() == [family[v] == family[t2v[q]] for v in order[:6]]
        assert margins[q] == np.float32(gt - float(sim[q, order[0]]))
        assert hardest[q] == order[0] and hardest_margin[q] == gt - float(sim[q, order[0]])
    # asking for more columns than videos pads, as over the full matrix
    wide = ranked_negatives(sim[:, :4], t2v % 4, k=3).hard_negatives(5)
    assert (wide.video_ids[:, 3:] == -1).all() and np.isnan(wide.scores[:, 3:]).all()


@pytest.mark.parametrize("n", [1, 2, 5, 29, 30])
def test_top_videos_place_the_ground_truth_at_its_rank(n):
    sim, t2v = _tied_sim(3)
    neg = ranked_negatives(sim, t2v, k=NEGATIVES_K)
    rows = np.array([5, 0, 77, 119])
    ids, scores = neg.top_videos(rows, n)
    for i, q in enumerate(rows):
        want = sorted(range(30), key=lambda c, q=q: (-sim[q, c], c == t2v[q], c))[:n]
        assert ids[i].tolist() == want
        assert scores[i].tolist() == sim[q, want].astype(np.float64).tolist()


@pytest.mark.parametrize("k", [1, 3, 10, 29, 30])
def test_hubness_equals_the_full_matrix_count(k):
    sim, t2v = _tied_sim(4)
    neg = ranked_negatives(sim, t2v, k=NEGATIVES_K)
    np.testing.assert_array_equal(neg.hubness(k), hubness(sim, k=k, direction="t2v"))
    assert neg.hubness(k).sum() == k * sim.shape[0]
    # with only k negatives kept, hubness at k still follows
    np.testing.assert_array_equal(ranked_negatives(sim, t2v, k=min(k, 29)).hubness(k),
                                  hubness(sim, k=k))


def test_too_few_negatives_kept_is_refused_with_the_way_out():
    sim, t2v = _tied_sim(5)
    neg = ranked_negatives(sim, t2v, k=4)
    with pytest.raises(ValueError, match="hubness at k=9 needs 9 negatives per caption; 4 were "
                                         "kept"):
        neg.hubness(9)
    with pytest.raises(ValueError, match="a top-6 list needs 6"):
        neg.top_videos([0], 6)
    with pytest.raises(ValueError, match="k=0"):
        neg.hard_negatives(0)
    with pytest.raises(ValueError, match=r"k=31: expected 1 <= k <= 30"):
        neg.hubness(31)
    with pytest.raises(ValueError, match="negatives need at least 2 videos"):
        ranked_negatives(sim[:, :1], np.zeros(120, dtype=np.int64))


def test_arrays_round_trip_and_bad_arrays():
    sim, t2v = _tied_sim(6)
    neg = ranked_negatives(sim, t2v, k=7)
    arrays = neg.arrays()
    assert arrays["video_ids"].dtype == np.int32 and arrays["scores"].dtype == np.float32
    back = negatives_from_arrays(arrays, 30)
    np.testing.assert_array_equal(back.hubness(5), neg.hubness(5))
    np.testing.assert_array_equal(back.top_videos(np.arange(120), 5)[0],
                                  neg.top_videos(np.arange(120), 5)[0])
    with pytest.raises(ValueError, match=r"arrays \['gt_scores'\] are missing"):
        negatives_from_arrays({k: v for k, v in arrays.items() if k != "gt_scores"}, 30)
    with pytest.raises(ValueError, match=r"scores: expected shape \(120, 7\)"):
        RankedNegatives(arrays["video_ids"], arrays["scores"][:, :3], arrays["gt_videos"],
                        arrays["gt_scores"], arrays["n_at_or_above"], 30)
    with pytest.raises(ValueError, match="7 negatives per caption for 5 videos"):
        negatives_from_arrays(arrays, 5)
