"""Training objectives. Importing this package registers every built-in objective.

``build_objectives(cfg, width)`` returns the ``nn.ModuleDict`` a ``Retriever`` holds: InfoNCE
(or NegNCE when ``negnce.enable``), CDCR when ``cdcr.enable``, TPM-CL when ``tpmcl.enable``,
SDR with the TC-MGC head when ``tcmgc.sdr``, the GARE regularisers with the GARE head when
``gare.regularize``, DRGI when ``drgi.enable``.
"""

from __future__ import annotations

from torch import nn

from tvr.config import ExperimentConfig
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
from tvr.registry import get


def build_objectives(cfg: ExperimentConfig, width: int) -> nn.ModuleDict:
    """Build the enabled objectives, keyed by registry name, for features of width ``width``."""
    names = ["negnce" if cfg.negnce.enable else "infonce"]  # NegNCE replaces InfoNCE
    if cfg.cdcr.enable:
        names.append("cdcr")
    if cfg.tpmcl.enable:
        names.append("tpmcl")
    if cfg.tcmgc.sdr and cfg.model.head == "tcmgc":
        names.append("sdr")
    if cfg.gare.regularize and cfg.model.head == "gare":
        names.append("gare_reg")
    if cfg.drgi.enable:
        names.append("drgi")
    return nn.ModuleDict({name: get("objective", name)(cfg, width) for name in names})


__all__ = ["Objective", "build_objectives"]
