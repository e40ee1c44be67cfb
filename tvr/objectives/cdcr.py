"""DRL's Channel DeCorrelation Regularisation, variant ``cdcr 3`` (methods.md §3.2).

For every matched pair, each valid word is paired with its best frame and each valid frame with
its best word (argmax over valid partners). The four token sets are standardised per channel,
and the token-weighted cross-correlation ``C = (C1 + C2) / 2`` is pushed towards the identity
in the Barlow-Twins form ``α1 Σ_c (C_cc - 1)² + α2 Σ_{c≠d} C_cd²``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.objectives.base import Objective
from tvr.registry import register

EPS = 1e-8  # added to the per-channel variance before the square root


def standardize(x: Tensor, eps: float = EPS) -> Tensor:
    """Per-channel ``(x - mean) / sqrt(var + eps)`` over rows (unbiased var for > 1 row).

    Shapes:
        x: ``[n, D]`` -> ``[n, D]``
    """
    var = x.var(dim=0, correction=1 if x.shape[0] > 1 else 0)
    return (x - x.mean(dim=0)) / torch.sqrt(var + eps)


def cdcr_correlation(text: TokenFeatures, video: TokenFeatures, eps: float = EPS) -> Tensor:
    """Weighted cross-correlation ``C = (C1 + C2) / 2`` of ``cdcr 3`` on the matched pairs.

    Args:
        text: embedded text features with token weights (pair a = row a).
        video: embedded video features with token weights.
        eps: variance guard of the standardisation.

    Shapes:
        text: tokens ``[B, L, D]``, weights ``[B, L]``; video: tokens ``[B, T, D]``,
        weights ``[B, T]`` -> ``[D, D]``
    """
    for side, feats in (("text", text), ("video", video)):
        if feats.weights is None:
            raise ValueError(
                f"cdcr needs per-token weights on the {side} features, but the head attaches "
                "none; use a head that provides them (head.name=wti) or remove cdcr from objectives"
            )
    if len(text) != len(video):
        raise ValueError(f"cdcr needs matched pairs: {len(text)} texts vs {len(video)} videos")
    b = len(text)
    words = F.normalize(text.tokens, dim=-1)  # [B, L, D]
    frames = F.normalize(video.tokens, dim=-1)  # [B, T, D]
    mt, mv = text.mask.bool(), video.mask.bool()
    with torch.no_grad():
        sims = torch.einsum("bld,btd->blt", words, frames)  # [B, L, T]
        best_frame = sims.masked_fill(~mv[:, None, :], float("-inf")).argmax(dim=-1)  # [B, L]
        best_word = sims.masked_fill(~mt[:, :, None], float("-inf")).argmax(dim=-2)  # [B, T]
    rows = torch.arange(b, device=words.device)[:, None]
    word_partner = frames[rows, best_frame]  # [B, L, D]
    frame_partner = words[rows, best_word]  # [B, T, D]

    z, z_p, w_t = standardize(words[mt], eps), standardize(word_partner[mt], eps), text.weights[mt]
    x, x_p, w_v = (
        standardize(frames[mv], eps),
        standardize(frame_partner[mv], eps),
        video.weights[mv],
    )
    c1 = (z * w_t[:, None]).T @ z_p / b  # [D, D]
    c2 = (x * w_v[:, None]).T @ x_p / b  # [D, D]
    return 0.5 * (c1 + c2)


def barlow_penalty(c: Tensor) -> tuple[Tensor, Tensor]:
    """``(Σ_c (C_cc - 1)², Σ_{c≠d} C_cd²)`` of a square correlation matrix.

    Shapes:
        c: ``[D, D]`` -> two scalars (unweighted)
    """
    diag = torch.diagonal(c)
    on = (diag - 1.0).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on, off


@register("objective", "cdcr")
class CDCR(Objective):
    """``L = weight * (α1 Σ_c (C_cc - 1)² + α2 Σ_{c≠d} C_cd²)``.

    Args:
        cfg: experiment config (``cdcr.weight``, ``cdcr.alpha_diag``, ``cdcr.alpha_offdiag``).
        width: feature width (unused).

    Shapes:
        outputs["text"]: TokenFeatures ``[B, L, D]`` with weights ``[B, L]``;
        outputs["video"]: TokenFeatures ``[B, T, D]`` with weights ``[B, T]``
    """

    training_only = True
    section = "cdcr"
    order = 10
    needs_head = "wti"  # token weights

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        self.weight = cfg.cdcr.weight
        self.alpha_diag = cfg.cdcr.alpha_diag
        self.alpha_offdiag = cfg.cdcr.alpha_offdiag

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        c = cdcr_correlation(outputs["text"], outputs["video"])
        on, off = barlow_penalty(c)
        value = self.alpha_diag * on + self.alpha_offdiag * off
        return {
            "cdcr_loss": self.weight * value,
            "cdcr_value": value.detach(),
            "cdcr_diag": on.detach(),
            "cdcr_offdiag": off.detach(),
        }
