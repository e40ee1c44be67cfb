"""The similarity-head contract shared by every method.

A head turns backbone :class:`TokenFeatures` into text-to-video similarity scores. It is split
into three steps so evaluation and live search can cache per-item work:

1. ``embed_text(text)`` / ``embed_video(video)``: per-item transforms that do not depend on the
   other modality (normalisation, seqTransf over frames, token weights). Their outputs are what
   evaluation caches and what objectives such as DRGI read as node features.
2. ``score(text, video)``: scores for every (text, video) pair of embedded features, on the
   cosine scale (no logit scale applied). ``[Nt, Nv]``.
3. ``forward(text, video) = score(embed_text(text), embed_video(video))``.

``factorized`` is True when ``score`` is a dot product of ``pooled`` vectors, so search can
precompute one vector per item; False for token-wise or cross heads, which are scored in blocks.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from tvr.models.features import TokenFeatures


class SimilarityHead(nn.Module):
    """Base class of similarity heads.

    Shapes:
        embed_text: TokenFeatures ``[Bt, L, D]`` -> TokenFeatures ``[Bt, L, D']``
        embed_video: TokenFeatures ``[Bv, T, D]`` -> TokenFeatures ``[Bv, T, D']``
        score: (``[Nt, ...]``, ``[Nv, ...]``) -> ``[Nt, Nv]``
    """

    factorized: ClassVar[bool] = False

    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        return text

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        return video

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        return self.score(self.embed_text(text), self.embed_video(video))
