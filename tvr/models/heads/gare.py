"""GARE head: pair-specific increments predicted from the video-text gap (methods.md §7).

Baseline (text-conditioned frame pooling, mask applied after the softmax as in the code)::

    w_abf = softmax_f(t_a · V_bf / temp) · m_bf          v̄_ab = Σ_f w_abf V_bf

Increment ``Δ_ab = ψ(g_ab, V_b)`` from the gap ``g_ab = mean_f V_bf − t_a`` by one pre-norm,
single-head cross-attention layer (every Linear D -> D)::

    q = LN1(g_ab), K = LN1(V_b)
    α_f = softmax_f((W_k K_f) · (W_q q) / √D)            # padded frames masked [inferred]
    o = LN2(W_o Σ_f α_f W_v K_f);  o = LN3(o + Dropout(W_1 o));  Δ_ab = W_μ o

Score: ``cos(t_a + Δ_ab, v̄_ab)`` (``gare.side=text``) or ``cos(t_a, v̄_ab + Δ_ab)``
(``side=video``). Δ is used at training *and* inference, so GARE is a pairwise scorer
(``factorized = False``). ψ has 1,579,008 parameters at D=512 (the paper's "1.58M").

Library defaults (methods.md §7.4): ψ's Linears N(0, 0.02) as the code effectively does
(``gare.psi_identity_init=true`` for the paper's identity); the gap mean over real frames only
(``gare.gap_masked_mean=false`` for the code's mean over every frame); the pooling mask after
the softmax without renormalisation (``gare.masked_softmax=true`` pools over real frames only).
``gare.zero_init_delta=true`` zeroes W_μ, so Δ = 0 and the head starts as the baseline.

The regularisers live in the ``gare_reg`` objective, which reads ``outputs["gare_delta"]`` from
:meth:`GAREHead.score_outputs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead
from tvr.models.heads.meanp import check_nonempty, meanp_pool
from tvr.models.heads.xclip import block_side
from tvr.models.temporal import TemporalTransformer
from tvr.registry import register

LN_EPS = 1e-5  # LayerNorms of ψ
SIDES = ("text", "video")


class GapIncrement(nn.Module):
    """ψ: cross-attention from the video-text gap onto the frames, predicting Δ.

    Args:
        width: feature width D.
        dropout: dropout on the residual Linear W_1.
        identity_init: Linears start as the identity (paper) instead of N(0, 0.02) (code).
        zero_output: W_μ starts at zero, so Δ = 0 until it is trained.

    Shapes:
        project_frames(frames ``[b, T, D]``) -> keys, values ``[b, T, D]``
        forward(gap ``[*P, b, D]``, keys/values ``[b, T, D]``, mask ``[b, T]``) -> ``[*P, b, D]``
    """

    def __init__(
        self, width: int, dropout: float, identity_init: bool = False, zero_output: bool = False
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width, eps=LN_EPS)
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width, eps=LN_EPS)
        self.fc = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.ln3 = nn.LayerNorm(width, eps=LN_EPS)
        self.mu = nn.Linear(width, width)
        self.scale = 1.0 / math.sqrt(width)
        self.reset_parameters(identity_init, zero_output)

    @torch.no_grad()
    def reset_parameters(self, identity_init: bool = False, zero_output: bool = False) -> None:
        """Linears N(0, 0.02) (or identity) with zero biases; LayerNorms identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                if identity_init:
                    module.weight.copy_(torch.eye(module.weight.shape[0]))
                else:
                    nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_output:
            nn.init.zeros_(self.mu.weight)
            nn.init.zeros_(self.mu.bias)

    def project_frames(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        k = self.ln1(frames)
        return self.k_proj(k), self.v_proj(k)

    def forward(self, gap: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        q = self.q_proj(self.ln1(gap))  # [*P, b, D]
        logits = torch.einsum("...bd,btd->...bt", q, keys) * self.scale  # [*P, b, T]
        logits = logits.masked_fill(~mask.bool(), float("-inf"))
        o = self.out_proj(torch.einsum("...bt,btd->...bd", torch.softmax(logits, -1), values))
        o = self.ln2(o)
        o = self.ln3(o + self.dropout(self.fc(o)))
        return self.mu(o)


@register("head", "gare")
class GAREHead(SimilarityHead):
    """GARE: text-conditioned pooling corrected by a pair-specific increment Δ.

    Args:
        cfg: experiment config; ``gare`` (temperature, side, masking switches, ψ init,
            rerank), ``seqtransf`` (temporal module).
        width: feature width D.

    Shapes:
        embed_text: tokens ``[Bt, L, D]`` (raw words: DRGI's text nodes), pooled ``[Bt, D]``
            (raw EOT vector t)
        embed_video: tokens ``[Bv, T, D]`` (raw seqTransf frames V: pooled by the score and
            DRGI's video nodes), pooled ``[Bv, D]`` (the frame mean of the gap)
        score: ``[Nt, Nv]``; pair_terms: ``([a, b], [a, b, D])``
    """

    section = "gare"
    with_objectives = ("gare_reg",)

    factorized = False

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        g = cfg.gare
        if g.side not in SIDES:
            raise ValueError(f"gare.side={g.side!r}: expected one of {', '.join(SIDES)}")
        if g.temp <= 0:
            raise ValueError(f"gare.temp={g.temp}: expected > 0")
        if not 0.0 <= g.dropout < 1.0:
            raise ValueError(f"gare.dropout={g.dropout}: expected a value in [0, 1)")
        if g.rerank_topk < 0:
            raise ValueError(f"gare.rerank_topk={g.rerank_topk}: expected 0 (off) or >= 1")
        self.width = width
        self.temp = g.temp
        self.side = g.side
        self.masked_softmax = g.masked_softmax
        self.gap_masked_mean = g.gap_masked_mean
        self.rerank_topk = g.rerank_topk
        self.temporal = TemporalTransformer.from_config(cfg, width)
        self.psi = GapIncrement(width, g.dropout, g.psi_identity_init, g.zero_init_delta)
        self.block_size = block_side(width)  # [a, b, D] tensors dominate a block

    def init_from_text_layers(
        self, layers: Sequence[nn.Module], position_embedding: Tensor | nn.Embedding
    ) -> int:
        """Initialise the temporal module from CLIP text layers; returns the blocks copied."""
        return self.temporal.init_from_text_layers(layers, position_embedding)

    # ------------------------------------------------------------------ embedding
    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        check_nonempty(text.mask, "GARE text features")
        return TokenFeatures(tokens=text.tokens, mask=text.mask, pooled=text.pooled)

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        check_nonempty(video.mask, "GARE video features")
        frames = self.temporal(video.tokens, video.mask)  # [Bv, T, D]
        if self.gap_masked_mean:
            valid = video.mask.bool()[..., None]
            mean = torch.where(valid, frames, 0.0).sum(1) / valid.sum(1).to(frames.dtype)
        else:
            mean = frames.mean(1)
        return TokenFeatures(tokens=frames, mask=video.mask, pooled=mean)

    # ------------------------------------------------------------------ scoring
    def pool(self, t: Tensor, frames: Tensor, mask: Tensor) -> Tensor:
        """Text-conditioned frame pooling ``v̄_ab``.

        Shapes:
            t: ``[a, D]``, frames: ``[b, T, D]``, mask: ``[b, T]`` -> ``[a, b, D]``
        """
        logits = torch.einsum("ad,btd->abt", t, frames) / self.temp  # [a, b, T]
        valid = mask.bool()[None]  # [1, b, T]
        if self.masked_softmax:
            w = torch.softmax(logits.masked_fill(~valid, float("-inf")), dim=-1)
        else:  # the code: mask after the softmax, no renormalisation
            w = torch.softmax(logits, dim=-1) * valid.to(logits.dtype)
        return torch.einsum("abt,btd->abd", w, torch.where(valid[0, ..., None], frames, 0.0))

    def pair_terms(
        self,
        text: TokenFeatures,
        video: TokenFeatures,
        keys: Tensor | None = None,
        values: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Scores and increments of every (text, video) pair of a block.

        Args:
            text, video: embedded blocks.
            keys, values: ψ's projected frames of ``video`` when precomputed.

        Shapes:
            text: ``[a, L, D]``, video: ``[b, T, D]`` -> (score ``[a, b]``, Δ ``[a, b, D]``)
        """
        t = text.pooled  # [a, D]
        frames, mask = video.tokens, video.mask
        if keys is None or values is None:
            keys, values = self.psi.project_frames(frames)
        pooled = self.pool(t, frames, mask)  # [a, b, D]
        gap = video.pooled[None, :, :] - t[:, None, :]  # [a, b, D]
        delta = self.psi(gap, keys, values, mask)  # [a, b, D]
        if self.side == "text":
            s = F.cosine_similarity(t[:, None, :] + delta, pooled, dim=-1)
        else:
            s = F.cosine_similarity(t[:, None, :].expand_as(pooled), pooled + delta, dim=-1)
        return s, delta

    def score_outputs(self, text: TokenFeatures, video: TokenFeatures) -> dict[str, Any]:
        """Training-time scoring: ``{"sim": [Nt, Nv], "gare_delta": [Nt, Nv, D]}``."""
        keys, values = self.psi.project_frames(video.tokens)
        sim, delta = self._blocked(text, video, keys, values)
        return {"sim": sim, "gare_delta": delta}

    def _blocked(
        self, text: TokenFeatures, video: TokenFeatures, keys: Tensor, values: Tensor
    ) -> tuple[Tensor, Tensor]:
        n = self.block_size
        rows_s, rows_d = [], []
        for ts in range(0, len(text), n):
            t_blk = text[ts : ts + n]
            parts = [
                self.pair_terms(
                    t_blk, video[vs : vs + n], keys[vs : vs + n], values[vs : vs + n]
                )
                for vs in range(0, len(video), n)
            ]
            rows_s.append(torch.cat([s for s, _ in parts], dim=1))
            rows_d.append(torch.cat([d for _, d in parts], dim=1))
        return torch.cat(rows_s, dim=0), torch.cat(rows_d, dim=0)

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """GARE scores of every (text, video) pair (Δ included), in blocks.

        With ``gare.rerank_topk = K`` outside training, only each text's top-K videos by the
        meanP cosine are scored by GARE; the others keep their meanP cosine minus 3, so they
        rank below every rescored video and in meanP order among themselves (a t2v search
        option: columns are not comparable across texts).

        Shapes:
            text: ``[Nt, L, D]``, video: ``[Nv, T, D]`` (embedded) -> ``[Nt, Nv]``
        """
        k = self.rerank_topk
        if k and not self.training and k < len(video):
            return self._rerank(text, video, k)
        keys, values = self.psi.project_frames(video.tokens)
        return self._blocked(text, video, keys, values)[0]

    def _rerank(self, text: TokenFeatures, video: TokenFeatures, k: int) -> Tensor:
        first = F.normalize(text.pooled, dim=-1) @ meanp_pool(video.tokens, video.mask).T
        out = first - 3.0  # cosines are >= -1, so every rescored entry ranks above these
        keys, values = self.psi.project_frames(video.tokens)
        top = first.topk(k, dim=-1).indices  # [Nt, K]
        for a in range(len(text)):
            idx = top[a]
            s, _ = self.pair_terms(text[a : a + 1], video[idx], keys[idx], values[idx])
            out[a, idx] = s[0]
        return out
