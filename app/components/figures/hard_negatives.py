"""Figures of the Hard negatives page: a query's ground truth against its hardest negatives,
and DRGI's diagnostics over training."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

GT_COLOUR = "#2ca02c"
BEATS_GT = "#d62728"
BELOW_GT = "#9e9e9e"


def query_bars(names: Sequence[str], scores: Sequence[float], beats_gt: Sequence[bool],
               same_family: Sequence[bool] | None = None,
               ids: Sequence[int] | None = None) -> go.Figure:
    """Bars of the ground truth (first) and the negatives of one query.

    Args:
        names: bar labels, the ground truth first.
        scores: the scores, the ground truth first.
        beats_gt: per negative, whether it scores at or above the ground truth (red, else
            grey).
        same_family: per negative, whether it is of the ground truth's family (hatched).
        ids: the video of each bar (ground truth first), kept in ``customdata``.

    Raises:
        ValueError: lengths that do not match.
    """
    n_neg = len(names) - 1
    if len(scores) != len(names) or len(beats_gt) != n_neg or (
            same_family is not None and len(same_family) != n_neg):
        raise ValueError(f"query_bars: {len(names)} names need as many scores (got "
                         f"{len(scores)}) and {n_neg} negative flags (got {len(beats_gt)})")
    scores = [float(s) for s in scores]
    colours = [GT_COLOUR] + [BEATS_GT if b else BELOW_GT for b in beats_gt]
    patterns = [""] + (["/" if f else "" for f in same_family] if same_family is not None
                       else [""] * n_neg)
    # scores can be negative: bars rise from just below the lowest score, not from 0
    lo, hi = min(scores), max(scores)
    pad = max(1e-3, 0.15 * (hi - lo))
    floor = lo - pad
    ids = list(ids) if ids is not None else list(range(len(names)))
    fig = go.Figure(go.Bar(
        x=list(names), y=[s - floor for s in scores], base=floor,
        marker=dict(color=colours, pattern=dict(shape=patterns)),
        customdata=[[v, s] for v, s in zip(ids, scores, strict=True)],
        hovertemplate="%{x}: score %{customdata[1]:.4f}<extra></extra>",
    ))
    fig.add_hline(y=scores[0], line_dash="dot", line_color=GT_COLOUR)
    fig.update_layout(height=300, yaxis=dict(title="score", range=[floor, hi + pad]),
                      margin=dict(l=10, r=10, t=20, b=10))
    fig.update_xaxes(tickangle=-35)
    return fig


def training_curves_figure(curves: pd.DataFrame, title: str) -> go.Figure:
    """One line per ``quantity`` of a long table (``step``, ``quantity``, ``value``), with a
    dotted chance line at 0.5."""
    missing = {"step", "quantity", "value"} - set(curves.columns)
    if missing:
        raise ValueError(f"training curves: missing columns {sorted(missing)}")
    fig = go.Figure()
    for quantity, part in curves.groupby("quantity", sort=False):
        fig.add_trace(go.Scatter(x=part["step"], y=part["value"], name=str(quantity),
                                 mode="lines"))
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(height=320, xaxis_title="training step", yaxis_title="value",
                      margin=dict(l=10, r=10, t=30, b=10), title=title)
    return fig
