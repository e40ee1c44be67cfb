"""The ``sdr`` config section (objective ``sdr``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.objectives.sdr`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_objective
from tvr.registry import register


@register("section", "sdr")
@dataclass
class SDRConfig:
    weight: float = 0.5  # weight of L_sdr (sdr_loss_weight)


SDR = declare_objective("sdr", "tvr.objectives.sdr", section="sdr", owner_head="tcmgc", order=30)
