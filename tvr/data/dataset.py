"""Datasets and batching for training pairs and evaluation splits.

Training: :class:`PairDataset` yields one item per (record, caption). Evaluation:
:class:`EvalSplit` holds the caption/video ground truth of a split, :class:`CaptionDataset`
yields every caption once and :class:`VideoDataset` every video once, for batched embedding.
:func:`collate` stacks items into a batch (dict of ``[B, ...]`` tensors).

Item keys (spec ``data_and_metrics.md`` §2):

==============  ====================================  ===========================================
key             shape / dtype                         meaning
==============  ====================================  ===========================================
video           ``[T, 3, S, S]`` float32              CLIP-normalised frames, zero padding
video_mask      ``[T]`` int64                         1 on real frames
text            ``[L]`` int64                         SOT ... EOT, then pad ids
text_mask       ``[L]`` int64                         1 on SOT..EOT
video_index     int                                   dense index of the video in the split
caption_index   int                                   dense index of the caption in the split
==============  ====================================  ===========================================

Decode failures: with ``on_decode_error="raise"`` a :class:`~tvr.data.video.VideoDecodeError`
propagates. With ``"skip"`` the item becomes a :class:`SkippedItem` that :func:`collate` drops
from the batch (a batch left empty collates to ``None``). The skip is counted
(``dataset.num_skipped``), logged at WARNING with the path and reason (once per file) and listed
in ``dataset.skipped`` (paths; ``dataset.skip_reasons`` maps them to reasons); the process does
not decode that file again. DataLoader workers each keep their own count and list, so pass
``skip_log`` (a JSONL file every process appends to) to see all skips from the main process.
A failed decode never becomes an all-zero video.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from tvr.data.records import VideoTextRecord
from tvr.data.tokenizer import TextTokenizer
from tvr.data.video import VideoDecodeError

logger = logging.getLogger(__name__)

OnDecodeError = Literal["raise", "skip"]
_POLICIES = ("raise", "skip")


class ClipSampler(Protocol):
    """What datasets need from a frame sampler (:class:`tvr.data.video.FrameSampler`)."""

    def __call__(
        self, path: str | Path, start: float | None = None, end: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, Any]: ...


@dataclass(frozen=True)
class SkippedItem:
    """Placeholder returned for an item whose video failed to decode (``"skip"`` policy)."""

    index: int  # dataset index of the item
    path: str  # the video file
    reason: str  # why it failed


class _SkipPolicy:
    """Decode-error handling shared by the video-bearing datasets."""

    def __init__(self, on_decode_error: str, skip_log: str | Path | None) -> None:
        if on_decode_error not in _POLICIES:
            raise ValueError(
                f"on_decode_error must be one of {', '.join(_POLICIES)}, got {on_decode_error!r}"
            )
        self.on_decode_error = on_decode_error
        self.skip_log = Path(skip_log) if skip_log else None
        self._bad: dict[str, str] = {}  # path -> reason, in this process
        self.num_skipped = 0  # skip events in this process

    def _load_video(
        self, sampler: ClipSampler, index: int, record: VideoTextRecord
    ) -> tuple[torch.Tensor, torch.Tensor, Any] | SkippedItem:
        path = str(record.video_path)
        if path in self._bad:
            self.num_skipped += 1
            logger.debug("skipping item %d: %s already failed (%s)", index, path, self._bad[path])
            return SkippedItem(index, path, self._bad[path])
        try:
            video, mask, times = sampler(record.video_path, record.start, record.end)
        except VideoDecodeError as exc:
            if self.on_decode_error == "raise":
                raise
            self._bad[path] = exc.reason
            self.num_skipped += 1
            logger.warning("skipping video %s (item %d): %s", path, index, exc.reason)
            self._append_log(index, path, exc.reason)
            return SkippedItem(index, path, exc.reason)
        if int(mask.sum()) < 1:  # a sampler contract violation, never hidden
            raise VideoDecodeError(record.video_path, "the sampler returned no real frame")
        return video, mask, times

    def _append_log(self, index: int, path: str, reason: str) -> None:
        if self.skip_log is None:
            return
        line = json.dumps({"index": index, "path": path, "reason": reason}) + "\n"
        self.skip_log.parent.mkdir(parents=True, exist_ok=True)
        # One O_APPEND write per line: concurrent workers never interleave within a line.
        fd = os.open(self.skip_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    @property
    def skip_reasons(self) -> dict[str, str]:
        """Files that failed to decode -> reason (this process, plus ``skip_log`` if set)."""
        out: dict[str, str] = {}
        if self.skip_log is not None and self.skip_log.is_file():
            for n, line in enumerate(self.skip_log.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    out.setdefault(str(entry["path"]), str(entry["reason"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{self.skip_log}, line {n}: malformed skip entry") from exc
        for path, reason in self._bad.items():
            out.setdefault(path, reason)
        return out

    @property
    def skipped(self) -> list[str]:
        """Paths of the files that failed to decode, in order of first failure, no repeats."""
        return list(self.skip_reasons)


def _video_indices(records: Sequence[VideoTextRecord]) -> list[int]:
    """Dense video index per record: records sharing a ``video_id`` share the index."""
    ids: dict[str, int] = {}
    return [ids.setdefault(r.video_id, len(ids)) for r in records]


class PairDataset(Dataset, _SkipPolicy):
    """Training pairs: one item per (record, caption), captions tokenised once up front.

    Args:
        records: the split's records (one per video; a repeated ``video_id`` shares its
            ``video_index``).
        sampler: frame sampler, e.g. :class:`~tvr.data.video.FrameSampler`.
        tokenizer: text tokenizer.
        max_words: text length ``L`` including SOT/EOT.
        on_decode_error: ``"raise"`` or ``"skip"`` (see the module docstring).
        skip_log: optional JSONL file every process appends skips to.

    Shapes:
        item: video ``[T, 3, S, S]``, video_mask ``[T]``, text ``[L]``, text_mask ``[L]``,
        video_index and caption_index ints (see the module docstring).
    """

    def __init__(
        self,
        records: Sequence[VideoTextRecord],
        sampler: ClipSampler,
        tokenizer: TextTokenizer,
        max_words: int,
        on_decode_error: OnDecodeError = "raise",
        skip_log: str | Path | None = None,
    ) -> None:
        _SkipPolicy.__init__(self, on_decode_error, skip_log)
        if not records:
            raise ValueError("PairDataset: no records")
        self.records = list(records)
        self.sampler = sampler
        self.max_words = max_words
        self.pad_id = tokenizer.pad_id
        self.video_index = _video_indices(self.records)
        self._cached_videos: dict[int, str] | None = None  # see use_cached_videos
        self.captions: list[str] = []
        self._pairs: list[int] = []  # caption index -> record index
        for r, rec in enumerate(self.records):
            for caption in rec.captions:
                self.captions.append(caption)
                self._pairs.append(r)
        ids, mask = tokenizer.encode(self.captions, max_words)
        self._text = ids.to(torch.int32)  # [N, L], int32 to halve memory
        self._text_mask = mask.to(torch.uint8)
        logger.info(
            "PairDataset: %d pairs over %d videos (L=%d, on_decode_error=%s)",
            len(self._pairs),
            len(set(self.video_index)),
            max_words,
            on_decode_error,
        )

    def __len__(self) -> int:
        return len(self._pairs)

    def __getitem__(self, index: int) -> dict[str, Any] | SkippedItem:
        if not -len(self) <= index < len(self):
            raise IndexError(f"PairDataset index {index} out of range for {len(self)} pairs")
        index %= len(self)
        r = self._pairs[index]
        item: dict[str, Any] = {
            "text": self._text[index].long(),
            "text_mask": self._text_mask[index].long(),
            "video_index": self.video_index[r],
            "caption_index": index,
        }
        if self._cached_videos is not None:  # features come from a cache, by video_index
            reason = self._cached_videos.get(self.video_index[r])
            if reason is not None:
                self.num_skipped += 1
                return SkippedItem(index, str(self.records[r].video_path), reason)
            return item
        loaded = self._load_video(self.sampler, index, self.records[r])
        if isinstance(loaded, SkippedItem):
            return loaded
        video, video_mask, _ = loaded
        return {"video": video, "video_mask": video_mask, **item}

    def use_cached_videos(self, unavailable: dict[int, str]) -> None:
        """Stop decoding: items carry no ``video``/``video_mask`` (the trainer looks the
        features up by ``video_index``, see :mod:`tvr.models.frozen_video`); pairs of the
        videos in ``unavailable`` (``video_index`` -> reason) become :class:`SkippedItem` s.
        """
        self._cached_videos = dict(unavailable)

    def collate(
        self, items: Sequence[dict[str, Any] | SkippedItem]
    ) -> dict[str, torch.Tensor] | None:
        """:func:`collate` with this dataset's pad id."""
        return collate(items, text_pad_id=self.pad_id)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSplit:
    """Captions, videos and ground truth of an evaluation split.

    Attributes:
        captions: every caption (query) once, in record order.
        text_to_video: ``[Nt]`` int64, the video index of each caption.
        video_to_texts: per video, the ordered caption indices.
        video_ids: per video, its id.
        videos: per video, its record (path, window, all its captions).
    """

    captions: list[str]
    text_to_video: np.ndarray
    video_to_texts: list[list[int]]
    video_ids: list[str]
    videos: list[VideoTextRecord]

    @classmethod
    def from_records(cls, records: Sequence[VideoTextRecord]) -> EvalSplit:
        """Build the split; records sharing a ``video_id`` are merged (same file and window).

        Raises:
            ValueError: no records, or one ``video_id`` with two different files/windows.
        """
        if not records:
            raise ValueError("EvalSplit: no records")
        order: dict[str, int] = {}
        videos: list[VideoTextRecord] = []
        captions: list[str] = []
        text_to_video: list[int] = []
        video_to_texts: list[list[int]] = []
        for rec in records:
            v = order.get(rec.video_id)
            if v is None:
                v = order[rec.video_id] = len(videos)
                videos.append(rec)
                video_to_texts.append([])
            else:
                first = videos[v]
                if (first.video_path, first.start, first.end) != (
                    rec.video_path,
                    rec.start,
                    rec.end,
                ):
                    raise ValueError(
                        f"EvalSplit: video {rec.video_id!r} appears with two sources: "
                        f"{first.video_path} [{first.start}, {first.end}] and "
                        f"{rec.video_path} [{rec.start}, {rec.end}]"
                    )
                videos[v] = VideoTextRecord(
                    first.video_id,
                    first.video_path,
                    first.captions + rec.captions,
                    first.start,
                    first.end,
                )
            for caption in rec.captions:
                video_to_texts[v].append(len(captions))
                text_to_video.append(v)
                captions.append(caption)
        return cls(
            captions=captions,
            text_to_video=np.asarray(text_to_video, dtype=np.int64),
            video_to_texts=video_to_texts,
            video_ids=[r.video_id for r in videos],
            videos=videos,
        )

    @property
    def num_texts(self) -> int:
        return len(self.captions)

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    @property
    def single_caption(self) -> bool:
        """True when every video has exactly one caption (the N x N diagonal protocol)."""
        return all(len(t) == 1 for t in self.video_to_texts)


