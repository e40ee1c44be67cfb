"""DMAE head: dual-modal attention-enhanced similarity (methods.md §6.1), ported onto CLIP.

Inputs follow the code: the sentence ``s`` and words ``W`` are L2-normalised, frames are
normalised *before* seqTransf and not after it (``V = seqTransf(F̂)``), so the "cosines" below
are dot products. Token interaction as in DRL's WTI, with masked entries 0::

    A[i, f]  = x_i · V_f                      x = the sentence (one token) or the words
    t2v      = Σ_i ω^t_i (max_f A[i, f] + nfc_i)
    v2t      = Σ_f ω^v_f  max_i A[i, f]
    s        = (t2v + v2t) / 2

**Visual attention enhancement** (``dmae.nfc``): with ``f* = argmax_f A[i, f]``, ``C`` the
frame-frame dot products with a zero diagonal and ``f** = argmax_f C[f*, f]``,
``nfc_i = 0.5 · C[f*, f**] · A[i, f**]``.

**Textual attention enhancement** (``dmae.interaction = att_wti | att_ti``, default att_wti):
the final score averages the sentence-frame score with the same score computed over the words.
``wti`` variants weigh tokens with DRL-style softmax MLP weights (frames always; words with
``att_wti``; the single sentence token has weight 1); ``ti`` variants use plain means.

Padding: as in the code, padded entries of ``A`` and ``C`` are 0 and take part in the maxima;
``dmae.masked_max=true`` leaves them out, so scores do not depend on padding at all.

The TPM-CL objective re-runs ``temporal`` on masked frames: the embedded video carries the
seqTransf inputs in :class:`DMAEVideoFeatures` ``.frames_in``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead
from tvr.models.heads.meanp import check_nonempty, meanp_pool
from tvr.models.heads.wti import masked_softmax_weights, token_weight_mlp, uniform_weights
from tvr.models.heads.xclip import block_side, score_in_blocks
from tvr.models.temporal import TemporalTransformer
from tvr.registry import register

INTERACTIONS = ("wti", "ti", "att_wti", "att_ti")


@dataclass
class DMAEVideoFeatures(TokenFeatures):
    """Embedded DMAE video features, plus the seqTransf inputs TPM-CL needs.

    Shapes:
        frames_in: ``[B, T, D]`` normalised CLIP frames fed to seqTransf (None once
        concatenated by :meth:`TokenFeatures.cat`, which scoring does not need).
    """

    frames_in: Tensor | None = None


@dataclass
class NearestFrames:
    """Per-frame nearest other frame of each video (the visual enhancement's lookup).

    Shapes:
        index: ``[..., T]`` f** for each f; value: ``[..., T]`` C[f, f**]; valid: ``[..., T]``
        False where the frame has no valid partner (its term is then 0).
    """

    index: Tensor
    value: Tensor
    valid: Tensor


def nearest_frames(frames: Tensor, mask: Tensor, masked: bool) -> NearestFrames:
    """``f** = argmax_{f' != f} C[f, f']`` with ``C = V Vᵀ`` per video.

    Args:
        frames: ``[..., T, D]`` frame features.
        mask: ``[..., T]`` 1 on real frames.
        masked: False = the code (invalid entries and the diagonal are 0 and can win the argmax);
            True = they are excluded.
    """
    sims = frames @ frames.transpose(-1, -2)  # [..., T, T]
    m = mask.bool()
    t = sims.shape[-1]
    eye = torch.eye(t, dtype=torch.bool, device=sims.device)
    ok = m[..., :, None] & m[..., None, :] & ~eye
    if masked:
        best = sims.masked_fill(~ok, float("-inf")).max(dim=-1)
        valid = torch.isfinite(best.values)
        return NearestFrames(best.indices, torch.where(valid, best.values, 0.0), valid)
    best = torch.where(ok, sims, 0.0).max(dim=-1)
    return NearestFrames(best.indices, best.values, torch.ones_like(best.values, dtype=torch.bool))


def interaction_score(
    sims: Tensor,
    text_valid: Tensor,
    video_valid: Tensor,
    text_weights: Tensor,
    video_weights: Tensor,
    nearest: NearestFrames | None,
    masked_max: bool,
    nfc_weight: float = 0.5,
) -> Tensor:
    """Weighted token interaction with the optional visual enhancement.

    Args:
        sims: ``[A, B, N, T]`` token-frame dot products.
        text_valid: ``[A, B', N]`` bool, video_valid: ``[A', B, T]`` bool (B', A' are 1 or
            the full size).
        text_weights: ``[A, B', N]``, video_weights: ``[A', B, T]`` (0 on padding).
        nearest: per-video :class:`NearestFrames` with fields ``[A', B, T]``, or None.
        masked_max: leave padding out of the maxima (True) or fill it with 0 (False).
        nfc_weight: weight of the nearest-frame term.

    Shapes:
        -> ``[A, B]``
    """
    a, b, n, t = sims.shape
    tv = text_valid.expand(a, b, n)
    vv = video_valid.expand(a, b, t)
    valid = tv[..., :, None] & vv[..., None, :]  # [A, B, N, T]
    if masked_max:
        filled = sims.masked_fill(~valid, float("-inf"))
    else:
        filled = torch.where(valid, sims, 0.0)
    best, f_star = filled.max(dim=-1)  # [A, B, N]
    if nearest is not None:
        def pick(x: Tensor) -> Tensor:  # x [A', B, T] -> x[..., f*] as [A, B, N]
            return x.expand(a, b, t).gather(-1, f_star)

        f2 = pick(nearest.index)
        ok = pick(nearest.valid)
        if masked_max:
            ok = ok & tv
        term = pick(nearest.value) * torch.where(ok, filled.gather(-1, f2[..., None])[..., 0], 0.0)
        best = best + nfc_weight * torch.where(ok, term, 0.0)
    best = torch.where(tv, best, 0.0)
    t2v = (best * text_weights.expand(a, b, n)).sum(-1)  # [A, B]
    best_word = torch.where(vv, filled.max(dim=-2).values, 0.0)  # [A, B, T]
    v2t = (best_word * video_weights.expand(a, b, t)).sum(-1)
    return 0.5 * (t2v + v2t)


@register("head", "dmae")
class DMAEHead(SimilarityHead):
    """DMAE: sentence-frame (and word-frame) interaction with visual enhancement.

    Args:
        cfg: experiment config; ``dmae`` (interaction, weight-MLP depth, nfc, masking),
            ``seqtransf`` (temporal module).
        width: feature width D.

    Shapes:
        embed_text: tokens ``[Bt, L, D]`` (normalised words), pooled ``[Bt, D]`` (normalised
            sentence), weights ``[Bt, L]`` (word weights)
        embed_video: :class:`DMAEVideoFeatures`: tokens ``[Bv, T, D]`` (seqTransf of the
            normalised frames: the interaction's frames and DRGI's video nodes), weights
            ``[Bv, T]``, pooled ``[Bv, D]`` (meanP; not used by ``score``), frames_in
            ``[Bv, T, D]``
        score: ``[Nt, Nv]``; pair_sentence_score: ``[K]``
    """

    section = "dmae"

    factorized = False

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        d = cfg.dmae
        if d.interaction not in INTERACTIONS:
            raise ValueError(
                f"dmae.interaction={d.interaction!r}: expected one of {', '.join(INTERACTIONS)}"
            )
        if d.wti_arch not in (1, 2, 3):
            raise ValueError(f"dmae.wti_arch={d.wti_arch}: expected 1, 2 or 3 (MLP depth)")
        self.width = width
        self.interaction = d.interaction
        self.use_words = d.interaction.startswith("att_")
        self.weighted = d.interaction.endswith("wti")
        self.nfc = d.nfc
        self.nfc_weight = d.nfc_weight
        self.masked_max = d.masked_max
        self.normalize_frames = d.normalize_frames
        self.temporal = TemporalTransformer.from_config(cfg, width)
        self.video_weight_fc = token_weight_mlp(width, d.wti_arch) if self.weighted else None
        self.text_weight_fc = (
            token_weight_mlp(width, d.wti_arch) if self.weighted and self.use_words else None
        )
        self.block_size = block_side(cfg.data.max_words * cfg.data.num_frames)

    def init_from_text_layers(
        self, layers: Sequence[nn.Module], position_embedding: Tensor | nn.Embedding
    ) -> int:
        """Initialise the temporal module from CLIP text layers; returns the blocks copied."""
        return self.temporal.init_from_text_layers(layers, position_embedding)

    # ------------------------------------------------------------------ embedding
    def frame_weights(self, frames: Tensor, mask: Tensor) -> Tensor:
        """ω^v: softmax MLP weights over real frames (``wti``) or their plain mean (``ti``).

        Shapes:
            frames: ``[B, T, D]``, mask: ``[B, T]`` -> ``[B, T]``
        """
        if self.video_weight_fc is None:
            return uniform_weights(mask, frames.dtype)
        return masked_softmax_weights(self.video_weight_fc(frames).squeeze(-1), mask)

    def encode_frames(self, frames_in: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """seqTransf over normalised frames (re-normalised only with ``dmae.normalize_frames``)
        and their weights.

        Shapes:
            frames_in: ``[B, T, D]``, mask: ``[B, T]`` -> (``[B, T, D]``, ``[B, T]``)
        """
        frames = self.temporal(frames_in, mask)
        if self.normalize_frames:
            frames = F.normalize(frames, dim=-1)
        return frames, self.frame_weights(frames, mask)

    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        check_nonempty(text.mask, "DMAE text features")
        words = F.normalize(text.tokens, dim=-1)
        if self.text_weight_fc is not None:
            weights = masked_softmax_weights(self.text_weight_fc(words).squeeze(-1), text.mask)
        else:
            weights = uniform_weights(text.mask, words.dtype)
        return TokenFeatures(
            tokens=words, mask=text.mask, pooled=F.normalize(text.pooled, dim=-1), weights=weights
        )

    def embed_video(self, video: TokenFeatures) -> DMAEVideoFeatures:
        check_nonempty(video.mask, "DMAE video features")
        frames_in = F.normalize(video.tokens, dim=-1)
        frames, weights = self.encode_frames(frames_in, video.mask)
        return DMAEVideoFeatures(
            tokens=frames,
            mask=video.mask,
            pooled=meanp_pool(frames, video.mask),
            weights=weights,
            frames_in=frames_in,
        )

    # ------------------------------------------------------------------ scoring
    @staticmethod
    def _require_weights(feats: TokenFeatures, side: str) -> Tensor:
        if feats.weights is None:
            raise ValueError(
                f"DMAE score: {side} features carry no token weights; pass them through "
                f"head.embed_{side}() first"
            )
        return feats.weights

    def _nearest(self, frames: Tensor, mask: Tensor) -> NearestFrames | None:
        return nearest_frames(frames, mask, self.masked_max) if self.nfc else None

    def _score_block(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        wt = self._require_weights(text, "text")  # [a, L]
        wv = self._require_weights(video, "video")[None]  # [1, b, T]
        frames = video.tokens  # [b, T, D]
        vmask = video.mask.bool()[None]  # [1, b, T]
        near = self._nearest(frames, video.mask)
        if near is not None:
            near = NearestFrames(near.index[None], near.value[None], near.valid[None])
        a = len(text)
        sent = torch.einsum("ad,btd->abt", text.pooled, frames)[:, :, None, :]  # [a, b, 1, T]
        ones = torch.ones(a, 1, 1, dtype=torch.bool, device=frames.device)
        s = interaction_score(
            sent, ones, vmask, ones.to(frames.dtype), wv, near, self.masked_max, self.nfc_weight
        )
        if not self.use_words:
            return s
        sims = torch.einsum("ald,btd->ablt", text.tokens, frames)  # [a, b, L, T]
        w = interaction_score(
            sims,
            text.mask.bool()[:, None, :],
            vmask,
            wt[:, None, :],
            wv,
            near,
            self.masked_max,
            self.nfc_weight,
        )
        return 0.5 * (s + w)

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """DMAE scores of every (text, video) pair, in ``block_size``² blocks.

        Shapes:
            text: ``[Nt, L, D]``, video: ``[Nv, T, D]`` (embedded) -> ``[Nt, Nv]``
        """
        return score_in_blocks(  # type: ignore[return-value]
            self._score_block, text, video, self.block_size, self.block_size
        )

    def pair_sentence_score(
        self, sentence: Tensor, frames: Tensor, mask: Tensor, weights: Tensor
    ) -> Tensor:
        """Sentence-frame DMAE score of aligned pairs (sentence k with video k).

        Used by TPM-CL with a single text vector (the sentence, or a re-weighted global).

        Shapes:
            sentence: ``[K, D]``, frames: ``[K, T, D]``, mask, weights: ``[K, T]`` -> ``[K]``
        """
        near = self._nearest(frames, mask)
        if near is not None:
            near = NearestFrames(near.index[:, None], near.value[:, None], near.valid[:, None])
        sims = torch.einsum("kd,ktd->kt", sentence, frames)[:, None, None, :]  # [K, 1, 1, T]
        ones = torch.ones(len(sentence), 1, 1, dtype=torch.bool, device=frames.device)
        s = interaction_score(
            sims,
            ones,
            mask.bool()[:, None, :],
            ones.to(frames.dtype),
            weights[:, None, :],
            near,
            self.masked_max,
            self.nfc_weight,
        )
        return s[:, 0]
