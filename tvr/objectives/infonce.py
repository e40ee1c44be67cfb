"""Symmetric InfoNCE ("CrossEn") on ``logit_scale * sim`` (methods.md §0, §1.3)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tvr.config import ExperimentConfig
from tvr.objectives.base import Objective
from tvr.registry import register


def same_video_mask(video_index: Tensor) -> Tensor:
    """Off-diagonal pairs that show the same video (false negatives under expanded captions).

    Shapes:
        video_index: ``[B]`` -> ``[B, B]`` bool, True where ``i != j`` and the videos match.
    """
    same = video_index[:, None] == video_index[None, :]
    return same & ~torch.eye(len(video_index), dtype=torch.bool, device=video_index.device)


def symmetric_infonce(logits: Tensor, exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Row- and column-wise cross-entropy with the diagonal as target.

    Args:
        logits: square ``[B, B]`` scaled scores, texts on rows.
        exclude: optional ``[B, B]`` bool of off-diagonal entries removed from both softmaxes.

    Returns:
        (t2v, v2t) mean cross-entropies.

    Shapes:
        logits: ``[B, B]`` -> two scalars
    """
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(
            f"InfoNCE needs a square [B, B] score matrix of matched pairs, got "
            f"{tuple(logits.shape)}"
        )
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, target), F.cross_entropy(logits.T, target)


@register("objective", "infonce")
class InfoNCE(Objective):
    """``L = weight * ½ [CE_row(λ S) + CE_row((λ S)^T)]``.

    Args:
        cfg: experiment config (``infonce.weight``, ``infonce.mask_same_video``).
        width: feature width (unused).

    Shapes:
        outputs["sim"]: ``[B, B]``, outputs["logit_scale"]: scalar,
        outputs["video_index"]: ``[B]`` (needed with ``mask_same_video``)
    """

    training_only = True
    section = "infonce"
    switch = None  # always, unless replaced (negnce)
    order = 0

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        self.weight = cfg.infonce.weight
        self.mask_same_video = cfg.infonce.mask_same_video

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = outputs["logit_scale"] * outputs["sim"]  # [B, B]
        exclude = None
        if self.mask_same_video:
            if outputs.get("video_index") is None:
                raise KeyError(
                    "infonce.mask_same_video=true needs outputs['video_index'] (the batch's "
                    "video_index key)"
                )
            exclude = same_video_mask(outputs["video_index"].to(logits.device))
        t2v, v2t = symmetric_infonce(logits, exclude)
        loss = 0.5 * (t2v + v2t)
        return {
            "infonce_loss": self.weight * loss,
            "infonce_t2v": t2v.detach(),
            "infonce_v2t": v2t.detach(),
        }
