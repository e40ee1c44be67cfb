"""The retrieval model: encoder -> similarity head, with training objectives attached.

``Retriever.forward(batch)`` returns the outputs dict that objectives read (see
``tvr/objectives/base.py``); ``Retriever.losses`` turns it into a weighted total and a report.
``Retriever.for_inference()`` drops training-only modules (DRGI, CDCR): scores are unchanged and
an inference export holds no ``objectives.drgi.*`` keys.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads import build_head
from tvr.objectives import build_objectives

log = logging.getLogger(__name__)


class Retriever(nn.Module):
    """Dual-tower text-video retriever.

    Args:
        cfg: the experiment config (head, objectives, logit scale).
        encoder: a backbone implementing ``encode_text`` / ``encode_video`` -> TokenFeatures.

    Shapes:
        batch["text"]: ``[B, L]`` token ids, batch["text_mask"]: ``[B, L]``
        batch["video"]: ``[B, T, 3, H, W]``, batch["video_mask"]: ``[B, T]``
        batch["video_index"]: ``[B]``
        batch["video_features"]: optional TokenFeatures ``[B, T, D]`` of a frozen vision tower,
        used instead of encoding ``video`` (then ``video``/``video_mask`` may be absent)
        forward -> dict with ``sim [B', B']`` (B' = global batch when gathering)
    """

    def __init__(self, cfg: ExperimentConfig, encoder: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        width = int(encoder.embed_dim)
        self.head = build_head(cfg, width)
        self.objectives = build_objectives(cfg, width)
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg.model.init_logit_scale)))

    # ---------------------------------------------------------------- encoding
    def encode_text(self, text: Tensor, text_mask: Tensor) -> TokenFeatures:
        """Token ids ``[B, L]`` -> head-embedded text features ``[B, L, D]``."""
        return self.head.embed_text(self.encoder.encode_text(text, text_mask))

    def encode_video(self, video: Tensor, video_mask: Tensor) -> TokenFeatures:
        """Frames ``[B, T, 3, H, W]`` -> head-embedded video features ``[B, T, D]``."""
        return self.head.embed_video(self.encoder.encode_video(video, video_mask))

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        """Cosine-scale scores ``[Nt, Nv]`` of embedded features."""
        return self.head.score(text, video)

    @property
    def factorized(self) -> bool:
        return bool(self.head.factorized)

    # ---------------------------------------------------------------- training
    def forward(
        self,
        batch: dict[str, Tensor],
        gather: Callable[[Tensor], Tensor] | None = None,
        rank: int = 0,
        with_losses: bool = False,
    ) -> dict[str, Any]:
        """Encode a batch, optionally gather across ranks, and score all pairs.

        Args:
            batch: a collated batch (keys in DESIGN.md).
            gather: a differentiable all-gather (``tvr.distributed.all_gather_with_grad``) or None.
            rank: this process's rank, to locate the local rows in the gathered batch.
            with_losses: also run the objectives (adds ``loss`` and ``report``). Under DDP the
                objectives must run inside ``forward`` so their parameters are tracked.
        """
        text = self.encode_text(batch["text"], batch["text_mask"])
        cached = batch.get("video_features")  # a frozen tower's features (tvr.models.frozen_video)
        if cached is not None:
            video = self.head.embed_video(cached)
        else:
            video = self.encode_video(batch["video"], batch["video_mask"])
        video_index = batch["video_index"]
        n_local = len(text)
        local = slice(0, n_local)
        if gather is not None:
            text = text.map(gather)
            video = video.map(gather)
            video_index = gather(video_index)
            local = slice(rank * n_local, (rank + 1) * n_local)
        # {"sim": ..., extras}: the extras are what the head's objectives read (GARE's
        # increments, TC-MGC's grains); plain heads return the scores only.
        scored = self.head.score_outputs(text, video)
        outputs: dict[str, Any] = {
            "text": text,
            "video": video,
            **scored,
            "head": self.head,
            "logit_scale": self.logit_scale.exp(),
            "video_index": video_index,
            "local": local,
        }
        if with_losses:
            outputs["loss"], outputs["report"] = self.losses(outputs, batch)
        return outputs

    def losses(
        self, outputs: dict[str, Any], batch: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        """Sum the weighted ``*_loss`` terms of every objective.

        Returns:
            (total loss, report of every objective's scalars as floats); the weighted terms
            are also left in ``outputs["loss_terms"]``.
        """
        total: Tensor | None = None
        report: dict[str, float] = {}
        terms: dict[str, Tensor] = {}
        for objective in self.objectives.values():
            result = objective(outputs, batch)
            for key, value in result.items():
                if key.endswith("_loss"):
                    terms[key] = value
                    total = value if total is None else total + value
                report[key] = float(value.detach()) if isinstance(value, Tensor) else float(value)
        if total is None:
            raise RuntimeError("the model has no objective producing a *_loss term")
        outputs["loss_terms"] = terms  # each weighted term, for gradient diagnostics
        report["loss"] = float(total.detach())
        report["logit_scale"] = float(outputs["logit_scale"].detach())
        return total, report

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        self.logit_scale.clamp_(max=float(self.cfg.model.max_logit_scale))

    # ---------------------------------------------------------------- inference
    def for_inference(self) -> Retriever:
        """A copy without training-only objectives, in eval mode."""
        model = copy.copy(self)
        model._modules = dict(self._modules)  # shallow: share encoder and head weights
        model.objectives = nn.ModuleDict(
            {k: v for k, v in self.objectives.items() if not getattr(v, "training_only", True)}
        )
        return model.eval()

    def parameter_report(self) -> dict[str, int]:
        """Trainable parameter counts of the encoder, the head and each objective."""

        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters() if p.requires_grad)

        report = {"encoder": count(self.encoder), "head": count(self.head)}
        for name, obj in self.objectives.items():
            report[f"objective.{name}"] = count(obj)
        report["total"] = count(self)
        return report
