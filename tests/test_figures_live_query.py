"""Tests for app.components.figures.live_query: the query placed on the map."""

from __future__ import annotations

import numpy as np

from app.components.figures.live_query import (
    CAPTION_COLOUR,
    HIT_COLOUR,
    VIDEO_COLOUR,
    query_map,
)


def test_query_map_colours_hits_and_stars_the_query():
    texts = np.zeros((2, 2))
    videos = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    fig = query_map(texts, videos, np.array([0.5, 0.5]), [2], ["video a", "video b", "video c"],
                    "a red circle", "umap")
    gallery, star = fig.data
    assert gallery.type == "scattergl" and len(gallery.x) == 5
    assert list(gallery.marker.color) == [CAPTION_COLOUR] * 2 + [VIDEO_COLOUR, VIDEO_COLOUR,
                                                                  HIT_COLOUR]
    assert gallery.hovertext[-1] == "video c (hit)" and gallery.hovertext[0] == "caption 0"
    assert (star.x, star.y) == ((0.5,), (0.5,)) and star.marker.symbol == "star"
    assert star.hovertext == ("a red circle",)
    assert fig.layout.title.text.startswith("UMAP map")
