"""Per-query comparison of two rankings (model A = base, model B = candidate, e.g. DRGI).

Inputs are per-query ground-truth ranks: 1-based integers, ``rank = 1 + #{other items scoring
at least the ground truth}`` (ties count against the model: the project's tie rule,
``spec/data_and_metrics.md`` §11.2, computed once in :mod:`tvr.metrics`).
Both rank vectors must describe the same queries in the same order.

Sign conventions, used everywhere in this module:

- ``delta = rank_b - rank_a``: negative means B ranks the ground truth better.
- ``outcome`` is seen from B: ``win`` when B's rank is strictly better (lower), ``loss`` when it
  is strictly worse, ``tie`` otherwise.
- Metric differences are always ``B - A`` in the metric's own unit: percentage points for
  ``R@K``, ranks for ``MnR`` (negative = B better), reciprocal rank for ``rr`` (i.e. MRR;
  positive = B better).

Paired significance (:func:`~analysis.stats.paired_test`, :func:`~analysis.stats.bootstrap_ci`,
:func:`~analysis.stats.paired_summary`) lives in :mod:`analysis.stats`, the rank checks in
:mod:`analysis.rank_inputs`; both are re-exported here for existing callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.rank_inputs import as_ranks, paired_ranks

OUTCOMES = ("win", "tie", "loss")


# --------------------------------------------------------------------------------------------
# per-query table
# --------------------------------------------------------------------------------------------


def compare_rankings(
    ranks_a: Any,
    ranks_b: Any,
    *,
    query_ids: Sequence[Any] | np.ndarray | None = None,
    captions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Build the per-query comparison table of two rankings.

    Args:
        ranks_a: ``[N]`` ground-truth ranks of model A (1-based).
        ranks_b: ``[N]`` ground-truth ranks of model B for the same queries.
        query_ids: optional ``[N]`` ids used as the index (default ``0..N-1``).
        captions: optional ``[N]`` query texts, stored in a ``caption`` column.

    Returns:
        DataFrame indexed by ``query`` with columns ``caption`` (when given), ``rank_a``,
        ``rank_b``, ``delta`` (``rank_b - rank_a``; negative = B better), ``rr_a``, ``rr_b``
        (reciprocal ranks) and ``outcome`` (``win``/``tie``/``loss`` from B's point of view).
    """
    a, b = paired_ranks(ranks_a, ranks_b)
    n = a.size
    if query_ids is None:
        index = pd.RangeIndex(n, name="query")
    else:
        ids = list(query_ids)
        if len(ids) != n:
            raise ValueError(f"query_ids has {len(ids)} entries but there are {n} queries")
        index = pd.Index(ids, name="query")
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise ValueError(f"query_ids: id {dup!r} occurs more than once")
    delta = b - a
    outcome = np.where(delta < 0, "win", np.where(delta > 0, "loss", "tie"))
    columns: dict[str, Any] = {}
    if captions is not None:
        caps = [str(c) for c in captions]
        if len(caps) != n:
            raise ValueError(f"captions has {len(caps)} entries but there are {n} queries")
        columns["caption"] = caps
    columns.update(
        rank_a=a,
        rank_b=b,
        delta=delta,
        rr_a=1.0 / a,
        rr_b=1.0 / b,
        outcome=outcome.astype(object),
    )
    return pd.DataFrame(columns, index=index)


def _check_table(table: pd.DataFrame, required: Sequence[str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected the DataFrame of compare_rankings(), got {type(table).__name__}")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(
            f"table lacks column(s) {missing}; build it with compare_rankings() "
            f"(has {list(table.columns)})"
        )


def win_tie_loss(table: pd.DataFrame) -> dict[str, int]:
    """Count outcomes of a :func:`compare_rankings` table.

    Returns:
        ``{"win": int, "tie": int, "loss": int}`` from B's point of view.
    """
    _check_table(table, ["outcome"])
    unknown = set(table["outcome"].unique()) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"table['outcome'] holds {sorted(map(str, unknown))}; expected {OUTCOMES}")
    counts = table["outcome"].value_counts()
    return {o: int(counts.get(o, 0)) for o in OUTCOMES}


