"""The similarity-head contract shared by every method.

A head turns backbone :class:`TokenFeatures` into text-to-video similarity scores. It is split
into three steps so evaluation and live search can cache per-item work:

1. ``embed_text(text)`` / ``embed_video(video)``: per-item transforms that do not depend on the
   other modality (normalisation, seqTransf over frames, token weights). Their outputs are what
   evaluation caches and what objectives such as DRGI read as node features.
2. ``score(text, video)``: scores for every (text, video) pair of embedded features, on the
   cosine scale (no logit scale applied). ``[Nt, Nv]``.
3. ``forward(text, video) = score(embed_text(text), embed_video(video))``.

Optional abilities are declared as class attributes here and read from there (never probed
with ``hasattr``/``isinstance``):

- ``factorized``: ``score`` is a dot product of ``pooled`` vectors, so search can precompute one
  vector per item; False for token-wise or cross heads, which are scored in blocks.
- ``token_scores``: the head implements :meth:`SimilarityHead.token_similarity` (word-by-frame
  cosines) and :meth:`SimilarityHead.word_contributions` (each word's term of the score); the
  app's heatmaps and the export's text-to-frame weights use them.
- ``coarse``: the vectors a shortlist ranks by for a non-factorized head: ``"pooled"`` (the
  pooled vectors) or ``"token_mean"`` (the token-weighted means of the embedded tokens, a lower
  bound of the head's score; needs ``needs_token_weights``).
- ``needs_token_weights``: ``score`` reads ``TokenFeatures.weights``, so features must come
  from ``embed_text``/``embed_video``.
- ``section``: the config section holding the head's settings (None: it has none); the
  config's ``head`` is ``{name, ...the section's fields}``.
- ``with_objectives``: objectives the head brings when chosen by override (``head.name=``),
  e.g. TC-MGC's SDR; a config file lists its objectives itself.
- :meth:`SimilarityHead.score_outputs`: the scores plus extras that the head's objectives read
  (GARE's increments, TC-MGC's grains); by default just ``{"sim": score(...)}``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from tvr.models.features import TokenFeatures


class SimilarityHead(nn.Module):
    """Base class of similarity heads.

    Shapes:
        embed_text: TokenFeatures ``[Bt, L, D]`` -> TokenFeatures ``[Bt, L, D']``
        embed_video: TokenFeatures ``[Bv, T, D]`` -> TokenFeatures ``[Bv, T, D']``
        score: (``[Nt, ...]``, ``[Nv, ...]``) -> ``[Nt, Nv]``
    """

    factorized: ClassVar[bool] = False  # score = pooled_text @ pooled_video.T
    token_scores: ClassVar[bool] = False  # token_similarity and word_contributions exist
    coarse: ClassVar[Literal["pooled", "token_mean"]] = "pooled"  # shortlist vectors
    needs_token_weights: ClassVar[bool] = False  # score reads TokenFeatures.weights
    section: ClassVar[str | None] = None  # config section of its settings
    with_objectives: ClassVar[tuple[str, ...]] = ()  # added with it by head.name=<it>

    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        return text

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        return video

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def score_outputs(self, text: TokenFeatures, video: TokenFeatures) -> dict[str, Any]:
        """``{"sim": [Nt, Nv], ...}``: the scores plus what the head's own objectives read.

        Training calls this instead of :meth:`score`; heads with extras override it.
        """
        return {"sim": self.score(text, video)}

    def token_similarity(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """Word-by-frame cosines of K aligned pairs ``[K, L, T]`` (heads with ``token_scores``)."""
        raise NotImplementedError(f"{type(self).__name__} declares no token-level scores")

    def word_contributions(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """Each word's term of the score of K aligned pairs ``[K, L]`` (``token_scores``)."""
        raise NotImplementedError(f"{type(self).__name__} declares no token-level scores")

    def init_from_text_layers(self, layers: Any, position_embedding: Any) -> int:
        """Initialise a temporal module from the text tower's first blocks; returns the number
        of blocks copied (0: the head has no temporal module)."""
        return 0

    def forward(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        return self.score(self.embed_text(text), self.embed_video(video))
