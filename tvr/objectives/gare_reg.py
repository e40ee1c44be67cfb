"""GARE's regularisers of the pair-specific increments Δ (methods.md §7.3).

On the increments ``Δ [Bt, Bv, D]`` of every in-batch pair (texts on rows)::

    relaxed VIB (video-anchored):  μ_b = mean_a Δ_ab,  σ_b = std_a Δ_ab + 1e-6
                                   L_VIB = mean_b ½ Σ_d (σ² + μ² − 1 − ln σ²)      (summed KL)
    directional diversity:         z = Δ̂,  L_dir = mean_a log(mean_{b,c} exp(−α(1 − z_ab·z_ac)) + 1e-8)
    trust region:                  L_ε = −mean_a Var_b ‖Δ_ab‖
                                   clamp (paper, default): max(L_ε, −λ_low)
                                   hard_cut (code): L_ε, or 0 once L_ε < −λ_low
    L = β L_VIB + λ_dir L_dir + λ_ε L_ε

Both trust-region forms give no gradient below the floor; the clamp keeps the loss continuous,
the hard cut jumps to 0. Standard deviations and variances are unbiased; the standard deviation
is ``sqrt(var + 1e-12)`` so identical increments (e.g. a zero-initialised ψ) give finite
gradients.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tvr.config import ConfigError, ExperimentConfig
from tvr.objectives.base import Objective
from tvr.registry import register

SIGMA_EPS = 1e-6  # added to σ (code)
VAR_EPS = 1e-12  # inside the square root of σ (finite gradient at zero variance)
LOG_EPS = 1e-8  # inside the log of L_dir
TRUST_REGIONS = ("clamp", "hard_cut")


def _var(x: Tensor, dim: int) -> Tensor:
    return x.var(dim=dim, correction=1 if x.shape[dim] > 1 else 0)


def relaxed_vib(delta: Tensor) -> Tensor:
    """Video-anchored KL of the per-video Gaussian fit of Δ to N(0, I), summed over channels.

    Shapes:
        delta: ``[Bt, Bv, D]`` -> scalar
    """
    mu = delta.mean(dim=0)  # [Bv, D]
    sigma = torch.sqrt(_var(delta, 0) + VAR_EPS) + SIGMA_EPS
    var = sigma.square()
    return (0.5 * (var + mu.square() - 1.0 - torch.log(var)).sum(-1)).mean()


def directional_diversity(delta: Tensor, alpha: float) -> Tensor:
    """Log of the mean Gaussian-kernel similarity of each text's increment directions.

    Shapes:
        delta: ``[Bt, Bv, D]`` -> scalar
    """
    z = F.normalize(delta, dim=-1)
    gram = z @ z.transpose(-1, -2)  # [Bt, Bv, Bv], diagonal b = c included
    return torch.log(torch.exp(-alpha * (1.0 - gram)).mean(dim=(-1, -2)) + LOG_EPS).mean()


def norm_diversity(delta: Tensor) -> Tensor:
    """``L_ε = −mean_a Var_b ‖Δ_ab‖`` before the trust region.

    Shapes:
        delta: ``[Bt, Bv, D]`` -> scalar
    """
    return -_var(delta.norm(dim=-1), 1).mean()


def trust_region(l_eps: Tensor, lambda_low: float, mode: str) -> Tensor:
    """Apply the trust-region floor ``−λ_low`` to ``L_ε`` (``clamp`` or ``hard_cut``)."""
    if mode == "clamp":
        return torch.clamp(l_eps, min=-lambda_low)
    if mode == "hard_cut":
        return torch.where(l_eps < -lambda_low, l_eps * 0.0, l_eps)
    raise ConfigError(
        f"config key 'gare.trust_region': got {mode!r}, expected one of {', '.join(TRUST_REGIONS)}"
    )


@register("objective", "gare_reg")
class GARERegularizers(Objective):
    """``weight · (β L_VIB + λ_dir L_dir + λ_ε L_ε)`` on ``outputs["gare_delta"]``.

    GARE's objective (the head adds it when chosen by override); Δ comes from
    :meth:`tvr.models.heads.gare.GAREHead.score_outputs`.

    Args:
        cfg: experiment config; the ``gare_reg`` section.
        width: feature width (unused).

    Shapes:
        outputs["gare_delta"]: ``[Bt, Bv, D]``
    """

    training_only = True
    section = "gare_reg"
    owner_head = "gare"
    order = 40
    needs_head = "gare"

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        g = cfg.gare_reg
        if g.trust_region not in TRUST_REGIONS:
            raise ConfigError(
                f"config key 'objectives.gare_reg.trust_region': got {g.trust_region!r}, expected one of "
                f"{', '.join(TRUST_REGIONS)}"
            )
        self.weight = g.weight
        self.beta = g.beta
        self.alpha = g.alpha
        self.lambda_dir = g.lambda_dir
        self.lambda_eps = g.lambda_eps
        self.lambda_low = g.lambda_low
        self.mode = g.trust_region

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        delta = outputs.get("gare_delta")
        if delta is None:
            raise KeyError(
                "the gare_reg objective needs outputs['gare_delta'], which the GARE head's "
                "score_outputs() returns: use head.name=gare (or remove gare_reg from objectives) and "
                "score training batches with head.score_outputs"
            )
        if delta.dim() != 3:
            raise ValueError(
                f"outputs['gare_delta'] should be [Bt, Bv, D], got {tuple(delta.shape)}"
            )
        vib = relaxed_vib(delta)
        direction = directional_diversity(delta, self.alpha)
        raw_eps = norm_diversity(delta)
        l_eps = trust_region(raw_eps, self.lambda_low, self.mode)
        loss = self.weight * (self.beta * vib + self.lambda_dir * direction + self.lambda_eps * l_eps)
        return {
            "gare_reg_loss": loss,
            "gare_vib": vib.detach(),
            "gare_dir": direction.detach(),
            "gare_trust": l_eps.detach(),
            "gare_norm_var": (-raw_eps).detach(),
            "gare_delta_norm": delta.detach().norm(dim=-1).mean(),
        }