class CaptionDataset(Dataset):
    """Every caption of an :class:`EvalSplit` once: items ``text``, ``text_mask``,
    ``caption_index``.

    Shapes:
        item: text ``[L]`` int64, text_mask ``[L]`` int64, caption_index int.
    """

    def __init__(
        self, split: EvalSplit | Sequence[VideoTextRecord], tokenizer: TextTokenizer, max_words: int
    ) -> None:
        split = split if isinstance(split, EvalSplit) else EvalSplit.from_records(split)
        self.split = split
        self.pad_id = tokenizer.pad_id
        self._text, self._text_mask = tokenizer.encode(split.captions, max_words)

    def __len__(self) -> int:
        return self.split.num_texts

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "text": self._text[index],
            "text_mask": self._text_mask[index],
            "caption_index": int(index) % len(self),
        }

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor] | None:
        return collate(items, text_pad_id=self.pad_id)


class VideoDataset(Dataset, _SkipPolicy):
    """Every video of an :class:`EvalSplit` once: items ``video``, ``video_mask``,
    ``video_index``.

    ``split`` may also be the split's records (turned into an :class:`EvalSplit`; with one
    record per video, ``video_index`` is the record index).

    With ``on_decode_error="skip"`` a failed video is dropped from its batch; the evaluator
    sees which ``video_index`` values are missing and must report the N it evaluated.

    With ``with_times=True`` items also carry ``video_times``: the presentation time of each
    sampled frame in seconds (``NaN`` on padding), e.g. for thumbnails of the same frames.

    Shapes:
        item: video ``[T, 3, S, S]`` float32, video_mask ``[T]`` int64, video_index int,
        video_times ``[T]`` float64 (``with_times`` only).
    """

    def __init__(
        self,
        split: EvalSplit | Sequence[VideoTextRecord],
        sampler: ClipSampler,
        on_decode_error: OnDecodeError = "raise",
        skip_log: str | Path | None = None,
        with_times: bool = False,
    ) -> None:
        _SkipPolicy.__init__(self, on_decode_error, skip_log)
        self.split = split if isinstance(split, EvalSplit) else EvalSplit.from_records(split)
        self.sampler = sampler
        self.with_times = with_times

    def __len__(self) -> int:
        return self.split.num_videos

    def __getitem__(self, index: int) -> dict[str, Any] | SkippedItem:
        index = int(index) % len(self)
        loaded = self._load_video(self.sampler, index, self.split.videos[index])
        if isinstance(loaded, SkippedItem):
            return loaded
        video, video_mask, times = loaded
        item = {"video": video, "video_mask": video_mask, "video_index": index}
        if self.with_times:
            item["video_times"] = torch.as_tensor(np.asarray(times, dtype=np.float64))
        return item

    def collate(
        self, items: Sequence[dict[str, Any] | SkippedItem]
    ) -> dict[str, torch.Tensor] | None:
        return collate(items)


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------

