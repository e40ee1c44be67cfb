"""TPM-CL: triplet partial margin learning with adaptive token masking (methods.md §6.3).

For every matched (text, video) pair of the anchor rows, with the DMAE head's sentence-frame
score ``s(·, ·)``:

1. **Cross-modal token weights.** Word weights given the video: a Linear over the token axis
   maps the ``T`` normalised frames onto ``L`` positions (one map for all channels), the result
   is concatenated with the words, and ``LN → Linear(2D → D/2) → GELU → Linear(D/2 → 1) →
   sigmoid`` gives a score per word, normalised to sum to 1 over real words (``w^t``). Frame
   weights given the sentence: the same with the sentence (one token) mapped onto ``T``
   positions (``w^v``).
2. **Re-weighted global:** ``t_g = normalize(Σ_i w^t_i W_i)``.
3. **Adaptive masking:** sort the weights in descending order and zero the most important
   tokens, those whose cumulative weight is still below ``tpmcl.threshold`` (0.6); the rest are
   kept. Partial positives: ``V' = seqTransf(F̂ ⊙ keep_v)`` (zeroed frames stay in the frame
   mask, as in the code) and ``t'_g = Σ_i w^t_i keep_i W_i`` (unnormalised, as in the code;
   ``tpmcl.normalize_partial=true`` normalises it).
4. **Partial margin loss** (margin 0.6)::

       L = Σ over triplets of mean ReLU(m − (s_pos − s_partial))
       (t, V) vs (t, V');   (t_g, V) vs (t_g, V');   (t_g, V) vs (t'_g, V)

   ``tpmcl.video_global=true`` adds the code's unused fourth triplet
   ``(t, v_g) vs (t, v'_g)`` with ``v_g = normalize(Σ_f w^v_f F̂_f)`` and
   ``v'_g = Σ_f w^v_f keep_f F̂_f`` (a one-frame video, whose DMAE score is the dot product).

The frame-weight predictor only chooses which frames are masked, a discrete choice, so under the
default three triplets it receives **no gradient** (exactly as in the code's ``partial_type
4``); the fourth triplet is the only path that trains it.

The predictors are this objective's parameters (training only, dropped at inference). It needs
the DMAE head itself (``outputs["head"]``) to re-run seqTransf and score, and the head's
:class:`~tvr.models.heads.dmae.DMAEVideoFeatures` (``frames_in``) as ``outputs["video"]``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tvr.config import ConfigError, ExperimentConfig
from tvr.objectives.base import Objective
from tvr.registry import get, register

WEIGHT_EPS = 1e-12  # guards the normalisation of the sigmoid scores


class CrossModalTokenWeights(nn.Module):
    """Token weights of one modality conditioned on the other (a "linear X weight predictor").

    Args:
        n_context: context tokens mapped over the token axis (T frames, or 1 sentence).
        n_tokens: tokens to weigh (L words, or T frames).
        width: feature width D (D >= 2).

    Shapes:
        context: ``[K, n_context, D]``, context_mask: ``[K, n_context]`` or None,
        tokens: ``[K, n_tokens, D]``, mask: ``[K, n_tokens]`` -> ``[K, n_tokens]``
        (non-negative, 0 on padding, rows sum to 1)
    """

    def __init__(self, n_context: int, n_tokens: int, width: int) -> None:
        super().__init__()
        if width < 2:
            raise ValueError(f"TPM-CL token weights need a feature width >= 2, got {width}")
        self.n_context = n_context
        self.n_tokens = n_tokens
        self.token_map = nn.Linear(n_context, n_tokens, bias=False)
        self.norm = nn.LayerNorm(2 * width)
        self.fc1 = nn.Linear(2 * width, width // 2, bias=False)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(width // 2, 1, bias=False)

    def forward(
        self, context: Tensor, context_mask: Tensor | None, tokens: Tensor, mask: Tensor
    ) -> Tensor:
        if context.shape[1] != self.n_context or tokens.shape[1] != self.n_tokens:
            raise ValueError(
                f"TPM-CL weight predictor built for {self.n_context} context and "
                f"{self.n_tokens} tokens (data.num_frames / data.max_words), got "
                f"{context.shape[1]} and {tokens.shape[1]}"
            )
        if context_mask is not None:
            context = torch.where(context_mask.bool()[..., None], context, 0.0)
        mapped = self.token_map(context.transpose(1, 2)).transpose(1, 2)  # [K, n_tokens, D]
        x = self.norm(torch.cat([mapped, tokens], dim=-1))
        score = torch.sigmoid(self.fc2(self.act(self.fc1(x)))).squeeze(-1)  # [K, n_tokens]
        score = torch.where(mask.bool(), score, 0.0)
        return score / score.sum(-1, keepdim=True).clamp_min(WEIGHT_EPS)


def adaptive_keep(weights: Tensor, mask: Tensor, threshold: float) -> Tensor:
    """Tokens kept by TPM-CL's masking: all but the most important ones.

    Sorted by weight (descending), a token is masked while the cumulative weight up to and
    including it is below ``threshold``; padding is never kept. At least the last real token
    (cumulative weight 1) is always kept.

    Shapes:
        weights: ``[K, N]`` (rows sum to 1 over real tokens), mask: ``[K, N]`` -> ``[K, N]`` bool
    """
    w = weights.detach()
    sorted_w, order = w.sort(dim=-1, descending=True)
    drop_sorted = sorted_w.cumsum(dim=-1) < threshold
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return mask.bool() & ~drop


def margin_term(pos: Tensor, partial: Tensor, margin: float) -> Tensor:
    """``mean ReLU(m − (pos − partial))``; ``[K], [K] -> scalar``."""
    return torch.relu(margin - (pos - partial)).mean()


@register("objective", "tpmcl")
class TPMCL(Objective):
    """``weight · L_tpm`` on the anchor pairs (added when ``tpmcl`` is among the objectives).

    Args:
        cfg: experiment config; ``tpmcl`` (threshold, margin, options), ``data.max_words`` and
            ``data.num_frames`` (sizes of the token-axis maps).
        width: feature width D.

    Shapes:
        outputs["text"]: TokenFeatures ``[B, L, D]`` from the DMAE head (normalised words,
            normalised sentence)
        outputs["video"]: DMAEVideoFeatures ``[B, T, D]`` (seqTransf frames, weights,
            frames_in)
        outputs["head"]: the DMAE head; outputs["local"]: anchor rows (all by default)
    """

    training_only = True
    section = "tpmcl"
    order = 20
    needs_head = "dmae"

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        tp = cfg.tpmcl
        if not 0.0 < tp.threshold <= 1.0:
            raise ConfigError(
                f"config key 'tpmcl.threshold': got {tp.threshold}, expected a value in (0, 1]"
            )
        self.weight = tp.weight
        self.threshold = tp.threshold
        self.margin = tp.margin
        self.video_global = tp.video_global
        self.normalize_partial = tp.normalize_partial
        n_words, n_frames = cfg.data.max_words, cfg.data.num_frames
        self.word_weights = CrossModalTokenWeights(n_frames, n_words, width)  # w^t given video
        self.frame_weights = CrossModalTokenWeights(1, n_frames, width)  # w^v given sentence

    @classmethod
    def _head(cls, outputs: dict[str, Any]) -> Any:
        """The DMAE head (``needs_head``, looked up in the registry: no import of the head)."""
        head = outputs.get("head")
        if not isinstance(head, get("head", cls.needs_head)):
            raise KeyError(
                "the tpmcl objective needs the DMAE head as outputs['head'] (model.head=dmae); "
                f"got {type(head).__name__}"
            )
        return head

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        head = self._head(outputs)
        text, video = outputs["text"], outputs["video"]
        frames_in = getattr(video, "frames_in", None)
        if frames_in is None:
            raise ValueError(
                "tpmcl needs the seqTransf inputs of the videos: outputs['video'] must be the "
                "DMAEVideoFeatures that DMAEHead.embed_video returns (frames_in is missing)"
            )
        if video.weights is None:
            raise ValueError("tpmcl: outputs['video'] carries no frame weights (embed_video)")
        if len(text) != len(video):
            raise ValueError(f"tpmcl needs matched pairs: {len(text)} texts vs {len(video)} videos")
        rows = torch.arange(len(text), device=text.tokens.device)[outputs.get("local") or slice(None)]

        words, tmask, sent = text.tokens[rows], text.mask[rows], text.pooled[rows]
        f_in, vmask = frames_in[rows], video.mask[rows]
        frames, vweights = video.tokens[rows], video.weights[rows]

        w_t = self.word_weights(f_in, vmask, words, tmask)  # [K, L]
        w_v = self.frame_weights(sent[:, None, :], None, f_in, vmask)  # [K, T]
        keep_t = adaptive_keep(w_t, tmask, self.threshold)
        keep_v = adaptive_keep(w_v, vmask, self.threshold)

        t_g = F.normalize(torch.einsum("kl,kld->kd", w_t, words), dim=-1)
        t_part = torch.einsum("kl,kld->kd", w_t * keep_t.to(w_t.dtype), words)
        if self.normalize_partial:
            t_part = F.normalize(t_part, dim=-1)
        frames_part, vweights_part = head.encode_frames(
            f_in * keep_v[..., None].to(f_in.dtype), vmask
        )

        def s(x: Tensor, v: Tensor, w: Tensor) -> Tensor:
            return head.pair_sentence_score(x, v, vmask, w)

        s_t_v = s(sent, frames, vweights)
        s_g_v = s(t_g, frames, vweights)
        terms = [
            margin_term(s_t_v, s(sent, frames_part, vweights_part), self.margin),
            margin_term(s_g_v, s(t_g, frames_part, vweights_part), self.margin),
            margin_term(s_g_v, s(t_part, frames, vweights), self.margin),
        ]
        if self.video_global:
            v_g = F.normalize(torch.einsum("kt,ktd->kd", w_v, f_in), dim=-1)
            v_part = torch.einsum("kt,ktd->kd", w_v * keep_v.to(w_v.dtype), f_in)
            terms.append(
                margin_term((sent * v_g).sum(-1), (sent * v_part).sum(-1), self.margin)
            )
        loss = torch.stack(terms).sum()
        return {
            "tpmcl_loss": self.weight * loss,
            "tpmcl_margin": loss.detach(),
            "tpmcl_kept_words": (keep_t.sum(-1).float() / tmask.sum(-1).float()).mean().detach(),
            "tpmcl_kept_frames": (keep_v.sum(-1).float() / vmask.sum(-1).float()).mean().detach(),
        }
