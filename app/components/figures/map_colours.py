"""Per-point colours of the Embeddings map as category codes into a small palette.

A map of 10^5 points coloured with one Python colour string per point costs seconds per rerun
(plotly validates every string, the browser parses every one). Every colouring here is instead
``codes [P]`` (small unsigned integers) plus a ``palette`` of at most a few hundred colours; the
figure sends the codes as a typed array with a stepped colour scale over the palette
(:func:`stepped_colorscale`). Continuous values are quantised to :data:`LEVELS` steps of their
scale, finer than the eye tells apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.express as px
from plotly.colors import sample_colorscale

from analysis.embedding_map import FRAMES, KINDS, MapPoints
from analysis.events import NO_EVENT
from analysis.labels import event_label
from app.components.palette import EVENT_COLOURS, OUTCOME_COLOURS

KIND_NAMES = {"words": "word tokens", "frames": "frame tokens", "texts": "captions (pooled)",
              "videos": "videos (pooled)"}
KIND_COLOURS = ("#9ecae1", "#fdae6b", "#08519c", "#a63603")  # in KINDS order
CATEGORICAL = tuple(px.colors.qualitative.Alphabet)
GAP_COLOUR = "#555555"  # frames between events
NOT_A_FRAME = "#d9cbb0"  # words, captions and videos under the event colouring
POOLED_COLOUR = "#222222"  # pooled points under the position colouring
MISSING_COLOUR = "#cccccc"  # no value under a continuous colouring
LEVELS = 255  # steps of a continuous colour scale


@dataclass(frozen=True)
class MapColours:
    """Colours of a map's points.

    Attributes:
        codes: ``[P]`` unsigned ints, each point's index into ``palette``.
        palette: the colours (CSS strings).
        legend: ``(name, colour)`` entries to show.
        note: what the colour means, or None.
    """

    codes: np.ndarray
    palette: tuple[str, ...]
    legend: list[tuple[str, str]]
    note: str | None = None

    def __post_init__(self) -> None:
        if self.codes.size and int(self.codes.max()) >= len(self.palette):
            raise ValueError(f"colour code {int(self.codes.max())} outside a palette of "
                             f"{len(self.palette)} colours")

    def colours(self) -> np.ndarray:
        """The per-point colour strings (for tests and exports, not for the chart).

        Shapes:
            -> ``[P]`` object.
        """
        return np.asarray(self.palette, dtype=object)[self.codes]


def _codes(values: np.ndarray, n_colours: int) -> np.ndarray:
    """``values`` in the smallest unsigned dtype that holds ``n_colours`` codes."""
    dtype = np.uint8 if n_colours <= 256 else np.uint16
    return np.asarray(values).astype(dtype)


def stepped_colorscale(palette: tuple[str, ...] | list[str]) -> list[list]:
    """A plotly colour scale on which code ``i`` (with ``cmin=-0.5``, ``cmax=len-0.5``) is
    exactly ``palette[i]``: one flat step per colour."""
    n = len(palette)
    if n == 0:
        raise ValueError("an empty palette: expected at least one colour")
    scale: list[list] = []
    for i, colour in enumerate(palette):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    return scale


def kind_colours(points: MapPoints) -> MapColours:
    """One colour per kind of point (word, frame, caption, video)."""
    return MapColours(_codes(points.kind, 4), KIND_COLOURS,
                      [(KIND_NAMES[k], c) for k, c in zip(KINDS, KIND_COLOURS, strict=True)])


def video_colours(points: MapPoints) -> MapColours:
    """The point's video (a caption's ground-truth video), colours repeating."""
    n = len(CATEGORICAL)
    return MapColours(_codes(points.video % n, n), CATEGORICAL, [],
                      "colour = the point's video (a caption's ground-truth video); colours "
                      f"repeat every {n} videos")


def position_colours(points: MapPoints) -> MapColours:
    """Token / frame position on Viridis (dark = first); pooled points in one dark grey."""
    tokens = points.position >= 0
    top = int(points.position.max()) if tokens.any() else 0
    palette = tuple(sample_colorscale("Viridis", np.linspace(0.0, 1.0, top + 1)))
    codes = np.where(tokens, points.position, top + 1)
    return MapColours(_codes(codes, top + 2), (*palette, POOLED_COLOUR),
                      [("first position", palette[0]), (f"position {top}", palette[-1]),
                       ("pooled (no position)", POOLED_COLOUR)],
                      "colour = token / frame position (Viridis, dark = first)")


def event_colours(points: MapPoints, frame_events: np.ndarray) -> MapColours:
    """Frames by the SynthVTT event they show (``frame_events [Nv, T]``, :data:`NO_EVENT`
    between events); every other point in one light colour."""
    n_ev = len(EVENT_COLOURS)
    gap, other = n_ev, n_ev + 1
    codes = np.full(len(points), other, dtype=np.int64)
    frames = points.kind == FRAMES
    ev = frame_events[points.item[frames], points.position[frames]]
    codes[frames] = np.where(ev == NO_EVENT, gap, np.maximum(ev, 0) % n_ev)
    n_events = int(frame_events.max()) + 1 if frame_events.size else 0
    legend = [(event_label(e), EVENT_COLOURS[e % n_ev]) for e in range(n_events)]
    legend += [("between events", GAP_COLOUR), ("not a frame", NOT_A_FRAME)]
    return MapColours(_codes(codes, n_ev + 2), (*EVENT_COLOURS, GAP_COLOUR, NOT_A_FRAME),
                      legend, "frames coloured by the SynthVTT event they show (in order)")


def outcome_colours(points: MapPoints, t2v: np.ndarray, v2t: np.ndarray) -> MapColours:
    """DRGI's win / tie / loss against the base run: words and captions by their caption's
    t2v outcome (``t2v [Nt]``), frames and videos by their video's v2t outcome (``v2t [Nv]``)."""
    names = list(OUTCOME_COLOURS)
    index = {o: i for i, o in enumerate(names)}

    def coded(outcomes: np.ndarray) -> np.ndarray:
        unknown = set(np.unique(outcomes).tolist()) - set(names)
        if unknown:
            raise ValueError(f"outcomes {sorted(unknown)}: expected {names}")
        return np.asarray([index[o] for o in outcomes.tolist()], dtype=np.int64)

    text_side = points.caption >= 0
    codes = np.where(text_side, coded(np.asarray(t2v))[np.maximum(points.caption, 0)],
                     coded(np.asarray(v2t))[points.item])
    return MapColours(_codes(codes, len(names)), tuple(OUTCOME_COLOURS.values()),
                      [(f"DRGI {o}", c) for o, c in OUTCOME_COLOURS.items()],
                      "words and captions: the caption's t2v outcome; frames and videos: the "
                      "video's v2t outcome (DRGI vs base)")


