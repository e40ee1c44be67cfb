"""CLIP's pixel pipeline for decoded frames: resize the short side with bicubic, centre-crop,
scale to [0, 1] and normalise with the CLIP mean/std (PIL/numpy/torch only)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def resize_center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` (PIL bicubic) and centre-crop ``size x size``.

    The long side becomes ``int(size * long / short)`` and the crop offset
    ``round((side - size) / 2)``, as in CLIP's preprocessing.

    Shapes:
        image: ``[H, W, 3]`` uint8 RGB.
        returns: ``[size, size, 3]`` uint8 RGB.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an [H, W, 3] uint8 RGB image, got shape {image.shape} dtype {image.dtype}"
        )
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    h, w = image.shape[:2]
    if min(h, w) != size:
        if w <= h:
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
        h, w = new_h, new_w
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def normalize_frames(frames: np.ndarray) -> torch.Tensor:
    """Scale uint8 RGB frames to [0, 1] and normalise with the CLIP mean/std.

    Shapes:
        frames: ``[n, H, W, 3]`` uint8.
        returns: ``[n, 3, H, W]`` float32.
    """
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected [n, H, W, 3] uint8 frames, got shape {frames.shape} dtype {frames.dtype}"
        )
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).contiguous()
