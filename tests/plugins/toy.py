"""A toy method as a plug-in: a head, an objective and their config sections, registered from
outside ``tvr`` (docs/adding-a-method.md walks through this file).

- Head ``toy``: a learned linear map of the pooled vectors, scored by cosine (factorized).
- Objective ``toy_align``: pulls each pair's score towards 1, ``weight * mean(1 - sim_ii)``.

A config uses them with ``plugins: [tests.plugins.toy]``, ``head: {name: toy}`` and
``toy_align`` in its ``objectives`` (tests/plugins/toy.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead
from tvr.objectives.base import Objective
from tvr.registry import register


@register("section", "toy")
@dataclass
class ToyConfig:
    gain: float = 1.0  # the map starts as gain * identity


@register("head", "toy")
class ToyHead(SimilarityHead):
    """Cosine of linearly mapped pooled vectors.

    Shapes:
        embed_text / embed_video: pooled ``[B, D]`` -> normalised ``[B, D]`` (tokens unchanged)
        score: ``[Nt, Nv]``
    """

    factorized = True
    section = "toy"  # its settings: head: {name: toy, gain: ...}

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        self.map = nn.Linear(width, width, bias=False)
        with torch.no_grad():
            self.map.weight.copy_(cfg.toy.gain * torch.eye(width))

    def _embed(self, feats: TokenFeatures) -> TokenFeatures:
        pooled = F.normalize(self.map(feats.pooled), dim=-1)  # [B, D]
        return TokenFeatures(tokens=feats.tokens, mask=feats.mask, pooled=pooled)

    def embed_text(self, text: TokenFeatures) -> TokenFeatures:
        return self._embed(text)

    def embed_video(self, video: TokenFeatures) -> TokenFeatures:
        return self._embed(video)

    def score(self, text: TokenFeatures, video: TokenFeatures) -> Tensor:
        return text.pooled @ video.pooled.T


@register("section", "toy_align")
@dataclass
class ToyAlignConfig:
    weight: float = 0.1  # loss weight


@register("objective", "toy_align")
class ToyAlign(Objective):
    """``weight * mean_i (1 - sim_ii)`` over this rank's pairs.

    Shapes:
        outputs["sim"]: ``[B, B]`` (texts on rows)
    """

    training_only = True
    section = "toy_align"
    order = 60

    def __init__(self, cfg: ExperimentConfig, width: int) -> None:
        super().__init__()
        self.weight = cfg.toy_align.weight

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        sim = outputs["sim"]  # [B, B] over the gathered batch
        pairs = torch.arange(len(sim), device=sim.device)[outputs.get("local") or slice(None)]
        gap = (1.0 - sim[pairs, pairs]).mean()  # this rank's pairs
        return {"toy_align_loss": self.weight * gap, "toy_align_gap": gap.detach()}
