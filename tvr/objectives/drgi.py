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

Beyond §9.3, the allowed variants of methods.md §9.9 are switches of the ``drgi`` config
section (GATv2, root term, temperature, top-k graphs, attention readout, token-level scoring,
pooled embedding as node / summary, random / semi-hard / curriculum negatives, DGI's shuffle
corruption, λ warm-up, detached inputs); docs/drgi.md lists them with their parameter cost.
:meth:`DRGI.diagnostics` reports why the objective does or does not learn.

Parameters at width 512 with the defaults: 2 × (512·64 + 128) + 2 × (64·64 + 1) = 73,986;
factor mode (8 × 64 chunks, 8 heads): 75,778. The modules are named ``text`` and ``video`` after
the nodes they encode and score: ``text.encoder`` (GAT_t), ``text.discriminator`` (D_vt in cross
mode, D_t in intra mode), and likewise for video.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tvr.config import ConfigError, ExperimentConfig
from tvr.config.methods.drgi import check_drgi_config
from tvr.models.features import TokenFeatures
from tvr.models.graph import (
    AttentionReadout,
    BilinearDiscriminator,
    DenseGAT,
    GraphEncoding,
    GraphInfomax,
    infomax_bce,
)
from tvr.objectives.base import Objective
from tvr.objectives.drgi_diagnostics import (
    attention_entropy,
    attention_logit_range,
    mean_pairwise_cosine,
    nanmean,
    node_mean_sigmoid,
    pairwise_accuracy,
)
from tvr.objectives.drgi_negatives import (
    HardNegatives,
    mine_negatives,
    negatives_at,
    sample_negatives,
)
from tvr.registry import register

log = logging.getLogger(__name__)


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
        shuffle_text_scores, shuffle_video_scores: ``[A, Nt]`` / ``[A, Nv]`` nodes of the
            shuffled-feature corruption of the anchor's own graphs (``drgi.shuffle_corruption``;
            None otherwise), masked like the positives
        text_inputs, video_inputs: the node features the GATs read ``[B, N, d]`` (diagnostics)
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
    shuffle_text_scores: Tensor | None = None
    shuffle_video_scores: Tensor | None = None
    text_inputs: Tensor | None = None
    video_inputs: Tensor | None = None

    @property
    def pos_text_mask(self) -> Tensor:
        return self.text.mask[self.anchors]

    @property
    def pos_video_mask(self) -> Tensor:
        return self.video.mask[self.anchors]

    def _negatives(self, side: str) -> tuple[Tensor, Tensor]:
        """Every negative node score of one side per anchor: ``[A, M]`` scores and mask."""
        a = len(self.anchors)
        scores = getattr(self, f"neg_{side}_scores").reshape(a, -1)
        mask = getattr(self, f"neg_{side}_mask").reshape(a, -1)
        shuffled = getattr(self, f"shuffle_{side}_scores")
        if shuffled is not None:
            scores = torch.cat([scores, shuffled], dim=-1)
            mask = torch.cat([mask, getattr(self, f"pos_{side}_mask")], dim=-1)
        return scores, mask

    def anchor_losses(self) -> Tensor:
        """Per-anchor ``½ (ℓ^{video nodes} + ℓ^{text nodes})``; ``[A]``."""
        video_term = infomax_bce(self.pos_video_scores, self.pos_video_mask,
                                 *self._negatives("video"))
        text_term = infomax_bce(self.pos_text_scores, self.pos_text_mask,
                                *self._negatives("text"))
        return 0.5 * (video_term + text_term)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over the last dim's valid entries; ``[A, N] -> [A]``."""
    total = torch.where(mask, values, 0.0).sum(-1)
    return total / mask.sum(-1).clamp_min(1).to(values.dtype)


