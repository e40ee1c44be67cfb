"""Paired significance of ``metric(B) - metric(A)`` over the same queries (scipy.stats).

:func:`paired_test` (sign-flip randomisation or sign test), :func:`bootstrap_ci` (paired
percentile bootstrap) and :func:`paired_summary` (both, for several directions and metrics).
Model A is the base, B the candidate (e.g. DRGI). Differences are always ``B - A`` in the
metric's own unit: percentage points for ``R@K``, ranks for ``MnR`` (negative = B better),
reciprocal rank for ``rr`` (i.e. MRR; positive = B better). Inputs are per-query ranks
(:mod:`analysis.rank_inputs`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.rank_inputs import metric_values, paired_ranks

logger = logging.getLogger(__name__)

_MAX_CHUNK_ELEMENTS = 1 << 22  # bound on the temporary [chunk, n] arrays of resampling


def _paired_differences(ranks_a: Any, ranks_b: Any, metric: str) -> tuple[np.ndarray, bool]:
    a, b = paired_ranks(ranks_a, ranks_b)
    va, higher = metric_values(a, metric)
    vb, _ = metric_values(b, metric)
    return vb - va, higher


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
        n_resamples: sign patterns drawn (Monte Carlo) or enumerated (exact), or 0 where the
            p-value is a binomial tail (the sign test; the randomisation test when every
            non-zero difference has the same magnitude, as for ``R@K``).
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


def _magnitude_groups(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``d`` and how often each occurs: ``([k] values, [k] int64 counts)``."""
    values, counts = np.unique(d, return_counts=True)
    return values, counts.astype(np.int64)


def _sign_flip_pvalue(d: np.ndarray, *, n_resamples: int, seed: int) -> tuple[float, str, int]:
    """Two-sided p-value of the paired sign-flip (randomisation) test on differences ``d``.

    Zero differences are unaffected by a flip and dropped; ``m`` non-zero differences remain.
    The null distribution is that of ``T* = sum_i s_i |d_i|`` with independent fair signs
    ``s_i``, and the p-value is ``P(|T*| >= |T|)`` (two-sided; the distribution is symmetric):

    - ``2**m <= n_resamples``: every sign pattern is enumerated
      (``scipy.stats.permutation_test``, statistic ``|mean|``), exact;
    - all ``|d_i|`` equal (every ``R@K``): ``T* = |d| (2B - m)`` with ``B ~ Binomial(m, 1/2)``,
      so the p-value is the binomial tail ``P(|2B - m| >= |T| / |d|)``, exact
      (the two-sided sign test's p-value);
    - otherwise ``n_resamples`` patterns drawn from ``numpy.random.default_rng(seed)`` give
      ``p = (1 + #{|T*| >= |T|}) / (1 + n_resamples)``. The ``m`` magnitudes are grouped by
      value: the ``c_j`` differences of magnitude ``v_j`` contribute ``v_j (2 B_j - c_j)``
      with ``B_j ~ Binomial(c_j, 1/2)``, the same distribution as ``c_j`` independent signs,
      so a pattern costs one draw per distinct magnitude instead of one per query (MnR over
      59,800 queries has at most a few thousand distinct rank differences).

    A drawn ``|T*|`` within a relative ``1e-12`` of ``|T|`` counts as reaching it (sums of the
    same magnitudes in another order differ in the last bits).
    """
    nz = d[d != 0]
    m = nz.size
    exact = m < 63 and (1 << m) <= n_resamples  # scipy's rule: enumerate when 2**m fit
    if m <= 1:  # one flip pattern (m = 0) or +-d (m = 1): |T*| = |T| always
        return 1.0, "randomization-exact", 1 << m
    if exact:
        res = stats.permutation_test(
            (nz,),
            _abs_mean,
            permutation_type="samples",
            vectorized=True,
            n_resamples=n_resamples,
            batch=max(1, _MAX_CHUNK_ELEMENTS // m),
            alternative="greater",
        )
        return float(res.pvalue), "randomization-exact", len(res.null_distribution)
    magnitudes, counts = _magnitude_groups(np.abs(nz))
    observed = abs(float(nz.sum()))
    if magnitudes.size == 1:
        # |2B - m| >= t  <=>  B >= (m + t) / 2  or  B <= (m - t) / 2
        t = observed / float(magnitudes[0])
        upper = int(np.ceil((m + t) / 2 - 1e-9))
        p = 2.0 * float(stats.binom.sf(upper - 1, m, 0.5)) if t > 0 else 1.0
        return min(1.0, p), "randomization-exact", 0
    tolerance = 1e-12 * float((magnitudes * counts).sum())
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // magnitudes.size)
    hits = 0
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        heads = rng.binomial(counts, 0.5, size=(size, counts.size))  # [size, k]
        null = (2 * heads - counts) @ magnitudes  # [size] T* of each pattern
        hits += int(np.count_nonzero(np.abs(null) >= observed - tolerance))
    return (1 + hits) / (1 + n_resamples), "randomization", n_resamples


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
      ``n_resamples`` sign patterns drawn from ``numpy.random.default_rng(seed)``, except
      when every non-zero difference has the same magnitude (``R@K``): then the sign-flip
      distribution is binomial and the p-value exact at any ``m`` (see
      :func:`_sign_flip_pvalue`).
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

    Queries are resampled with replacement, the same queries for both models (paired), and
    the mean difference is recomputed on each resample; the bounds are the linear-interpolation
    quantiles ``alpha / 2`` and ``1 - alpha / 2`` of the ``n_boot`` resample means. A resample
    of the ``n`` differences is drawn as how many copies of each distinct difference ``u_j``
    it holds: ``C ~ Multinomial(n, c / n)`` (``c_j``: occurrences of ``u_j``), mean
    ``C @ u / n`` — the same distribution as ``n`` indices drawn uniformly with replacement,
    at a cost per resample of the number of distinct differences (3 for ``R@K``) instead of
    ``n`` (``numpy.random.default_rng(seed).multinomial``).

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
    values, counts = _magnitude_groups(d)
    if values.size == 1:  # every resample has the same mean
        return float(d.mean()), float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    n, n_boot = d.size, int(n_boot)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // values.size)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        drawn = rng.multinomial(n, counts / n, size=size)  # [size, k] copies of each value
        means[start:start + size] = (drawn @ values) / n
    low, high = np.quantile(means, [float(alpha) / 2, 1.0 - float(alpha) / 2])
    return float(d.mean()), float(low), float(high)


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
