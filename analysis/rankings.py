"""Per-query comparison of two rankings (model A = base, model B = candidate, e.g. DRGI).

Inputs are per-query ground-truth ranks: 1-based integers, ``rank = 1 + #{other items scoring
at least the ground truth}`` (ties count against the model: the project's tie rule,
``spec/data_and_metrics.md`` §11.2, computed once in :mod:`tvr.metrics`).
Both rank vectors must describe the same queries in the same order.

Sign conventions, used everywhere in this module:

- ``delta = rank_b - rank_a``: negative means B ranks the ground truth better.
- ``outcome`` is seen from B: ``win`` when B's rank is strictly better (lower), ``loss`` when it
  is strictly worse, ``tie`` otherwise.
- Metric differences (:func:`paired_test`, :func:`bootstrap_ci`) are always ``B - A`` in the
  metric's own unit: percentage points for ``R@K``, ranks for ``MnR`` (negative = B better),
  reciprocal rank for ``rr`` (i.e. MRR; positive = B better).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

logger = logging.getLogger(__name__)

OUTCOMES = ("win", "tie", "loss")
_RECALL = re.compile(r"^R@([1-9][0-9]*)$")
_MAX_CHUNK_ELEMENTS = 1 << 22  # bound on the temporary [chunk, n] arrays of resampling


# --------------------------------------------------------------------------------------------
# validation and per-query metric values
# --------------------------------------------------------------------------------------------


def _as_ranks(ranks: Any, name: str) -> np.ndarray:
    """Return ``ranks`` as a 1-D int64 array, or raise naming ``name`` and the bad value."""
    arr = np.asarray(ranks)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of per-query ranks, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one query, got an empty array")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected integer ranks, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        finite = np.isfinite(arr)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{name}: rank of query {i} is {float(arr[i])}; ranks must be finite")
        frac = arr != np.round(arr)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ValueError(
                f"{name}: rank of query {i} is {float(arr[i])}; ranks must be integers"
            )
    arr = arr.astype(np.int64)
    bad = arr < 1
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: rank of query {i} is {arr[i]}; ranks are 1-based (>= 1)")
    return arr


def _paired_ranks(ranks_a: Any, ranks_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = _as_ranks(ranks_a, "ranks_a")
    b = _as_ranks(ranks_b, "ranks_b")
    if a.shape != b.shape:
        raise ValueError(
            f"ranks_a has {a.size} queries but ranks_b has {b.size}; "
            "a paired comparison needs the same queries in the same order"
        )
    return a, b


def metric_values(ranks: np.ndarray, metric: str) -> tuple[np.ndarray, bool]:
    """Per-query values whose mean is ``metric``, and whether higher is better.

    Args:
        ranks: ``[N]`` 1-based int ranks.
        metric: ``"R@K"`` (any K >= 1; values 0 or 100, so the mean is R@K in percent),
            ``"MnR"`` (values = ranks) or ``"rr"`` (values = 1 / rank; the mean is MRR).

    Returns:
        ``(values [N] float64, higher_is_better)``.
    """
    match = _RECALL.match(metric)
    if match:
        k = int(match.group(1))
        return 100.0 * (ranks <= k).astype(np.float64), True
    if metric == "MnR":
        return ranks.astype(np.float64), False
    if metric == "rr":
        return 1.0 / ranks.astype(np.float64), True
    raise ValueError(f"metric={metric!r}: expected 'R@K' (e.g. 'R@1'), 'MnR' or 'rr'")


def _paired_differences(ranks_a: Any, ranks_b: Any, metric: str) -> tuple[np.ndarray, bool]:
    a, b = _paired_ranks(ranks_a, ranks_b)
    va, higher = metric_values(a, metric)
    vb, _ = metric_values(b, metric)
    return vb - va, higher


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
    a, b = _paired_ranks(ranks_a, ranks_b)
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
# significance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    """Outcome of :func:`paired_test`.

    Attributes:
        statistic: observed metric difference B - A (module conventions: pp for R@K).
        p_value: two-sided p-value.
        n: number of paired queries (ties included).
        method: ``"randomization"``, ``"randomization-exact"`` (all sign patterns enumerated)
            or ``"sign"``.
        metric: the metric compared.
        wins: queries on which B's metric value is strictly better.
        losses: queries on which B's metric value is strictly worse.
        n_resamples: sign patterns drawn (Monte Carlo), enumerated (exact), or 0 (sign test).
    """

    __test__ = False  # not a pytest test class despite the name

    statistic: float
    p_value: float
    n: int
    method: str
    metric: str
    wins: int
    losses: int
    n_resamples: int


def _abs_mean(d: np.ndarray, axis: int = -1) -> np.ndarray:
    """``|mean(d)|`` along ``axis``: the two-sided statistic of the sign-flip test."""
    return np.abs(np.mean(d, axis=axis))


def _sign_flip_pvalue(d: np.ndarray, *, n_resamples: int, seed: int) -> tuple[float, str, int]:
    """Two-sided p-value of the paired sign-flip (randomisation) test on differences ``d``.

    ``scipy.stats.permutation_test`` with one sample and ``permutation_type="samples"`` flips
    the signs of the differences. The statistic is ``|mean|`` and the alternative
    ``"greater"``, so the p-value is ``P(|T*| >= |T|)`` under the flips (two-sided; the flip
    distribution is symmetric). Zero differences are unaffected by a flip and dropped. With
    ``m`` non-zero differences and ``2**m <= n_resamples`` scipy enumerates every sign pattern
    (exact p-value); otherwise ``n_resamples`` random patterns (seeded) give
    ``p = (1 + #{|T*| >= |T|}) / (1 + n_resamples)``.
    """
    nz = d[d != 0]
    m = nz.size
    exact = m < 63 and (1 << m) <= n_resamples  # scipy's rule: enumerate when 2**m fit
    method = "randomization-exact" if exact else "randomization"
    if m <= 1:  # scipy needs two observations; one flip pattern (m = 0) or +-d (m = 1)
        return 1.0, method, (1 << m) if exact else n_resamples
    res = stats.permutation_test(
        (nz,),
        _abs_mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        batch=max(1, _MAX_CHUNK_ELEMENTS // m),
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    return float(res.pvalue), method, len(res.null_distribution)


def paired_test(
    ranks_a: Any,
    ranks_b: Any,
    *,
    metric: str = "R@1",
    method: str = "randomization",
    n_resamples: int = 10000,
    seed: int = 0,
) -> TestResult:
    """Paired significance test of ``metric(B) - metric(A)`` over the same queries.

    - ``method="randomization"``: under the null hypothesis the labels A/B are exchangeable
      per query, so each per-query difference keeps its size and gets a random sign. The
      statistic is the mean difference; the p-value is two-sided. When the number ``m`` of
      non-zero differences satisfies ``2**m <= n_resamples`` all patterns are enumerated and
      the p-value is exact (``method`` then reads ``"randomization-exact"``); otherwise it is
      the add-one Monte Carlo estimate ``(1 + hits) / (1 + n_resamples)`` over
      ``n_resamples`` sign patterns drawn from ``numpy.random.default_rng(seed)``
      (``scipy.stats.permutation_test``, see :func:`_sign_flip_pvalue`).
    - ``method="sign"``: exact two-sided binomial test (``scipy.stats.binomtest``, p = 1/2) of
      the number of queries B wins among those where the metric values differ.

    Args:
        ranks_a: ``[N]`` 1-based ranks of model A.
        ranks_b: ``[N]`` 1-based ranks of model B, same queries.
        metric: ``"R@K"``, ``"MnR"`` or ``"rr"`` (see :func:`metric_values`).
        method: ``"randomization"`` or ``"sign"``.
        n_resamples: random sign patterns for the randomisation test (>= 1).
        seed: seed of the random patterns.

    Returns:
        A :class:`TestResult`; ``statistic`` is the observed difference B - A.
    """
    d, higher = _paired_differences(ranks_a, ranks_b, metric)
    if method not in ("randomization", "sign"):
        raise ValueError(f"method={method!r}: expected 'randomization' or 'sign'")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples={n_resamples!r}: expected a positive integer")
    better = d > 0 if higher else d < 0
    worse = d < 0 if higher else d > 0
    wins, losses = int(better.sum()), int(worse.sum())
    statistic = float(d.mean())
    if method == "sign":
        if wins + losses == 0:
            p = 1.0
        else:
            p = float(stats.binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue)
        used, resamples = "sign", 0
    else:
        p, used, resamples = _sign_flip_pvalue(d, n_resamples=int(n_resamples), seed=seed)
    logger.debug("paired_test %s %s: diff=%.4g p=%.4g (n=%d)", metric, used, statistic, p, d.size)
    return TestResult(
        statistic=statistic,
        p_value=min(1.0, p),
        n=int(d.size),
        method=used,
        metric=metric,
        wins=wins,
        losses=losses,
        n_resamples=resamples,
    )


def bootstrap_ci(
    ranks_a: Any,
    ranks_b: Any,
    *,
    metric: str = "R@1",
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap confidence interval of ``metric(B) - metric(A)``.

    Queries are resampled with replacement, the same indices for both models (paired), and
    the difference is recomputed on each resample (``scipy.stats.bootstrap``,
    ``method="percentile"``, resamples drawn from ``numpy.random.default_rng(seed)``; the
    bounds are the linear-interpolation quantiles ``alpha / 2`` and ``1 - alpha / 2``).

    Args:
        ranks_a: ``[N]`` 1-based ranks of model A.
        ranks_b: ``[N]`` 1-based ranks of model B, same queries.
        metric: ``"R@K"``, ``"MnR"`` or ``"rr"``.
        n_boot: bootstrap resamples (>= 1).
        alpha: the interval covers ``1 - alpha`` (0 < alpha < 1).
        seed: seed of the resampling.

    Returns:
        ``(diff, low, high)``: the observed difference and the interval bounds.
    """
    d, _ = _paired_differences(ranks_a, ranks_b, metric)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot={n_boot!r}: expected a positive integer")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha={alpha!r}: expected a value strictly between 0 and 1")
    if d.size == 1:  # every resample is the one query (scipy needs two observations)
        return float(d[0]), float(d[0]), float(d[0])
    res = stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=int(n_boot),
        batch=max(1, _MAX_CHUNK_ELEMENTS // d.size),
        vectorized=True,
        confidence_level=1.0 - float(alpha),
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return float(d.mean()), float(low), float(high)


# --------------------------------------------------------------------------------------------
# app helpers: metric tables, largest changes, top-k lists
# --------------------------------------------------------------------------------------------

METRIC_KEYS: tuple[str, ...] = ("R@1", "R@5", "R@10", "MdR", "MnR")
LOWER_IS_BETTER: frozenset[str] = frozenset({"MdR", "MnR"})


def tie_notes(metrics: Mapping[str, Any], run: str) -> list[str]:
    """One warning sentence per direction of ``metrics`` whose queries tie their ground truth.

    Each names ``run``, the number of tied queries and, when stored, the optimistic R@1 beside
    the project's (ties count against the model; :func:`tvr.metrics.tie_warning`). Empty when
    nothing is tied.

    Args:
        metrics: a ``tvr.metrics`` dict (a bundle's or a ``metrics.json`` entry).
        run: the run's name.
    """
    from tvr.metrics import tie_warning, tied_directions

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
    r = _as_ranks(ranks, "ranks")
    top = int(max_rank) if max_rank is not None else int(r.max())
    top = max(top, int(r.max()))
    rows = []
    for lo, hi in rank_bins(top):
        n = int(np.count_nonzero((r >= lo) & (r <= hi)))
        rows.append({"bin": str(lo) if lo == hi else f"{lo}-{hi}", "lo": lo, "hi": hi,
                     "count": n, "share": 100.0 * n / r.size})
    return pd.DataFrame(rows, columns=["bin", "lo", "hi", "count", "share"])


def paired_summary(
    pairs: Mapping[str, tuple[Any, Any]],
    *,
    metrics: Sequence[str] = ("R@1", "R@5", "R@10", "MnR"),
    n_resamples: int = 10000,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`paired_test` and :func:`bootstrap_ci` of B - A for several directions/metrics.

    Args:
        pairs: direction name -> ``(ranks_a, ranks_b)`` (e.g. ``{"t2v": (...), "v2t": (...)}``).
        metrics: metrics to test (``"R@K"``, ``"MnR"``, ``"rr"``).
        n_resamples, n_boot, alpha, seed: as :func:`paired_test` / :func:`bootstrap_ci`.

    Returns:
        One row per (direction, metric): ``direction``, ``metric``, ``diff`` (B - A; pp for
        R@K), ``ci_low``, ``ci_high`` (the ``1 - alpha`` bootstrap interval), ``p_value``,
        ``method``, ``wins``, ``losses``, ``n``.
    """
    rows = []
    for direction, (a, b) in pairs.items():
        for metric in metrics:
            test = paired_test(a, b, metric=metric, n_resamples=n_resamples, seed=seed)
            diff, low, high = bootstrap_ci(a, b, metric=metric, n_boot=n_boot, alpha=alpha,
                                           seed=seed)
            rows.append({"direction": direction, "metric": metric, "diff": diff,
                         "ci_low": low, "ci_high": high, "p_value": test.p_value,
                         "method": test.method, "wins": test.wins, "losses": test.losses,
                         "n": test.n})
    return pd.DataFrame(rows, columns=["direction", "metric", "diff", "ci_low", "ci_high",
                                       "p_value", "method", "wins", "losses", "n"])


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
    a, b = _paired_ranks(ranks_a, ranks_b)
    frame = pd.DataFrame({"rank_a": a, "rank_b": b, "q": np.arange(a.size)})
    groups = frame.groupby(["rank_a", "rank_b"], sort=True)["q"]
    out = groups.agg(list).rename("queries").reset_index()
    out.insert(2, "count", [len(q) for q in out["queries"]])
    out.insert(3, "delta_log2", np.log2(out["rank_b"].to_numpy(np.float64)
                                        / out["rank_a"].to_numpy(np.float64)))
    return out
