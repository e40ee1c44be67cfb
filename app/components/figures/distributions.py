"""Distribution figures shared by several pages: overlaid percentage histograms of a few
series, and a histogram of integer counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go


def overlay_histogram(series: Sequence[tuple[str, np.ndarray, str]], x_title: str, *,
                      y_title: str = "% of queries", vline: float | None = None,
                      height: int = 320, opacity: float = 0.55) -> go.Figure:
    """One histogram per ``(name, values [N], colour)``, overlaid, each normalised to percent
    of its own values; a dashed vertical line at ``vline``."""
    fig = go.Figure()
    for name, values, colour in series:
        fig.add_trace(go.Histogram(x=values, name=name, opacity=opacity, marker_color=colour,
                                   histnorm="percent"))
    if vline is not None:
        fig.add_vline(x=vline, line_dash="dash", line_color="#333")
    fig.update_layout(barmode="overlay", height=height, xaxis_title=x_title,
                      yaxis_title=y_title, margin=dict(l=10, r=10, t=20, b=10),
                      legend=dict(orientation="h", y=1.15))
    return fig


def count_histogram(series: Sequence[tuple[str, np.ndarray, str]], x_title: str,
                    y_title: str, *, height: int = 300) -> go.Figure:
    """Overlaid histograms of integer counts (``(name, counts [N], colour)``), one bin per
    integer, in raw counts."""
    fig = go.Figure()
    for name, counts, colour in series:
        fig.add_trace(go.Histogram(x=counts, name=name, opacity=0.55, marker_color=colour,
                                   xbins=dict(size=1)))
    fig.update_layout(barmode="overlay", height=height, xaxis_title=x_title,
                      yaxis_title=y_title, margin=dict(l=10, r=10, t=20, b=10),
                      legend=dict(orientation="h", y=1.15))
    return fig
