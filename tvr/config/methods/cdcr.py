"""The ``cdcr`` config section (objective ``cdcr``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.objectives.cdcr`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_objective
from tvr.registry import register


@register("section", "cdcr")
@dataclass
class CDCRConfig:
    weight: float = 0.001  # lambda_cdcr
    alpha_diag: float = 0.11  # alpha_1: weight of (C_cc - 1)^2
    alpha_offdiag: float = 0.0  # alpha_2: weight of C_cd^2, c != d


CDCR = declare_objective("cdcr", "tvr.objectives.cdcr", section="cdcr", order=10)
