"""The ``negnce`` config section (objective ``negnce``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.objectives.negnce`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_objective
from tvr.registry import register


@register("section", "negnce")
@dataclass
class NegNCEConfig:
    weight: float = 1.0  # loss weight
    scale: float = 100.0  # fixed inverse temperature of the softmax
    margin: float = 0.0  # m of the hard-negative condition
    hard_weight: float = 0.5  # weight of the hard-negative term
    exclude_same_video: bool = True  # same-video pairs are never hard negatives
    mask_same_video: bool = False  # also drop same-video off-diagonal pairs from the softmax


NEGNCE = declare_objective("negnce", "tvr.objectives.negnce", section="negnce", replaces="infonce", order=0)
