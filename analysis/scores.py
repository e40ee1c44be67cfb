"""Summaries of per-query score arrays: ground-truth margins and DRGI discriminator scores.

- :func:`margin_summary` condenses :func:`analysis.hard_negatives.margin_distribution`
  (``s(GT) - max s(negative)`` per query) into a few numbers.
- :func:`discriminator_summary` condenses DRGI's discriminator scores on the positive graphs
  (the anchor pair) and on the hard-negative graphs (:class:`analysis.bundle.DRGIScores`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def _vector(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array (one value per query), got {a.shape}")
    return a


@dataclass(frozen=True)
class MarginSummary:
    """Summary of per-query margins.

    Attributes:
        n: queries.
        mean, median: of the margins.
        negative_share: fraction of queries a negative beats (margin < 0).
        tie_share: fraction of queries whose best negative ties the ground truth (margin 0).
    """

    n: int
    mean: float
    median: float
    negative_share: float
    tie_share: float


def margin_summary(margins: Any) -> MarginSummary:
    """Mean, median and the share of beaten queries of per-query margins.

    Shapes:
        margins ``[N]`` (finite, N >= 1) -> :class:`MarginSummary`.
    """
    m = _vector(margins, "margins")
    if m.size == 0:
        raise ValueError("margins is empty; expected one margin per query")
    if not np.isfinite(m).all():
        raise ValueError("margins: expected finite values")
    return MarginSummary(
        n=int(m.size),
        mean=float(m.mean()),
        median=float(np.median(m)),
        negative_share=float((m < 0).mean()),
        tie_share=float((m == 0).mean()),
    )


@dataclass(frozen=True)
class DiscriminatorSummary:
    """DRGI discriminator scores on positive vs hard-negative graphs of one query direction.

    Attributes:
        n: queries with a hard negative (the others are left out everywhere).
        pos_mean: mean score of the positive graphs (1 = judged "belongs to the summary").
        neg_mean: mean score of the hard-negative graphs (0 = judged corrupted).
        separated_share: fraction of queries whose positive scores above its negative.
        pos: ``[n]`` the positive scores kept; neg: ``[n]`` the negative scores kept.
    """

    n: int
    pos_mean: float
    neg_mean: float
    separated_share: float
    pos: np.ndarray
    neg: np.ndarray

    @property
    def gap(self) -> float:
        """``pos_mean - neg_mean``."""
        return self.pos_mean - self.neg_mean


def discriminator_summary(pos: Any, neg: Any, valid: Any | None = None) -> DiscriminatorSummary:
    """Summarise discriminator scores of positive and hard-negative graphs.

    Args:
        pos: ``[N]`` score of each query's positive graph pair (e.g. ``DRGIScores.pos``).
        neg: ``[N]`` score of its hard-negative pair (NaN where there is none).
        valid: ``[N]`` bool, the query has a negative (default: both scores finite).

    Returns:
        A :class:`DiscriminatorSummary` over the valid queries (NaN means when none is).

    Shapes:
        pos ``[N]``, neg ``[N]``, valid ``[N]`` -> :class:`DiscriminatorSummary`.
    """
    p = _vector(pos, "pos")
    q = _vector(neg, "neg")
    if p.shape != q.shape:
        raise ValueError(f"pos {p.shape} and neg {q.shape} must have the same shape")
    keep = np.isfinite(p) & np.isfinite(q)
    if valid is not None:
        v = np.asarray(valid)
        if v.shape != p.shape:
            raise ValueError(f"valid: expected shape {p.shape}, got {v.shape}")
        keep &= v.astype(bool)
    p, q = p[keep], q[keep]
    if p.size == 0:
        nan = float("nan")
        return DiscriminatorSummary(0, nan, nan, nan, p, q)
    return DiscriminatorSummary(
        n=int(p.size),
        pos_mean=float(p.mean()),
        neg_mean=float(q.mean()),
        separated_share=float((p > q).mean()),
        pos=p,
        neg=q,
    )
