"""JPEG encoding of uint8 RGB images (thumbnail strips, the Attention page's frames); imports
no torch, so a page that shows a frame does not pull it in."""

from __future__ import annotations

import io

import numpy as np


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a uint8 ``[H, W, 3]`` image at ``quality`` (1-95)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()