# --------------------------------------------------------------------------------------------
# app helpers: metric tables, largest changes, top-k lists
# --------------------------------------------------------------------------------------------

METRIC_KEYS: tuple[str, ...] = ("R@1", "R@5", "R@10", "MdR", "MnR")
LOWER_IS_BETTER: frozenset[str] = frozenset({"MdR", "MnR"})


def tie_notes(metrics: Mapping[str, Any], run: str) -> list[str]:
    """One warning sentence per direction of ``metrics`` whose queries tie their ground truth.

    Each names ``run``, the number of tied queries and, when stored, the optimistic R@1 beside
    the project's (ties count against the model; :func:`tvr.metric_ties.tie_warning`). Empty when
    nothing is tied.

    Args:
        metrics: a ``tvr.metrics`` dict (a bundle's or a ``metrics.json`` entry).
        run: the run's name.
    """
    from tvr.metric_ties import tie_warning, tied_directions

    return [tie_warning(metrics, d, run=run) for d in tied_directions(metrics)]


def metrics_table(
    metrics_a: Mapping[str, float],
    metrics_b: Mapping[str, float] | None = None,
    *,
    directions: Sequence[str] = ("t2v", "v2t"),
    keys: Sequence[str] = METRIC_KEYS,
) -> pd.DataFrame:
    """Side-by-side retrieval metrics of two runs with B - A deltas.

    Args:
        metrics_a: ``tvr.metrics`` dict of model A (keys like ``"t2v/R@1"``).
        metrics_b: the same for model B, or None (columns ``b``, ``delta`` and ``better``
            are then NaN / None).
        directions: which directions to list.
        keys: which metrics to list.

    Returns:
        One row per (direction, metric) with columns ``direction``, ``metric``, ``a``, ``b``,
        ``delta`` (``b - a``) and ``better`` (``"B"``, ``"A"`` or ``"="``; lower is better for
        MdR and MnR), NaN where a run lacks the metric.
    """
    rows = []
    for d in directions:
        for k in keys:
            name = f"{d}/{k}"
            a = float(metrics_a.get(name, np.nan))
            b = float(metrics_b.get(name, np.nan)) if metrics_b is not None else np.nan
            delta = b - a
            better: str | None = None
            if np.isfinite(delta):
                sign = -delta if k in LOWER_IS_BETTER else delta
                better = "B" if sign > 0 else ("A" if sign < 0 else "=")
            rows.append({"direction": d, "metric": k, "a": a, "b": b, "delta": delta,
                         "better": better})
    return pd.DataFrame(rows, columns=["direction", "metric", "a", "b", "delta", "better"])


