"""Figures of the Overview page: where the ground truth lands, per run."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go


def rank_histogram_figure(histograms: Sequence[tuple[str, pd.DataFrame, str]],
                          direction: str) -> go.Figure:
    """Grouped bars of ground-truth rank histograms (``(name, table, colour)``, each table
    with ``bin``, ``share`` (percent) and ``count``, as
    :func:`analysis.rankings.rank_histogram` returns) on a categorical rank-bin axis."""
    fig = go.Figure()
    for name, h, colour in histograms:
        fig.add_bar(x=h["bin"], y=h["share"], name=name, marker_color=colour,
                    customdata=h["count"],
                    hovertemplate="rank %{x}: %{customdata} queries (%{y:.1f} %)<extra></extra>")
    fig.update_layout(
        barmode="group", title=f"{direction}: ground-truth rank", height=320,
        xaxis=dict(type="category", title="rank of the ground truth (log-spaced bins)"),
        yaxis_title="% of queries",
        margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.35),
    )
    return fig
