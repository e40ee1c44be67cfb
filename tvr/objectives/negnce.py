"""NegNCE: InfoNCE with an extra push on hard negatives (methods.md §6.2).

With a fixed scale (100) and margin m (0)::

    P        = clamp(softmax_j(100 · S), 1e-6, 1 − 1e-6)
    H        = {(i, j), i ≠ j : ReLU(m + S_ij − S_ii) + ReLU(m + S_ij − S_jj) > 0}
    L_Neg(S) = mean_i −log P_ii + 0.5 · mean_{(i,j)∈H} −log(1 − P_ij)     (second term 0 if H = ∅)
    L        = ½ [L_Neg(S) + L_Neg(Sᵀ)]

A negative is hard when it beats the positive of its row's text **or** of its column's video.
Pairs that show the same video are never hard negatives (``negnce.exclude_same_video``, on by
default: with expanded captions they are false negatives, methods.md §10.4). NegNCE already
contains the InfoNCE term, so it replaces InfoNCE when enabled.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tvr.config import ExperimentConfig
from tvr.objectives.base import Objective
from tvr.objectives.infonce import same_video_mask
from tvr.registry import register

PROB_EPS = 1e-6  # P is clamped to [eps, 1 - eps]


def hard_negative_set(sim: Tensor, margin: float = 0.0, exclude: Tensor | None = None) -> Tensor:
    """NegNCE's hard set H of a square score matrix.

    Args:
        sim: ``[B, B]`` scores of aligned pairs (texts on rows).
        margin: m of the condition.
        exclude: optional ``[B, B]`` bool of pairs that are never hard (same video).

    Shapes:
        -> ``[B, B]`` bool, True on (i, j) with i != j and
        ``ReLU(m + S_ij − S_ii) + ReLU(m + S_ij − S_jj) > 0``.
    """
    diag = sim.diagonal()
    hard = (torch.relu(margin + sim - diag[:, None]) + torch.relu(margin + sim - diag[None, :])) > 0
    hard &= ~torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    if exclude is not None:
        hard &= ~exclude
    return hard


def negnce_direction(
    sim: Tensor,
    scale: float,
    margin: float,
    hard_weight: float,
    exclude_hard: Tensor | None = None,
    exclude_softmax: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``L_Neg`` of one direction (rows are the anchors).

    Returns:
        (loss, positive term, hard term, number of hard pairs), all scalars.

    Shapes:
        sim: ``[B, B]``; exclude_hard, exclude_softmax: ``[B, B]`` bool
    """
    logits = scale * sim
    if exclude_softmax is not None:
        logits = logits.masked_fill(exclude_softmax, float("-inf"))
    prob = torch.softmax(logits, dim=1).clamp(PROB_EPS, 1.0 - PROB_EPS)
    pos = -torch.log(prob.diagonal()).mean()
    hard = hard_negative_set(sim.detach(), margin, exclude_hard)
    count = hard.sum()
    # mean over H without a host sync; 0 (still in the graph) when H is empty
    neg = torch.where(hard, -torch.log1p(-prob), 0.0).sum() / count.clamp_min(1).to(prob.dtype)
    return pos + hard_weight * neg, pos, neg, count


@register("objective", "negnce")
class NegNCE(Objective):
    """``weight · ½ [L_Neg(S) + L_Neg(Sᵀ)]`` on the cosine-scale similarity.

    Args:
        cfg: experiment config; the ``negnce`` section.
        width: feature width (unused).

    Shapes:
        outputs["sim"]: ``[B, B]``; outputs["video_index"]: ``[B]`` (for same-video exclusion)
    """

    training_only = True
    section = "negnce"
    replaces = "infonce"
    order = 0

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        n = cfg.negnce
        if n.scale <= 0:
            raise ValueError(f"negnce.scale={n.scale}: expected > 0")
        self.weight = n.weight
        self.scale = n.scale
        self.margin = n.margin
        self.hard_weight = n.hard_weight
        self.exclude_same_video = n.exclude_same_video
        self.mask_same_video = n.mask_same_video

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        sim = outputs["sim"]
        if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(
                f"NegNCE needs a square [B, B] score matrix of matched pairs, got "
                f"{tuple(sim.shape)}"
            )
        same = None
        if self.exclude_same_video or self.mask_same_video:
            if outputs.get("video_index") is None:
                raise KeyError(
                    "negnce.exclude_same_video / negnce.mask_same_video need "
                    "outputs['video_index'] (the batch's video_index key)"
                )
            same = same_video_mask(outputs["video_index"].to(sim.device))
        ex_hard = same if self.exclude_same_video else None
        ex_soft = same if self.mask_same_video else None
        args = (self.scale, self.margin, self.hard_weight)
        l_t2v, pos_t, neg_t, n_t = negnce_direction(sim, *args, ex_hard, ex_soft)
        l_v2t, pos_v, neg_v, n_v = negnce_direction(
            sim.T,
            *args,
            None if ex_hard is None else ex_hard.T,
            None if ex_soft is None else ex_soft.T,
        )
        loss = 0.5 * (l_t2v + l_v2t)
        return {
            "negnce_loss": self.weight * loss,
            "negnce_pos": (0.5 * (pos_t + pos_v)).detach(),
            "negnce_hard": (0.5 * (neg_t + neg_v)).detach(),
            "negnce_hard_pairs": (0.5 * (n_t + n_v)).float().detach(),
        }
