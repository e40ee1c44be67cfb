"""DRGI: Disentangled Representation Graph Infomax, the project's reconstruction (methods.md §9).

A training-only plug-in objective. Every caption and every video becomes a fully connected graph
(token mode: one node per valid word / frame; factor mode: K chunks of the global vector). A GAT
per modality encodes the graphs, a sigmoid mean readout summarises them, and bilinear
discriminators score nodes against summaries. Positive graphs are the anchor's own; the
"semantically corrupted" graphs are hard negatives mined on the detached base similarity,
never from the anchor's own video::

    cross (default):  video nodes of G_v(i) / G_v(j*) vs the text summary s^t_i  (D on video)
                      text nodes  of G_t(i) / G_t(k*) vs the video summary s^v_i (D on text)
    intra:            video nodes vs s^v_i, text nodes vs s^t_i
    L_DRGI = mean_i ½ (ℓ^{video nodes}_i + ℓ^{text nodes}_i),  each ℓ = ½ [BCE_pos + BCE_neg]

Parameters at width 512 with the defaults: 2 × (512·64 + 128) + 2 × (64·64 + 1) = 73,986;
factor mode (8 × 64 chunks, 8 heads): 75,778. The modules are named ``text`` and ``video`` after
the nodes they encode and score: ``text.encoder`` (GAT_t), ``text.discriminator`` (D_vt in cross
mode, D_t in intra mode), and likewise for video.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from tvr.config import ConfigError, ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.graph import (
    BilinearDiscriminator,
    DenseGAT,
    GraphEncoding,
    GraphInfomax,
    infomax_bce,
)
from tvr.objectives.base import Objective
from tvr.registry import register

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Hard-negative mining
# --------------------------------------------------------------------------------------------


@dataclass
class HardNegatives:
    """Mined hard negatives of a set of anchor pairs.

    Shapes:
        anchors: ``[A]`` row indices of the anchor pairs.
        video: ``[A, m]`` hardest videos ``j*(i)`` for text i (hardest first).
        text: ``[A, m]`` hardest texts ``k*(i)`` for video i.
        valid: ``[A, m]`` bool; False where the candidate set had fewer than m members
            (the index there is a placeholder, the anchor itself).
    """

    anchors: Tensor
    video: Tensor
    text: Tensor
    valid: Tensor

    @property
    def anchor_valid(self) -> Tensor:
        """``[A]`` bool: anchors with at least one candidate (the others are skipped)."""
        return self.valid.any(dim=-1)

    @property
    def skipped(self) -> int:
        """Number of anchors whose candidate set was empty."""
        return int((~self.anchor_valid).sum())


def mine_negatives(
    sim: Tensor,
    video_index: Tensor,
    topm: int = 1,
    anchors: Tensor | slice | None = None,
    exclude_same_video: bool = True,
) -> HardNegatives:
    """Hardest negatives per anchor pair on a detached square similarity (methods.md §9.3).

    ``Cand(i) = {j : vid(j) != vid(i)}`` (or ``{j != i}`` without ``exclude_same_video``);
    ``j*(i)`` are the top-m of row ``S[i, Cand]`` (videos for text i) and ``k*(i)`` the top-m of
    column ``S[Cand, i]`` (texts for video i).

    Args:
        sim: ``[B, B]`` scores of pair-aligned texts (rows) and videos (columns); detached here.
        video_index: ``[B]`` video id of each pair.
        topm: negatives per anchor and direction (>= 1).
        anchors: rows to mine for (index tensor or slice); all rows by default.
        exclude_same_video: False only for ablations (then only ``j == i`` is excluded).

    Returns:
        :class:`HardNegatives` whose indices point into the B pairs.
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(
            f"mine_negatives needs a square [B, B] similarity of aligned pairs, got "
            f"{tuple(sim.shape)}"
        )
    b = sim.shape[0]
    if video_index.shape != (b,):
        raise ValueError(
            f"mine_negatives: video_index has shape {tuple(video_index.shape)}, expected ({b},)"
        )
    if topm < 1:
        raise ValueError(f"drgi.neg_topm={topm}: expected at least 1")
    if bool(torch.isnan(sim).any()):
        raise ValueError("mine_negatives: the similarity matrix holds NaN scores")
    device = sim.device
    all_rows = torch.arange(b, device=device)
    anchor_idx = all_rows if anchors is None else all_rows[anchors]  # [A]
    s = sim.detach().float()
    vid = video_index.to(device)
    if exclude_same_video:
        cand = vid[None, :] != vid[anchor_idx][:, None]  # [A, B]
    else:
        cand = all_rows[None, :] != anchor_idx[:, None]
    k = min(topm, b)
    neg_inf = float("-inf")
    rows = s[anchor_idx].masked_fill(~cand, neg_inf)  # [A, B]: text i vs videos
    cols = s[:, anchor_idx].T.masked_fill(~cand, neg_inf)  # [A, B]: video i vs texts
    row_idx = rows.topk(k, dim=-1).indices
    col_idx = cols.topk(k, dim=-1).indices
    # Both directions share Cand(i): entry r is a real candidate iff r < |Cand(i)|.
    valid = torch.arange(k, device=device)[None, :] < cand.sum(-1, keepdim=True)  # [A, k]
    placeholder = anchor_idx[:, None].expand(-1, k)
    return HardNegatives(
        anchors=anchor_idx,
        video=torch.where(valid, row_idx, placeholder),
        text=torch.where(valid, col_idx, placeholder),
        valid=valid,
    )


