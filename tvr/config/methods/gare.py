"""The ``gare`` config section (head ``gare``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.models.heads.gare`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_head
from tvr.registry import register


@register("section", "gare")
@dataclass
class GAREConfig:
    temp: float = 3.0  # temperature of text-conditioned frame pooling (script 3, argparse 5)
    side: str = "text"  # text | video: which side of the pair the increment Delta is added to
    masked_softmax: bool = False  # True: pool over real frames only (code: mask after softmax)
    gap_masked_mean: bool = True  # False = code: the gap's frame mean includes padded frames
    psi_identity_init: bool = False  # True = paper: psi's Linears start as identity (code: N(0,.02))
    zero_init_delta: bool = False  # zero psi's output Linear so Delta = 0 at the first step
    dropout: float = 0.3  # dropout on psi's residual Linear
    rerank_topk: int = 0  # inference: 0 = exhaustive; K = rescore each text's meanP top-K only


GARE = declare_head("gare", "tvr.models.heads.gare", section="gare", with_objectives=("gare_reg",))
