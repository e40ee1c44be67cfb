"""Figures of the Attention page: the GAT attention heatmap and network, per-node entropy and
self-loop share, event shading on a frame axis, and the text-to-frame weight bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from analysis.attention_view import attention_edges, circle_layout
from analysis.labels import event_label
from app.components.palette import event_colour

MAX_ANNOTATED = 30  # annotate heatmap cells up to 30 x 30
MAX_EDGES = 150  # network edges drawn at most
EDGE_COLOUR = "rgba(70,70,160,0.45)"
ENTROPY_COLOUR, SELF_LOOP_COLOUR = "#4c78a8", "#f58518"


def attention_heatmap(view: np.ndarray, labels: list[str], title: str, *, excess: bool,
                      colour_title: str | None = None) -> go.Figure:
    """The attention matrix ``view`` (``[N, N]``, row i = how node i spreads its attention) on
    Viridis from 0, or, when ``excess``, on a diverging scale symmetric around 0 (attention −
    uniform, or a difference). Cells are annotated up to :data:`MAX_ANNOTATED` nodes."""
    n = view.shape[0]
    kwargs: dict[str, Any] = {"zmin": 0.0, "color_continuous_scale": "Viridis"}
    if excess:
        bound = float(max(np.abs(view).max(), 1e-6))
        kwargs = {"zmin": -bound, "zmax": bound, "color_continuous_scale": "RdBu_r"}
    fig = px.imshow(view, x=labels, y=labels, aspect="auto",
                    # significant figures, not decimals: near-uniform excesses are ~1e-4
                    text_auto=".3~g" if n <= MAX_ANNOTATED else False,
                    labels={"x": "attended node", "y": "attending node",
                            "color": colour_title or (
                                "attention − uniform" if excess else "attention")},
                    **kwargs)
    fig.update_layout(title=title, height=max(320, 90 + 26 * n),
                      margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(tickangle=-45)
    return fig


def attention_network(view: np.ndarray, labels: list[str], received: np.ndarray,
                      self_share: np.ndarray, *, max_edges: int = MAX_EDGES
                      ) -> tuple[go.Figure, int]:
    """Nodes on a circle (size by ``self_share [N]``, colour by ``received [N]``), edges
    above uniform attention (``1/N``) with width by weight, at most ``max_edges``. Returns the
    figure and the number of edges drawn."""
    n = view.shape[0]
    pos = circle_layout(n)
    edges = attention_edges(view, min_weight=1.0 / n, top=max_edges)
    fig = go.Figure()
    top = float(edges.weight.max()) if len(edges) else 1.0
    for s, t, w in zip(edges.source, edges.target, edges.weight, strict=True):
        fig.add_trace(go.Scatter(
            x=[pos[s, 0], pos[t, 0]], y=[pos[s, 1], pos[t, 1]], mode="lines",
            line=dict(width=0.5 + 7.5 * float(w) / top, color=EDGE_COLOUR),
            hoverinfo="text", text=f"{labels[s]} → {labels[t]}: {w:.3f}", showlegend=False,
        ))
    fig.add_trace(go.Scatter(
        x=pos[:, 0], y=pos[:, 1], mode="markers+text", text=labels, textposition="top center",
        marker=dict(size=10 + 30 * self_share, color=received, colorscale="Viridis",
                    showscale=True, colorbar=dict(title="received", thickness=10),
                    line=dict(width=1, color="#333")),
        customdata=np.arange(n),
        hovertemplate="%{text}<br>received %{marker.color:.3f}<extra></extra>",
        showlegend=False,
    ))
    fig.update_layout(
        height=460, margin=dict(l=10, r=10, t=40, b=10),
        title="Network: edges above uniform attention (width ∝ weight)",
        xaxis=dict(visible=False, range=[-1.35, 1.35]),
        yaxis=dict(visible=False, range=[-1.35, 1.35], scaleanchor="x"),
    )
    return fig, len(edges)


def node_stats_chart(labels: list[str], entropy: np.ndarray, self_share: np.ndarray
                     ) -> go.Figure:
    """Per-node normalised entropy and self-loop share (``[N]`` each) as grouped bars, with
    their uniform baselines (entropy 1, self-loop 1/N)."""
    n = len(labels)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=entropy, name="normalised entropy",
                         marker_color=ENTROPY_COLOUR))
    fig.add_trace(go.Bar(x=labels, y=self_share, name="self-loop share",
                         marker_color=SELF_LOOP_COLOUR))
    fig.add_hline(y=1.0, line_dash="dash", line_color=ENTROPY_COLOUR,
                  annotation_text="uniform entropy = 1", annotation_position="top left")
    fig.add_hline(y=1.0 / n, line_dash="dot", line_color=SELF_LOOP_COLOUR,
                  annotation_text=f"uniform self-loop = 1/{n}", annotation_position="bottom right")
    fig.update_layout(barmode="group", height=320, yaxis=dict(range=[0, 1.1]),
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12))
    fig.update_xaxes(tickangle=-45)
    return fig


def shade_events(fig: go.Figure, runs: Sequence[tuple[int, int, int]],
                 labels: Sequence[str]) -> None:
    """Shade event runs ``(event, first, last)`` on a categorical frame axis, each labelled
    with ``labels[event]``."""
    for event, first, last in runs:
        fig.add_vrect(x0=first - 0.5, x1=last + 0.5, line_width=1,
                      line_color=event_colour(event),
                      fillcolor=event_colour(event), opacity=0.12,
                      annotation_text=event_label(event, labels[event]),
                      annotation_position="top left", annotation_font_size=10)


def text_frame_bars(series: Sequence[tuple[str, str, np.ndarray]], times: np.ndarray,
                    spans: Sequence[Any] = ()) -> go.Figure:
    """Grouped bars of weights over a video's frames: ``series`` of ``(name, colour, weights
    [T])`` at frame times ``times [T]`` (seconds), a dotted uniform line at ``1/T`` and the
    event ``spans`` (objects with ``index``, ``label``, ``start``, ``end``) shaded."""
    fig = go.Figure()
    for name, colour, w in series:
        fig.add_trace(go.Bar(x=times, y=w, name=name, marker_color=colour,
                             hovertemplate="%{x:.2f}s: %{y:.3f}<extra>" + name + "</extra>"))
    fig.add_hline(y=1.0 / max(len(times), 1), line_dash="dot", line_color="#666",
                  annotation_text="uniform", annotation_position="top right")
    for span in spans:
        colour = event_colour(span.index)
        fig.add_vrect(x0=span.start, x1=span.end, fillcolor=colour, opacity=0.12, line_width=1,
                      line_color=colour, annotation_text=event_label(span.index, span.label),
                      annotation_position="top left", annotation_font_size=10)
    fig.update_layout(barmode="group", height=360, xaxis_title="time of the sampled frame (s)",
                      yaxis_title="weight", margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig
