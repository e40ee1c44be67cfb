"""Training objectives. Importing this package imports each of its modules, which registers
every built-in objective.

``build_objectives(cfg, width)`` returns the ``nn.ModuleDict`` a ``Retriever`` holds: the
objectives :func:`tvr.objectives.selection.selected_objectives` picks from the declarations on
each objective class (today: InfoNCE, or NegNCE when ``negnce.enable``; CDCR when
``cdcr.enable``; TPM-CL when ``tpmcl.enable``; SDR with the TC-MGC head when ``tcmgc.sdr``; the
GARE regularisers with the GARE head when ``gare.regularize``; DRGI when ``drgi.enable``).
"""

from __future__ import annotations

import importlib
import pkgutil

from torch import nn

from tvr.config import ExperimentConfig, to_dict
from tvr.objectives.base import Objective
from tvr.objectives.selection import selected_objectives
from tvr.registry import get

# Every module of this package registers its objective (no list to keep up to date).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def build_objectives(cfg: ExperimentConfig, width: int) -> nn.ModuleDict:
    """Build the enabled objectives, keyed by registry name, for features of width ``width``."""
    names = selected_objectives(to_dict(cfg))
    return nn.ModuleDict({name: get("objective", name)(cfg, width) for name in names})


__all__ = ["Objective", "build_objectives", "selected_objectives"]
