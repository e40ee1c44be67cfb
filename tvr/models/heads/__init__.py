"""Similarity heads. Importing this package registers every built-in head.

``build_head(cfg, width)`` constructs ``registry.get("head", cfg.model.head)(cfg, width)``.
"""

from __future__ import annotations

from tvr.config import ExperimentConfig
from tvr.models.heads import (  # noqa: F401  (registration)
    dmae,
    gare,
    meanp,
    seqtransf,
    tcmgc,
    wti,
    xclip,
)
from tvr.models.heads.base import SimilarityHead
from tvr.registry import get


def build_head(cfg: ExperimentConfig, width: int) -> SimilarityHead:
    """Build the head named by ``cfg.model.head`` for features of width ``width``.

    Raises:
        RegistryError: when ``model.head`` names no registered head (the message lists them).
    """
    return get("head", cfg.model.head)(cfg, width)


__all__ = ["SimilarityHead", "build_head"]
