"""Training objectives. Importing this package imports each of its modules, which registers
every built-in objective.

``build_objectives(cfg, width)`` returns the ``nn.ModuleDict`` a ``Retriever`` holds: one module
per entry of ``cfg.objectives``, in that (declared) order. The model card
(:func:`analysis.cards.objectives_of`) reads the same list.
"""

from __future__ import annotations

import importlib
import pkgutil

from torch import nn

from tvr.config import ExperimentConfig
from tvr.objectives.base import Objective
from tvr.registry import get

# Every module of this package registers its objective (no list to keep up to date).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def build_objectives(cfg: ExperimentConfig, width: int) -> nn.ModuleDict:
    """Build ``cfg.objectives``, keyed by registry name, for features of width ``width``."""
    return nn.ModuleDict({o.name: get("objective", o.name)(cfg, width) for o in cfg.objectives})


__all__ = ["Objective", "build_objectives"]
