"""The ground-truth rule: a caption matches a video when its events occur in the video in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tvr.data.synthvtt.vocabulary import EventType

__all__ = ["caption_matches", "is_subsequence"]


def _event_type(event: Sequence[str] | Mapping[str, Any]) -> EventType:
    """``(colour, shape, action)`` of an event given as a triple or a mapping."""
    if isinstance(event, Mapping):
        return (event["colour"], event["shape"], event["action"])
    colour, shape, action = event
    return (colour, shape, action)


def is_subsequence(needle: Sequence[EventType], haystack: Sequence[EventType]) -> bool:
    """Whether ``needle`` occurs in ``haystack`` in order (gaps allowed)."""
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


def caption_matches(
    mentioned_events: Sequence[Sequence[str] | Mapping[str, Any]],
    video_events: Sequence[Sequence[str] | Mapping[str, Any]],
    *,
    background: str | None = None,
    video_background: str | None = None,
) -> bool:
    """Whether a caption mentioning ``mentioned_events`` (in order) matches a video.

    Events are ``(colour, shape, action)`` triples or mappings with those keys. A caption
    matches when all its events occur in the video in that order (other events may come in
    between), and, when it names a ``background``, the video's background is that one.

    Raises:
        ValueError: when ``background`` is given without ``video_background``.
    """
    if background is not None:
        if video_background is None:
            raise ValueError("caption_matches: background given but video_background is None")
        if background != video_background:
            return False
    needle = [_event_type(e) for e in mentioned_events]
    haystack = [_event_type(e) for e in video_events]
    return is_subsequence(needle, haystack)
