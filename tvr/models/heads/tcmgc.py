"""TC-MGC head: text-conditioned multi-grained contrast (methods.md §5).

The released code does not run; this is a complete version of what the paper describes, with the
project's choices for the missing definitions (marked [inferred] in the spec).

1. **Language-video attention (LVA)**, X-Pool-style, single head, no q/k/v projections::

       q' = LN1(q), V' = LN1(V_b), α_f = softmax_f(V'_f · q' / √D)
       o = LN2(Σ_f α_f V'_f),  out = normalize(LN3(o + Dropout(Linear(o))))   # Linear = I at init

   Coarse: ``v_ab = LVA(t_a, V_b)``; fine: ``F̃_awb = LVA(W_aw, V_b)`` for every word w, so the
   text-conditioned "frame" axis has length L.
2. **Similarity reorganisation (SR)** keeps exactly the top-k similarities (k = ⌊L ρ⌋), sorted
   in descending order; **interactive similarity aggregation (ISA)** weighs a vector z of length
   n with ``ISA(z; P) = softmax(λ_s · (softmax(λ_s z) P))`` and ``P`` an n x n identity-initialised
   matrix. Grains::

       s1 = (t G) · v_ab
       s2 = Σ x̃ ⊙ ISA(x̃; P2),            x̃ = top-k_w (W_aw · v_ab)
       s3 = Σ z ⊙ ISA(z; P3),             z = [top-k_w y ; Σ softmax(y_rest) y_rest],
                                           y_w = t_a · F̃_awb
       s4 = (p + q) / 2                   Bi-SR (top-k over w per f, then over f) of
                                           M = (W L) · F̃, then AOSM with four ISA matrices

3. **Linear softmax aggregation (LSA)**: ``β = softmax(λ · ℓ W_lsa)``, ``S = Σ_g β_g ℓ_g`` over
   the four grains ℓ, W_lsa 4x4 identity-initialised [inferred]. The code's softmax sees the
   logit-scaled grains; a head returns cosine-scale scores, so the scale inside the softmax is
   ``tcmgc.lsa_scale`` (100 = CLIP's λ at its clamp).
4. The similarity decorrelation regulariser (SDR) is the ``sdr`` objective; it reads the grains
   that :meth:`TCMGCHead.score_outputs` returns as ``outputs["tcmgc_grains"]``.

Padding: with ``tcmgc.mask_padding=true`` (default) padded frames are left out of LVA and padded
words out of SR, ISA and the fused remainder, so scores do not depend on padded slots; ``false``
reproduces the code, where both take part.
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
from tvr.models.heads.xclip import block_side, score_in_blocks
from tvr.models.temporal import TemporalTransformer
from tvr.registry import register

LN_EPS = 1e-5  # LayerNorms of the LVA block


def masked_logits(x: Tensor, valid: Tensor) -> Tensor:
    """``x`` with invalid entries at the dtype's lowest value (not -inf).

    A softmax over a row with no valid entry then stays finite (uniform) in value and gradient;
    callers zero such rows' contributions themselves.
    """
    return x.masked_fill(~valid, torch.finfo(x.dtype).min)


# --------------------------------------------------------------------------------------------
# Similarity reorganisation and interactive aggregation (pure functions)
# --------------------------------------------------------------------------------------------


def top_k_similarities(x: Tensor, k: int, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Similarity reorganisation: the k largest values of the last dim, sorted descending.

    Args:
        x: similarities ``[..., n]``.
        k: values kept (1 <= k <= n).
        valid: optional bool mask broadcastable to ``x``; invalid entries are never kept.

    Returns:
        (values ``[..., k]``, slot validity ``[..., k]``). A slot is invalid when fewer than k
        valid entries exist; its value is 0.
    """
    if not 1 <= k <= x.shape[-1]:
        raise ValueError(f"similarity reorganisation keeps k={k} of {x.shape[-1]} values")
    if valid is None:
        values = x.topk(k, dim=-1).values
        return values, torch.ones_like(values, dtype=torch.bool)
    valid = valid.expand_as(x)
    values = x.masked_fill(~valid, float("-inf")).topk(k, dim=-1).values
    keep = torch.isfinite(values)
    return torch.where(keep, values, 0.0), keep


