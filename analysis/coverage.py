"""Which queries two bundles share, and their metrics on that common set.

An export with ``data.on_decode_error=skip`` leaves undecodable videos (and their captions)
out of its bundle, so two bundles of one split may cover different queries: metrics of a
5-video gallery are not comparable with those of the 8-video gallery. :func:`compare_on_common`
restricts **both** bundles to the captions and videos they share and recomputes their ranks and
metrics there from the stored similarity (``tvr.metrics`` conventions), so deltas and paired
tests compare like with like. :func:`skipped_note` says what was skipped and why.

Captions are matched by (video id, position in the source split, text), videos by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class _BundleLike(Protocol):
    captions: list[str]
    video_ids: list[str]
    text_to_video: np.ndarray
    caption_index: np.ndarray
    sim: np.ndarray
    metrics: dict[str, float]
    skipped: list[Any]
    split_num_videos: int
    num_texts: int
    num_videos: int
    run_name: str


@dataclass(frozen=True)
class CommonSet:
    """The captions and videos two bundles share, as rows/columns of each.

    Shapes:
        texts_a, texts_b: ``[n_t]`` caption rows in bundle A / B (same captions, A's order).
        videos_a, videos_b: ``[n_v]`` video columns in A / B (same videos, A's order).
        text_to_video: ``[n_t]`` column of each common caption's video in the common list.
    """

    texts_a: np.ndarray
    texts_b: np.ndarray
    videos_a: np.ndarray
    videos_b: np.ndarray
    text_to_video: np.ndarray
    identical: bool  # both bundles hold exactly these captions and videos, in this order

    @property
    def num_texts(self) -> int:
        return len(self.texts_a)

    @property
    def num_videos(self) -> int:
        return len(self.videos_a)


@dataclass(frozen=True)
class CommonComparison:
    """Both bundles evaluated on their :class:`CommonSet`.

    Attributes:
        common: the shared captions and videos.
        metrics_a, metrics_b: ``tvr.metrics`` dicts on the common set (the bundles' own
            metrics when ``common.identical``).
        ranks_a, ranks_b: ``{"t2v": [n_t], "v2t": [n_v]}`` ranks on the common set.
    """

    common: CommonSet
    metrics_a: dict[str, float]
    metrics_b: dict[str, float]
    ranks_a: dict[str, np.ndarray]
    ranks_b: dict[str, np.ndarray]


def _caption_keys(b: _BundleLike) -> list[tuple[str, int, str]]:
    return [
        (b.video_ids[int(v)], int(i), c)
        for v, i, c in zip(b.text_to_video, b.caption_index, b.captions, strict=True)
    ]


def common_set(a: _BundleLike, b: _BundleLike) -> CommonSet:
    """The captions and videos both bundles hold (A's order); a video counts only when both
    hold it, a caption only when its video does.

    Raises:
        ValueError: the bundles share no caption (different splits or datasets).
    """
    vid_b = {v: j for j, v in enumerate(b.video_ids)}
    videos_a = [j for j, v in enumerate(a.video_ids) if v in vid_b]
    col = {a.video_ids[j]: k for k, j in enumerate(videos_a)}
    keys_b = {k: i for i, k in enumerate(_caption_keys(b))}
    texts_a, texts_b, t2v = [], [], []
    for i, key in enumerate(_caption_keys(a)):
        if key[0] in col and key in keys_b:
            texts_a.append(i)
            texts_b.append(keys_b[key])
            t2v.append(col[key[0]])
    if not texts_a:
        raise ValueError(
            f"bundles of {a.run_name} and {b.run_name} share no caption: they do not describe "
            "the same split"
        )
    # a common video whose captions are all missing from one side cannot be ranked
    has_caption = set(t2v)
    keep = [k for k in range(len(videos_a)) if k in has_caption]
    if len(keep) != len(videos_a):
        remap = {k: n for n, k in enumerate(keep)}
        videos_a = [videos_a[k] for k in keep]
        t2v = [remap[k] for k in t2v]
    videos_b = [vid_b[a.video_ids[j]] for j in videos_a]
    identical = (
        len(texts_a) == a.num_texts == b.num_texts
        and len(videos_a) == a.num_videos == b.num_videos
        and texts_a == list(range(a.num_texts)) == texts_b
        and videos_a == list(range(a.num_videos)) == videos_b
    )
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return CommonSet(as_int(texts_a), as_int(texts_b), as_int(videos_a), as_int(videos_b),
                     as_int(t2v), identical)


def _evaluate(bundle: _BundleLike, texts: np.ndarray, videos: np.ndarray,
              text_to_video: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    from tvr.metrics import evaluate_retrieval

    sim = np.asarray(bundle.sim)[np.ix_(texts, videos)]  # [n_t, n_v]
    result = evaluate_retrieval(sim, text_to_video)
    return dict(result.metrics), {"t2v": result.t2v.ranks, "v2t": result.v2t.ranks}


def compare_on_common(a: _BundleLike, b: _BundleLike) -> CommonComparison:
    """Ranks and metrics of both bundles on the queries they share (module docstring)."""
    common = common_set(a, b)
    metrics_a, ranks_a = _evaluate(a, common.texts_a, common.videos_a, common.text_to_video)
    metrics_b, ranks_b = _evaluate(b, common.texts_b, common.videos_b, common.text_to_video)
    return CommonComparison(common, metrics_a, metrics_b, ranks_a, ranks_b)


def skipped_summary(bundle: _BundleLike) -> str | None:
    """``"3 of 8 videos (3 captions) were skipped: v1 (reason); ..."``, or None."""
    if not bundle.skipped:
        return None
    captions = [s.num_captions for s in bundle.skipped]
    n_cap = "" if min(captions) < 0 else f" ({sum(captions)} captions)"
    listed = "; ".join(f"{s.video_id} ({s.reason})" for s in bundle.skipped[:5])
    more = f"; and {len(bundle.skipped) - 5} more" if len(bundle.skipped) > 5 else ""
    return (f"{len(bundle.skipped)} of {bundle.split_num_videos} videos{n_cap} failed to "
            f"decode and were skipped: {listed}{more}")


def skipped_note(a: _BundleLike, b: _BundleLike | None, common: CommonSet | None = None) -> str | None:
    """What each bundle skipped and why, and on what set the two are compared; None when
    nothing was skipped and the bundles hold the same queries."""
    parts = []
    for bundle in (a, b):
        if bundle is not None and (summary := skipped_summary(bundle)):
            parts.append(f"{bundle.run_name}: {summary}.")
    if b is not None and common is not None and not common.identical:
        parts.append(
            f"The bundles cover different queries ({a.num_texts} captions x {a.num_videos} "
            f"videos vs {b.num_texts} x {b.num_videos}), so both are compared on the "
            f"{common.num_texts} captions and {common.num_videos} videos they share: metrics "
            "and deltas are recomputed on that set."
        )
    return " ".join(parts) or None