# --------------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------------


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
    section = "drgi"
    order = 90  # last: reads the scores the others train

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        check_drgi_config(cfg.drgi)
        # DRGI draws from its own random stream, here and in forward: the base model's random
        # draws (dropout masks of TC-MGC, GARE, ...) stay those of the same-seed run without
        # DRGI, so a paired base / DRGI difference measures DRGI's gradient only.
        rng = torch.get_rng_state()
        try:
            self._build(cfg.drgi, width)
            self.seed = int(torch.randint(0, 2**31 - 1, ()).item())  # of its forward stream
        finally:
            torch.set_rng_state(rng)

    def _build(self, d: Any, width: int) -> None:
        """Settings and sub-modules from the ``drgi`` section (``d``)."""
        self.mode = d.mode
        self.nodes = d.nodes
        self.topm = d.neg_topm
        self.exclude_same_video = d.exclude_same_video
        self.weight = d.weight
        self.factor_k = d.factor_k
        self.score_mode = d.score
        self.global_node = d.global_node
        self.summary_mode = d.summary
        self.negatives = d.negatives
        self.semihard_k = d.semihard_k
        self.curriculum = (int(d.curriculum[0]), int(d.curriculum[1]))
        self.shuffle_corruption = d.shuffle_corruption
        self.weight_warmup = d.weight_warmup
        self.detach_inputs = d.detach_inputs
        self.step = 0  # optimiser steps done (set by the trainer through on_step)
        self.diagnose = True  # add the diagnostic report (the trainer sets it on log steps)
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
            gat = DenseGAT(
                in_dim, d.hidden, heads, d.activation, d.attn_dropout,
                attention=d.attention, root=d.root, temperature=d.attn_temperature,
                learn_temperature=d.learn_temperature, topk=d.graph_topk,
            )
            readout = AttentionReadout(d.hidden) if d.readout == "attention" else None
            return GraphInfomax(gat, BilinearDiscriminator(d.hidden), d.l2norm_inputs, readout)

        self.text = branch()
        self.video = branch()

    @contextlib.contextmanager
    def own_random_stream(self, device: torch.device) -> Iterator[None]:
        """Run a block on DRGI's random stream (negatives, shuffle corruption, attention
        dropout): seeded by the objective's seed and the step, so a resumed run draws the same;
        the global generators of the CPU and ``device`` are restored afterwards."""
        cuda = device.type == "cuda"
        with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda"):
            seed = self.seed * 1_000_003 + self.step
            torch.random.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            yield

    # ------------------------------------------------------------------ schedule
    def on_step(self, step: int, log: bool = True) -> None:
        """Called by the trainer before each step: steps done so far, and whether it logs."""
        self.step = int(step)
        self.diagnose = bool(log)

    @property
    def current_weight(self) -> float:
        """λ at the current step (linear warm-up over ``drgi.weight_warmup`` steps)."""
        if self.weight_warmup <= 0:
            return self.weight
        return self.weight * min(1.0, self.step / self.weight_warmup)

    @property
    def current_negatives(self) -> str:
        return negatives_at(self.negatives, self.step, self.curriculum)

    # ------------------------------------------------------------------ nodes
    def node_features(
        self, text: TokenFeatures, video: TokenFeatures
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Node features and masks of every text and video graph.

        Shapes:
            -> (text nodes ``[B, Nt, d]``, text mask ``[B, Nt]``,
                video nodes ``[B, Nv, d]``, video mask ``[B, Nv]``); token mode: Nt = L,
                Nv = T, d = D (one more node each with ``drgi.global_node``: the pooled
                embedding, last); factor mode: Nt = Nv = K, d = D / K, all nodes valid.
        """
        if self.nodes == "tokens":
            xt, mt = text.tokens, text.mask.bool()
            xv, mv = video.tokens, video.mask.bool()
            if self.global_node:
                ones = torch.ones(len(xt), 1, dtype=torch.bool, device=xt.device)
                xt = torch.cat([xt, text.pooled[:, None, :].to(xt.dtype)], dim=1)
                xv = torch.cat([xv, video.pooled[:, None, :].to(xv.dtype)], dim=1)
                mt, mv = torch.cat([mt, ones], dim=1), torch.cat([mv, ones], dim=1)
            return xt, mt, xv, mv
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

    def _pooled_summary(self, branch: GraphInfomax, pooled: Tensor) -> Tensor:
        """``drgi.summary=pooled``: sigmoid of the GAT projection of the pooled embedding.

        Shapes:
            pooled: ``[B, D]`` -> ``[B, F]``
        """
        x = F.normalize(pooled, dim=-1) if branch.normalize_inputs else pooled
        gat = branch.encoder
        z = gat.proj(x).view(len(x), gat.heads, gat.out_dim).mean(dim=1)
        return torch.sigmoid(z)

    def _encode_shuffled(self, branch: GraphInfomax, x: Tensor, mask: Tensor,
                         anchor_idx: Tensor) -> Tensor:
        """DGI's feature-shuffle corruption of the anchors' graphs: every valid node of graph i
        takes the features of a random valid node of the batch; the structure (mask) stays.

        Shapes:
            x: ``[B, N, d]``, mask: ``[B, N]``, anchor_idx: ``[A]`` -> nodes ``[A, N, F]``
        """
        pool = x[mask]  # [K, d]
        a_mask = mask[anchor_idx]
        pick = torch.randint(len(pool), a_mask.shape, device=x.device)
        return branch.encode(pool[pick], a_mask).nodes

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
        corrupt: bool = False,
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
            corrupt: also score the feature-shuffled corruption of the anchors' graphs.
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
        if self.summary_mode == "pooled":
            g_text.summary = self._pooled_summary(self.text, text.pooled)
            g_video.summary = self._pooled_summary(self.video, video.pooled)

        # What each side's nodes are scored against: cross mode the other modality's anchor
        # graph (its summary, or its nodes with drgi.score=tokens); intra mode its own summary.
        if self.mode == "cross":
            for_video, for_text = g_text, g_video
        else:
            for_video, for_text = g_video, g_text

        def score(branch: GraphInfomax, nodes: Tensor, against: GraphEncoding) -> Tensor:
            # nodes [A, N, F] or [A, m, N, F] -> [A, N] or [A, m, N]
            extra = nodes.dim() - 3
            if self.score_mode == "tokens":
                others = against.nodes[anchor_idx]  # [A, M, F]
                mask = against.mask[anchor_idx]
                for _ in range(extra):
                    others, mask = others[:, None], mask[:, None]
                return branch.discriminator.token_scores(nodes, others, mask)
            s = against.summary[anchor_idx]  # [A, F]
            for _ in range(extra):
                s = s[:, None]
            return branch.discriminate(nodes, s)

        pos_video = score(self.video, g_video.nodes[anchor_idx], for_video)  # [A, Nv]
        pos_text = score(self.text, g_text.nodes[anchor_idx], for_text)  # [A, Nt]
        neg_video = score(self.video, g_video.nodes[neg_video_idx], for_video)  # [A, m, Nv]
        neg_text = score(self.text, g_text.nodes[neg_text_idx], for_text)  # [A, m, Nt]
        shuffle_text = shuffle_video = None
        if corrupt:
            shuffle_video = score(self.video, self._encode_shuffled(self.video, xv, mv, anchor_idx),
                                  for_video)
            shuffle_text = score(self.text, self._encode_shuffled(self.text, xt, mt, anchor_idx),
                                 for_text)
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
            shuffle_text_scores=shuffle_text,
            shuffle_video_scores=shuffle_video,
            text_inputs=xt,
            video_inputs=xv,
        )

    def score_negatives(
        self, g: DRGIGraphOutputs, neg_text_idx: Tensor, neg_video_idx: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Scores of other negatives (one per anchor) on already encoded graphs.

        Shapes:
            neg_text_idx, neg_video_idx: ``[A]`` -> (text ``[A, Nt]``, video ``[A, Nv]``)
        """
        anchor_idx = g.anchors
        for_video, for_text = (g.text, g.video) if self.mode == "cross" else (g.video, g.text)
        if self.score_mode == "tokens":
            video = self.video.discriminator.token_scores(
                g.video.nodes[neg_video_idx], for_video.nodes[anchor_idx],
                for_video.mask[anchor_idx])
            text = self.text.discriminator.token_scores(
                g.text.nodes[neg_text_idx], for_text.nodes[anchor_idx], for_text.mask[anchor_idx])
        else:
            video = self.video.discriminate(g.video.nodes[neg_video_idx],
                                            for_video.summary[anchor_idx])
            text = self.text.discriminate(g.text.nodes[neg_text_idx],
                                          for_text.summary[anchor_idx])
        return text, video

    # ------------------------------------------------------------------ loss
    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Pick negatives for the local anchors, score the graphs, average the BCE.

        Returns:
            ``drgi_loss`` (``λ * L_DRGI``, λ after warm-up; mean over kept anchors), and
            detached reports: ``drgi_bce`` (unweighted L_DRGI), ``drgi_pos_score`` /
            ``drgi_neg_score`` (mean sigmoid discriminator score of positive / negative nodes,
            per-graph node means averaged over kept anchors), ``drgi_skipped`` (anchors without
            any candidate), ``drgi_weight`` (λ in force); on diagnostic steps also the
            diagnostics of :meth:`diagnostics`. When every anchor is skipped the loss is an
            exact 0 that is still connected to every parameter, and the scores read 0.
            Every random draw comes from :meth:`own_random_stream`.
        """
        with self.own_random_stream(outputs["sim"].device):
            return self._loss(outputs)

    def _loss(self, outputs: dict[str, Any]) -> dict[str, Tensor]:
        """The body of :meth:`forward`."""
        text: TokenFeatures = outputs["text"]
        video: TokenFeatures = outputs["video"]
        if outputs.get("video_index") is None:
            raise KeyError("DRGI needs outputs['video_index'] (the batch's video_index key)")
        if self.detach_inputs:  # sanity mode: no gradient leaves DRGI
            text, video = text.map(torch.Tensor.detach), video.map(torch.Tensor.detach)
        mode = self.current_negatives
        hardest = mine_negatives(
            outputs["sim"],
            outputs["video_index"],
            self.topm if mode == "hardest" else 1,
            anchors=outputs.get("local"),
            exclude_same_video=self.exclude_same_video,
        )
        negatives = hardest if mode == "hardest" else sample_negatives(
            outputs["sim"], outputs["video_index"], mode, anchors=outputs.get("local"),
            exclude_same_video=self.exclude_same_video, semihard_k=self.semihard_k,
        )
        g = self.graph_outputs(
            text,
            video,
            negatives.text,
            negatives.video,
            negatives.valid,
            anchors=negatives.anchors,
            return_attention=self.diagnose,
            corrupt=self.shuffle_corruption,
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
        weight = self.current_weight
        report = {
            "drgi_loss": weight * loss,
            "drgi_bce": loss.detach(),
            "drgi_pos_score": pos_score,
            "drgi_neg_score": neg_score,
            "drgi_skipped": torch.tensor(float(skipped)),
            "drgi_weight": torch.tensor(float(weight)),
        }
        if self.diagnose:
            with torch.no_grad():
                diag = self.diagnostics(g, hardest if mode != "hardest" else None,
                                        outputs["sim"], keep)
            # every key on every rank (NaN where undefined): ranks average the same keys
            report.update({k: torch.tensor(v) for k, v in diag.items()})
        return report

    @torch.no_grad()
    def diagnostics(
        self,
        g: DRGIGraphOutputs,
        hardest: HardNegatives | None,
        sim: Tensor,
        keep: Tensor | None = None,
    ) -> dict[str, float]:
        """Why DRGI does or does not learn, on one batch (methods.md §9.8).

        Args:
            g: graph outputs of the step (``return_attention=True`` for the attention stats).
            hardest: the hardest negatives when ``g`` was scored on other negatives (random,
                semihard), else None (``g``'s own negatives are the hardest).
            sim: ``[B, B]`` base similarity of the aligned pairs (texts on rows).
            keep: ``[A]`` anchors with a candidate (default: all).

        Returns:
            ``drgi_acc`` (positive graph outscores the training negative, both directions),
            ``drgi_acc_hard_{video,text}`` (against the hardest negative: video nodes for the
            anchor caption, text nodes for the anchor video), ``drgi_base_right_{video,text}``
            (the base similarity ranks the pair above that negative), ``drgi_acc_hard_base_
            {right,wrong}_{video,text}`` (the information test), ``drgi_entropy_{text,video}``,
            ``drgi_logit_range_{text,video}``, ``drgi_node_cos_{text,video}`` (GAT outputs),
            ``drgi_input_cos_{text,video}`` (GAT inputs). Undefined values are NaN.
        """
        anchors = g.anchors
        keep = torch.ones_like(anchors, dtype=torch.bool) if keep is None else keep
        pos_v = node_mean_sigmoid(g.pos_video_scores, g.pos_video_mask)
        pos_t = node_mean_sigmoid(g.pos_text_scores, g.pos_text_mask)
        neg_v = node_mean_sigmoid(g.neg_video_scores[:, 0], g.neg_video_mask[:, 0])
        neg_t = node_mean_sigmoid(g.neg_text_scores[:, 0], g.neg_text_mask[:, 0])
        out = {"drgi_acc": nanmean(0.5 * (pairwise_accuracy(pos_v, neg_v)
                                          + pairwise_accuracy(pos_t, neg_t))[keep])}
        if hardest is None:
            h_text, h_video, h_valid = g.neg_text_idx[:, 0], g.neg_video_idx[:, 0], g.neg_valid[:, 0]
            hard_v, hard_t = neg_v, neg_t
        else:
            h_text, h_video, h_valid = hardest.text[:, 0], hardest.video[:, 0], hardest.valid[:, 0]
            s_t, s_v = self.score_negatives(g, h_text, h_video)
            hard_v = node_mean_sigmoid(s_v, g.video.mask[h_video])
            hard_t = node_mean_sigmoid(s_t, g.text.mask[h_text])
        s = sim.detach().float()
        diag_s = s[anchors, anchors]
        base = {"video": diag_s > s[anchors, h_video], "text": diag_s > s[h_text, anchors]}
        disc = {"video": pairwise_accuracy(pos_v, hard_v), "text": pairwise_accuracy(pos_t, hard_t)}
        ok = keep & h_valid
        for side in ("video", "text"):
            acc, right = disc[side][ok], base[side][ok]
            out[f"drgi_acc_hard_{side}"] = nanmean(acc)
            out[f"drgi_base_right_{side}"] = nanmean(right.float())
            out[f"drgi_acc_hard_base_right_{side}"] = nanmean(acc[right])
            out[f"drgi_acc_hard_base_wrong_{side}"] = nanmean(acc[~right])
        for side, enc, inputs in (("text", g.text, g.text_inputs), ("video", g.video, g.video_inputs)):
            if enc.attention is not None:
                out[f"drgi_entropy_{side}"] = nanmean(attention_entropy(enc.attention, enc.mask))
                out[f"drgi_logit_range_{side}"] = nanmean(
                    attention_logit_range(enc.attention, enc.mask))
            out[f"drgi_node_cos_{side}"] = nanmean(mean_pairwise_cosine(enc.nodes, enc.mask))
            if inputs is not None:
                out[f"drgi_input_cos_{side}"] = nanmean(mean_pairwise_cosine(inputs, enc.mask))
        return out