def largest_changes(table: pd.DataFrame, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` largest wins and the ``n`` largest regressions of B over A.

    Changes are measured in log-rank (``log(rank_b / rank_a)``), so 1 -> 2 weighs as much as
    50 -> 100; ties in that measure are broken by the absolute rank change, then by query.

    Args:
        table: the output of :func:`compare_rankings`.
        n: rows per list.

    Returns:
        ``(wins, regressions)``: rows of ``table`` (with an added ``log_ratio`` column), the
        most improved / most degraded first; only queries that actually won / lost.
    """
    _check_table(table, ["rank_a", "rank_b", "delta", "outcome"])
    if int(n) < 1:
        raise ValueError(f"n={n!r}: expected a positive integer")
    t = table.copy()
    t["log_ratio"] = np.log(t["rank_b"].to_numpy(np.float64) / t["rank_a"].to_numpy(np.float64))
    t["_abs"] = t["delta"].abs()
    t["_pos"] = np.arange(len(t))
    wins = t[t["outcome"] == "win"].sort_values(["log_ratio", "_abs", "_pos"],
                                                 ascending=[True, False, True], kind="stable")
    losses = t[t["outcome"] == "loss"].sort_values(["log_ratio", "_abs", "_pos"],
                                                   ascending=[False, False, True], kind="stable")
    drop = ["_abs", "_pos"]
    return wins.head(int(n)).drop(columns=drop), losses.head(int(n)).drop(columns=drop)


def top_k(sim_row: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of one similarity row, best first, ties by lower index.

    Shapes:
        sim_row ``[Nv]`` -> (indices ``[min(k, Nv)]`` int64, scores ``[min(k, Nv)]`` float32)
    """
    row = np.asarray(sim_row, dtype=np.float64)
    if row.ndim != 1 or row.size == 0:
        raise ValueError(f"sim_row: expected a non-empty 1-D array, got shape {row.shape}")
    if int(k) < 1:
        raise ValueError(f"k={k!r}: expected a positive integer")
    order = np.argsort(-row, kind="stable")[: int(k)]
    return order.astype(np.int64), row[order].astype(np.float32)


def rank_bins(max_rank: int) -> list[tuple[int, int]]:
    """Log-spaced inclusive rank bins ``(lo, hi)`` covering ``1..max_rank``: 1, 2, 3-5, 6-10,
    11-20, 21-50, 51-100, 101-200, ... (a 1-2-5 sequence of upper edges)."""
    if int(max_rank) < 1:
        raise ValueError(f"max_rank={max_rank!r}: expected a positive integer")
    if int(max_rank) == 1:
        return [(1, 1)]
    edges = [1, 2]
    scale = 1
    while edges[-1] < int(max_rank):
        for m in (5, 10, 20):
            edge = m * scale
            if edge > edges[-1]:
                edges.append(edge)
            if edges[-1] >= int(max_rank):
                break
        scale *= 10
    bins = [(1, 1)]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        bins.append((lo + 1, hi))
    return bins


def rank_histogram(ranks: Any, max_rank: int | None = None) -> pd.DataFrame:
    """Counts of ground-truth ranks in the log-spaced bins of :func:`rank_bins`.

    Args:
        ranks: ``[N]`` 1-based ranks.
        max_rank: the largest possible rank (gallery size); default the largest rank seen.

    Returns:
        One row per bin with columns ``bin`` (label, e.g. ``"3-5"``), ``lo``, ``hi``,
        ``count`` and ``share`` (percent of the queries).
    """
    r = as_ranks(ranks, "ranks")
    top = int(max_rank) if max_rank is not None else int(r.max())
    top = max(top, int(r.max()))
    rows = []
    for lo, hi in rank_bins(top):
        n = int(np.count_nonzero((r >= lo) & (r <= hi)))
        rows.append({"bin": str(lo) if lo == hi else f"{lo}-{hi}", "lo": lo, "hi": hi,
                     "count": n, "share": 100.0 * n / r.size})
    return pd.DataFrame(rows, columns=["bin", "lo", "hi", "count", "share"])


def rank_pairs(ranks_a: Any, ranks_b: Any) -> pd.DataFrame:
    """Queries grouped by their pair of ranks, so tied queries are counted, not overplotted.

    Args:
        ranks_a: ``[N]`` 1-based ranks of model A.
        ranks_b: ``[N]`` 1-based ranks of model B, same queries.

    Returns:
        One row per distinct ``(rank_a, rank_b)``, sorted by ``rank_a`` then ``rank_b``, with
        columns ``rank_a``, ``rank_b``, ``count``, ``delta_log2`` (``log2(rank_b / rank_a)``;
        negative = B better) and ``queries`` (the query positions of the group, ascending).
    """
    a, b = paired_ranks(ranks_a, ranks_b)
    frame = pd.DataFrame({"rank_a": a, "rank_b": b, "q": np.arange(a.size)})
    groups = frame.groupby(["rank_a", "rank_b"], sort=True)["q"]
    out = groups.agg(list).rename("queries").reset_index()
    out.insert(2, "count", [len(q) for q in out["queries"]])
    out.insert(3, "delta_log2", np.log2(out["rank_b"].to_numpy(np.float64)
                                        / out["rank_a"].to_numpy(np.float64)))
    return out
