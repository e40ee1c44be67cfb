"""Mixed precision for inference (evaluation and export): which autocast a device gets.

``amp`` is one of:

* ``"off"``: float32 throughout;
* ``"bf16"``: ``torch.autocast`` with bfloat16, on CUDA or CPU;
* ``"fp16"``: ``torch.autocast`` with float16, on CUDA, or on a CPU whose oneDNN has native
  fp16 (AVX512-FP16/AMX-FP16);
* ``"auto"``: bf16 where the device computes it natively (a CUDA GPU with bf16, else fp16 on
  CUDA; a CPU with AVX512-BF16/AMX), else off.

Matrix products and convolutions run in the lower precision, reductions and norms in float32
(PyTorch's autocast lists). Evaluation and export run the towers under it and score the
float32 features in float32: bf16 scores keep about 3 significant digits, which ties near
neighbours (and ties count against the model). Training has its own switch (``train.amp``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # AMP_CHOICES is read by command lines that may never need torch
    import torch

AMP_CHOICES: tuple[str, ...] = ("off", "auto", "bf16", "fp16")


def _cpu_native(dtype: torch.dtype) -> bool:
    """Whether this CPU's oneDNN computes ``dtype`` natively (not emulated)."""
    import torch

    check = {
        torch.bfloat16: "_is_mkldnn_bf16_supported",
        torch.float16: "_is_mkldnn_fp16_supported",
    }[dtype]
    fn = getattr(torch.ops.mkldnn, check, None)
    return bool(fn()) if fn is not None else False


def autocast_dtype(amp: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype ``amp`` gives on ``device`` (None = float32).

    Raises:
        ValueError: an unknown ``amp``, or fp16 asked for on a CPU without native fp16.
    """
    import torch

    if amp not in AMP_CHOICES:
        raise ValueError(f"amp={amp!r}: expected one of {', '.join(AMP_CHOICES)}")
    kind = torch.device(device).type
    if amp == "off" or kind not in ("cpu", "cuda"):
        return None
    if amp == "auto":
        if kind == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if _cpu_native(torch.bfloat16) else None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    if kind == "cpu" and dtype is torch.float16 and not _cpu_native(dtype):
        raise ValueError("amp='fp16' on this CPU: it has no native fp16 (use 'bf16' or 'off')")
    return dtype


@contextlib.contextmanager
def inference_autocast(amp: str, device: torch.device | str) -> Iterator[torch.dtype | None]:
    """Run the block under the autocast ``amp`` gives on ``device``; yields its dtype."""
    import torch

    dtype = autocast_dtype(amp, device)
    if dtype is None:
        yield None
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield dtype
