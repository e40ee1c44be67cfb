"""Server side of one Embeddings map render: building the plotly figure and its JSON.

Side by side in one run, on synthetic maps the size of the demo (500 videos), a 5,000-video
split and MSR-VTT full (59,800 captions):

- **colour strings, all points**: the page before the point budget, one Python colour string
  and one hover string per point (a reference written here, the page no longer does this);
- **codes, all points**: category codes on a stepped colour scale
  (:mod:`app.components.figures.map_colours`), every point drawn;
- **codes, budget**: the same under the default point budget
  (:func:`analysis.point_budget.budget_sample`), hover text only for the drawn points.

Each row: milliseconds to build the figure and serialise it (``fig.to_json()``, what
``st.plotly_chart`` sends), and the JSON size. The browser's share of a render is measured by
``benchmarks/app_interactions.py``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/embeddings_map_render.py [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import plotly.graph_objects as go  # noqa: E402

from analysis.embedding_map import MapPoints  # noqa: E402
from analysis.point_budget import budget_sample  # noqa: E402
from app.components.figures.map_colours import KIND_COLOURS, kind_colours  # noqa: E402
from app.components.figures.projection_map import KIND_SIZES, map_figure  # noqa: E402
from benchmarks.results import (  # noqa: E402
    add_results_args,
    command_line,
    load_note,
    publish,
    timings_ms,
)

SECTION = "## Embeddings map render (server side)"
DEFAULT_BUDGET = 20_000  # app/app_pages/embeddings.py
# (name, captions, videos, words per caption, frames per video)
SIZES = (("demo (500 videos)", 500, 500, 10, 48), ("5,000 videos", 5000, 5000, 10, 12),
         ("MSR-VTT full (2,990 x 20)", 59_800, 2990, 10, 12))
REFERENCE_MAX_POINTS = 200_000  # the colour-string reference takes ~0.1 ms per point


def synthetic_map(n_captions: int, n_videos: int, words: int, frames: int,
                  seed: int = 0) -> MapPoints:
    """A map with ``words`` word points per caption and ``frames`` frame points per video."""
    rng = np.random.default_rng(seed)
    t2v = np.arange(n_captions) % n_videos
    word_cap = np.repeat(np.arange(n_captions), words)
    frame_vid = np.repeat(np.arange(n_videos), frames)
    kind = np.repeat(np.arange(4), [len(word_cap), len(frame_vid), n_captions, n_videos])
    item = np.concatenate([word_cap, frame_vid, np.arange(n_captions), np.arange(n_videos)])
    position = np.concatenate([np.tile(np.arange(words), n_captions),
                               np.tile(np.arange(frames), n_videos),
                               -np.ones(n_captions + n_videos, dtype=np.int64)])
    caption = np.where((kind == 0) | (kind == 2), item, -1)
    video = np.concatenate([t2v[word_cap], frame_vid, t2v, np.arange(n_videos)])
    coords = rng.normal(size=(len(kind), 2)).astype(np.float32)
    return MapPoints(coords, kind.astype(np.int64), item.astype(np.int64),
                     position.astype(np.int64), caption.astype(np.int64),
                     video.astype(np.int64))


def hover_of(points: MapPoints, ids: np.ndarray) -> list[str]:
    """Hover strings of the length the page writes (``word “…” · caption 12`` and so on)."""
    names = ("word “circle” · caption {}", "frame 3 · video{}", "caption {}: a red circle moves "
             "left then a blue square grows", "video{}")
    return [names[k].format(i) for k, i in zip(points.kind[ids].tolist(),
                                               points.item[ids].tolist(), strict=True)]


def render_strings(points: MapPoints) -> str:
    """The reference: every point, one colour string and one hover string per point."""
    ids = np.arange(len(points))
    colours = np.asarray(KIND_COLOURS, dtype=object)[points.kind]
    fig = go.Figure(go.Scattergl(
        x=points.coords[:, 0], y=points.coords[:, 1], mode="markers",
        marker=dict(size=np.asarray(KIND_SIZES)[points.kind], color=colours.tolist(),
                    line=dict(width=0)),
        customdata=ids, hovertext=hover_of(points, ids),
        hovertemplate="%{hovertext}<extra></extra>"))
    return fig.to_json()


def render_codes(points: MapPoints, budget: int | None) -> str:
    """The page's way: category codes, every point or a budget sample."""
    if budget is None:
        ids = np.arange(len(points))
    else:
        forced = np.zeros(len(points), bool)
        forced[points.caption == 0] = True  # a marked caption
        ids = budget_sample(points, budget, forced=forced).ids
    fig = map_figure(points, points.coords, ids, kind_colours(points), None,
                     np.asarray(hover_of(points, ids)), "map")
    return fig.to_json()


def measure(reps: int) -> list[tuple[str, int, str, float, float]]:
    """Rows ``(size, points, variant, ms median, JSON MB)``."""
    rows = []
    for name, nt, nv, w, f in SIZES:
        points = synthetic_map(nt, nv, w, f)
        variants = [("codes, all points", lambda p: render_codes(p, None)),
                    (f"codes, budget {DEFAULT_BUDGET:,}",
                     lambda p: render_codes(p, DEFAULT_BUDGET))]
        if len(points) <= REFERENCE_MAX_POINTS:
            variants.insert(0, ("colour strings, all points (before)", render_strings))
        for label, fn in variants:
            times, out = timings_ms(fn, [points] * reps)
            rows.append((name, len(points), label, statistics.median(times), len(out) / 1e6))
            print(rows[-1], flush=True)
    return rows


def render(rows: list[tuple[str, int, str, float, float]], command: str, load0: float,
           load1: float) -> str:
    lines = [f"Command: `{command}`", "",
             "One map's figure built and serialised to JSON on the server (median ms; what "
             "`st.plotly_chart` sends), synthetic maps of the given size (10 words per caption; "
             "48 frames per video for the demo size, 12 otherwise). The colour-string reference "
             f"is run up to {REFERENCE_MAX_POINTS:,} points.", "",
             "| map | points | variant | ms | ratio vs before | JSON MB |",
             "|---|---:|---|---:|---:|---:|"]
    before: dict[str, float] = {}
    for name, n, label, ms, mb in rows:
        if label.startswith("colour strings"):
            before[name] = ms
        ratio = f"{before[name] / ms:.1f}x" if name in before else "—"
        lines.append(f"| {name} | {n:,} | {label} | {ms:.0f} | {ratio} | {mb:.1f} |")
    lines += ["", load_note(load0, load1)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="timed renders per variant")
    add_results_args(p)
    args = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows = measure(args.reps)
    body = render(rows, command_line("benchmarks/embeddings_map_render.py", argv), load0,
                  os.getloadavg()[0])
    publish(args, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
