"""Training objectives. Importing this package registers every built-in objective.

``build_objectives(cfg, width)`` returns the ``nn.ModuleDict`` a ``Retriever`` holds: the
objectives :func:`tvr.objectives.selection.selected_objectives` picks from the declarations on
each objective class (today: InfoNCE, or NegNCE when ``negnce.enable``; CDCR when
``cdcr.enable``; TPM-CL when ``tpmcl.enable``; SDR with the TC-MGC head when ``tcmgc.sdr``; the
GARE regularisers with the GARE head when ``gare.regularize``; DRGI when ``drgi.enable``).
"""

from __future__ import annotations

from torch import nn

from tvr.config import ExperimentConfig, to_dict
from tvr.objectives import (  # noqa: F401  (registration)
    cdcr,
    drgi,
    gare_reg,
    infonce,
    negnce,
    sdr,
    tpmcl,
)
from tvr.objectives.base import Objective
from tvr.objectives.selection import selected_objectives
from tvr.registry import get


def build_objectives(cfg: ExperimentConfig, width: int) -> nn.ModuleDict:
    """Build the enabled objectives, keyed by registry name, for features of width ``width``."""
    names = selected_objectives(to_dict(cfg))
    return nn.ModuleDict({name: get("objective", name)(cfg, width) for name in names})


__all__ = ["Objective", "build_objectives", "selected_objectives"]