# --------------------------------------------------------------------------------------------
# Graph outputs
# --------------------------------------------------------------------------------------------


@dataclass
class DRGIGraphOutputs:
    """Everything DRGI computes for a set of anchor pairs (for the loss and for analysis).

    ``text`` / ``video`` encode every item that was passed in; the score tensors cover only the
    anchors. Scores are discriminator logits; ``torch.sigmoid`` gives probabilities.

    Shapes:
        text: nodes ``[B, Nt, F]``, mask ``[B, Nt]``, summary ``[B, F]``,
            attention ``[B, H, Nt, Nt]`` (when requested)
        video: nodes ``[B, Nv, F]``, mask ``[B, Nv]``, summary ``[B, F]``,
            attention ``[B, H, Nv, Nv]`` (when requested)
        anchors: ``[A]``
        pos_text_scores: ``[A, Nt]`` nodes of G_t(i) vs the anchor's summary
        pos_video_scores: ``[A, Nv]`` nodes of G_v(i) vs the anchor's summary
        neg_text_scores, neg_text_mask: ``[A, m, Nt]`` nodes of G_t(k*(i)) (mask: valid node
            of a valid negative)
        neg_video_scores, neg_video_mask: ``[A, m, Nv]`` nodes of G_v(j*(i))
        neg_text_idx, neg_video_idx, neg_valid: ``[A, m]``
    """

    text: GraphEncoding
    video: GraphEncoding
    anchors: Tensor
    pos_text_scores: Tensor
    pos_video_scores: Tensor
    neg_text_scores: Tensor
    neg_text_mask: Tensor
    neg_video_scores: Tensor
    neg_video_mask: Tensor
    neg_text_idx: Tensor
    neg_video_idx: Tensor
    neg_valid: Tensor

    @property
    def pos_text_mask(self) -> Tensor:
        return self.text.mask[self.anchors]

    @property
    def pos_video_mask(self) -> Tensor:
        return self.video.mask[self.anchors]

    def anchor_losses(self) -> Tensor:
        """Per-anchor ``½ (ℓ^{video nodes} + ℓ^{text nodes})``; ``[A]``."""
        a = len(self.anchors)
        video_term = infomax_bce(
            self.pos_video_scores,
            self.pos_video_mask,
            self.neg_video_scores.reshape(a, -1),
            self.neg_video_mask.reshape(a, -1),
        )
        text_term = infomax_bce(
            self.pos_text_scores,
            self.pos_text_mask,
            self.neg_text_scores.reshape(a, -1),
            self.neg_text_mask.reshape(a, -1),
        )
        return 0.5 * (video_term + text_term)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over the last dim's valid entries; ``[A, N] -> [A]``."""
    total = torch.where(mask, values, 0.0).sum(-1)
    return total / mask.sum(-1).clamp_min(1).to(values.dtype)


# --------------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------------


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"config key {key!r}: got {value!r}, expected one of {', '.join(choices)}"
        )


