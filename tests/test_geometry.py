"""Tests for analysis.geometry: the modality gap and the top hubs."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.geometry import modality_gap, top_hubs


def test_modality_gap_known_answer():
    # texts on +x (scaled: normalised away), videos on +y: centroids (1,0) and (0,1)
    text = np.array([[2.0, 0.0], [5.0, 0.0]])
    video = np.array([[0.0, 1.0], [0.0, 3.0], [0.0, 0.5]])
    gap = modality_gap(text, video, np.array([0, 2]))
    assert gap.centroid_distance == pytest.approx(np.sqrt(2))
    assert gap.text_centroid_norm == pytest.approx(1.0)
    assert gap.video_centroid_norm == pytest.approx(1.0)
    np.testing.assert_allclose(gap.matched_cos, [0.0, 0.0], atol=1e-7)
    assert gap.random_cos.shape == (2,) and gap.random_pairs.shape == (2, 2)


def test_random_pairs_never_use_the_ground_truth_and_are_deterministic():
    rng = np.random.default_rng(0)
    text, video = rng.normal(size=(50, 8)), rng.normal(size=(5, 8))
    t2v = rng.integers(0, 5, size=50)
    gap = modality_gap(text, video, t2v, n_random=400, seed=3)
    texts, videos = gap.random_pairs.T
    assert (videos != t2v[texts]).all()
    assert set(videos.tolist()) == set(range(5))  # every other video can be drawn
    unit_t = text / np.linalg.norm(text, axis=1, keepdims=True)
    unit_v = video / np.linalg.norm(video, axis=1, keepdims=True)
    np.testing.assert_allclose(gap.random_cos, np.sum(unit_t[texts] * unit_v[videos], 1),
                               rtol=1e-5)
    np.testing.assert_allclose(gap.matched_cos, np.sum(unit_t * unit_v[t2v], 1), rtol=1e-5)
    again = modality_gap(text, video, t2v, n_random=400, seed=3)
    np.testing.assert_array_equal(gap.random_pairs, again.random_pairs)
    assert gap.matched_mean == pytest.approx(float(gap.matched_cos.mean()))


def test_identical_clouds_have_no_gap_and_one_video_has_no_random_pairs():
    x = np.eye(3)
    gap = modality_gap(x, x, np.arange(3))
    assert gap.centroid_distance == pytest.approx(0.0)
    np.testing.assert_allclose(gap.matched_cos, 1.0)
    one = modality_gap(x, x[:1], np.zeros(3, dtype=int))
    assert one.random_cos.size == 0 and np.isnan(one.random_mean)


def test_modality_gap_errors():
    with pytest.raises(ValueError, match="text_to_video"):
        modality_gap(np.eye(2), np.eye(2), np.array([0]))
    with pytest.raises(ValueError, match=r"text_to_video\[1\] = 5"):
        modality_gap(np.eye(2), np.eye(2), np.array([0, 5]))
    with pytest.raises(ValueError, match="dim"):
        modality_gap(np.eye(2), np.eye(3), np.array([0, 1]))
    with pytest.raises(ValueError, match="non-finite"):
        modality_gap(np.array([[1.0, np.nan]]), np.eye(2), np.array([0]))


def test_top_hubs_orders_by_count_then_index():
    assert top_hubs([1, 5, 0, 5, 3], 3).tolist() == [1, 3, 4]
    assert top_hubs([2, 2], 10).tolist() == [0, 1]
    with pytest.raises(ValueError, match="n=0"):
        top_hubs([1], 0)
