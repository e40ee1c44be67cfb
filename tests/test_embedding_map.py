"""Tests for analysis.embedding_map: flat map points, selections, highlights."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.bundle import Projections
from analysis.embedding_map import KINDS, highlight, map_points, selected_items


def _projections() -> Projections:
    # 2 captions (3 + 2 words), 3 videos (2 + 1 + 1 frames)
    word_ids = np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]])
    frame_ids = np.array([[0, 0], [0, 1], [1, 0], [2, 0]])
    sizes = {"words": 5, "frames": 4, "texts": 2, "videos": 3}
    coords, start = {}, 0
    for k in KINDS:
        n = sizes[k]
        coords[("pca", k)] = np.stack([np.arange(start, start + n), np.zeros(n)], 1).astype(
            np.float32)
        start += n
    return Projections(("pca",), coords, word_ids, frame_ids, {})


def test_points_are_flat_blocks_in_kind_order():
    p = map_points(_projections(), "pca", np.array([2, 0]))
    assert len(p) == 14
    np.testing.assert_array_equal(p.coords[:, 0], np.arange(14))  # blocks concatenated in order
    assert p.kind.tolist() == [0] * 5 + [1] * 4 + [2] * 2 + [3] * 3
    assert p.item.tolist() == [0, 0, 0, 1, 1, 0, 0, 1, 2, 0, 1, 0, 1, 2]
    assert p.position.tolist() == [0, 1, 2, 0, 1, 0, 1, 0, 0] + [-1] * 5
    assert p.caption.tolist() == [0, 0, 0, 1, 1] + [-1] * 4 + [0, 1] + [-1] * 3
    assert p.video.tolist() == [2, 2, 2, 0, 0, 0, 0, 1, 2, 2, 0, 0, 1, 2]
    assert p.block("texts").tolist() == [9, 10]
    with pytest.raises(KeyError, match="umap"):
        map_points(_projections(), "umap", np.array([2, 0]))
    with pytest.raises(ValueError, match="texts"):
        map_points(_projections(), "pca", np.array([2, 0, 1]))


def test_selection_and_highlight():
    p = map_points(_projections(), "pca", np.array([2, 0]))
    # word of caption 1, frame of video 1, pooled video 2, an out-of-range id
    captions, videos = selected_items(p, [3, 7, 13, 99])
    assert captions == [1] and videos == [1, 2]
    lit = highlight(p, captions, videos)
    assert np.flatnonzero(lit).tolist() == [3, 4, 7, 8, 10, 12, 13]
    assert selected_items(p, []) == ([], [])
    assert not highlight(p, [], []).any()
