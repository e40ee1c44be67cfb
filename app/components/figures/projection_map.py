"""The Embeddings page's map figure: one WebGL trace of the drawn points (ids in
``customdata``), colour codes on a stepped scale, the unselected points greyed, and the marks
of the current query drawn on top."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from analysis.embedding_map import MapPoints
from app.components.figures.map_colours import MapColours, stepped_colorscale

KIND_SIZES = (4, 4, 9, 9)  # in KINDS order
UNSELECTED = "rgba(190,190,190,0.3)"
QUERY_COLOUR, GT_COLOUR, NEGATIVE_COLOUR = "#000000", "#2ca02c", "#d62728"


def map_figure(points: MapPoints, coords: np.ndarray, shown: np.ndarray, colours: MapColours,
               lit: np.ndarray | None, hover: np.ndarray | None, title: str) -> go.Figure:
    """One Scattergl trace of the ``shown`` points, plus one empty legend trace per entry of
    ``colours.legend``.

    Args:
        points: the map's points.
        coords: ``[P, 2]`` coordinates (possibly aligned to another map).
        shown: ``[S]`` ids of the points to draw.
        colours: the points' colour codes.
        lit: ``[P]`` bool, the selected points (the others are greyed and drawn first), or None.
        hover: ``[S]`` str hover text of the ``shown`` points (in their order), or None
            (the hover shows the point id).
        title: the figure title.
    """
    codes = colours.codes.copy()
    palette = list(colours.palette)
    order = np.asarray(shown, dtype=np.int64)
    perm = np.arange(len(order))
    if lit is not None:
        palette.append(UNSELECTED)
        codes = codes.astype(np.uint16 if len(palette) > 256 else np.uint8)
        codes[~lit] = len(palette) - 1
        perm = np.argsort(lit[order], kind="stable")  # highlighted drawn last (on top)
        order = order[perm]
    sizes = np.asarray(KIND_SIZES, dtype=np.uint8)[points.kind[order]]
    trace: dict[str, Any] = dict(
        # float32: half the bytes to the browser, far finer than a pixel
        x=coords[order, 0].astype(np.float32), y=coords[order, 1].astype(np.float32),
        mode="markers", name="points",
        marker=dict(size=sizes, color=codes[order], colorscale=stepped_colorscale(palette),
                    cmin=-0.5, cmax=len(palette) - 0.5, showscale=False, line=dict(width=0)),
        # 1-D ids: a 2-D typed customdata comes back from the browser as a dict per point
        customdata=order.astype(np.int32), showlegend=False,
    )
    if hover is not None:
        if len(hover) != len(perm):
            raise ValueError(f"hover: expected {len(perm)} texts (one per shown point), got "
                             f"{len(hover)}")
        trace["hovertext"] = np.asarray(hover)[perm]
        trace["hovertemplate"] = "%{hovertext}<extra></extra>"
    else:
        trace["hovertemplate"] = "point %{customdata}<extra></extra>"
    fig = go.Figure(go.Scattergl(**trace))
    for name, colour in colours.legend:  # legend entries only: empty SVG traces, no points
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(size=9, color=colour), hoverinfo="skip"))
    fig.update_layout(
        title=title, height=560, dragmode="lasso", margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.08), xaxis=dict(showticklabels=False),
        yaxis=dict(showticklabels=False, scaleanchor="x"),
    )
    return fig


def mark_query(fig: go.Figure, points: MapPoints, coords: np.ndarray, q: int, gt: int,
               negatives: list[int]) -> None:
    """Mark caption ``q`` (star), its ground-truth video (ringed diamond) and its top negative
    videos (crosses) on top of a map, one legend entry each (three small WebGL traces after
    the map's own, so drawn over it)."""
    texts, videos = points.block("texts"), points.block("videos")
    text_pt = texts[points.item[texts] == q]
    vid_of = {int(points.item[i]): int(i) for i in videos}
    marks = (
        (f"caption {q}", text_pt, "star", 18, QUERY_COLOUR),
        ("its ground truth", np.asarray([vid_of[gt]] if gt in vid_of else [], dtype=np.int64),
         "diamond-open", 18, GT_COLOUR),
        ("top negatives", np.asarray([vid_of[v] for v in negatives if v in vid_of],
                                     dtype=np.int64), "x", 13, NEGATIVE_COLOUR),
    )
    for name, ids, symbol, size, colour in marks:
        # WebGL too: plotly draws WebGL points above every SVG trace, which would hide these
        fig.add_trace(go.Scattergl(
            x=coords[ids, 0], y=coords[ids, 1], mode="markers", name=name,
            marker=dict(symbol=symbol, size=size, color=colour,
                        line=dict(width=2, color=colour)),
            hovertemplate=f"{name}<extra></extra>"))