def isa_weights(z: Tensor, matrix: Tensor, lam: float, valid: Tensor | None = None) -> Tensor:
    """Interactive similarity aggregation weights ``softmax(λ (softmax(λ z) P))``.

    Invalid slots get no inner attention and no outer weight; a row without any valid slot
    gets finite (meaningless) weights, which :func:`isa_pool` multiplies by zeros.

    Shapes:
        z: ``[..., n]``, matrix: ``[n, n]``, valid: ``[..., n]`` -> ``[..., n]`` (sums to 1)
    """
    if valid is None:
        return torch.softmax(lam * (torch.softmax(lam * z, dim=-1) @ matrix), dim=-1)
    inner = torch.softmax(masked_logits(lam * z, valid), dim=-1)
    inner = torch.where(valid, inner, 0.0)
    return torch.softmax(masked_logits(lam * (inner @ matrix), valid), dim=-1)


def isa_pool(z: Tensor, matrix: Tensor, lam: float, valid: Tensor | None = None) -> Tensor:
    """``Σ z ⊙ ISA(z; P)`` over the last dim; invalid slots contribute nothing.

    Shapes:
        z: ``[..., n]``, matrix: ``[n, n]``, valid: ``[..., n]`` -> ``[...]``
    """
    if valid is not None:
        valid = valid.expand_as(z)
        z = torch.where(valid, z, 0.0)
    return (z * isa_weights(z, matrix, lam, valid)).sum(-1)


