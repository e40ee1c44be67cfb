"""Drawing a split's videos: families of event lists one edit apart, and each video's layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tvr.data.synthvtt.matching import is_subsequence
from tvr.data.synthvtt.meta import Edit, MetaEvent, MetaVideo
from tvr.data.synthvtt.vocabulary import (
    ACTIONS,
    BACKGROUNDS,
    COLOURS,
    EDGE_FRAMES,
    EVENT_FRAMES,
    EVENT_TYPES,
    EVENTS_PER_VIDEO,
    FAMILY_SIZE,
    GAP_FRAMES,
    HELDOUT_EDITS,
    SHAPES,
    TRAIN_EDITS,
    VIDEO_FRAMES,
    EventType,
)

__all__ = ["plan_split"]

_MARGIN = 0.02
_MOVE_RADIUS = (0.10, 0.16)
_MOVE_DISTANCE = (0.30, 0.50)
_SMALL_RADIUS = (0.07, 0.09)
_LARGE_RADIUS = (0.21, 0.26)
_MAX_FAMILY_TRIES = 2000
_MAX_SIBLING_TRIES = 50
_MAX_LAYOUT_TRIES = 10000


class SplitIndex:
    """Event lists of one split with an inverted index from event type to videos."""

    def __init__(self) -> None:
        self.lists: list[tuple[EventType, ...]] = []
        self.backgrounds: list[str | None] = []
        self._postings: dict[EventType, set[int]] = {}

    def add(self, events: Sequence[EventType], background: str | None = None) -> int:
        i = len(self.lists)
        self.lists.append(tuple(events))
        self.backgrounds.append(background)
        for e in events:
            self._postings.setdefault(e, set()).add(i)
        return i

    def matching(self, mentioned: Sequence[EventType], background: str | None = None) -> list[int]:
        """Videos containing ``mentioned`` in order (and with ``background`` when given)."""
        sets = sorted((self._postings.get(e, set()) for e in mentioned), key=len)
        cand = set(sets[0]).intersection(*sets[1:]) if sets else set(range(len(self.lists)))
        return sorted(
            i
            for i in cand
            if (background is None or self.backgrounds[i] == background)
            and is_subsequence(mentioned, self.lists[i])
        )

    def conflicts(self, events: Sequence[EventType]) -> bool:
        """Whether ``events`` contains, or is contained in, an indexed list (as subsequences)."""
        if self.matching(events):
            return True
        cand = set().union(*(self._postings.get(e, set()) for e in events))
        return any(is_subsequence(self.lists[i], events) for i in cand)


def _random_events(rng: np.random.Generator) -> tuple[EventType, ...]:
    n = int(rng.integers(EVENTS_PER_VIDEO[0], EVENTS_PER_VIDEO[1] + 1))
    return tuple(EVENT_TYPES[int(i)] for i in rng.choice(len(EVENT_TYPES), size=n, replace=False))


def pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    """One of ``options``, drawn uniformly with one ``rng.integers`` call."""
    return options[int(rng.integers(len(options)))]


def _apply_edit(
    rng: np.random.Generator, base: tuple[EventType, ...], kind: str
) -> tuple[tuple[EventType, ...], Edit]:
    n = len(base)
    ev = list(base)
    if kind in ("colour", "shape", "action"):
        i = int(rng.integers(n))
        slot = ("colour", "shape", "action").index(kind)
        vocab = (tuple(COLOURS), SHAPES, ACTIONS)[slot]
        options = []
        for value in vocab:
            cand = list(ev[i])
            cand[slot] = value
            if tuple(cand) not in ev:
                options.append(tuple(cand))
        ev[i] = pick(rng, options)
        return tuple(ev), Edit(kind, (i,))
    if kind == "swap":
        i, j = sorted(int(k) for k in rng.choice(n, size=2, replace=False))
        ev[i], ev[j] = ev[j], ev[i]
        return tuple(ev), Edit("swap", (i, j))
    if kind == "drop":
        i = int(rng.integers(n))
        del ev[i]
        return tuple(ev), Edit("drop", (i,))
    if kind == "add":
        p = int(rng.integers(n + 1))
        new = pick(rng, [e for e in EVENT_TYPES if e not in ev])
        ev.insert(p, new)
        return tuple(ev), Edit("add", (p,))
    raise ValueError(f"unknown edit {kind!r}")


def _applicable_edits(base: Sequence[EventType], heldout: bool) -> list[str]:
    kinds = HELDOUT_EDITS if heldout else TRAIN_EDITS
    out = []
    for k in kinds:
        if k == "drop" and len(base) <= EVENTS_PER_VIDEO[0]:
            continue
        if k == "add" and len(base) >= EVENTS_PER_VIDEO[1]:
            continue
        out.append(k)
    return out


def _related(a: Sequence[EventType], b: Sequence[EventType]) -> bool:
    return is_subsequence(a, b) or is_subsequence(b, a)


def _draw_family(
    rng: np.random.Generator, size: int, heldout: bool, index: SplitIndex
) -> list[tuple[tuple[EventType, ...], Edit]]:
    """A base event list and ``size - 1`` siblings, one edit each.

    In held-out splits no member may contain, or be contained in, another video of the split
    (family included), so each has a caption that identifies it uniquely.
    """
    for _ in range(_MAX_FAMILY_TRIES):
        base = _random_events(rng)
        if heldout and index.conflicts(base):
            continue
        members: list[tuple[tuple[EventType, ...], Edit]] = [(base, Edit())]
        kinds = _applicable_edits(base, heldout)
        while len(members) < size:
            for _ in range(_MAX_SIBLING_TRIES):
                sib, edit = _apply_edit(rng, base, pick(rng, kinds))
                if any(sib == m for m, _ in members):
                    continue
                if heldout and (any(_related(sib, m) for m, _ in members) or index.conflicts(sib)):
                    continue
                members.append((sib, edit))
                break
            else:
                break
        if len(members) == size:
            return members
    raise RuntimeError(
        f"could not draw a family of {size} whose members are all identifiable in a split of "
        f"{len(index.lists)} videos after {_MAX_FAMILY_TRIES} tries; use a smaller split"
    )


def _family_size(rng: np.random.Generator, remaining: int, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    options = [
        k
        for k in range(lo, hi + 1)
        if k <= remaining and (remaining - k == 0 or remaining - k >= lo)
    ]
    # no size leaves a whole family behind (e.g. 15 videos left with families of 8-12): the
    # largest allowed now, a smaller family at the end
    return pick(rng, options) if options else min(remaining, hi)


def _layout(
    rng: np.random.Generator, events: Sequence[EventType]
) -> tuple[int, tuple[MetaEvent, ...]]:
    """Frame ranges and per-event geometry; returns ``(n_frames, events)``."""
    n = len(events)
    for _ in range(_MAX_LAYOUT_TRIES):
        lengths = rng.integers(EVENT_FRAMES[0], EVENT_FRAMES[1] + 1, size=n)
        gaps = rng.integers(GAP_FRAMES[0], GAP_FRAMES[1] + 1, size=n - 1)
        lead, tail = (int(v) for v in rng.integers(EDGE_FRAMES[0], EDGE_FRAMES[1] + 1, size=2))
        total = lead + int(lengths.sum()) + int(gaps.sum()) + tail
        if VIDEO_FRAMES[0] <= total <= VIDEO_FRAMES[1]:
            break
    else:  # pragma: no cover - the constants make this practically impossible
        raise RuntimeError(f"no layout of {n} events fits {VIDEO_FRAMES} frames")
    out = []
    start = lead
    for i, (colour, shape, action) in enumerate(events):
        length = int(lengths[i])
        geo = _geometry(rng, action, length)
        out.append(MetaEvent(colour, shape, action, start, start + length, **geo))
        start += length + (int(gaps[i]) if i < n - 1 else 0)
    return total, tuple(out)


def _geometry(rng: np.random.Generator, action: str, length: int) -> dict[str, float]:
    m = _MARGIN
    steps = length - 1
    if action in ("grows", "shrinks"):
        small = rng.uniform(*_SMALL_RADIUS)
        large = rng.uniform(*_LARGE_RADIUS)
        x, y = rng.uniform(large + m, 1 - large - m, size=2)
        r0, r1 = (small, large) if action == "grows" else (large, small)
        dx = dy = 0.0
        dr = (r1 - r0) / steps
    else:
        r0 = rng.uniform(*_MOVE_RADIUS)
        dist = rng.uniform(*_MOVE_DISTANCE)
        along = rng.uniform(r0 + m, 1 - r0 - m - dist)  # start for a positive direction
        across = rng.uniform(r0 + m, 1 - r0 - m)
        step = dist / steps
        dr = 0.0
        if action == "moves right":
            x, y, dx, dy = along, across, step, 0.0
        elif action == "moves left":
            x, y, dx, dy = 1 - along, across, -step, 0.0
        elif action == "moves down":
            x, y, dx, dy = across, along, 0.0, step
        else:  # moves up
            x, y, dx, dy = across, 1 - along, 0.0, -step
    return {
        "x": round(float(x), 4),
        "y": round(float(y), 4),
        "r": round(float(r0), 4),
        "dx": round(float(dx), 5),
        "dy": round(float(dy), 5),
        "dr": round(float(dr), 5),
    }


def plan_split(
    rng: np.random.Generator,
    split: str,
    n_videos: int,
    first_id: int,
    first_family: int,
    family_size: tuple[int, int] = FAMILY_SIZE,
) -> list[MetaVideo]:
    """Draw ``n_videos`` videos of ``split`` in families, ids from ``video<first_id>`` on.

    Held-out splits (val, test) use only edits that keep every video identifiable by a caption.
    """
    heldout = split != "train"
    index = SplitIndex()
    videos: list[MetaVideo] = []
    family = first_family
    while len(videos) < n_videos:
        size = _family_size(rng, n_videos - len(videos), family_size)
        for events, edit in _draw_family(rng, size, heldout, index):
            index.add(events)
            background = pick(rng, tuple(BACKGROUNDS))
            n_frames, laid_out = _layout(rng, events)
            vid = f"video{first_id + len(videos)}"
            videos.append(MetaVideo(vid, split, family, edit, background, n_frames, laid_out))
        family += 1
    return videos
