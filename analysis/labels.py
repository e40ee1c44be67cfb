"""The one spelling of the things every view names: videos, frames with their time, events.

Views that label the same thing differently ("f0 (0.1s)" here, "f0 @ 0.12s" there; "e0" on
one chart, "event 1" on another; "video video1750") cannot be read side by side, so every
label of a frame, an event or a video comes from here.
"""

from __future__ import annotations

import math


def frame_label(position: int, seconds: float | None = None) -> str:
    """``f{position}`` plus its time, ``f3 @ 1.25s`` (two decimals), when ``seconds`` is a
    finite number; ``position`` is the frame's place in the sampled sequence (0-based)."""
    if seconds is None or not math.isfinite(float(seconds)):
        return f"f{int(position)}"
    return f"f{int(position)} @ {float(seconds):.2f}s"


def event_label(index: int, name: str | None = None) -> str:
    """``event 1`` (1-based: ``index`` is the 0-based order of the event in its video), with
    ``: name`` when a name is given."""
    base = f"event {int(index) + 1}"
    return f"{base}: {name}" if name else base


def video_label(video_id: str) -> str:
    """``video <id>``, without doubling the word when the id already starts with it
    (``video1750`` stays ``video1750``)."""
    text = str(video_id)
    return text if text.lower().startswith("video") else f"video {text}"
