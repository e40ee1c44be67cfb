"""What the Live query page shows for one run and one query, computed once.

:func:`live_results` runs the search and builds the per-token heatmap and the query's map for
one (run, query text, top-k). The page draws them; :func:`app.resources.live_results` caches
them per run, bundle version, text and k, so a rerun of the page for the same query (a click
on a hit, a later visit of the page, the other run's panel redrawing) reuses the figures
instead of searching, placing the query on the map and building both figures again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from analysis.labels import video_label
from analysis.search_result import SearchResult
from app.components.figures.live_query import query_map
from app.components.word_scores import word_score_heatmap

NO_MAP = "No embeddings map in this bundle (exported without projections)."


@dataclass(frozen=True)
class LiveResults:
    """One run's answer to one query, ready to draw (read-only: it is shared by sessions).

    Attributes:
        result: the search's :class:`analysis.search_result.SearchResult`.
        words: the per-token heatmap of the hits, None without word scores (or no search).
        map: the query placed on the run's embeddings map, None without a map (or no search).
        map_note: why there is no map, when the bundle has none.
    """

    result: SearchResult
    words: go.Figure | None = None
    map: go.Figure | None = None
    map_note: str | None = None


def map_method(methods: tuple[str, ...] | list[str]) -> str | None:
    """The map the query is placed on: UMAP when exported, else the first one, None when the
    bundle has no map."""
    if not methods:
        return None
    return "umap" if "umap" in methods else methods[0]


def live_results(search: Any, bundle: Any, text: str, k: int,
                 placer: Callable[[str], Any]) -> LiveResults:
    """Search ``bundle``'s gallery for ``text`` (top ``k``) with ``search`` (an
    :class:`analysis.query.LiveSearch`) and build what the page draws.

    ``placer(method)`` gives the :class:`analysis.projection.PointPlacer` of the bundle's map
    ``method``; it is only asked for when the search ran and the bundle has a map.
    """
    from analysis.query import query_vector  # torch: imported by the search's module anyway

    result = search.search(text, k)
    if not result.ok:
        return LiveResults(result)
    words = (word_score_heatmap(result)
             if result.word_scores is not None and len(result.tokens) else None)
    method = map_method(bundle.projections.methods)
    if method is None:
        return LiveResults(result, words, map_note=NO_MAP)
    star = placer(method).place(query_vector(search, text))[0]
    fig = query_map(bundle.projections.get(method, "texts"),
                    bundle.projections.get(method, "videos"), star, result.indices.tolist(),
                    [video_label(v) for v in bundle.video_ids], text, method)
    return LiveResults(result, words, fig)
