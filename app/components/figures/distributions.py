"""Distribution figures shared by several pages: overlaid percentage histograms of a few
series, and a histogram of integer counts.

Histograms are binned here (numpy) and drawn as bars, so a figure carries one number per bin
instead of every value: 59,800 margins per run at MSR-VTT's full test split would otherwise
travel to the browser and be binned there on every rerun."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

MAX_BINS = 60  # bars per histogram at most


def histogram_edges(arrays: Sequence[np.ndarray], max_bins: int = MAX_BINS) -> np.ndarray:
    """Bin edges shared by ``arrays`` (their finite values): one bin per integer when every
    value is an integer and they span at most ``max_bins`` integers, else numpy's ``"auto"``
    rule capped at ``max_bins`` equal bins.

    Shapes:
        -> ``[B + 1]`` float64 increasing edges (``B >= 1``).
    """
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    finite = np.concatenate([p[np.isfinite(p)] for p in parts]) if parts else np.zeros(0)
    if finite.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(finite.min()), float(finite.max())
    if np.all(finite == np.round(finite)) and hi - lo + 1 <= max_bins:
        return np.arange(lo - 0.5, hi + 1.0, 1.0)
    if lo == hi:
        return np.array([lo - 0.5, hi + 0.5])
    edges = np.histogram_bin_edges(finite, bins="auto")
    return edges if len(edges) - 1 <= max_bins else np.linspace(lo, hi, max_bins + 1)


def binned_bar(values: np.ndarray, edges: np.ndarray, *, name: str | None = None,
               colour: str | None = None, opacity: float | None = None,
               percent: bool = False) -> go.Bar:
    """A bar per bin of ``values`` (finite ones) over ``edges``, in counts or percent of the
    finite values; the hover names the bin's range."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    counts, _ = np.histogram(v, bins=edges)
    y = 100.0 * counts / max(1, v.size) if percent else counts
    lo, hi = edges[:-1], edges[1:]
    unit = "%" if percent else ""
    return go.Bar(x=(lo + hi) / 2, y=y, width=hi - lo, name=name, marker_color=colour,
                  opacity=opacity, customdata=np.stack([lo, hi], axis=1),
                  hovertemplate=f"[%{{customdata[0]:.4g}}, %{{customdata[1]:.4g}}): "
                  f"%{{y:.3g}}{unit}<extra>{name or ''}</extra>")


def overlay_histogram(series: Sequence[tuple[str, np.ndarray, str]], x_title: str, *,
                      y_title: str = "% of queries", vline: float | None = None,
                      height: int = 320, opacity: float = 0.55) -> go.Figure:
    """One histogram per ``(name, values [N], colour)`` over shared bins, overlaid, each
    normalised to percent of its own values; a dashed vertical line at ``vline``."""
    edges = histogram_edges([values for _, values, _ in series])
    fig = go.Figure()
    for name, values, colour in series:
        fig.add_trace(binned_bar(values, edges, name=name, colour=colour, opacity=opacity,
                                 percent=True))
    if vline is not None:
        fig.add_vline(x=vline, line_dash="dash", line_color="#333")
    fig.update_layout(barmode="overlay", bargap=0, height=height, xaxis_title=x_title,
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
