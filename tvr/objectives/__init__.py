"""Training objectives. Importing this package registers every built-in objective.

``build_objectives(cfg, width)`` returns the ``nn.ModuleDict`` a ``Retriever`` holds: InfoNCE
always, CDCR when ``cdcr.enable``, DRGI when ``drgi.enable``.
"""

from __future__ import annotations

from torch import nn

from tvr.config import ExperimentConfig
from tvr.objectives import cdcr, drgi, infonce  # noqa: F401  (registration)
from tvr.objectives.base import Objective
from tvr.registry import get


def build_objectives(cfg: ExperimentConfig, width: int) -> nn.ModuleDict:
    """Build the enabled objectives, keyed by registry name, for features of width ``width``."""
    names = ["infonce"]
    if cfg.cdcr.enable:
        names.append("cdcr")
    if cfg.drgi.enable:
        names.append("drgi")
    return nn.ModuleDict({name: get("objective", name)(cfg, width) for name in names})


__all__ = ["Objective", "build_objectives"]
