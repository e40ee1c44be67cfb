"""Thumbnail strips: the frames the model sampled for a video, side by side in one JPEG.

The strips are made from the embedding pass's own decode (:class:`ThumbnailCollector` sees
each video batch through :attr:`tvr.evaluate.EmbedOptions.on_video_batch`), so every video is
decoded once per export: the frames are exactly the model input's (same segment centres and
sampling mode, same frame times), resized from the model's ``S`` px to ``size`` px when they
differ. The export stores one strip per video (``thumbs/<v>.jpg`` of a bundle) and the app
draws them without decoding any video.
"""

from __future__ import annotations

import numpy as np
import torch

from analysis.jpeg import encode_jpeg
from tvr.data.video import CLIP_MEAN, CLIP_STD, resize_center_crop

Thumbnail = tuple[bytes, list[float | None], int]
"""(JPEG bytes of ``[size, n * size, 3]``, ``T`` frame times in seconds with None on padding,
n real frames)."""


def frames_from_clip(video: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """The uint8 RGB frames behind a CLIP-normalised clip (inverse of
    :func:`tvr.data.video.normalize_frames`, exact: float32 keeps the 1/255 steps apart).

    Shapes:
        video: ``[T, 3, S, S]`` float, CLIP-normalised; mask ``[T]`` (real frames first).
        returns: ``[n, S, S, 3]`` uint8, ``n = mask.sum()``.
    """
    n = int(mask.sum())
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    pixels = (video[:n].float() * std + mean).mul_(255.0).round_().clamp_(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def thumbnail_from_clip(
    video: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, size: int, quality: int = 85
) -> Thumbnail:
    """JPEG strip of a sampled clip's real frames at ``size`` px.

    Shapes:
        video: ``[T, 3, S, S]`` CLIP-normalised; mask ``[T]``; times ``[T]`` seconds (NaN on
        padding).
    """
    frames = frames_from_clip(video, mask)  # [n, S, S, 3]
    if frames.shape[1] != size:
        frames = np.stack([resize_center_crop(f, size) for f in frames])
    strip = np.concatenate(list(frames), axis=1)  # [size, n*size, 3]
    n = int(frames.shape[0])
    stamps: list[float | None] = [float(t) for t in times[:n].tolist()]
    stamps += [None] * (int(mask.shape[0]) - n)
    return encode_jpeg(strip, quality), stamps, n


class ThumbnailCollector:
    """Make each video's strip from the embedding pass's batches (``on_video_batch``).

    Args:
        size: side of one frame in pixels.
        quality: JPEG quality (1-95).

    Attributes:
        thumbs: ``video_index`` -> :data:`Thumbnail`, for every video seen.
    """

    def __init__(self, size: int, quality: int = 85) -> None:
        self.size = int(size)
        self.quality = int(quality)
        self.thumbs: dict[int, Thumbnail] = {}

    def __call__(self, batch: dict[str, torch.Tensor]) -> None:
        """Encode the strips of one batch (``video [B,T,3,S,S]``, ``video_mask [B,T]``,
        ``video_index [B]``, ``video_times [B,T]``)."""
        if "video_times" not in batch:
            raise KeyError("ThumbnailCollector needs batches with video_times "
                           "(EmbedOptions.on_video_batch turns them on)")
        for b, index in enumerate(batch["video_index"].tolist()):
            self.thumbs[int(index)] = thumbnail_from_clip(
                batch["video"][b], batch["video_mask"][b], batch["video_times"][b], self.size,
                self.quality)
