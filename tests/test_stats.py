"""Tests for analysis.stats: paired sign-flip / sign tests and the paired bootstrap, against
enumerations by hand and scipy."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from analysis.rank_inputs import metric_values
from analysis.stats import TestResult, bootstrap_ci, paired_summary, paired_test


def test_paired_test_exact_small_case():
    # B finds the GT at rank 1 on 5 queries where A does not: all 2^5 sign patterns are
    # enumerated; only the all-plus and all-minus patterns reach |sum| = 5 -> p = 2/32.
    a = [3, 2, 4, 5, 2, 1, 1]
    b = [1, 1, 1, 1, 1, 1, 1]
    res = paired_test(a, b, metric="R@1")
    assert isinstance(res, TestResult)
    assert res.method == "randomization-exact"
    assert res.n_resamples == 32
    assert res.p_value == pytest.approx(2 / 32)
    assert res.statistic == pytest.approx(100 * 5 / 7)
    assert (res.n, res.wins, res.losses) == (7, 5, 0)
    sign = paired_test(a, b, metric="R@1", method="sign")
    assert sign.method == "sign"
    assert sign.p_value == pytest.approx(2 / 32)  # binomial: 2 * 0.5^5


def test_paired_test_exact_unequal_magnitudes_by_hand():
    # MnR differences d = [1, 2, 3]: the 8 sign patterns sum to +-6, +-4, +-2, 0, 0; only
    # +-6 reach |6| -> p = 2/8. With d = [3, 2, -1] (sum 4), +-6 and +-4 do -> p = 4/8.
    res = paired_test([1, 1, 1], [2, 3, 4], metric="MnR", n_resamples=8)
    assert (res.method, res.n_resamples) == ("randomization-exact", 8)
    assert res.p_value == pytest.approx(2 / 8)
    assert res.statistic == pytest.approx(2.0)
    res = paired_test([1, 1, 2], [4, 3, 1], metric="MnR", n_resamples=8)
    assert res.p_value == pytest.approx(4 / 8)
    # one pattern fewer than 2^3 -> Monte Carlo instead of enumeration
    assert paired_test([1, 1, 1], [2, 3, 4], metric="MnR", n_resamples=7).method == (
        "randomization")
    # one non-zero difference: +d and -d tie -> p = 1
    one = paired_test([1, 1], [1, 3], metric="MnR", n_resamples=8)
    assert (one.p_value, one.method, one.n_resamples) == (1.0, "randomization-exact", 2)


def test_paired_test_exact_matches_rational_enumeration_on_rr():
    # rr differences 2/3, -1/2, -1/6, 1/2, -1/12 (sum 5/12): 6 of the 32 sign patterns reach
    # |T| = 5/12 exactly, two of them only in exact arithmetic (in floats they land an ulp
    # below |T|: 26 hits instead of 28); the p-value must count them as ties -> 28/32
    a = [3, 1, 2, 2, 3]
    b = [1, 2, 3, 1, 4]
    d = [Fraction(1, rb) - Fraction(1, ra) for ra, rb in zip(a, b, strict=True)]
    observed = abs(sum(d))
    hits = sum(
        abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed
        for signs in itertools.product((1, -1), repeat=len(d))
    )
    res = paired_test(a, b, metric="rr", n_resamples=32)
    assert res.method == "randomization-exact"
    assert res.statistic == pytest.approx(float(sum(d)) / len(d))
    assert hits == 28
    assert res.p_value == pytest.approx(hits / 32)


def test_paired_test_clear_difference_is_significant():
    rng = np.random.default_rng(1)
    n = 300
    a = np.where(rng.random(n) < 0.2, 1, rng.integers(2, 50, n))
    b = np.where(rng.random(n) < 0.8, 1, rng.integers(2, 50, n))
    for metric in ("MnR", "rr"):
        res = paired_test(a, b, metric=metric, n_resamples=2000)
        assert res.method == "randomization"
        assert res.p_value == pytest.approx(1 / 2001)  # no random pattern reaches the observed
    r1 = paired_test(a, b, metric="R@1", n_resamples=2000)  # binomial tail, far below 1/2001
    assert r1.method == "randomization-exact" and r1.p_value < 1e-20
    assert paired_test(a, b, metric="MnR").statistic == pytest.approx(b.mean() - a.mean())
    assert paired_test(a, b, metric="R@1", method="sign").p_value < 1e-10


def test_paired_test_null_cases():
    same = np.array([1, 4, 2, 7, 1, 3])
    res = paired_test(same, same)
    assert res.p_value == 1.0 and res.statistic == 0.0 and res.wins == res.losses == 0
    assert paired_test(same, same, method="sign").p_value == 1.0
    # symmetric: B wins exactly where it loses elsewhere -> observed mean 0 -> p = 1
    res = paired_test([1, 2] * 20, [2, 1] * 20, metric="R@1", n_resamples=500)
    assert res.statistic == 0.0
    assert res.p_value == 1.0


def test_randomization_is_the_exact_binomial_for_equal_magnitudes():
    # with +-100 differences the sign-flip distribution of the sum is binomial: the p-value is
    # the exact two-sided binomial tail at any number of non-zero differences (no sampling)
    a = np.array([2] * 18 + [1] * 8 + [1] * 10)  # 18 B wins, 8 B losses, 10 ties
    b = np.array([1] * 18 + [2] * 8 + [1] * 10)
    exact = stats.binomtest(18, 26, 0.5).pvalue
    res = paired_test(a, b, metric="R@1", n_resamples=20000, seed=3)
    assert (res.method, res.n_resamples) == ("randomization-exact", 0)
    assert res.p_value == pytest.approx(exact, rel=1e-12)
    assert paired_test(a, b, metric="R@1", method="sign").p_value == pytest.approx(exact)
    # ... and it is the enumeration's p-value (11 wins, 4 losses: 2**15 patterns enumerated)
    a, b = [2] * 11 + [1] * 4 + [1] * 3, [1] * 11 + [2] * 4 + [1] * 3
    enumerated = paired_test(a, b, metric="MnR", n_resamples=1 << 15)
    assert enumerated.method == "randomization-exact" and enumerated.n_resamples == 1 << 15
    closed = paired_test(a, b, metric="R@1", n_resamples=1 << 15)
    assert closed.p_value == pytest.approx(enumerated.p_value, rel=1e-9)
    # an observed sum of 0 (wins == losses) -> p = 1
    assert paired_test([1, 2] * 40, [2, 1] * 40, metric="R@5").p_value == 1.0


def test_randomization_monte_carlo_matches_index_free_definition():
    # unequal magnitudes, m far above 2**m enumeration: the grouped sampler must give the
    # p-value of the sign-flip null (checked against independent signs drawn per query)
    rng = np.random.default_rng(11)
    n = 4000
    a = rng.integers(1, 60, n)
    b = np.clip(a + rng.integers(-4, 5, n) - (rng.random(n) < 0.03), 1, None)
    d = b.astype(float) - a
    nz = d[d != 0]
    signs = np.where(np.random.default_rng(2).random((20000, nz.size)) < 0.5, -1.0, 1.0)
    reference = np.mean(np.abs(signs @ nz) >= abs(nz.sum()))
    res = paired_test(a, b, metric="MnR", n_resamples=20000, seed=4)
    assert res.method == "randomization" and res.n_resamples == 20000
    se = np.sqrt(reference * (1 - reference) / 20000) + 1e-4
    assert abs(res.p_value - reference) < 5 * se
    assert 0.001 < reference < 0.999  # the check says something
    assert paired_test(a, b, metric="MnR", n_resamples=20000, seed=4) == res  # seeded


def test_paired_test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="method='t'"):
        paired_test([1], [1], method="t")
    with pytest.raises(ValueError, match="n_resamples=0"):
        paired_test([1], [1], n_resamples=0)
    with pytest.raises(ValueError, match="metric='MdR'"):
        paired_test([1], [1], metric="MdR")


def test_bootstrap_ci_contains_true_difference():
    rng = np.random.default_rng(0)
    n = 3000
    a = np.where(rng.random(n) < 0.4, 1, 2)
    b = np.where(rng.random(n) < 0.5, 1, 2)  # true R@1 difference: +10 pp
    diff, low, high = bootstrap_ci(a, b, metric="R@1", n_boot=1000, seed=0)
    assert diff == pytest.approx(100 * ((b == 1).mean() - (a == 1).mean()))
    assert low < diff < high
    assert low < 10.0 < high
    assert 2.0 < high - low < 8.0  # about 2 * 1.96 * sqrt(.24/n + .25/n) * 100 = 5 pp
    assert bootstrap_ci(a, b, n_boot=1000, seed=0) == (diff, low, high)  # seeded
    mnr = bootstrap_ci(a, b, metric="MnR", n_boot=200)
    assert mnr[0] == pytest.approx(b.mean() - a.mean()) and mnr[1] <= mnr[0] <= mnr[2]


def test_bootstrap_ci_two_queries_by_hand():
    # d = [0, 100]: a resample's mean is 0, 50 or 100 with probabilities 1/4, 1/2, 1/4, so
    # the 2.5 % and 97.5 % quantiles of 2000 resamples are 0 and 100
    assert bootstrap_ci([1, 2], [1, 1], metric="R@1", n_boot=2000, seed=0) == (50.0, 0.0, 100.0)
    # a 40 % interval sits at the middle value
    assert bootstrap_ci([1, 2], [1, 1], n_boot=2000, alpha=0.6)[1:] == (50.0, 50.0)


def test_bootstrap_ci_equals_the_multinomial_resampling_written_out():
    # a resample is drawn as the copies of each distinct difference it holds:
    # Multinomial(n, counts / n) from default_rng(seed), its mean counts @ values / n
    rng = np.random.default_rng(5)
    a, b = rng.integers(1, 30, 400), rng.integers(1, 30, 400)
    for metric in ("R@1", "MnR", "rr"):
        va, _ = metric_values(a, metric)
        vb, _ = metric_values(b, metric)
        d = vb - va
        values, counts = np.unique(d, return_counts=True)
        drawn = np.random.default_rng(7).multinomial(d.size, counts / d.size, size=1500)
        low, high = np.quantile(drawn @ values / d.size, [0.05, 0.95])
        diff, got_low, got_high = bootstrap_ci(a, b, metric=metric, n_boot=1500, alpha=0.1, seed=7)
        assert diff == pytest.approx(d.mean())
        assert (got_low, got_high) == pytest.approx((low, high), rel=1e-12, abs=1e-12)


def test_bootstrap_ci_has_the_distribution_of_index_resampling():
    # the same interval (within Monte Carlo error) as resampling query indices uniformly
    rng = np.random.default_rng(8)
    a, b = rng.integers(1, 40, 2000), rng.integers(1, 40, 2000)
    for metric in ("R@1", "MnR"):
        va, _ = metric_values(a, metric)
        vb, _ = metric_values(b, metric)
        d = vb - va
        idx = np.random.default_rng(9).integers(0, d.size, (4000, d.size))
        low, high = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
        _, got_low, got_high = bootstrap_ci(a, b, metric=metric, n_boot=4000, seed=1)
        width = high - low
        assert abs(got_low - low) < 0.05 * width and abs(got_high - high) < 0.05 * width


def test_bootstrap_ci_degenerate_and_bad_alpha():
    assert bootstrap_ci([1, 2, 3], [1, 2, 3], n_boot=50) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="alpha=1.5"):
        bootstrap_ci([1], [1], alpha=1.5)
    with pytest.raises(ValueError, match="n_boot=0"):
        bootstrap_ci([1], [1], n_boot=0)
    assert bootstrap_ci([3], [1], metric="MnR") == (-2.0, -2.0, -2.0)  # one query


def test_paired_summary_matches_paired_test_and_bootstrap():

    a, b = [1, 3, 2, 8, 1, 5], [1, 1, 2, 2, 3, 1]
    s = paired_summary({"t2v": (a, b)}, metrics=("R@1", "MnR"), n_resamples=500, n_boot=200)
    assert list(s["metric"]) == ["R@1", "MnR"]
    row = s.iloc[0]
    test = paired_test(a, b, metric="R@1", n_resamples=500)
    assert row["p_value"] == test.p_value and row["diff"] == pytest.approx(test.statistic)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        bootstrap_ci(a, b, metric="R@1", n_boot=200)[1:])
