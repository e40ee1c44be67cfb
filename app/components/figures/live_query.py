"""The Live query page's map: the typed query placed among the split's captions and videos."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

CAPTION_COLOUR, HIT_COLOUR, VIDEO_COLOUR = "#9ecae1", "#d62728", "#636363"
# maps of at most this many points are drawn as SVG, larger ones with WebGL: a WebGL chart
# costs the browser a context of its own (rasterised in software without a GPU), more than
# SVG's DOM nodes for a small map (browser CPU per query, demo's 1,000 points: ~0.15 s less)
SVG_MAX_POINTS = 2000


def query_map(texts: np.ndarray, videos: np.ndarray, star: np.ndarray, hits: Sequence[int],
              video_names: Sequence[str], query: str, method: str) -> go.Figure:
    """Captions (``texts [Nt, 2]``, blue), videos (``videos [Nv, 2]``; hits red, others grey)
    and the query at ``star [2]`` (a gold star) on one 2-D map (SVG up to
    :data:`SVG_MAX_POINTS` points, WebGL above)."""
    hit_set = {int(h) for h in hits}
    scatter = go.Scatter if len(texts) + len(videos) <= SVG_MAX_POINTS else go.Scattergl
    fig = go.Figure()
    fig.add_trace(scatter(
        x=np.concatenate([texts[:, 0], videos[:, 0]]),
        y=np.concatenate([texts[:, 1], videos[:, 1]]), mode="markers", name="gallery",
        marker=dict(size=6, color=[CAPTION_COLOUR] * len(texts) + [
            HIT_COLOUR if v in hit_set else VIDEO_COLOUR for v in range(len(videos))]),
        customdata=np.concatenate([np.arange(len(texts)), np.arange(len(videos))]),
        hovertext=[f"caption {i}" for i in range(len(texts))]
        + [name + (" (hit)" if i in hit_set else "") for i, name in enumerate(video_names)],
        hoverinfo="text",
    ))
    fig.add_trace(go.Scatter(
        x=[star[0]], y=[star[1]], mode="markers", name="query",
        marker=dict(symbol="star", size=18, color="gold", line=dict(color="black", width=1)),
        hovertext=[query], hoverinfo="text",
    ))
    fig.update_layout(height=380, showlegend=False, margin=dict(l=10, r=10, t=30, b=10),
                      title=f"{method.upper()} map: the query (★), hits (red), other "
                            "videos (grey), captions (blue)")
    return fig
