"""analysis.projector: find by text or id, nearest neighbours in the full space, per-point
values, selections in the URL."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from analysis.embedding_map import map_points
from analysis.projector import (
    CAPTION,
    VIDEO,
    Item,
    find_items,
    nearest_neighbours,
    point_values,
    selection_from_url,
    selection_to_url,
)

CAPTIONS = ["a red circle moves left", "a blue square grows", "the red square shrinks"]
VIDEOS_ = ["video7", "video12", "clip3"]


def test_find_by_index_id_and_words():
    assert find_items("1", CAPTIONS, VIDEOS_) == [Item(CAPTION, 1), Item(VIDEO, 1)]
    assert find_items("caption 2", CAPTIONS, VIDEOS_) == [Item(CAPTION, 2)]
    assert find_items("v0", CAPTIONS, VIDEOS_) == [Item(VIDEO, 0)]
    assert find_items("VIDEO12", CAPTIONS, VIDEOS_)[0] == Item(VIDEO, 1)
    assert find_items("video1", CAPTIONS, VIDEOS_) == [Item(VIDEO, 1)]  # contains
    assert find_items("red square", CAPTIONS, VIDEOS_) == [Item(CAPTION, 2)]
    assert find_items("red", CAPTIONS, VIDEOS_) == [Item(CAPTION, 0), Item(CAPTION, 2)]
    assert find_items("  ", CAPTIONS, VIDEOS_) == []
    assert find_items("99", CAPTIONS, VIDEOS_) == []


def test_nearest_neighbours_in_the_full_space_against_a_naive_loop():
    rng = np.random.default_rng(0)
    text, video = rng.normal(size=(6, 5)), rng.normal(size=(4, 5))
    got = nearest_neighbours(text, video, Item(VIDEO, 2), k=4)
    every = [(Item(CAPTION, i), t) for i, t in enumerate(text)] + [
        (Item(VIDEO, i), v) for i, v in enumerate(video) if i != 2]
    anchor = video[2] / np.linalg.norm(video[2])
    cos = sorted(((float(x @ anchor / np.linalg.norm(x)), it) for it, x in every),
                 key=lambda p: -p[0])
    assert [it for it, _ in got] == [it for _, it in cos[:4]]
    np.testing.assert_allclose([c for _, c in got], [c for c, _ in cos[:4]])
    assert Item(VIDEO, 2) not in [it for it, _ in nearest_neighbours(text, video,
                                                                      Item(VIDEO, 2), k=20)]
    with pytest.raises(ValueError, match="no such caption"):
        nearest_neighbours(text, video, Item(CAPTION, 6))


def test_point_values_spread_captions_over_their_videos():
    proj = SimpleNamespace(
        word_ids=np.array([[0, 0], [2, 1]]), frame_ids=np.array([[1, 0], [2, 0]]),
        get=lambda method, kind: np.zeros(({"words": 2, "frames": 2, "texts": 3,
                                            "videos": 3}[kind], 2)))
    points = map_points(proj, "pca", np.array([0, 1, 1]))
    values = point_values(points, np.array([1.0, 2.0, 4.0]))
    # words (captions 0, 2), frames (videos 1, 2), texts 0..2, videos 0..2
    np.testing.assert_allclose(values, [1.0, 4.0, 3.0, np.nan, 1.0, 2.0, 4.0, 1.0, 3.0, np.nan])


def test_selection_round_trips_and_bad_values_are_named():
    url = selection_to_url([3, 1], [0])
    assert url == "c3.1~v0"
    assert selection_from_url(url, 5, 2) == ([1, 3], [0])
    assert selection_from_url("", 5, 2) == ([], [])
    with pytest.raises(ValueError, match="out of range"):
        selection_from_url("c9", 5, 2)
    with pytest.raises(ValueError, match="expected"):
        selection_from_url("x1", 5, 2)


def test_saved_selections_round_trip_with_their_name():
    from analysis.projector import saved_from_url, saved_to_url

    url = saved_to_url("red: things", [2, 1], [])
    assert url == "red: things:c2.1"
    assert saved_from_url(url, 5, 2) == ("red: things", [1, 2], [])
    with pytest.raises(ValueError, match="needs a name"):
        saved_to_url(" ", [1], [])
    with pytest.raises(ValueError, match="empty"):
        saved_to_url("x", [], [])
    with pytest.raises(ValueError, match="expected name"):
        saved_from_url("c1", 5, 2)
    with pytest.raises(ValueError, match="out of range"):
        saved_from_url("a:v7", 5, 2)
