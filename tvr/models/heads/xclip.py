"""X-CLIP head: multi-grained contrast with Attention Over Similarity Matrix (methods.md §4).

Four grains, averaged (all on the cosine scale; the trainer applies the logit scale)::

    s1 = (t G) · v                                         video-sentence
    s2 = Σ_w x_w [softmax_w(x/τ) P_w]_w,  x_w = W_w · v     video-word
    s3 = Σ_f y_f [softmax_f(y/τ) P_f]_f,  y_f = t · F_f     sentence-frame
    s4 = (p + q) / 2                                        frame-word (AOSM on M = (W L) Fᵀ)
    S  = (s1 + s2 + s3 + s4) / 4

``t`` is the normalised EOT vector, ``W`` the normalised word features, ``v`` the meanP of the
seqTransf frames and ``F`` the normalised *original* CLIP frames. Every square matrix (G, L over
channels; P, Q over word or frame positions) starts as the identity, so P and Q tie a checkpoint
to ``data.max_words`` and ``data.num_frames``.

Padding: the authors' code applies no mask, so padded words and frames take part in every softmax
and sum; that is the default here (``xclip.mask_padding=false``, methods.md §4). With
``xclip.mask_padding=true`` padded positions get no attention, no weight after the P/Q mixing and
no value, so scores do not depend on what padded slots hold.

``score`` works in blocks of texts x videos so the ``[Nt, L, Nv, T]`` frame-word tensor is never
materialised for large inputs; :func:`score_in_blocks` is the shared blocking helper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead
from tvr.models.heads.meanp import check_nonempty, meanp_pool
from tvr.models.temporal import TemporalTransformer
from tvr.registry import register

BLOCK_ELEMENTS = 1 << 22  # elements of the largest per-block tensor a blocked score aims for


# --------------------------------------------------------------------------------------------
# Blocking
# --------------------------------------------------------------------------------------------


def block_side(per_pair: int, budget: int = BLOCK_ELEMENTS) -> int:
    """Texts (and videos) per block so ``side² * per_pair`` stays near ``budget`` elements."""
    return max(1, int(math.isqrt(max(1, budget // max(1, per_pair)))))


def score_in_blocks(
    fn: Callable[[TokenFeatures, TokenFeatures], Tensor | tuple[Tensor, ...]],
    text: TokenFeatures,
    video: TokenFeatures,
    block_t: int,
    block_v: int,
) -> Tensor | tuple[Tensor, ...]:
    """Evaluate a pairwise function over ``block_t x block_v`` blocks and stitch the results.

    Args:
        fn: maps a text block ``[a, ...]`` and a video block ``[b, ...]`` to a tensor (or tuple
            of tensors) whose two leading dims are ``[a, b]``.
        text, video: embedded features of all texts / videos.
        block_t, block_v: block sizes (>= 1).

    Shapes:
        -> ``[Nt, Nv, ...]`` (or a tuple of them, in ``fn``'s order)
    """
    if block_t < 1 or block_v < 1:
        raise ValueError(f"score_in_blocks: block sizes must be >= 1, got {block_t}, {block_v}")
    rows: list[list[Tensor | tuple[Tensor, ...]]] = []
    for ts in range(0, len(text), block_t):
        t_blk = text[ts : ts + block_t]
        rows.append([fn(t_blk, video[vs : vs + block_v]) for vs in range(0, len(video), block_v)])
    if isinstance(rows[0][0], Tensor):
        return torch.cat([torch.cat(row, dim=1) for row in rows], dim=0)  # type: ignore[arg-type]
    n = len(rows[0][0])
    return tuple(
        torch.cat([torch.cat([blk[i] for blk in row], dim=1) for row in rows], dim=0)  # type: ignore[index]
        for i in range(n)
    )


# --------------------------------------------------------------------------------------------
# Attention over a similarity vector
# --------------------------------------------------------------------------------------------


def attention_pool(x: Tensor, matrix: Tensor, tau: float, valid: Tensor | None = None) -> Tensor:
    """``Σ_i x_i [softmax(x / τ) P]_i`` over the last dim (X-CLIP's attention pooling).

    Args:
        x: similarities; the last dim is the pooled axis of length n.
        matrix: ``[n, n]`` mixing matrix P applied to the attention row vector (``att @ P``).
        tau: softmax temperature.
        valid: optional bool mask broadcastable to ``x``. Invalid entries get no attention, no
            weight after mixing and no value; every pooled row needs one valid entry.

    Shapes:
        x: ``[..., n]``, matrix: ``[n, n]``, valid: ``[..., n]`` -> ``[...]``
    """
    if x.shape[-1] != matrix.shape[0]:
        raise ValueError(
            f"attention pooling over {x.shape[-1]} positions, but the learnable matrix is "
            f"{tuple(matrix.shape)}: the head was built for another data.max_words / "
            "data.num_frames"
        )
    if valid is None:
        att = torch.softmax(x / tau, dim=-1) @ matrix
        return (x * att).sum(-1)
    valid = valid.expand_as(x)
    x = torch.where(valid, x, 0.0)
    logits = (x / tau).masked_fill(~valid, torch.finfo(x.dtype).min)  # finite: no NaN rows
    att = torch.where(valid, torch.softmax(logits, dim=-1), 0.0) @ matrix
    return (x * torch.where(valid, att, 0.0)).sum(-1)


# --------------------------------------------------------------------------------------------
# The head
# --------------------------------------------------------------------------------------------


@register("head", "xclip")
class XCLIPHead(SimilarityHead):
    """X-CLIP: four multi-grained scores with attention over similarity matrices.

    Args:
        cfg: experiment config; ``xclip`` (padding mask, τ_a), ``seqtransf`` (temporal module),
            ``data.max_words`` / ``data.num_frames`` (sizes of the P and Q matrices).
        width: feature width D.

    Parameters (identity-initialised): ``global_mat_weight`` G, ``local_mat_weight`` L
    ``[D, D]``; ``word_logit_weight`` P_w, ``word_mat_weight`` Q_w, ``word_mat_weight2`` Q_w2
    ``[L, L]``; ``frame_logit_weight`` P_f, ``frame_mat_weight`` Q_f, ``frame_mat_weight2``
    Q_f2 ``[T, T]``; plus ``temporal`` (seqTransf). At D=512, L=32, T=12: 527,792 + seqTransf.

    Shapes:
        embed_text: tokens ``[Bt, L, D]`` (normalised words), pooled ``[Bt, D]`` (normalised
            EOT vector)
        embed_video: tokens ``[Bv, T, D]`` (normalised original CLIP frames: the frame branch,
            DRGI's video nodes), pooled ``[Bv, D]`` (meanP of the seqTransf frames)
        score: ``[Nt, Nv]``; grains: ``[Nt, Nv, 4]``
    """

    section = "xclip"

    factorized = False

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        xc = cfg.xclip
        if xc.attention_temperature <= 0:
            raise ValueError(
                f"xclip.attention_temperature={xc.attention_temperature}: expected > 0"
            )
        n_words, n_frames = cfg.data.max_words, cfg.data.num_frames
        if n_words < 1 or n_frames < 1:
            raise ValueError(
                f"X-CLIP needs data.max_words >= 1 and data.num_frames >= 1 (the sizes of its "
                f"position matrices), got {n_words} and {n_frames}"
            )
        self.width = width
        self.tau = xc.attention_temperature
        self.mask_padding = xc.mask_padding
        self.temporal = TemporalTransformer.from_config(cfg, width)
        self.global_mat_weight = nn.Parameter(torch.eye(width))
        self.local_mat_weight = nn.Parameter(torch.eye(width))
        self.word_logit_weight = nn.Parameter(torch.eye(n_words))
        self.word_mat_weight = nn.Parameter(torch.eye(n_words))
        self.word_mat_weight2 = nn.Parameter(torch.eye(n_words))
        self.frame_logit_weight = nn.Parameter(torch.eye(n_frames))
        self.frame_mat_weight = nn.Parameter(torch.eye(n_frames))
        self.frame_mat_weight2 = nn.Parameter(torch.eye(n_frames))
        # [a, b, L, T] elements dominate a block
        self.block_size = block_side(n_words * n_frames)

    def init_from_text_layers(
        self, layers: Sequence[nn.Module], position_embedding: Tensor | nn.Embedding
    ) -> int:
        """Initialise the temporal module from CLIP text layers; returns the blocks copied."""
        return self.temporal.init_from_text_layers(layers, position_embedding)

    # ------------------------------------------------------------------ embedding
    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        check_nonempty(text.mask, "X-CLIP text features")
        return TokenFeatures(
            tokens=F.normalize(text.tokens, dim=-1),
            mask=text.mask,
            pooled=F.normalize(text.pooled, dim=-1),
        )

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        check_nonempty(video.mask, "X-CLIP video features")
        frames = self.temporal(video.tokens, video.mask)  # [Bv, T, D]
        return TokenFeatures(
            tokens=F.normalize(video.tokens, dim=-1),
            mask=video.mask,
            pooled=meanp_pool(frames, video.mask),
        )

    # ------------------------------------------------------------------ scoring
    def _check_lengths(self, text: TokenFeatures, video: TokenFeatures) -> None:
        n_words, n_frames = self.word_logit_weight.shape[0], self.frame_logit_weight.shape[0]
        if text.tokens.shape[1] != n_words or video.tokens.shape[1] != n_frames:
            raise ValueError(
                f"X-CLIP was built for data.max_words={n_words} and data.num_frames={n_frames}, "
                f"got texts of {text.tokens.shape[1]} tokens and videos of "
                f"{video.tokens.shape[1]} frames"
            )

    def grains(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """The four grains ``(s1, s2, s3, s4)`` of every pair of a block.

        Shapes:
            text: ``[a, L, D]``, video: ``[b, T, D]`` (embedded) -> ``[a, b, 4]``
        """
        self._check_lengths(text, video)
        tau = self.tau
        t, words = text.pooled, text.tokens  # [a, D], [a, L, D]
        v, frames = video.pooled, video.tokens  # [b, D], [b, T, D]
        vw = vf = None
        if self.mask_padding:
            vw = text.mask.bool()[:, None, :]  # [a, 1, L]
            vf = video.mask.bool()[None, :, :]  # [1, b, T]

        s1 = (t @ self.global_mat_weight) @ v.T  # [a, b]
        x = torch.einsum("ald,bd->abl", words, v)  # [a, b, L]
        s2 = attention_pool(x, self.word_logit_weight, tau, vw)
        y = torch.einsum("ad,btd->abt", t, frames)  # [a, b, T]
        s3 = attention_pool(y, self.frame_logit_weight, tau, vf)

        m = torch.einsum("ald,btd->ablt", words @ self.local_mat_weight, frames)  # [a, b, L, T]
        s4 = self.aosm(m, vw, vf)
        return torch.stack([s1, s2, s3, s4], dim=-1)

    def aosm(self, m: Tensor, valid_w: Tensor | None = None, valid_f: Tensor | None = None) -> Tensor:
        """Attention over the word-frame similarity matrix: ``s4 = (p + q) / 2``.

        ``r_f = Σ_w M_wf [softmax_w(M_·f/τ) Q_w]_w`` (word-level pooling per frame),
        ``c_w = Σ_f M_wf [softmax_f(M_w·/τ) Q_f]_f`` (frame-level pooling per word),
        ``p = Σ_f r_f [softmax_f(r/τ) Q_f2]_f``, ``q = Σ_w c_w [softmax_w(c/τ) Q_w2]_w``.

        Args:
            m: ``[..., L, T]`` word-frame similarities.
            valid_w: optional ``[..., L]`` bool (broadcastable), valid_f: ``[..., T]`` bool.

        Shapes:
            -> ``[...]``
        """
        tau = self.tau
        vw_row = None if valid_w is None else valid_w[..., None, :]  # over w, per frame
        vf_row = None if valid_f is None else valid_f[..., None, :]  # over f, per word
        r = attention_pool(m.transpose(-1, -2), self.word_mat_weight, tau, vw_row)  # [..., T]
        c = attention_pool(m, self.frame_mat_weight, tau, vf_row)  # [..., L]
        p = attention_pool(r, self.frame_mat_weight2, tau, valid_f)  # sentence-to-frame
        q = attention_pool(c, self.word_mat_weight2, tau, valid_w)  # video-to-word
        return 0.5 * (p + q)

    def _score_block(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        return self.grains(text, video).mean(-1)

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """X-CLIP scores of every (text, video) pair, in ``block_size``² blocks.

        Shapes:
            text: ``[Nt, L, D]``, video: ``[Nv, T, D]`` (embedded) -> ``[Nt, Nv]``
        """
        self._check_lengths(text, video)
        return score_in_blocks(  # type: ignore[return-value]
            self._score_block, text, video, self.block_size, self.block_size
        )
