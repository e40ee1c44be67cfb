"""SynthVTT: a procedurally generated text-video retrieval benchmark (``spec/synthvtt.md``).

A video is a plain background with 2-4 **events** one after another; an event is one shape of
one colour doing one action, ``(colour, shape, action)``, over a contiguous block of frames.
Captions describe an ordered subset of the events. Videos come in **families** (a base event
list and siblings one edit away), so a split is full of partially relevant hard negatives, and
every caption carries its ground truth: the events it mentions and every video of its split it
truly matches.

Modules: :mod:`.vocabulary` (what a video can show), :mod:`.matching` (the ground-truth
rule), :mod:`.meta` (file names and the typed meta: :class:`SynthVTTMeta` and its parts),
:mod:`.reader` (the one reader of the meta file: :func:`read_meta`, :func:`read_split_meta`),
:mod:`.planning` (families and layouts), :mod:`.captions`, :mod:`.rendering` (frames and mp4),
:mod:`.writing` (plan and generate), :mod:`.cli`. This package re-exports the names each
module lists in ``__all__``; helpers the modules share (``pick``, ``SplitIndex``,
``family_bounds``, ...) are public in their module but not re-exported.

The dataset is written in the MSR-VTT layout (so the MSR-VTT source reads it unchanged), plus
``synthvtt_meta.json`` with the ground truth::

    python -m tvr.data.synthvtt --out data/synthvtt [--seed 0 --train 1500 --val 500 --test 500
                                                     --size 64 --fps 8 --background-captions]

Everything is deterministic from the seed: the plan (events, layouts, captions) is drawn in the
main process from per-purpose random streams, and videos are rendered from the rounded numbers
stored in the meta file, so the meta file alone reproduces every frame (:func:`render_video`).

Conventions of ``synthvtt_meta.json``:

- ``start_frame`` is inclusive and ``end_frame`` exclusive (``range(start_frame, end_frame)``).
- Geometry is in frame units: ``x`` (left to right) and ``y`` (top to bottom) are the shape's
  centre as fractions of the frame side; ``r`` is its half-extent (the circle's radius; every
  shape fits the square ``[x - r, x + r] x [y - r, y + r]``). At frame ``f`` of an event
  ``x = x0 + dx * (f - start_frame)``, likewise ``y`` with ``dy`` and ``r`` with ``dr``
  (:func:`frame_states`).
- Edits name event indices: for ``colour``/``shape``/``action`` the edited event (same index in
  base and sibling), for ``swap`` the two swapped events, for ``drop`` the index *in the base* of
  the dropped event, for ``add`` the index *in the sibling* of the inserted event; ``none`` for
  the family base.
- A caption matches a video when every mentioned event occurs in the video in the mentioned
  order (a subsequence, gaps allowed), and the background too when the caption names it.
"""

from __future__ import annotations

from tvr.data.synthvtt import (
    captions,
    cli,
    matching,
    meta,
    planning,
    reader,
    rendering,
    vocabulary,
    writing,
)
from tvr.data.synthvtt.captions import *  # noqa: F403
from tvr.data.synthvtt.cli import *  # noqa: F403
from tvr.data.synthvtt.matching import *  # noqa: F403
from tvr.data.synthvtt.meta import *  # noqa: F403
from tvr.data.synthvtt.planning import *  # noqa: F403
from tvr.data.synthvtt.reader import *  # noqa: F403
from tvr.data.synthvtt.rendering import *  # noqa: F403
from tvr.data.synthvtt.vocabulary import *  # noqa: F403
from tvr.data.synthvtt.writing import *  # noqa: F403

__all__ = [
    name
    for module in (
        vocabulary,
        matching,
        meta,
        reader,
        planning,
        captions,
        rendering,
        writing,
        cli,
    )
    for name in module.__all__
]