_PAD_KEYS = {"text", "text_mask"}


def collate(
    items: Sequence[dict[str, Any] | SkippedItem | None], text_pad_id: int = 0
) -> dict[str, torch.Tensor] | None:
    """Stack items into a batch, dropping :class:`SkippedItem` placeholders.

    Tensors are stacked to ``[B, ...]``; ``text`` rows of different lengths are right-padded
    with ``text_pad_id`` (``text_mask`` with 0); ints become an int64 ``[B]`` tensor.
    Returns ``None`` when every item of the batch was skipped (callers skip such a batch).

    Shapes:
        returns: video ``[B, T, 3, S, S]``, video_mask ``[B, T]``, text ``[B, L]``,
        text_mask ``[B, L]``, video_index ``[B]``, caption_index ``[B]`` (the keys the items
        have).

    Raises:
        ValueError: items with different keys, or tensors that cannot be stacked.
    """
    kept = [it for it in items if it is not None and not isinstance(it, SkippedItem)]
    dropped = len(items) - len(kept)
    if dropped:
        logger.debug("collate: dropped %d skipped item(s) of %d", dropped, len(items))
    if not kept:
        return None
    keys = list(kept[0])
    for i, item in enumerate(kept):
        if list(item) != keys:
            raise ValueError(f"collate: item {i} has keys {sorted(item)}, expected {sorted(keys)}")
    batch: dict[str, torch.Tensor] = {}
    for key in keys:
        values = [item[key] for item in kept]
        first = values[0]
        if isinstance(first, torch.Tensor):
            if key in _PAD_KEYS and len({v.shape for v in values}) > 1:
                values = _pad_right(values, text_pad_id if key == "text" else 0, key)
            try:
                batch[key] = torch.stack(values)
            except RuntimeError as exc:
                shapes = sorted({tuple(v.shape) for v in values})
                raise ValueError(f"collate: cannot stack {key!r} with shapes {shapes}") from exc
        elif isinstance(first, int | np.integer):
            batch[key] = torch.tensor([int(v) for v in values], dtype=torch.long)
        elif isinstance(first, float | np.floating):
            batch[key] = torch.tensor([float(v) for v in values], dtype=torch.float32)
        else:
            raise ValueError(f"collate: key {key!r} holds {type(first).__name__}, not a tensor")
    return batch


def _pad_right(values: list[torch.Tensor], pad: int, key: str) -> list[torch.Tensor]:
    if any(v.dim() != 1 for v in values):
        raise ValueError(
            f"collate: {key!r} must be 1-D to pad, got shapes {[v.shape for v in values]}"
        )
    length = max(v.shape[0] for v in values)
    out = []
    for v in values:
        padded = torch.full((length,), pad, dtype=v.dtype)
        padded[: v.shape[0]] = v
        out.append(padded)
    return out
