"""A point budget for a 2-D embedding map: which points a chart draws when there are too many.

A map of a few thousand videos holds 10^5 word, frame, caption and video points; drawing all
of them makes every rerun slow (each point is sent to the browser). :func:`budget_sample`
keeps a capped, stratified, deterministic subset:

- the *forced* points (the marked query, its ground truth and top negatives, the selection,
  the found items) are always kept, even past the budget;
- the rest of the budget is shared between the kinds (:data:`analysis.embedding_map.KINDS`) in
  proportion to how many candidates of each kind there are (largest remainders), so every kind
  keeps the same share of its points;
- within a kind, the points with the lowest fixed random priority (one draw per point from
  ``seed``) are kept. The sample is the same from run to run, a smaller budget's sample is a
  subset of a larger one's, and two maps with the same point layout (the base and DRGI maps of
  one split) keep the same points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.apportion import largest_remainder
from analysis.embedding_map import KINDS, MapPoints


@dataclass(frozen=True)
class BudgetSample:
    """The points a map draws under a budget.

    Attributes:
        ids: ``[S]`` int64 sorted point ids to draw.
        candidates: how many points were eligible (the kinds shown).
        forced: how many of ``ids`` were forced (kept whatever the budget).
        per_kind: ``{kind: (kept, candidates)}`` for each of :data:`KINDS`.
    """

    ids: np.ndarray
    candidates: int
    forced: int
    per_kind: dict[str, tuple[int, int]]

    @property
    def complete(self) -> bool:
        """Whether every candidate is drawn."""
        return len(self.ids) == self.candidates


def budget_sample(points: MapPoints, budget: int, *, candidates: np.ndarray | None = None,
                  forced: np.ndarray | None = None, seed: int = 0) -> BudgetSample:
    """The points to draw: every forced candidate plus a stratified sample of the rest.

    Args:
        points: the map's points.
        budget: the most points to draw (forced points count towards it, but are kept even
            when they alone exceed it).
        candidates: ``[P]`` bool, the points that may be drawn (e.g. the kinds shown); all by
            default.
        forced: ``[P]`` bool, the candidates always drawn; none by default.
        seed: the seed of the per-point priorities.

    Raises:
        ValueError: a budget below 1, or a mask whose length is not the number of points.

    Shapes:
        -> ``ids [S]`` with ``S <= max(budget, forced.sum())``.
    """
    n = len(points)
    if int(budget) < 1:
        raise ValueError(f"point budget={budget}: expected a positive number of points")
    masks = {}
    for name, mask in (("candidates", candidates), ("forced", forced)):
        mask = np.ones(n, bool) if mask is None and name == "candidates" else (
            np.zeros(n, bool) if mask is None else np.asarray(mask, dtype=bool))
        if mask.shape != (n,):
            raise ValueError(f"{name}: expected a [{n}] bool mask (one per map point), got "
                             f"shape {mask.shape}")
        masks[name] = mask
    cand = masks["candidates"]
    keep = masks["forced"] & cand
    free = cand & ~keep
    free_by_kind = np.bincount(points.kind[free], minlength=len(KINDS))
    room = max(int(budget) - int(keep.sum()), 0)
    shares = largest_remainder(free_by_kind, room)
    priority = np.random.default_rng(seed).random(n)
    for k, share in enumerate(shares.tolist()):
        if share == 0:
            continue
        ids = np.flatnonzero(free & (points.kind == k))
        if share < len(ids):
            ids = ids[np.argpartition(priority[ids], share - 1)[:share]]
        keep[ids] = True
    per_kind = {kind: (int((keep & (points.kind == k)).sum()),
                       int((cand & (points.kind == k)).sum()))
                for k, kind in enumerate(KINDS)}
    return BudgetSample(ids=np.flatnonzero(keep).astype(np.int64), candidates=int(cand.sum()),
                        forced=int((masks["forced"] & cand).sum()), per_kind=per_kind)
