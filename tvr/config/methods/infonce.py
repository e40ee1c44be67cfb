"""The ``infonce`` config section (objective ``infonce``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.objectives.infonce`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_objective
from tvr.registry import register


@register("section", "infonce")
@dataclass
class InfoNCEConfig:
    weight: float = 1.0  # loss weight
    mask_same_video: bool = False  # drop same-video off-diagonal pairs from the softmax


INFONCE = declare_objective("infonce", "tvr.objectives.infonce", section="infonce", order=0)
