"""The ``gare_reg`` config section (objective ``gare_reg``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.objectives.gare_reg`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_objective
from tvr.registry import register


@register("section", "gare_reg")
@dataclass
class GARERegConfig:
    weight: float = 1.0  # scales the sum below (its terms carry their own weights)
    beta: float = 1e-4  # weight of the video-anchored relaxed VIB (code 1e-4, paper 0.07)
    alpha: float = 2.0  # sharpness of the directional-diversity kernel
    lambda_dir: float = 0.01  # weight of the directional-diversity term
    lambda_eps: float = 0.01  # weight of the trust-region (norm-diversity) term
    lambda_low: float = 0.5  # trust-region floor of L_eps
    trust_region: str = "clamp"  # clamp (paper: max(L_eps, -lambda_low)) | hard_cut (code)


GARE_REG = declare_objective("gare_reg", "tvr.objectives.gare_reg", section="gare_reg", owner_head="gare", order=40)
