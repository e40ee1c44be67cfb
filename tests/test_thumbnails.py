"""Thumbnail strips from the embedding pass's frames (analysis/thumbnails.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from analysis.thumbnails import ThumbnailCollector, frames_from_clip, thumbnail_from_clip
from tvr.data.video import normalize_frames


def test_frames_from_clip_inverts_normalisation_exactly():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    frames[0, 0, 0] = [0, 0, 0]
    frames[0, 0, 1] = [255, 255, 255]
    video = torch.zeros(5, 3, 8, 8)
    video[:3] = normalize_frames(frames)
    mask = torch.tensor([1, 1, 1, 0, 0])
    np.testing.assert_array_equal(frames_from_clip(video, mask), frames)


def test_strip_size_times_and_collector():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    video = torch.zeros(4, 3, 16, 16)
    video[:2] = normalize_frames(frames)
    mask = torch.tensor([1, 1, 0, 0])
    times = torch.tensor([0.5, 1.5, float("nan"), float("nan")], dtype=torch.float64)
    jpeg, stamps, n = thumbnail_from_clip(video, mask, times, size=8)
    assert n == 2 and stamps == [0.5, 1.5, None, None]
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.size == (16, 8)

    collector = ThumbnailCollector(16)
    batch = {"video": video[None], "video_mask": mask[None], "video_index": torch.tensor([7]),
             "video_times": times[None]}
    collector(batch)
    assert list(collector.thumbs) == [7] and collector.thumbs[7][2] == 2
    with pytest.raises(KeyError, match="video_times"):
        collector({k: v for k, v in batch.items() if k != "video_times"})