def value_colours(values: np.ndarray, scale: str, *, low_name: str, high_name: str,
                  note: str | None = None) -> tuple[MapColours, float]:
    """``values`` on the diverging ``scale`` centred on 0 (symmetric around it, up to the
    largest finite |value|), in :data:`LEVELS` steps; NaN is grey. Returns the colours (legend
    entries for the two ends, 0 and "no value") and the bound.

    Shapes:
        values ``[P]`` -> codes ``[P]``.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    bound = float(np.abs(values[finite]).max()) if finite.any() else 0.0
    bound = bound if bound > 0 else 1.0
    palette = tuple(sample_colorscale(scale, np.linspace(0.0, 1.0, LEVELS).tolist()))
    codes = np.full(len(values), LEVELS, dtype=np.int64)  # the "no value" colour
    where = 0.5 + 0.5 * np.clip(values[finite] / bound, -1.0, 1.0)
    codes[finite] = np.rint(where * (LEVELS - 1)).astype(np.int64)
    ends = sample_colorscale(scale, [0.0, 0.5, 1.0])
    legend = [(f"{-bound:+.3g} ({low_name})", ends[0]), ("0", ends[1]),
              (f"{bound:+.3g} ({high_name})", ends[2]), ("no value", MISSING_COLOUR)]
    return MapColours(_codes(codes, LEVELS + 1), (*palette, MISSING_COLOUR), legend, note), bound