def fused_remainder(y: Tensor, k: int, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-k of ``y`` plus the softmax-fused rest: ``z = [top-k ; Σ softmax(y_rest) y_rest]``.

    Returns:
        (z ``[..., k + 1]``, slot validity ``[..., k + 1]``); the fused slot is invalid when no
        valid entry is left outside the top-k.

    Shapes:
        y: ``[..., n]``, valid: broadcastable to ``y``
    """
    n = y.shape[-1]
    if not 1 <= k <= n:
        raise ValueError(f"similarity reorganisation keeps k={k} of {n} values")
    valid = torch.ones_like(y, dtype=torch.bool) if valid is None else valid.expand_as(y)
    filled = y.masked_fill(~valid, float("-inf"))
    top = filled.topk(k, dim=-1)
    top_valid = torch.isfinite(top.values)
    rest = valid.scatter(-1, top.indices, False)  # valid entries outside the top-k
    has_rest = rest.any(-1, keepdim=True)
    att = torch.where(rest, torch.softmax(masked_logits(y, rest), dim=-1), 0.0)
    fused = (torch.where(rest, y, 0.0) * att).sum(-1, keepdim=True)
    z = torch.cat([torch.where(top_valid, top.values, 0.0), fused], dim=-1)
    return z, torch.cat([top_valid, has_rest], dim=-1)


def bi_top_k(m: Tensor, k: int, valid_w: Tensor, valid_f: Tensor) -> tuple[Tensor, Tensor]:
    """Bi-SR: top-k over words for every frame, then top-k over frames for every kept row.

    Args:
        m: ``[..., Lw, Lf]`` word x conditioned-frame similarities.
        k: values kept per axis.
        valid_w: ``[..., Lw]`` bool, valid_f: ``[..., Lf]`` bool (broadcastable).

    Returns:
        (``[..., k, k]`` values, ``[..., k, k]`` validity); invalid slots hold 0.
    """
    rows, row_ok = top_k_similarities(m.transpose(-1, -2), k, valid_w[..., None, :])
    rows = rows.transpose(-1, -2)  # [..., k, Lf]
    row_ok = row_ok.transpose(-1, -2)  # [..., k, Lf]
    vals, col_ok = top_k_similarities(rows, k, row_ok & valid_f[..., None, :])
    return vals, col_ok


# --------------------------------------------------------------------------------------------
# Language-video attention
# --------------------------------------------------------------------------------------------


class LanguageVideoAttention(nn.Module):
    """X-Pool-style conditional pooling of frames by a text query (no q/k/v projections).

    Args:
        width: feature width D.
        dropout: dropout on the residual Linear.

    Shapes:
        keys(frames ``[b, T, D]``) -> ``[b, T, D]`` (``LN1`` of the frames, shared by queries)
        forward(query ``[*Q, D]``, keys ``[b, T, D]``, mask ``[b, T]`` or None)
        -> ``[*Q, b, D]``: one L2-normalised video vector per query and video
    """

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width, eps=LN_EPS)
        self.ln2 = nn.LayerNorm(width, eps=LN_EPS)
        self.ln3 = nn.LayerNorm(width, eps=LN_EPS)
        self.linear = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(width)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(width))
            self.linear.bias.zero_()

    def keys(self, frames: Tensor) -> Tensor:
        return self.ln1(frames)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None) -> Tensor:
        q = self.ln1(query)  # [*Q, D]
        logits = torch.einsum("...d,btd->...bt", q, keys) * self.scale  # [*Q, b, T]
        if mask is not None:
            logits = logits.masked_fill(~mask.bool(), float("-inf"))
        pooled = torch.einsum("...bt,btd->...bd", torch.softmax(logits, dim=-1), keys)
        o = self.ln2(pooled)
        out = self.ln3(o + self.dropout(self.linear(o)))
        return F.normalize(out, dim=-1)


# --------------------------------------------------------------------------------------------
# The head
# --------------------------------------------------------------------------------------------


@register("head", "tcmgc")
class TCMGCHead(SimilarityHead):
    """TC-MGC: text-conditioned LVA, SR + ISA on four grains, LSA fusion.

    Args:
        cfg: experiment config; ``tcmgc`` (keep rate, λ_s, LSA scale, dropout, padding),
            ``seqtransf`` (temporal module), ``data.max_words`` (k = ⌊max_words · keep_rate⌋).
        width: feature width D.

    Parameters: G, L ``[D, D]`` (identity); LVA (3 LayerNorms + identity Linear); ISA matrices
    P2 ``[k, k]``, P3 ``[k+1, k+1]``, four Bi-ISA ``[k, k]``; W_lsa ``[4, 4]``; seqTransf.
    At D=512, k=3: 790,093 + seqTransf (methods.md §5.4).

    Shapes:
        embed_text: tokens ``[Bt, L, D]`` (normalised words), pooled ``[Bt, D]`` (normalised
            EOT vector)
        embed_video: tokens ``[Bv, T, D]`` (seqTransf frames, unnormalised: LVA's keys and
            DRGI's video nodes), pooled ``[Bv, D]`` (their meanP; not used by ``score``)
        score: ``[Nt, Nv]``; grains: ``[Nt, Nv, 4]``
    """

    section = "tcmgc"
    with_objectives = ("sdr",)

    factorized = False

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        tc = cfg.tcmgc
        n_words = cfg.data.max_words
        k = math.floor(n_words * tc.keep_rate)
        if not 1 <= k < n_words:
            raise ValueError(
                f"tcmgc.keep_rate={tc.keep_rate} with data.max_words={n_words} keeps k={k} "
                f"similarities; expected 1 <= k < max_words"
            )
        if not 0.0 <= tc.dropout < 1.0:
            raise ValueError(f"tcmgc.dropout={tc.dropout}: expected a value in [0, 1)")
        self.width = width
        self.n_words = n_words
        self.k = k
        self.lam = tc.softmax_lambda
        self.lsa_scale = tc.lsa_scale
        self.mask_padding = tc.mask_padding
        self.temporal = TemporalTransformer.from_config(cfg, width)
        self.lva = LanguageVideoAttention(width, tc.dropout)
        self.global_mat_weight = nn.Parameter(torch.eye(width))
        self.local_mat_weight = nn.Parameter(torch.eye(width))
        self.word_isa = nn.Parameter(torch.eye(k))  # P2
        self.frame_isa = nn.Parameter(torch.eye(k + 1))  # P3
        self.bi_word_isa = nn.Parameter(torch.eye(k))  # ISA over words inside AOSM (r)
        self.bi_frame_isa = nn.Parameter(torch.eye(k))  # ISA over frames inside AOSM (c)
        self.bi_frame_isa2 = nn.Parameter(torch.eye(k))  # sentence-to-frame (p)
        self.bi_word_isa2 = nn.Parameter(torch.eye(k))  # video-to-word (q)
        self.lsa_weight = nn.Parameter(torch.eye(4))
        # the fine LVA output [a, L, b, D] dominates a block
        self.block_size = block_side(n_words * width)

    def init_from_text_layers(
        self, layers: Sequence[nn.Module], position_embedding: Tensor | nn.Embedding
    ) -> int:
        """Initialise the temporal module from CLIP text layers; returns the blocks copied."""
        return self.temporal.init_from_text_layers(layers, position_embedding)

    # ------------------------------------------------------------------ embedding
    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        check_nonempty(text.mask, "TC-MGC text features")
        return TokenFeatures(
            tokens=F.normalize(text.tokens, dim=-1),
            mask=text.mask,
            pooled=F.normalize(text.pooled, dim=-1),
        )

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        check_nonempty(video.mask, "TC-MGC video features")
        frames = self.temporal(video.tokens, video.mask)  # [Bv, T, D]
        return TokenFeatures(tokens=frames, mask=video.mask, pooled=meanp_pool(frames, video.mask))

    # ------------------------------------------------------------------ scoring
    def grains(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """The four grains ``(s1, s2, s3, s4)`` of every pair of a block.

        Shapes:
            text: ``[a, L, D]``, video: ``[b, T, D]`` (embedded) -> ``[a, b, 4]``
        """
        if text.tokens.shape[1] != self.n_words:
            raise ValueError(
                f"TC-MGC was built for data.max_words={self.n_words}, got texts of "
                f"{text.tokens.shape[1]} tokens"
            )
        k, lam = self.k, self.lam
        t, words = text.pooled, text.tokens  # [a, D], [a, L, D]
        a, n = words.shape[:2]
        b = len(video)
        keys = self.lva.keys(video.tokens)  # [b, T, D]
        frame_mask = video.mask if self.mask_padding else None
        v = self.lva(t, keys, frame_mask)  # [a, b, D]
        cond = self.lva(words, keys, frame_mask)  # [a, L, b, D]: one video vector per word
        if self.mask_padding:
            vw = text.mask.bool()[:, None, :].expand(a, b, n)  # [a, b, L]
        else:
            vw = torch.ones(a, b, n, dtype=torch.bool, device=words.device)

        s1 = ((t @ self.global_mat_weight)[:, None, :] * v).sum(-1)  # [a, b]

        x = torch.einsum("ald,abd->abl", words, v)  # [a, b, L]
        x_top, x_ok = top_k_similarities(x, k, vw)
        s2 = isa_pool(x_top, self.word_isa, lam, x_ok)

        y = torch.einsum("ad,albd->abl", t, cond)  # [a, b, L]
        z, z_ok = fused_remainder(y, k, vw)
        s3 = isa_pool(z, self.frame_isa, lam, z_ok)

        m = torch.einsum("ald,afbd->ablf", words @ self.local_mat_weight, cond)  # [a, b, L, L]
        mk, mk_ok = bi_top_k(m, k, vw, vw)  # [a, b, k(w), k(f)]
        r = isa_pool(mk.transpose(-1, -2), self.bi_word_isa, lam, mk_ok.transpose(-1, -2))
        c = isa_pool(mk, self.bi_frame_isa, lam, mk_ok)
        r_ok, c_ok = mk_ok.any(-2), mk_ok.any(-1)  # [a, b, k(f)], [a, b, k(w)]
        p = isa_pool(r, self.bi_frame_isa2, lam, r_ok)
        q = isa_pool(c, self.bi_word_isa2, lam, c_ok)
        s4 = 0.5 * (p + q)
        return torch.stack([s1, s2, s3, s4], dim=-1)

    def aggregate(self, grains: Tensor) -> Tensor:
        """Linear softmax aggregation ``Σ_g softmax(λ ℓ W_lsa)_g ℓ_g``.

        Shapes:
            grains: ``[..., 4]`` -> ``[...]``
        """
        beta = torch.softmax(self.lsa_scale * (grains @ self.lsa_weight), dim=-1)
        return (beta * grains).sum(-1)

    def _block(self, text: TokenFeatures, video: TokenFeatures) -> tuple[Tensor, Tensor]:
        g = self.grains(text, video)
        return self.aggregate(g), g

    def score_outputs(self, text: TokenFeatures, video: TokenFeatures) -> dict[str, Any]:
        """Training-time scoring: ``{"sim": [Nt, Nv], "tcmgc_grains": [Nt, Nv, 4]}``."""
        sim, grains = score_in_blocks(self._block, text, video, self.block_size, self.block_size)
        return {"sim": sim, "tcmgc_grains": grains}

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """TC-MGC scores of every (text, video) pair, in ``block_size``² blocks.

        Shapes:
            text: ``[Nt, L, D]``, video: ``[Nv, T, D]`` (embedded) -> ``[Nt, Nv]``
        """
        return score_in_blocks(  # type: ignore[return-value]
            lambda t, v: self.aggregate(self.grains(t, v)),
            text,
            video,
            self.block_size,
            self.block_size,
        )
