"""Caption texts: which events a caption mentions and how it phrases them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from tvr.data.synthvtt.meta import MetaCaption, MetaVideo
from tvr.data.synthvtt.planning import SplitIndex, pick
from tvr.data.synthvtt.vocabulary import (
    ACTION_PHRASES,
    ADJECTIVES,
    CONNECTIVES,
    TRAIN_CAPTIONS_PER_VIDEO,
    EventType,
)

__all__ = ["PlannedCaption", "caption_text", "make_captions"]

_P_ARTICLE_THE = 0.3
_P_ADJECTIVE = 0.25
_P_FIRST = 0.2
_P_BACKGROUND = 0.5


@dataclass(frozen=True)
class PlannedCaption:
    """A caption as the generator plans it: its ground truth and its text."""

    caption: MetaCaption
    text: str


def _noun_phrase(rng: np.random.Generator, colour: str, shape: str) -> str:
    words = [colour, shape]
    if rng.random() < _P_ADJECTIVE:
        words.insert(0, pick(rng, ADJECTIVES))
    if rng.random() < _P_ARTICLE_THE:
        article = "the"
    else:
        article = "an" if words[0][0] in "aeiou" else "a"
    return " ".join([article, *words])


def caption_text(
    rng: np.random.Generator, events: Sequence[EventType], background: str | None = None
) -> str:
    """One caption for ``events`` in the given order (synonyms, connectives, adjectives).

    ``background`` names the video's background in the caption when given.
    """
    if not events:
        raise ValueError("caption_text: a caption mentions at least one event")
    text = ""
    for k, (colour, shape, action) in enumerate(events):
        noun = _noun_phrase(rng, colour, shape)
        verb = pick(rng, ACTION_PHRASES[action])
        if k == 0:
            first = len(events) > 1 and rng.random() < _P_FIRST
            text = f"{'first ' if first else ''}{noun} {verb}"
            continue
        conn = "then" if (k == 1 and text.startswith("first ")) else pick(rng, CONNECTIVES)
        if conn == "followed by":
            text += f", followed by {noun} that {verb}"
        elif conn == "and then":
            text += f" and then {noun} {verb}"
        else:
            text += f", {conn} {noun} {verb}"
    if background is not None:
        if rng.random() < 0.5:
            text = f"on a {background} background, {text}"
        else:
            text = f"{text} on a {background} background"
    return text


def _heldout_subset(
    rng: np.random.Generator, video: MetaVideo, own: int, index: SplitIndex
) -> tuple[int, ...]:
    """A random smallest ordered subset of events that matches no other video of the split.

    Sizes below two are raised to two ("prefer 2 events").
    """
    n = len(video.events)
    unique_by_size: dict[int, list[tuple[int, ...]]] = {}
    for k in range(1, n + 1):
        subsets = [
            sub
            for sub in _combinations(n, k)
            if index.matching([video.event_types[i] for i in sub]) == [own]
        ]
        if subsets:
            unique_by_size[k] = subsets
    if not unique_by_size:
        raise RuntimeError(
            f"{video.video_id}: no caption identifies it within split {video.split!r}"
        )
    k = max(min(unique_by_size), min(2, n))
    while k not in unique_by_size:  # supersets of unique subsets are unique, so this is rare
        k += 1
    return pick(rng, unique_by_size[k])


def _combinations(n: int, k: int) -> list[tuple[int, ...]]:
    return list(combinations(range(n), k))


def make_captions(
    rng: np.random.Generator,
    videos: Sequence[MetaVideo],
    first_sen_id: int,
    background_captions: bool,
    test_captions: int = 1,
) -> list[PlannedCaption]:
    """Captions of a split's videos (five per train video, one per val video,
    ``test_captions`` per test video, each drawn as the single one is), with sen_ids from
    ``first_sen_id`` on and relevance sets over ``videos``."""
    index = SplitIndex()
    for v in videos:
        index.add(v.event_types, v.background)
    captions: list[PlannedCaption] = []
    for own, v in enumerate(videos):
        types = v.event_types
        n = len(types)
        if v.split == "train":
            subsets = []
            for _ in range(TRAIN_CAPTIONS_PER_VIDEO):
                k = int(rng.integers(1, n + 1))
                subsets.append(tuple(sorted(int(i) for i in rng.choice(n, size=k, replace=False))))
        else:
            count = test_captions if v.split == "test" else 1
            subsets = [_heldout_subset(rng, v, own, index) for _ in range(count)]
        for sub in subsets:
            name_bg = background_captions and rng.random() < _P_BACKGROUND
            mentioned = [types[i] for i in sub]
            bg = v.background if name_bg else None
            text = caption_text(rng, mentioned, bg)
            relevant = tuple(videos[i].video_id for i in index.matching(mentioned, bg))
            sen_id = first_sen_id + len(captions)
            meta = MetaCaption(sen_id, v.video_id, v.split, sub, name_bg, relevant)
            captions.append(PlannedCaption(meta, text))
    return captions
