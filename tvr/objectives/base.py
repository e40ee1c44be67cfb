"""The objective contract.

An objective is an ``nn.Module`` living inside ``Retriever.objectives`` (so DDP syncs its
gradients and checkpoints hold it). ``forward(outputs, batch)`` returns a dict: keys ending in
``_loss`` are weighted scalar losses that the trainer sums; every other key is a detached scalar
reported in the log.

``outputs`` (from ``Retriever.forward``), gathered across ranks during DDP training:
    text: TokenFeatures ``[B, L, D]`` after ``head.embed_text`` (word nodes)
    video: TokenFeatures ``[B, T, D]`` after ``head.embed_video`` (frame nodes)
    sim: ``[B, B]`` cosine-scale similarity from ``head.score`` (texts on rows)
    logit_scale: scalar lambda = exp(logit_scale parameter)
    video_index: ``[B]`` dataset video index of each pair
    local: ``slice`` of this rank's rows within the gathered batch
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn


class Objective(nn.Module):
    """Base class; subclasses set ``training_only`` (dropped by ``Retriever.for_inference``).

    A config trains with the objectives its ``objectives`` list names (the model builder and
    the model card both read that list). Declared here:

    - ``section``: the config section holding its settings, a dataclass with a ``weight``
      field (its loss weight) registered under ``section``; an entry of ``objectives`` is
      ``{name, weight, ...the other fields}``;
    - ``owner_head``: it trains only with this head (TC-MGC's SDR); None: any head;
    - ``replaces``: an objective it cannot be listed with, and which adding it by override
      removes (NegNCE replaces InfoNCE);
    - ``order``: position among the objectives (construction and loss-summing order; the
      list is kept in this order);
    - ``needs_head``: a head whose outputs the objective reads (None: any head's).
    """

    training_only: bool = True
    section: ClassVar[str] = ""
    owner_head: ClassVar[str | None] = None
    replaces: ClassVar[str | None] = None
    order: ClassVar[int] = 50
    needs_head: ClassVar[str | None] = None

    def on_step(self, step: int, log: bool = True) -> None:
        """Called by the trainer before every step with the optimiser steps done so far and
        whether the step's report is logged (objectives with schedules or costly diagnostics
        override it)."""

    def forward(self, outputs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError
