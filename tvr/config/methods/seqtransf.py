"""The seqTransf head's traits and the ``seqtransf`` module section (the temporal
transformer that several heads share).

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.models.heads.seqtransf`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_head
from tvr.registry import register


@register("section", "seqtransf")
@dataclass
class SeqTransfConfig:
    layers: int = 4  # temporal transformer blocks (CLIP4Clip: 4)
    heads: int = 8  # attention heads (width / 64 for CLIP)
    max_frames: int = 77  # rows of the frame position table
    init_from_text: bool = True  # copy text-tower blocks 0..layers-1 when widths match


SEQTRANSF = declare_head("seqtransf", "tvr.models.heads.seqtransf")
