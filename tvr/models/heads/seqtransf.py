"""CLIP4Clip seqTransf head (methods.md §2.2): temporal transformer over frames, then meanP.

The temporal module is ``self.temporal`` (:class:`tvr.models.temporal.TemporalTransformer`), so
its state-dict keys read ``head.temporal.frame_position.weight``,
``head.temporal.blocks.N.attn.q_proj.weight`` and so on inside a ``Retriever``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead
from tvr.models.heads.meanp import check_nonempty, meanp_pool
from tvr.models.temporal import TemporalTransformer
from tvr.registry import register


@register("head", "seqtransf")
class SeqTransfHead(SimilarityHead):
    """seqTransf: ``F' = Blocks(F + P) + F`` then meanP over ``F'``.

    Args:
        cfg: experiment config; the ``seqtransf`` section sizes the temporal module.
        width: feature width D.

    Shapes:
        embed_text: tokens ``[Bt, L, D]`` (raw words), pooled ``[Bt, D]`` (normalised)
        embed_video: tokens ``[Bv, T, D]`` = ``F'`` (DRGI's video nodes), pooled ``[Bv, D]``
        score: ``[Nt, Nv]`` = ``text.pooled @ video.pooled.T``
    """

    factorized = True

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        self.width = width
        self.temporal = TemporalTransformer.from_config(cfg, width)

    def init_from_text_layers(
        self, layers: Sequence[nn.Module], position_embedding: Tensor | nn.Embedding
    ) -> int:
        """Copy CLIP text layers into the temporal module; see
        :meth:`TemporalTransformer.init_from_text_layers`. Returns the blocks copied."""
        return self.temporal.init_from_text_layers(layers, position_embedding)

    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        return TokenFeatures(
            tokens=text.tokens, mask=text.mask, pooled=F.normalize(text.pooled, dim=-1)
        )

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        check_nonempty(video.mask, "seqTransf video features")
        frames = self.temporal(video.tokens, video.mask)  # [Bv, T, D]
        return TokenFeatures(tokens=frames, mask=video.mask, pooled=meanp_pool(frames, video.mask))

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        return text.pooled @ video.pooled.T
