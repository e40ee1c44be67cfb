"""The ``xclip`` config section (head ``xclip``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.models.heads.xclip`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_head
from tvr.registry import register


@register("section", "xclip")
@dataclass
class XCLIPConfig:
    mask_padding: bool = False  # True: padded words/frames leave every softmax and sum (code: no mask)
    attention_temperature: float = 0.01  # tau_a of every attention-over-similarity softmax


XCLIP = declare_head("xclip", "tvr.models.heads.xclip", section="xclip")
