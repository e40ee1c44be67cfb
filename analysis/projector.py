"""Projector basics for the embedding maps: find a caption or video by text or id, its
nearest neighbours in the full embedding space (not the 2-D map), a continuous value per map
point, and the URL form of a selection.

Pure NumPy over arrays a bundle holds; the Embeddings page draws the results.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.embedding_map import FRAMES, TEXTS, VIDEOS, MapPoints

CAPTION, VIDEO = "caption", "video"
_ID = re.compile(r"^\s*(?:(caption|c|video|v)\s*[:#]?\s*)?(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    """A caption or a video of a split.

    Attributes:
        kind: ``"caption"`` or ``"video"``.
        index: its row (caption index or video index).
    """

    kind: str
    index: int


def find_items(query: str, captions: Sequence[str], video_ids: Sequence[str],
               limit: int = 50) -> list[Item]:
    """The captions and videos that ``query`` names, best first.

    - ``"12"``, ``"caption 12"``, ``"c12"``: caption 12 (``"video 3"``, ``"v3"``: video 3;
      a bare number names the caption and, after it, the video of that index);
    - a video id (``"video1750"``, case-insensitive, exact), then video ids containing it;
    - otherwise the captions holding every word of ``query`` (case-insensitive), in order.

    Returns at most ``limit`` items; an empty query finds nothing.
    """
    text = str(query).strip()
    if not text:
        return []
    out: list[Item] = []
    m = _ID.match(text)
    if m:
        which, number = (m.group(1) or "").lower(), int(m.group(2))
        if which in ("", "caption", "c") and number < len(captions):
            out.append(Item(CAPTION, number))
        if which in ("", "video", "v") and number < len(video_ids):
            out.append(Item(VIDEO, number))
    low = text.lower()
    ids = [str(v).lower() for v in video_ids]
    out += [Item(VIDEO, i) for i, v in enumerate(ids) if v == low]
    out += [Item(VIDEO, i) for i, v in enumerate(ids) if low in v and v != low]
    words = low.split()
    out += [Item(CAPTION, i) for i, c in enumerate(captions)
            if all(w in str(c).lower() for w in words)]
    seen: set[Item] = set()
    unique = [x for x in out if not (x in seen or seen.add(x))]
    return unique[: int(limit)]


def nearest_neighbours(text: Any, video: Any, item: Item, k: int = 10) -> list[tuple[Item, float]]:
    """The ``k`` captions and videos closest to ``item`` by cosine of the pooled embeddings
    (the full joint space, not the map), itself left out, closest first.

    Shapes:
        text ``[Nt, D]``, video ``[Nv, D]`` -> ``k`` pairs ``(item, cosine)``.
    """
    t = _unit(np.asarray(text, dtype=np.float64))
    v = _unit(np.asarray(video, dtype=np.float64))
    if t.ndim != 2 or v.ndim != 2 or t.shape[1] != v.shape[1]:
        raise ValueError(f"text {t.shape} and video {v.shape}: expected [Nt, D] and [Nv, D]")
    rows = {CAPTION: t, VIDEO: v}
    if item.kind not in rows or not 0 <= item.index < len(rows[item.kind]):
        raise ValueError(f"{item}: no such {item.kind} (have {len(t)} captions, "
                         f"{len(v)} videos)")
    anchor = rows[item.kind][item.index]
    cos = np.concatenate([t @ anchor, v @ anchor])
    own = item.index if item.kind == CAPTION else len(t) + item.index
    cos[own] = -np.inf
    k = int(min(max(k, 0), len(cos) - 1))
    order = np.argsort(-cos, kind="stable")[:k]
    return [(Item(CAPTION, int(i)) if i < len(t) else Item(VIDEO, int(i - len(t))),
             float(cos[i])) for i in order]


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def point_values(points: MapPoints, caption_values: Any) -> np.ndarray:
    """A continuous per-caption value spread over the map's points: words and captions take
    their caption's, frames and videos the mean over the captions of their video (NaN when
    the video has none, or its captions have no value).

    Shapes:
        caption_values ``[Nt]`` -> ``[P]`` float64.
    """
    values = np.asarray(caption_values, dtype=np.float64)
    out = np.full(len(points), np.nan)
    text_side = points.caption >= 0
    out[text_side] = values[points.caption[text_side]]
    video_side = (points.kind == FRAMES) | (points.kind == VIDEOS)
    texts = np.flatnonzero(points.kind == TEXTS)  # one text point per caption: its video
    t2v = np.full(len(values), -1, dtype=np.int64)
    t2v[points.item[texts]] = points.video[texts]
    n_videos = int(points.video.max()) + 1 if len(points) else 0
    ok = (t2v >= 0) & np.isfinite(values)
    sums = np.bincount(t2v[ok], weights=values[ok], minlength=n_videos)
    counts = np.bincount(t2v[ok], minlength=n_videos)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_video = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out[video_side] = per_video[points.item[video_side]]
    return out


def selection_to_url(captions: Sequence[int], videos: Sequence[int]) -> str:
    """``"c1.2.5~v4"``: a selection of captions and videos as one URL-safe value."""
    parts = []
    if captions:
        parts.append("c" + ".".join(str(int(c)) for c in captions))
    if videos:
        parts.append("v" + ".".join(str(int(v)) for v in videos))
    return "~".join(parts)


def selection_from_url(value: str, n_captions: int, n_videos: int
                       ) -> tuple[list[int], list[int]]:
    """Parse :func:`selection_to_url`'s form back, checking every index.

    Raises:
        ValueError: naming the part that is malformed or out of range.
    """
    caps: list[int] = []
    vids: list[int] = []
    for part in [p for p in str(value).strip().split("~") if p]:
        head, body = part[:1], part[1:]
        if head not in ("c", "v") or not re.fullmatch(r"\d+(\.\d+)*", body):
            raise ValueError(f"{part!r}: expected c<i>.<j>… (captions) or v<i>.<j>… (videos)")
        ids = [int(x) for x in body.split(".")]
        n = n_captions if head == "c" else n_videos
        bad = [i for i in ids if i >= n]
        if bad:
            raise ValueError(f"{part!r}: {bad} out of range (there are {n} "
                             f"{'captions' if head == 'c' else 'videos'})")
        (caps if head == "c" else vids).extend(ids)
    return sorted(set(caps)), sorted(set(vids))


def saved_to_url(name: str, captions: Sequence[int], videos: Sequence[int]) -> str:
    """``"name:c1.2~v3"``: a named selection as one URL value (see :func:`selection_to_url`).

    Raises:
        ValueError: an empty name, or a selection with nothing in it.
    """
    name = str(name).strip()
    if not name:
        raise ValueError("a saved selection needs a name")
    if not captions and not videos:
        raise ValueError(f"selection {name!r} is empty: nothing to save")
    return f"{name}:{selection_to_url(captions, videos)}"


def saved_from_url(value: str, n_captions: int, n_videos: int
                   ) -> tuple[str, list[int], list[int]]:
    """Parse :func:`saved_to_url`'s form back: ``(name, captions, videos)``.

    Raises:
        ValueError: no ``name:`` part, or a malformed / out-of-range selection.
    """
    name, sep, body = str(value).rpartition(":")
    if not sep or not name.strip():
        raise ValueError(f"{value!r}: expected name:c<i>.<j>…~v<i>.<j>…")
    caps, vids = selection_from_url(body, n_captions, n_videos)
    if not caps and not vids:
        raise ValueError(f"{value!r}: the selection is empty")
    return name.strip(), caps, vids
