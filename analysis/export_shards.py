"""Embedding a split for the export, one contiguous shard of videos per torchrun rank.

Each rank embeds its videos (with their captions) through :func:`tvr.evaluate.embed_split`,
the evaluator's own code path, and makes their thumbnails from the frames that pass decoded
(:class:`analysis.thumbnails.ThumbnailCollector`: one decode per video); rank 0 concatenates
the gathered shards in video order (:func:`assemble_shards`) and, with several ranks, rescores
the full similarity matrix with the head.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.bundle import BundleError
from analysis.thumbnails import ThumbnailCollector
from tvr.models.features import TokenFeatures


def _shard_bounds(num_videos: int, rank: int, world: int) -> tuple[int, int]:
    edges = np.linspace(0, num_videos, world + 1).round().astype(int)
    return int(edges[rank]), int(edges[rank + 1])


def embed_shard(
    model: nn.Module, tokenizer: Any, split_gt: Any, cfg: Any, opts: Any,
    device: torch.device, rank: int, world: int, progress: bool,
) -> dict[str, Any]:
    """Embed this rank's videos (one merged record per video) and their thumbnails, made
    from the frames the embedding pass decoded.

    Args:
        model, tokenizer: the run's model and tokenizer.
        split_gt: the split (:class:`tvr.data.dataset.EvalSplit`).
        cfg: the run's config (its ``data`` section).
        opts: :class:`analysis.export.ExportOptions` (batch size, thumbnail size, amp).
        device: where the towers run.
        rank, world: this process's shard of ``world``.

    Returns:
        ``{"start": first video row, "emb": SplitEmbedding or None, "thumbs":
        [(jpeg, timestamps, n)], "skipped": skipped_video_reasons(...)}``.
    """
    from tvr.evaluate import EmbedOptions, embed_split

    start, stop = _shard_bounds(split_gt.num_videos, rank, world)
    records = split_gt.videos[start:stop]
    if not records:
        return {"start": start, "emb": None, "thumbs": []}
    collector = ThumbnailCollector(opts.thumb_size, opts.jpeg_quality)
    emb = embed_split(model, tokenizer, records, EmbedOptions.from_data(
        cfg.data, batch_size=opts.batch_size, device=device, progress=progress, amp=opts.amp,
        on_video_batch=collector))
    thumbs = [collector.thumbs[int(r)] for r in emb.video_rows]
    skipped = skipped_video_reasons(records, emb.skipped_videos, cfg.data.num_frames,
                                    cfg.data.image_size)
    if world > 1:
        emb = replace(emb, sim=np.zeros((0, 0), dtype=np.float32))  # rank 0 rescores all pairs
    return {"start": start, "emb": emb, "thumbs": thumbs, "skipped": skipped}


def skipped_video_reasons(
    records: list[Any], skipped_ids: list[str], num_frames: int, image_size: int
) -> list[dict[str, Any]]:
    """Why each skipped video failed: ``[{"video_id", "path", "reason", "num_captions"}]``.

    The embedding may decode in DataLoader workers, whose skip reasons stay there, so each
    skipped video (few, by nature) is decoded once more here to read its error.
    """
    from tvr.data.video import FrameSampler, VideoDecodeError

    if not skipped_ids:
        return []
    sampler = FrameSampler(num_frames, image_size)
    by_id = {r.video_id: r for r in records}
    out = []
    for vid in skipped_ids:
        record = by_id[vid]
        try:
            sampler(record.video_path, record.start, record.end)
            reason = "failed to decode during the export (decoded when retried)"
        except VideoDecodeError as exc:
            reason = exc.reason
        out.append({"video_id": vid, "path": str(record.video_path), "reason": reason,
                    "num_captions": len(record.captions)})
    return out


def assemble_shards(
    shards: list[dict[str, Any]], split_gt: Any, model: nn.Module, device: torch.device,
    progress: bool,
) -> tuple[Any, list[tuple[bytes, list[float | None], int]], np.ndarray]:
    """Concatenate shards in video order; returns (SplitEmbedding, thumbnails, caption_index).

    ``caption_index`` maps each kept caption to its position in the source's split order.
    """
    from tvr.evaluate import SplitEmbedding, similarity_matrix

    parts = [s for s in shards if s["emb"] is not None]
    if not parts:
        raise BundleError("no video of the split could be embedded")
    per_video = [len(v.captions) for v in split_gt.videos]
    caption_offset = np.concatenate([[0], np.cumsum(per_video)]).astype(np.int64)
    canonical_to_source = np.concatenate(
        [np.asarray(t, dtype=np.int64) for t in split_gt.video_to_texts]
    )
    t2v, video_rows, caption_rows, thumbs = [], [], [], []
    column = 0
    for s in parts:
        e = s["emb"]
        t2v.append(e.text_to_video + column)
        column += len(e.video_ids)
        video_rows.append(e.video_rows + s["start"])
        caption_rows.append(e.caption_rows + caption_offset[s["start"]])
        thumbs.extend(s["thumbs"])
    text = TokenFeatures.cat([s["emb"].text for s in parts])
    video = TokenFeatures.cat([s["emb"].video for s in parts])
    if len(shards) == 1:
        sim = parts[0]["emb"].sim
    else:
        sim = similarity_matrix(model, text, video, device=device, progress=progress)
    rows = np.concatenate(caption_rows)
    emb = SplitEmbedding(
        text=text, video=video, sim=sim, text_to_video=np.concatenate(t2v),
        captions=[c for s in parts for c in s["emb"].captions],
        video_ids=[v for s in parts for v in s["emb"].video_ids],
        caption_rows=rows, video_rows=np.concatenate(video_rows),
        skipped_videos=[v for s in parts for v in s["emb"].skipped_videos],
    )
    return emb, thumbs, canonical_to_source[rows]
