"""The ``wti`` config section (head ``wti``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.models.heads.wti`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_head
from tvr.registry import register


@register("section", "wti")
@dataclass
class WTIConfig:
    arch: int = 2  # token-weight MLP depth: 1 linear, 2 or 3 layer MLP (DRL wti_arch)
    weighted: bool = True  # False = DRL's "TI" ablation (plain means)
    temporal: bool = True  # run seqTransf over frames before token interaction (DRL default)
    masked_max: bool = False  # True: padding left out of the max-sims (DRL: padded sims are 0)


WTI = declare_head("wti", "tvr.models.heads.wti", section="wti")
