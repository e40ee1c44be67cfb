"""CLIP4Clip meanP head (methods.md §2.1): parameter-free mean pooling of frames.

``v = normalize(sum_f m_f * normalize(F_f) / max(sum_f m_f, 1))``, ``s_ab = t̂_a · v_b``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead
from tvr.registry import register


def check_nonempty(mask: Tensor, what: str) -> None:
    """Raise when an item has no valid token (its pooled vector would be undefined).

    Shapes:
        mask: ``[B, N]``
    """
    empty = (mask.sum(dim=1) == 0).nonzero().flatten()
    if empty.numel():
        rows = empty[:10].tolist()
        raise ValueError(
            f"{what}: items {rows} have an all-zero mask (no valid token); every item needs at "
            "least one valid frame/word (a video that failed to decode must not reach the head)"
        )


def meanp_pool(tokens: Tensor, mask: Tensor) -> Tensor:
    """Normalise tokens, take their masked mean, normalise again.

    Shapes:
        tokens: ``[B, N, D]``, mask: ``[B, N]`` -> ``[B, D]``
    """
    valid = mask.bool().unsqueeze(-1)  # [B, N, 1]
    # where(), not a product: non-finite garbage in padded rows cannot leak into the sum.
    summed = torch.where(valid, F.normalize(tokens, dim=-1), 0.0).sum(dim=1)  # [B, D]
    mean = summed / valid.sum(dim=1).clamp_min(1).to(tokens.dtype)
    return F.normalize(mean, dim=-1)


@register("head", "meanp")
class MeanPHead(SimilarityHead):
    """meanP: cosine of the EOT sentence vector and the normalised mean of normalised frames.

    Args:
        cfg: experiment config (unused; meanP has no options).
        width: feature width D.

    Shapes:
        embed_text: tokens ``[Bt, L, D]`` (raw words), pooled ``[Bt, D]`` (normalised)
        embed_video: tokens ``[Bv, T, D]`` (raw frames, DRGI's video nodes), pooled ``[Bv, D]``
        score: ``[Nt, Nv]`` = ``text.pooled @ video.pooled.T``
    """

    factorized = True

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        self.width = width

    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        return TokenFeatures(
            tokens=text.tokens, mask=text.mask, pooled=F.normalize(text.pooled, dim=-1)
        )

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        check_nonempty(video.mask, "meanP video features")
        return TokenFeatures(
            tokens=video.tokens, mask=video.mask, pooled=meanp_pool(video.tokens, video.mask)
        )

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        return text.pooled @ video.pooled.T
