"""DRL's Weighted Token-wise Interaction head (methods.md §3.1).

Per-token weights come from small MLPs over the *unnormalised* tokens (softmax over valid
tokens); token similarities ``A[a,b,i,j] = Ŵ_ai · V̂_bj`` are reduced by directional max-sums::

    t2v[a,b] = sum_i w^t_ai max_j A[a,b,i,j]
    v2t[a,b] = sum_j w^v_bj max_i A[a,b,i,j]
    s_ab     = (t2v + v2t) / 2

As in DRL's code, padded entries of ``A`` are 0 (so they take part in the max as zeros);
``wti.masked_max=true`` leaves them out of the max instead, which makes scores independent of
how much padding an item carries. ``wti.weighted=false`` is DRL's "TI" ablation (plain means).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

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


def token_weight_mlp(width: int, arch: int) -> nn.Sequential:
    """DRL's token-weight MLP (``wti_arch``): 1 = Linear(D,1); 2, 3 = that many layers.

    Weights are N(0, 0.02), biases 0.

    Shapes:
        ``[..., D]`` -> ``[..., 1]``
    """
    if arch not in (1, 2, 3):
        raise ValueError(f"wti.arch={arch}: expected 1, 2 or 3 (MLP depth)")
    layers: list[nn.Module] = []
    for _ in range(arch - 1):
        layers += [nn.Linear(width, width), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(width, 1))
    mlp = nn.Sequential(*layers)
    for module in mlp:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
    return mlp


def masked_softmax_weights(logits: Tensor, mask: Tensor) -> Tensor:
    """Softmax over valid tokens; exactly 0 on padding.

    Shapes:
        logits: ``[B, N]``, mask: ``[B, N]`` -> ``[B, N]`` (rows sum to 1)
    """
    valid = mask.bool()
    weights = torch.softmax(logits.float().masked_fill(~valid, float("-inf")), dim=-1)
    return torch.where(valid, weights, 0.0).to(logits.dtype)


def uniform_weights(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """1 / n_valid on valid tokens, 0 on padding (the TI ablation).

    Shapes:
        mask: ``[B, N]`` -> ``[B, N]``
    """
    m = mask.to(dtype)
    return m / m.sum(dim=-1, keepdim=True).clamp_min(1.0)


def _used_slots(mask: Tensor) -> int:
    """Token slots up to the last one that is valid in any row (at least 1).

    Shapes:
        mask: ``[B, N]`` bool -> an int in ``1..N``
    """
    cols = mask.any(dim=0).nonzero()
    return int(cols.max()) + 1 if len(cols) else 1


def _zero_padding(tokens: Tensor, mask: Tensor) -> Tensor:
    """``tokens`` with padded slots set to 0 (returned as is when nothing is padded).

    Shapes:
        tokens: ``[B, N, D]``, mask: ``[B, N]`` bool -> ``[B, N, D]``
    """
    return tokens if mask.all() else torch.where(mask[..., None], tokens, 0.0)


def _by_length(mask: Tensor) -> Tensor:
    """Item order by the position of the last valid slot (stable, shortest first).

    Shapes:
        mask: ``[B, N]`` -> ``[B]`` indices
    """
    slots = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    last = (mask.bool() * slots).amax(dim=1)  # [B]
    return torch.argsort(last, stable=True)


@register("head", "wti")
class WTIHead(SimilarityHead):
    """WTI (DRL): late interaction between word and frame tokens, scored in blocks.

    Args:
        cfg: experiment config; ``wti`` selects the weight MLP depth, TI ablation, temporal
            module and max masking; ``seqtransf`` sizes the temporal module.
        width: feature width D.

    Shapes:
        embed_text: tokens ``[Bt, L, D]`` (normalised words), weights ``[Bt, L]``,
            pooled ``[Bt, D]`` (normalised EOT vector; not used by ``score``)
        embed_video: tokens ``[Bv, T, D]`` (normalised seqTransf frames), weights ``[Bv, T]``,
            pooled ``[Bv, D]`` (meanP of the frames; not used by ``score``)
        score: ``[Nt, Nv]``; token_similarity: ``[K, L, T]``; word_contributions: ``[K, L]``
    """

    section = "wti"

    factorized = False
    token_scores = True
    coarse = "token_mean"  # a weighted mean is at most the max, on both directions
    needs_token_weights = True

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        wcfg = cfg.wti
        if wcfg.arch not in (1, 2, 3):
            raise ValueError(f"wti.arch={wcfg.arch}: expected 1, 2 or 3 (MLP depth)")
        self.width = width
        self.weighted = wcfg.weighted
        self.masked_max = wcfg.masked_max
        # texts (and videos) per scoring block; None sizes blocks from L and T (see score)
        self.block_size: int | None = None
        self.temporal = TemporalTransformer.from_config(cfg, width) if wcfg.temporal else None
        if self.weighted:
            self.text_weight_fc = token_weight_mlp(width, wcfg.arch)
            self.video_weight_fc = token_weight_mlp(width, wcfg.arch)
        else:
            self.text_weight_fc = None
            self.video_weight_fc = None

    def init_from_text_layers(
        self, layers: Sequence[nn.Module], position_embedding: Tensor | nn.Embedding
    ) -> int:
        """Initialise the temporal module from CLIP text layers (0 when there is none)."""
        if self.temporal is None:
            return 0
        return self.temporal.init_from_text_layers(layers, position_embedding)

    # ------------------------------------------------------------------ embedding
    def _weights(self, tokens: Tensor, mask: Tensor, mlp: nn.Module | None) -> Tensor:
        if mlp is None:
            return uniform_weights(mask, tokens.dtype)
        return masked_softmax_weights(mlp(tokens).squeeze(-1), mask)

    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        check_nonempty(text.mask, "WTI text features")
        return TokenFeatures(
            tokens=F.normalize(text.tokens, dim=-1),
            mask=text.mask,
            pooled=F.normalize(text.pooled, dim=-1),
            weights=self._weights(text.tokens, text.mask, self.text_weight_fc),
        )

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        check_nonempty(video.mask, "WTI video features")
        frames = video.tokens
        if self.temporal is not None:
            frames = self.temporal(frames, video.mask)  # [Bv, T, D]
        return TokenFeatures(
            tokens=F.normalize(frames, dim=-1),
            mask=video.mask,
            pooled=meanp_pool(frames, video.mask),
            weights=self._weights(frames, video.mask, self.video_weight_fc),
        )

    # ------------------------------------------------------------------ scoring
    @staticmethod
    def _require_weights(feats: TokenFeatures, side: str) -> Tensor:
        if feats.weights is None:
            raise ValueError(
                f"WTI score: {side} features carry no token weights; pass them through "
                f"head.embed_{side}() first"
            )
        return feats.weights

    def _max_sims(self, sims: Tensor, mask_t: Tensor, mask_v: Tensor) -> tuple[Tensor, Tensor]:
        """Directional maxima of masked token similarities.

        Shapes:
            sims: ``[..., L, T]``, mask_t: ``[..., L, 1]``, mask_v: ``[..., 1, T]`` (bool)
            -> (best frame per word ``[..., L]``, best word per frame ``[..., T]``),
            0 on padded words / frames.
        """
        valid = mask_t & mask_v
        if self.masked_max:
            filled = sims.masked_fill(~valid, float("-inf"))
        else:
            filled = torch.where(valid, sims, 0.0)
        t2v = filled.max(dim=-1).values.masked_fill(~mask_t.squeeze(-1), 0.0)
        v2t = filled.max(dim=-2).values.masked_fill(~mask_v.squeeze(-2), 0.0)
        return t2v, v2t

    def _score_block(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """WTI scores of one block of texts x videos from a single matrix product.

        The same numbers as masking the einsum ``"ald,btd->ablt"``, computed as:

        1. token slots that are padding in every item of the block are dropped (``L' <= L``
           words, ``T' <= T`` frames); the remaining padded tokens must be zero (``score``
           zeroes them once for all blocks), so their similarities are exactly 0 (DRL's rule);
        2. one GEMM ``[a*L', D] x [D, T'*b]`` gives every similarity, laid out ``[a, L', T', b]``
           so both maxima reduce over a middle dimension;
        3. DRL's rule lets padding's 0 take part in a max: an item with any padding (dropped
           slots included) gets its maxima floored at 0; with ``masked_max`` an additive
           ``-inf`` bias keeps padded words and frames out of the maxima instead.

        Shapes:
            text: ``[a, L, D]``, video: ``[b, T, D]`` (embedded) -> ``[a, b]``
        """
        wt = self._require_weights(text, "text")  # [a, L]
        wv = self._require_weights(video, "video")  # [b, T]
        mt, mv = text.mask.bool(), video.mask.bool()  # [a, L], [b, T]
        padded_t, padded_v = ~mt.all(dim=1), ~mv.all(dim=1)  # [a], [b]
        keep_t, keep_v = _used_slots(mt), _used_slots(mv)
        mt, mv, wt, wv = mt[:, :keep_t], mv[:, :keep_v], wt[:, :keep_t], wv[:, :keep_v]
        tt, vt = text.tokens[:, :keep_t], video.tokens[:, :keep_v]  # [a, L', D], [b, T', D]
        a, b, dim = len(tt), len(vt), tt.shape[-1]
        sims = tt.reshape(a * keep_t, dim) @ vt.transpose(0, 1).reshape(keep_v * b, dim).T
        sims = sims.view(a, keep_t, keep_v, b)  # [a, L', T', b]
        if self.masked_max:
            if not mt.all():
                sims = sims + torch.where(mt, 0.0, float("-inf")).to(sims.dtype)[:, :, None, None]
            if not mv.all():
                sims = sims + torch.where(mv.T, 0.0, float("-inf")).to(sims.dtype)[None, None]
        best_frame = sims.amax(dim=2)  # [a, L', b]
        best_word = sims.amax(dim=1)  # [a, T', b]
        if not self.masked_max:
            if padded_v.any():  # padded frames' zeros take part in each word's max
                best_frame = torch.where(padded_v, best_frame.clamp_min(0.0), best_frame)
            if padded_t.any():  # padded words' zeros take part in each frame's max
                floored = best_word.clamp_min(0.0)
                best_word = torch.where(padded_t[:, None, None], floored, best_word)
        best_frame = best_frame.masked_fill(~mt[..., None], 0.0)
        best_word = best_word.masked_fill(~mv.T[None], 0.0)
        t2v = torch.einsum("al,alb->ab", wt.to(sims.dtype), best_frame)  # [a, b]
        v2t = torch.einsum("atb,bt->ab", best_word, wv.to(sims.dtype))  # [a, b]
        return 0.5 * (t2v + v2t)

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """WTI scores of every (text, video) pair, computed in ``block_size``² blocks.

        Texts and videos are visited in order of length (last valid slot), so a block holds
        items of similar length and drops most padded slots (see ``_score_block``); rows and
        columns are put back in the input order. ``block_size`` defaults to the side that keeps
        a block's ``[a, L, T, b]`` similarity tensor near ``BLOCK_ELEMENTS`` (4 M elements,
        16 MB in float32), so memory stays bounded for any number of texts and videos.

        Shapes:
            text: ``[Nt, L, D]``, video: ``[Nv, T, D]`` (embedded) -> ``[Nt, Nv]``
        """
        n = self.block_size or block_side(text.tokens.shape[1] * video.tokens.shape[1])
        t_order, v_order = _by_length(text.mask), _by_length(video.mask)
        # sorted, and padded tokens zeroed (what _score_block requires), once for all blocks
        text = replace(text[t_order], tokens=_zero_padding(text.tokens, text.mask.bool())[t_order])
        video = replace(
            video[v_order], tokens=_zero_padding(video.tokens, video.mask.bool())[v_order]
        )
        sim = score_in_blocks(self._score_block, text, video, n, n)
        return sim[torch.argsort(t_order)][:, torch.argsort(v_order)]  # type: ignore[index]

    # ------------------------------------------------------------------ analysis
    @staticmethod
    def _check_pairs(text: TokenFeatures, video: TokenFeatures) -> None:
        if len(text) != len(video):
            raise ValueError(
                f"WTI pair analysis needs aligned pairs: got {len(text)} texts and "
                f"{len(video)} videos"
            )

    def token_similarity(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """Word-by-frame cosine matrices of aligned pairs (text k with video k).

        Shapes:
            text: ``[K, L, D]``, video: ``[K, T, D]`` (embedded) -> ``[K, L, T]``,
            0 where the word or the frame is padding.
        """
        self._check_pairs(text, video)
        sims = torch.einsum("kld,ktd->klt", text.tokens, video.tokens)
        valid = text.mask.bool()[:, :, None] & video.mask.bool()[:, None, :]
        return torch.where(valid, sims, 0.0)

    def word_contributions(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """Each word's term ``w^t_i max_j A_ij`` of the t2v score of aligned pairs.

        Summing over words gives the pair's t2v score (``score = (t2v + v2t) / 2``).

        Shapes:
            text: ``[K, L, D]``, video: ``[K, T, D]`` -> ``[K, L]`` (0 on padded words)
        """
        self._check_pairs(text, video)
        wt = self._require_weights(text, "text")
        sims = torch.einsum("kld,ktd->klt", text.tokens, video.tokens)
        best_frame, _ = self._max_sims(
            sims, text.mask.bool()[:, :, None], video.mask.bool()[:, None, :]
        )
        return best_frame * wt

    def frame_contributions(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """Each frame's term ``w^v_j max_i A_ij`` of the v2t score of aligned pairs.

        Shapes:
            text: ``[K, L, D]``, video: ``[K, T, D]`` -> ``[K, T]`` (0 on padded frames)
        """
        self._check_pairs(text, video)
        wv = self._require_weights(video, "video")
        sims = torch.einsum("kld,ktd->klt", text.tokens, video.tokens)
        _, best_word = self._max_sims(
            sims, text.mask.bool()[:, :, None], video.mask.bool()[:, None, :]
        )
        return best_word * wv
