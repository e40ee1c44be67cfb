"""Caption texts: which events a caption mentions and how it phrases them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from tvr.data.synthvtt.planning import _pick, _SplitIndex, _Video
from tvr.data.synthvtt.vocabulary import (
    ACTION_PHRASES,
    ADJECTIVES,
    CONNECTIVES,
    TRAIN_CAPTIONS_PER_VIDEO,
    EventType,
)

_P_ARTICLE_THE = 0.3
_P_ADJECTIVE = 0.25
_P_FIRST = 0.2
_P_BACKGROUND = 0.5


@dataclass(frozen=True)
class _Caption:
    sen_id: int
    video_id: str
    split: str
    text: str
    events: tuple[int, ...]
    background: bool
    relevant: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "split": self.split,
            "events": list(self.events),
            "background": self.background,
            "relevant": list(self.relevant),
        }


def _noun_phrase(rng: np.random.Generator, colour: str, shape: str) -> str:
    words = [colour, shape]
    if rng.random() < _P_ADJECTIVE:
        words.insert(0, _pick(rng, ADJECTIVES))
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
        verb = _pick(rng, ACTION_PHRASES[action])
        if k == 0:
            first = len(events) > 1 and rng.random() < _P_FIRST
            text = f"{'first ' if first else ''}{noun} {verb}"
            continue
        conn = "then" if (k == 1 and text.startswith("first ")) else _pick(rng, CONNECTIVES)
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
    rng: np.random.Generator, video: _Video, own: int, index: _SplitIndex
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
            if index.matching([video.events[i] for i in sub]) == [own]
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
    return _pick(rng, unique_by_size[k])


def _combinations(n: int, k: int) -> list[tuple[int, ...]]:
    return list(combinations(range(n), k))


def _make_captions(
    rng: np.random.Generator,
    videos: Sequence[_Video],
    first_sen_id: int,
    background_captions: bool,
) -> list[_Caption]:
    index = _SplitIndex()
    for v in videos:
        index.add(v.events, v.background)
    captions: list[_Caption] = []
    for own, v in enumerate(videos):
        n = len(v.events)
        if v.split == "train":
            subsets = []
            for _ in range(TRAIN_CAPTIONS_PER_VIDEO):
                k = int(rng.integers(1, n + 1))
                subsets.append(tuple(sorted(int(i) for i in rng.choice(n, size=k, replace=False))))
        else:
            subsets = [_heldout_subset(rng, v, own, index)]
        for sub in subsets:
            name_bg = background_captions and rng.random() < _P_BACKGROUND
            mentioned = [v.events[i] for i in sub]
            bg = v.background if name_bg else None
            text = caption_text(rng, mentioned, bg)
            relevant = tuple(videos[i].video_id for i in index.matching(mentioned, bg))
            captions.append(
                _Caption(
                    first_sen_id + len(captions), v.video_id, v.split, text, sub, name_bg, relevant
                )
            )
    return captions
