"""The ``tpmcl`` config section (objective ``tpmcl``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.objectives.tpmcl`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_objective
from tvr.registry import register


@register("section", "tpmcl")
@dataclass
class TPMCLConfig:
    weight: float = 1.0  # loss weight
    threshold: float = 0.6  # tokens are masked while their cumulative weight is below this
    margin: float = 0.6  # margin between full and partial positive scores
    video_global: bool = False  # add the code's 4th triplet (t, v_g) vs (t, v'_g)
    normalize_partial: bool = False  # True: L2-normalise t'_g like t_g (code: unnormalised)


TPMCL = declare_objective("tpmcl", "tvr.objectives.tpmcl", section="tpmcl", order=20)
