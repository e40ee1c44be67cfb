"""TC-MGC's Similarity Decorrelation Regularisation (methods.md §5.3).

``L_sdr = mean_i Var_g(λ ℓ_ii)``: the unbiased variance over the four grains of each matched
pair's logit-scaled scores, averaged over the matched (diagonal) pairs. The grains come from
:meth:`tvr.models.heads.tcmgc.TCMGCHead.score_outputs` as ``outputs["tcmgc_grains"]``; they
are cosine-scale, and the code's grains carry the logit scale λ, so the variance is taken of
``λ ℓ`` (about λ² times the cosine variance, methods.md §5 pitfalls).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from tvr.config import ExperimentConfig
from tvr.objectives.base import Objective
from tvr.registry import register


def sdr_penalty(grains: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """Mean over matched pairs of the unbiased variance of the scaled grains.

    Shapes:
        grains: ``[B, B, G]`` (texts on rows, G >= 2 grains) -> scalar
    """
    if grains.dim() != 3 or grains.shape[0] != grains.shape[1] or grains.shape[-1] < 2:
        raise ValueError(
            f"SDR needs a square [B, B, G >= 2] grain tensor of matched pairs, got "
            f"{tuple(grains.shape)}"
        )
    diag = grains.diagonal(dim1=0, dim2=1).T  # [B, G]
    return (scale * diag).var(dim=-1, correction=1).mean()


@register("objective", "sdr")
class SDR(Objective):
    """``weight · L_sdr`` (TC-MGC's objective: the head adds it when chosen by override).

    Args:
        cfg: experiment config; ``sdr.weight``.
        width: feature width (unused).

    Shapes:
        outputs["tcmgc_grains"]: ``[B, B, 4]``; outputs["logit_scale"]: scalar
    """

    training_only = True
    section = "sdr"
    owner_head = "tcmgc"
    order = 30
    needs_head = "tcmgc"

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        self.weight = cfg.sdr.weight

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        grains = outputs.get("tcmgc_grains")
        if grains is None:
            raise KeyError(
                "the sdr objective needs outputs['tcmgc_grains'], which the TC-MGC head's "
                "score_outputs() returns: use head.name=tcmgc (or remove sdr from objectives) and "
                "score training batches with head.score_outputs"
            )
        penalty = sdr_penalty(grains, outputs["logit_scale"])
        return {"sdr_loss": self.weight * penalty, "sdr_variance": penalty.detach()}
