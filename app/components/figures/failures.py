"""Figures of the Failures page: failure types as bars and a word-by-frame cosine heatmap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

MAX_ANNOTATED_CELLS = 900
MARK_COLOUR = "#ff2d2d"  # the outlined frame column: red stands apart from Viridis


def failure_type_bars(counts: pd.Series) -> go.Figure:
    """Queries per failure type (``counts``: index = type, value = queries)."""
    fig = px.bar(x=counts.index, y=counts.values,
                 labels={"x": "failure type", "y": "queries"}, height=260)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
    return fig


def word_frame_heatmap(m: np.ndarray, frames: Sequence[str], words: Sequence[str] | None,
                       title: str, *, zmin: float, zmax: float,
                       marked_frame: int | None = None) -> go.Figure:
    """Cosine of each word (rows of ``m [W, F]``) with each frame (columns) on Viridis over
    ``[zmin, zmax]`` (shared between the figures compared); cells annotated up to
    :data:`MAX_ANNOTATED_CELLS`; column ``marked_frame`` (the frame the clip player plays
    from) outlined."""
    fig = px.imshow(m, x=list(frames), y=list(words) if words is not None else None,
                    zmin=zmin, zmax=zmax, aspect="auto", color_continuous_scale="Viridis",
                    text_auto=".2f" if m.size <= MAX_ANNOTATED_CELLS else False,
                    labels={"x": "frame", "y": "word", "color": "cosine"})
    fig.update_layout(title=title, height=120 + 24 * m.shape[0],
                      margin=dict(l=10, r=10, t=40, b=10))
    if marked_frame is not None and 0 <= marked_frame < m.shape[1]:
        fig.add_shape(type="rect", xref="x", yref="paper", x0=marked_frame - 0.5,
                      x1=marked_frame + 0.5, y0=0, y1=1, line=dict(color=MARK_COLOUR, width=3),
                      fillcolor="rgba(0,0,0,0)")
    return fig