@register("objective", "drgi")
class DRGI(Objective):
    """The DRGI loss ``weight * L_DRGI``; see the module docstring and methods.md §9.

    Args:
        cfg: experiment config; the ``drgi`` section.
        width: feature width D of the head's embedded tokens.

    Shapes:
        outputs["text"]: TokenFeatures ``[B, L, D]`` (word nodes; pooled ``[B, D]`` in factor mode)
        outputs["video"]: TokenFeatures ``[B, T, D]`` (frame nodes)
        outputs["sim"]: ``[B, B]`` (detached here), outputs["video_index"]: ``[B]``,
        outputs["local"]: slice of the anchor rows
    """

    training_only = True

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        d = cfg.drgi
        _check_choice("drgi.mode", d.mode, ("cross", "intra"))
        _check_choice("drgi.nodes", d.nodes, ("tokens", "factors"))
        _check_choice("drgi.activation", d.activation, ("elu", "prelu"))
        _check_choice("drgi.factor_video", d.factor_video, ("mean", "text_conditioned"))
        if d.hidden < 1:
            raise ConfigError(f"config key 'drgi.hidden': got {d.hidden}, expected >= 1")
        if d.heads < 0:
            raise ConfigError(f"config key 'drgi.heads': got {d.heads}, expected >= 0")
        if d.neg_topm < 1:
            raise ConfigError(f"config key 'drgi.neg_topm': got {d.neg_topm}, expected >= 1")
        if not 0.0 <= d.attn_dropout < 1.0:
            raise ConfigError(
                f"config key 'drgi.attn_dropout': got {d.attn_dropout}, expected [0, 1)"
            )
        self.mode = d.mode
        self.nodes = d.nodes
        self.topm = d.neg_topm
        self.exclude_same_video = d.exclude_same_video
        self.weight = d.weight
        self.factor_k = d.factor_k
        if d.nodes == "factors":
            if d.factor_video == "text_conditioned":
                raise NotImplementedError(
                    "drgi.factor_video='text_conditioned' (pair-pooled videos from a "
                    "text-conditioned head) is not implemented; use drgi.factor_video=mean"
                )
            if d.factor_k < 1 or width % d.factor_k != 0:
                raise ConfigError(
                    f"config key 'drgi.factor_k': got {d.factor_k}, which does not divide the "
                    f"feature width D={width}"
                )
            in_dim = width // d.factor_k
            heads = d.heads or 8
        else:
            in_dim = width
            heads = d.heads or 1
        self.in_dim = in_dim

        def branch() -> GraphInfomax:
            gat = DenseGAT(in_dim, d.hidden, heads, d.activation, d.attn_dropout)
            return GraphInfomax(gat, BilinearDiscriminator(d.hidden), d.l2norm_inputs)

        self.text = branch()
        self.video = branch()

    # ------------------------------------------------------------------ nodes
    def node_features(
        self, text: TokenFeatures, video: TokenFeatures
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Node features and masks of every text and video graph.

        Shapes:
            -> (text nodes ``[B, Nt, d]``, text mask ``[B, Nt]``,
                video nodes ``[B, Nv, d]``, video mask ``[B, Nv]``); token mode: Nt = L,
                Nv = T, d = D; factor mode: Nt = Nv = K, d = D / K, all nodes valid.
        """
        if self.nodes == "tokens":
            return text.tokens, text.mask.bool(), video.tokens, video.mask.bool()
        k = self.factor_k
        t_vec = text.pooled  # [B, D]
        valid = video.mask.bool()[..., None]  # [B, T, 1]
        v_vec = torch.where(valid, video.tokens, 0.0).sum(1) / valid.sum(1).clamp_min(1).to(
            video.tokens.dtype
        )  # [B, D]
        if t_vec.shape[-1] != k * self.in_dim or v_vec.shape[-1] != k * self.in_dim:
            raise ValueError(
                f"DRGI factor mode expects width {k * self.in_dim} vectors, got text "
                f"{tuple(t_vec.shape)} and video {tuple(v_vec.shape)}"
            )
        t_nodes = t_vec.reshape(len(t_vec), k, self.in_dim)
        v_nodes = v_vec.reshape(len(v_vec), k, self.in_dim)
        ones_t = torch.ones(len(t_vec), k, dtype=torch.bool, device=t_vec.device)
        ones_v = torch.ones(len(v_vec), k, dtype=torch.bool, device=v_vec.device)
        return t_nodes, ones_t, v_nodes, ones_v

    # ------------------------------------------------------------------ graphs
    def graph_outputs(
        self,
        text: TokenFeatures,
        video: TokenFeatures,
        neg_text_idx: Tensor,
        neg_video_idx: Tensor,
        neg_valid: Tensor | None = None,
        anchors: Tensor | slice | None = None,
        return_attention: bool = False,
    ) -> DRGIGraphOutputs:
        """Encode every graph and score anchors' positive and hard-negative graphs.

        Pairs are aligned: text i and video i form pair i. Usable outside the loss, e.g. by the
        analysis export on a whole split (``mine_negatives`` gives the indices).

        Args:
            text: embedded text features of B pairs (``head.embed_text`` output).
            video: embedded video features of the same B pairs.
            neg_text_idx: ``[A, m]`` hardest texts ``k*(i)`` per anchor (indices into B).
            neg_video_idx: ``[A, m]`` hardest videos ``j*(i)`` per anchor.
            neg_valid: ``[A, m]`` bool of real negatives (default: all).
            anchors: anchor rows (default: all B pairs, then A = B).
            return_attention: also keep the GAT attention ``[B, H, N, N]``.
        """
        if len(text) != len(video):
            raise ValueError(
                f"DRGI needs aligned pairs: got {len(text)} texts and {len(video)} videos"
            )
        b = len(text)
        all_rows = torch.arange(b, device=text.tokens.device)
        anchor_idx = all_rows if anchors is None else all_rows[anchors]
        a = len(anchor_idx)
        if neg_text_idx.shape != neg_video_idx.shape or neg_text_idx.shape[:1] != (a,):
            raise ValueError(
                f"DRGI negatives: neg_text_idx {tuple(neg_text_idx.shape)} and neg_video_idx "
                f"{tuple(neg_video_idx.shape)} should both be [A={a}, m]"
            )
        if neg_valid is None:
            neg_valid = torch.ones_like(neg_text_idx, dtype=torch.bool)
        neg_valid = neg_valid.bool()

        xt, mt, xv, mv = self.node_features(text, video)
        g_text = self.text.encode(xt, mt, return_attention)
        g_video = self.video.encode(xv, mv, return_attention)

        if self.mode == "cross":  # score video nodes vs text summaries and vice versa
            s_for_video = g_text.summary[anchor_idx]  # [A, F]
            s_for_text = g_video.summary[anchor_idx]
        else:  # intra: each modality against its own summary
            s_for_video = g_video.summary[anchor_idx]
            s_for_text = g_text.summary[anchor_idx]

        pos_video = self.video.discriminate(g_video.nodes[anchor_idx], s_for_video)  # [A, Nv]
        pos_text = self.text.discriminate(g_text.nodes[anchor_idx], s_for_text)  # [A, Nt]
        neg_video = self.video.discriminate(
            g_video.nodes[neg_video_idx], s_for_video[:, None, :]
        )  # [A, m, Nv]
        neg_text = self.text.discriminate(
            g_text.nodes[neg_text_idx], s_for_text[:, None, :]
        )  # [A, m, Nt]
        return DRGIGraphOutputs(
            text=g_text,
            video=g_video,
            anchors=anchor_idx,
            pos_text_scores=pos_text,
            pos_video_scores=pos_video,
            neg_text_scores=neg_text,
            neg_text_mask=g_text.mask[neg_text_idx] & neg_valid[..., None],
            neg_video_scores=neg_video,
            neg_video_mask=g_video.mask[neg_video_idx] & neg_valid[..., None],
            neg_text_idx=neg_text_idx,
            neg_video_idx=neg_video_idx,
            neg_valid=neg_valid,
        )

    # ------------------------------------------------------------------ loss
    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mine negatives for the local anchors, score the graphs, average the BCE.

        Returns:
            ``drgi_loss`` (``weight * L_DRGI``, mean over kept anchors), and detached reports:
            ``drgi_bce`` (unweighted L_DRGI), ``drgi_pos_score`` / ``drgi_neg_score`` (mean
            sigmoid discriminator score of positive / negative nodes, per-graph node means
            averaged over kept anchors), ``drgi_skipped`` (anchors without any candidate).
            When every anchor is skipped the loss is an exact 0 that is still connected to
            every parameter, and the scores read 0.
        """
        text: TokenFeatures = outputs["text"]
        video: TokenFeatures = outputs["video"]
        if outputs.get("video_index") is None:
            raise KeyError("DRGI needs outputs['video_index'] (the batch's video_index key)")
        negatives = mine_negatives(
            outputs["sim"],
            outputs["video_index"],
            self.topm,
            anchors=outputs.get("local"),
            exclude_same_video=self.exclude_same_video,
        )
        g = self.graph_outputs(
            text,
            video,
            negatives.text,
            negatives.video,
            negatives.valid,
            anchors=negatives.anchors,
        )
        keep = negatives.anchor_valid  # [A]
        n_keep = keep.sum().clamp_min(1).to(g.pos_video_scores.dtype)
        # Skipped anchors are weighted 0 (not dropped) so every parameter stays in the graph.
        loss = torch.where(keep, g.anchor_losses(), 0.0).sum() / n_keep
        skipped = int((~keep).sum())
        if skipped:
            log.debug("DRGI skipped %d of %d anchors (no candidate negative)", skipped, len(keep))

        with torch.no_grad():
            a = len(g.anchors)
            pos = 0.5 * (
                _masked_mean(torch.sigmoid(g.pos_video_scores), g.pos_video_mask)
                + _masked_mean(torch.sigmoid(g.pos_text_scores), g.pos_text_mask)
            )
            neg = 0.5 * (
                _masked_mean(
                    torch.sigmoid(g.neg_video_scores).reshape(a, -1),
                    g.neg_video_mask.reshape(a, -1),
                )
                + _masked_mean(
                    torch.sigmoid(g.neg_text_scores).reshape(a, -1),
                    g.neg_text_mask.reshape(a, -1),
                )
            )
            pos_score = torch.where(keep, pos, 0.0).sum() / n_keep
            neg_score = torch.where(keep, neg, 0.0).sum() / n_keep
        return {
            "drgi_loss": self.weight * loss,
            "drgi_bce": loss.detach(),
            "drgi_pos_score": pos_score,
            "drgi_neg_score": neg_score,
            "drgi_skipped": torch.tensor(float(skipped)),
        }
