"""Tests for app.components.figures.live_query: the query placed on the map."""

from __future__ import annotations

import numpy as np

from app.components.figures.live_query import (
    CAPTION_COLOUR,
    HIT_COLOUR,
    SVG_MAX_POINTS,
    VIDEO_COLOUR,
    query_map,
)


def test_query_map_colours_hits_and_stars_the_query():
    texts = np.zeros((2, 2))
    videos = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    fig = query_map(texts, videos, np.array([0.5, 0.5]), [2], ["video a", "video b", "video c"],
                    "a red circle", "umap")
    gallery, star = fig.data
    assert gallery.type == "scatter" and len(gallery.x) == 5  # a small map: SVG
    assert list(gallery.marker.color) == [CAPTION_COLOUR] * 2 + [VIDEO_COLOUR, VIDEO_COLOUR,
                                                                  HIT_COLOUR]
    assert gallery.hovertext[-1] == "video c (hit)" and gallery.hovertext[0] == "caption 0"
    assert (star.x, star.y) == ((0.5,), (0.5,)) and star.marker.symbol == "star"
    assert star.hovertext == ("a red circle",)
    assert fig.layout.title.text.startswith("UMAP map")


def test_query_map_draws_a_large_map_with_webgl():
    n = SVG_MAX_POINTS // 2 + 1
    rng = np.random.default_rng(0)
    texts, videos = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    fig = query_map(texts, videos, np.zeros(2), [0], [f"v{i}" for i in range(n)], "q", "pca")
    assert fig.data[0].type == "scattergl" and len(fig.data[0].x) == 2 * n
    at_limit = query_map(texts[:-1], videos[:-1], np.zeros(2), [0],
                         [f"v{i}" for i in range(n - 1)], "q", "pca")
    assert at_limit.data[0].type == "scatter"
