"""Tests for app.components.figures.attention: the Attention page's figures."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from app.components.figures.attention import (
    MAX_ANNOTATED,
    attention_heatmap,
    attention_network,
    node_stats_chart,
    shade_events,
    text_frame_bars,
)
from app.components.palette import EVENT_COLOURS


def _view(n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.random((n, n))
    return a / a.sum(1, keepdims=True)


def test_heatmap_raw_attention_is_viridis_from_zero_and_annotated():
    labels = ["a", "b", "c", "d"]
    fig = attention_heatmap(_view(), labels, "GAT attention of caption 0", excess=False)
    heat = fig.data[0]
    assert heat.type == "heatmap" and list(heat.x) == labels and list(heat.y) == labels
    assert fig.layout.coloraxis.cmin == 0.0
    assert fig.layout.coloraxis.cmax == float(_view().max())  # from 0 up to the data
    assert fig.layout.coloraxis.colorscale[0][1] == "#440154"  # Viridis starts dark purple
    assert fig.layout.coloraxis.colorbar.title.text == "attention"
    assert fig.layout.xaxis.title.text == "attended node"
    assert fig.layout.yaxis.title.text == "attending node"
    assert heat.texttemplate == "%{z:.3~g}"  # annotated, significant figures
    assert fig.layout.height == max(320, 90 + 26 * 4)


def test_heatmap_excess_is_symmetric_around_zero_and_unannotated_when_large():
    n = MAX_ANNOTATED + 1
    view = _view(n) - 1.0 / n
    fig = attention_heatmap(view, [str(i) for i in range(n)], "t", excess=True,
                            colour_title="DRGI − base")
    bound = float(np.abs(view).max())
    assert fig.layout.coloraxis.cmin == -bound and fig.layout.coloraxis.cmax == bound
    assert fig.layout.coloraxis.colorbar.title.text == "DRGI − base"
    assert not fig.data[0].texttemplate
    flat = attention_heatmap(np.zeros((2, 2)), ["a", "b"], "t", excess=True)
    assert flat.layout.coloraxis.cmax == 1e-6  # a zero matrix still has a scale


def test_network_draws_only_edges_above_uniform_with_width_by_weight():
    view = np.array([[0.1, 0.5, 0.4], [0.6, 0.2, 0.2], [0.45, 0.45, 0.1]])
    labels = ["x", "y", "z"]
    fig, n_edges = attention_network(view, labels, received=np.array([1.4, 1.0, 0.6]),
                                     self_share=np.array([0.7, 0.5, 0.6]))
    off_diagonal = ~np.eye(3, dtype=bool)
    assert n_edges == int(((view >= 1 / 3) & off_diagonal).sum()) == 5  # no self-loops
    edges, nodes = fig.data[:-1], fig.data[-1]
    assert len(edges) == n_edges and all(t.mode == "lines" for t in edges)
    widths = {t.text: t.line.width for t in edges}
    assert widths["y → x: 0.600"] == 8.0  # the heaviest edge is the widest
    assert widths["x → z: 0.400"] < widths["x → y: 0.500"] < 8.0
    assert "y → z: 0.200" not in widths  # below uniform
    assert list(nodes.text) == labels and nodes.marker.colorscale[0][1] == "#440154"
    np.testing.assert_allclose(nodes.marker.size, 10 + 30 * np.array([0.7, 0.5, 0.6]))
    _, capped = attention_network(view, labels, np.ones(3), np.ones(3) / 3, max_edges=2)
    assert capped == 2


def test_node_stats_bars_and_uniform_baselines():
    fig = node_stats_chart(["a", "b", "c", "d"], np.array([1.0, 0.5, 0.9, 0.2]),
                           np.array([0.25, 0.8, 0.1, 0.3]))
    assert [t.name for t in fig.data] == ["normalised entropy", "self-loop share"]
    assert [s.y0 for s in fig.layout.shapes] == [1.0, 0.25]
    assert fig.layout.yaxis.range == (0, 1.1)


def test_events_are_shaded_and_weights_drawn_per_series():
    fig = attention_heatmap(_view(), ["f0", "f1", "f2", "f3"], "t", excess=False)
    shade_events(fig, [(0, 0, 1), (1, 2, 3)], ["circle", "square"])
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(-0.5, 1.5), (1.5, 3.5)]
    assert fig.layout.shapes[1].fillcolor == EVENT_COLOURS[1]
    times = np.array([0.1, 0.5, 0.9])
    spans = [SimpleNamespace(index=0, label="a red circle", start=0.0, end=0.6)]
    bars = text_frame_bars([("base", "#1f77b4", np.array([0.2, 0.5, 0.3])),
                            ("DRGI", "#ff7f0e", np.array([0.3, 0.3, 0.4]))], times, spans)
    assert [t.name for t in bars.data] == ["base", "DRGI"]
    assert bars.data[1].marker.color == "#ff7f0e"
    assert bars.layout.shapes[0].y0 == 1 / 3  # the uniform line
    assert (bars.layout.shapes[1].x0, bars.layout.shapes[1].x1) == (0.0, 0.6)
    assert bars.layout.xaxis.title.text == "time of the sampled frame (s)"
