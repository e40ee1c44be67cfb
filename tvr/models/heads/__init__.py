"""Similarity heads. Importing this package imports each of its modules, which registers every
built-in head.

``build_head(cfg, width)`` constructs ``registry.get("head", cfg.head.name)(cfg, width)``.
"""

from __future__ import annotations

import importlib
import pkgutil

from tvr.config import ExperimentConfig
from tvr.models.heads.base import SimilarityHead
from tvr.registry import get

# Every module of this package registers its head (no list to keep up to date).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def build_head(cfg: ExperimentConfig, width: int) -> SimilarityHead:
    """Build the head named by ``cfg.head.name`` for features of width ``width``.

    Raises:
        RegistryError: when ``head.name`` names no registered head (the message lists them).
    """
    return get("head", cfg.head.name)(cfg, width)


__all__ = ["SimilarityHead", "build_head"]
