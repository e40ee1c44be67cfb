"""tvr.metrics: tie-safe ranks (ties count against the model), multi-caption v2t, summary
metrics. DSL and QB-Norm: tests/test_renorm.py."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tvr.metric_ties import tie_warning, tied_directions
from tvr.metrics import (
    PROTOCOL_V2T_ANY,
    PROTOCOL_V2T_MSVD,
    PROTOCOL_V2T_SINGLE,
    direction_ranks,
    evaluate_retrieval,
    rank_metrics,
    retrieval_metrics,
    t2v_ranks,
    v2t_any_ranks,
    v2t_ranks,
)

# --------------------------------------------------------------------------------------------
# Naive references (pure Python loops, straight from spec §11). Each returns the project ranks
# (1 + #{j != g : S_qj >= S_qg}, ties against the model), the number of tied queries, and the
# optimistic ranks (1 + #strictly greater).
# --------------------------------------------------------------------------------------------


def naive_t2v(sim: np.ndarray, t2v: list[int]) -> tuple[list[int], int, list[int]]:
    ranks, ties, optimistic = [], 0, []
    for q, g in enumerate(t2v):
        gt = sim[q, g]
        ranks.append(1 + sum(1 for j in range(sim.shape[1]) if j != g and sim[q, j] >= gt))
        optimistic.append(1 + sum(1 for j in range(sim.shape[1]) if sim[q, j] > gt))
        ties += any(sim[q, j] == gt for j in range(sim.shape[1]) if j != g)
    return ranks, ties, optimistic


def naive_v2t_msvd(sim: np.ndarray, t2v: list[int]) -> tuple[list[int], int, list[int]]:
    n_video = sim.shape[1]
    caps = {w: [q for q, v in enumerate(t2v) if v == w] for w in range(n_video)}
    ranks, ties, optimistic = [], 0, []
    for v in range(n_video):
        m = [max(sim[q, v] for q in caps[w]) for w in range(n_video)]
        ranks.append(1 + sum(1 for w in range(n_video) if w != v and m[w] >= m[v]))
        optimistic.append(1 + sum(1 for w in range(n_video) if m[w] > m[v]))
        ties += any(m[w] == m[v] for w in range(n_video) if w != v)
    return ranks, ties, optimistic


def naive_v2t_any(sim: np.ndarray, t2v: list[int]) -> tuple[list[int], int, list[int]]:
    ranks, ties, optimistic = [], 0, []
    for v in range(sim.shape[1]):
        best = max(sim[q, v] for q, w in enumerate(t2v) if w == v)
        others = [sim[q, v] for q, w in enumerate(t2v) if w != v]
        ranks.append(1 + sum(1 for s in others if s >= best))
        optimistic.append(1 + sum(1 for s in others if s > best))
        ties += any(s == best for s in others)
    return ranks, ties, optimistic


def naive_summary(ranks: list[int], prefix: str) -> dict[str, float]:
    n = len(ranks)
    srt = sorted(ranks)
    median = srt[n // 2] if n % 2 else (srt[n // 2 - 1] + srt[n // 2]) / 2
    out = {f"{prefix}/R@{k}": 100.0 * sum(r <= k for r in ranks) / n for k in (1, 5, 10, 50)}
    out[f"{prefix}/MdR"] = median
    out[f"{prefix}/MnR"] = sum(ranks) / n
    out[f"{prefix}/RSum"] = out[f"{prefix}/R@1"] + out[f"{prefix}/R@5"] + out[f"{prefix}/R@10"]
    out[f"{prefix}/N"] = n
    return out


def multi_caption_mapping(rng: np.random.Generator, n_video: int, max_caps: int) -> np.ndarray:
    counts = rng.integers(1, max_caps + 1, size=n_video)
    mapping = np.repeat(np.arange(n_video), counts)
    return rng.permutation(mapping)


# --------------------------------------------------------------------------------------------
# Random matrices against the naive reference
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_caption_matches_naive(seed):
    rng = np.random.default_rng(seed)
    n = 60
    # quantised scores: plenty of ties, so the tie rule is exercised too
    sim = np.round(rng.normal(size=(n, n)), 1).astype(np.float32)
    mapping = rng.permutation(n)
    ref_t2v, ties_t2v, opt_t2v = naive_t2v(sim, mapping.tolist())
    # v2t with one caption per video = the rows of S^T
    caption_of = np.argsort(mapping)
    ref_v2t, ties_v2t, opt_v2t = naive_t2v(sim.T, caption_of.tolist())

    res = evaluate_retrieval(sim, mapping)
    assert res.t2v.ranks.tolist() == ref_t2v
    assert res.v2t.ranks.tolist() == ref_v2t
    assert res.t2v.optimistic.tolist() == opt_t2v != ref_t2v
    assert res.v2t.optimistic.tolist() == opt_v2t
    assert res.v2t.protocol == PROTOCOL_V2T_SINGLE
    assert res.v2t_any is None
    assert res.metrics["t2v/ties"] == ties_t2v > 0
    assert res.metrics["v2t/ties"] == ties_v2t
    for key, val in {**naive_summary(ref_t2v, "t2v"), **naive_summary(ref_v2t, "v2t")}.items():
        assert res.metrics[key] == pytest.approx(val), key
    for key, val in {**naive_summary(opt_t2v, "t2v"), **naive_summary(opt_v2t, "v2t")}.items():
        if not key.endswith("/N"):
            assert res.metrics[key + "_optimistic"] == pytest.approx(val), key
    assert res.metrics["RSum"] == pytest.approx(res.metrics["t2v/RSum"] + res.metrics["v2t/RSum"])
    assert res.metrics["RSum_optimistic"] == pytest.approx(
        res.metrics["t2v/RSum_optimistic"] + res.metrics["v2t/RSum_optimistic"]
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_multi_caption_matches_naive(seed):
    rng = np.random.default_rng(seed)
    n_video = 25
    mapping = multi_caption_mapping(rng, n_video, max_caps=4)
    sim = np.round(rng.normal(size=(mapping.size, n_video)), 1).astype(np.float32)
    ref_t2v, ties_t2v, opt_t2v = naive_t2v(sim, mapping.tolist())
    ref_v2t, ties_v2t, opt_v2t = naive_v2t_msvd(sim, mapping.tolist())
    ref_any, ties_any, opt_any = naive_v2t_any(sim, mapping.tolist())

    res = evaluate_retrieval(sim, mapping)
    assert res.t2v.ranks.tolist() == ref_t2v
    assert res.v2t.ranks.tolist() == ref_v2t
    assert res.t2v.optimistic.tolist() == opt_t2v
    assert res.v2t.optimistic.tolist() == opt_v2t
    assert res.v2t_any is not None and res.v2t_any.optimistic.tolist() == opt_any
    assert res.v2t.protocol == PROTOCOL_V2T_MSVD
    assert res.v2t_any is not None and res.v2t_any.protocol == PROTOCOL_V2T_ANY
    assert res.v2t_any.ranks.tolist() == ref_any
    assert (res.t2v.num_ties, res.v2t.num_ties, res.v2t_any.num_ties) == (
        ties_t2v,
        ties_v2t,
        ties_any,
    )
    assert res.metrics["v2t_any/N"] == n_video
    assert res.metrics["t2v/N"] == mapping.size
    for key, val in naive_summary(ref_v2t, "v2t").items():
        assert res.metrics[key] == pytest.approx(val), key
    assert res.protocols == {
        "t2v": "t2v",
        "v2t": PROTOCOL_V2T_MSVD,
        "v2t_any": PROTOCOL_V2T_ANY,
    }


def test_msvd_protocol_equals_transpose_when_single_caption():
    rng = np.random.default_rng(3)
    sim = rng.normal(size=(12, 12)).astype(np.float32)
    mapping = rng.permutation(12)
    ref, _, _ = naive_v2t_msvd(sim, mapping.tolist())
    assert v2t_ranks(sim, mapping).tolist() == ref
    assert v2t_any_ranks(sim, mapping).tolist() == ref


# --------------------------------------------------------------------------------------------
# Hand-built cases
# --------------------------------------------------------------------------------------------

TIED = np.array(
    [
        [0.9, 0.1, 0.2, 0.3],  # gt 0: best, no tie              -> rank 1
        [0.5, 0.5, 0.7, 0.1],  # gt 1: 0.7 above, tie with col 0 -> rank 3 (optimistic 2), tied
        [0.4, 0.4, 0.4, 0.4],  # gt 2: all equal                  -> rank 4 (optimistic 1), tied
        [0.8, 0.6, 0.9, 0.2],  # gt 3: three above                -> rank 4
    ],
    dtype=np.float32,
)


def test_tied_matrix_rank_formula_and_tie_count():
    res = evaluate_retrieval(TIED, [0, 1, 2, 3], recall_ks=(1, 2, 5))
    assert res.t2v.ranks.tolist() == [1, 3, 4, 4]
    assert res.t2v.optimistic.tolist() == [1, 2, 1, 4]
    assert res.t2v.tied.tolist() == [False, True, True, False]
    m = res.metrics
    assert m["t2v/ties"] == 2
    assert m["t2v/R@1"] == 25.0 and m["t2v/R@2"] == 25.0 and m["t2v/R@5"] == 100.0
    assert m["t2v/MdR"] == 3.5  # numpy convention: mean of the two middle values (3, 4)
    assert m["t2v/MnR"] == 3.0
    assert m["t2v/RSum"] == 25.0 + 100.0 + 100.0  # R@10 is part of RSum even if not requested
    assert "t2v/R@10" not in m
    # the optimistic figures sit beside them (the old rule)
    assert m["t2v/R@1_optimistic"] == 50.0 and m["t2v/R@2_optimistic"] == 75.0
    assert m["t2v/MdR_optimistic"] == 1.5 and m["t2v/MnR_optimistic"] == 2.0
    assert m["t2v/RSum_optimistic"] == 50.0 + 100.0 + 100.0
    # v2t ranks the columns: col 1 = [.1 .5 .4 .6] (gt .5) -> 2, col 3 = [.3 .1 .4 .2] (gt .2) -> 3
    assert res.v2t.ranks.tolist() == [1, 2, 3, 3]
    assert m["v2t/ties"] == 0
    assert not any(k.startswith("v2t/") and k.endswith("_optimistic") for k in m)
    assert m["RSum_optimistic"] == m["t2v/RSum_optimistic"] + m["v2t/RSum"]


def test_direct_rank_functions_and_dtypes():
    assert t2v_ranks(TIED, np.arange(4)).tolist() == [1, 3, 4, 4]
    assert t2v_ranks(torch.from_numpy(TIED), torch.arange(4)).dtype == np.int64
    sim64 = torch.from_numpy(TIED).to(torch.float64)
    assert t2v_ranks(sim64, [0, 1, 2, 3]).tolist() == [1, 3, 4, 4]
    assert t2v_ranks(TIED.astype(np.float16), (0, 1, 2, 3)).tolist() == [1, 3, 4, 4]
    assert v2t_ranks(torch.from_numpy(TIED), np.arange(4, dtype=np.uint8)).tolist() == [1, 2, 3, 3]


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_collapsed_model_reads_worst_rank_not_best(n):
    """All scores equal (a collapsed model): every rank is N, R@1 = 100/N only when N = 1."""
    sim = np.full((n, n), 0.25, dtype=np.float32)
    res = evaluate_retrieval(sim, np.arange(n))
    assert res.t2v.ranks.tolist() == [n] * n and res.v2t.ranks.tolist() == [n] * n
    m = res.metrics
    assert m["t2v/R@1"] == (100.0 if n == 1 else 0.0)
    assert m["t2v/MdR"] == m["t2v/MnR"] == float(n)
    assert m["t2v/ties"] == (0 if n == 1 else n)
    if n > 1:
        assert m["t2v/R@1_optimistic"] == m["v2t/R@1_optimistic"] == 100.0
    # multi-caption: 2 captions per video, all equal
    mapping = np.repeat(np.arange(n), 2)
    res = evaluate_retrieval(np.zeros((2 * n, n), dtype=np.float32), mapping)
    assert res.t2v.ranks.tolist() == [n] * (2 * n)
    assert res.v2t.ranks.tolist() == [n] * n
    assert res.v2t_any is not None and res.v2t_any.ranks.tolist() == [2 * n - 1] * n


def test_no_ties_no_optimistic_keys_and_no_warning(caplog):
    rng = np.random.default_rng(7)
    sim = rng.normal(size=(30, 30)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="tvr.metrics"):
        m = retrieval_metrics(sim, np.arange(30))
    assert not [k for k in m if "optimistic" in k]
    assert m["t2v/ties"] == m["v2t/ties"] == 0
    assert tied_directions(m) == {}
    assert not caplog.records


def test_ties_warn_with_both_figures(caplog):
    with caplog.at_level(logging.WARNING, logger="tvr.metrics"):
        m = retrieval_metrics(TIED, np.arange(4))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "t2v: 2 of 4 queries tie" in warnings[0]
    assert "R@1 25.0 with ties against the model, 50.0 if ties favoured it" in warnings[0]
    assert tied_directions(m) == {"t2v": 2}
    assert tied_directions({**m, "dsl/v2t/ties": 3.0, "v2t/ties": 1.0}) == {"t2v": 2, "v2t": 1}
    assert tie_warning(m, "t2v", run="demo").startswith("demo: t2v: 2 of 4 queries tie")


def test_reading_a_tie_report_imports_no_torch():
    """The app's bundle freshness check and Overview read tie reports of saved metrics: that
    must not cost them torch's import (seconds on 2 cores)."""
    code = (
        "import sys\n"
        "from analysis.bundle.freshness import _old_tie_rule_reason\n"
        "from analysis.rankings import tie_notes\n"
        "m = {'t2v/ties': 2, 't2v/N': 4, 't2v/R@1': 25.0}\n"
        "assert 'old tie rule' in _old_tie_rule_reason(m) and len(tie_notes(m, 'r')) == 1\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["False"]


# 5 captions, 3 videos: caps(v0) = {c0, c3}, caps(v1) = {c2}, caps(v2) = {c1, c4}
MSVD_MAP = [0, 2, 1, 0, 2]
MSVD_SIM = np.array(
    [
        [0.9, 0.1, 0.62],
        [0.2, 0.4, 0.6],
        [0.5, 0.8, 0.7],
        [0.3, 0.2, 0.65],
        [0.1, 0.6, 0.5],
    ],
    dtype=np.float32,
)


def test_msvd_v2t_by_hand():
    # t2v: c3 -> v0 scores .3 < .65; c4 -> v2 scores .5 < .6
    assert t2v_ranks(MSVD_SIM, MSVD_MAP).tolist() == [1, 1, 1, 2, 2]
    # v2: own best .6 (c1); M[2, 0] = max(.62, .65) = .65 and M[2, 1] = .7 beat it -> rank 3
    assert v2t_ranks(MSVD_SIM, MSVD_MAP).tolist() == [1, 1, 3]
    # v2t_any counts captions, not videos: .62, .65 and .7 all beat .6 -> rank 4
    assert v2t_any_ranks(MSVD_SIM, MSVD_MAP).tolist() == [1, 1, 4]
    m = retrieval_metrics(MSVD_SIM, MSVD_MAP)
    assert m["v2t/MnR"] == pytest.approx(5 / 3)
    assert m["v2t_any/MnR"] == pytest.approx(2.0)
    assert m["v2t/N"] == 3 and m["t2v/N"] == 5


def test_msvd_ties_between_videos():
    sim = MSVD_SIM.copy()
    sim[4, 2] = 0.6  # v2's two captions tie with each other: not a tie against another video
    assert direction_ranks(sim, MSVD_MAP, "v2t").tied.tolist() == [False, False, False]
    sim[2, 2] = 0.6  # v1's best caption now ties v2's best on column 2
    sim[0, 2] = sim[3, 2] = 0.1
    res = direction_ranks(sim, MSVD_MAP, "v2t")
    assert res.ranks.tolist()[2] == 2 and res.tied.tolist() == [False, False, True]
    assert res.optimistic.tolist()[2] == 1
    any_res = direction_ranks(sim, MSVD_MAP, "v2t_any")
    assert any_res.ranks.tolist()[2] == 2 and any_res.tied.tolist()[2]
    assert any_res.optimistic.tolist()[2] == 1


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_chunked_equals_unchunked(chunk_size):
    rng = np.random.default_rng(5)
    n_video = 17
    mapping = multi_caption_mapping(rng, n_video, max_caps=3)
    sim = np.round(rng.normal(size=(mapping.size, n_video)), 1).astype(np.float32)
    full = evaluate_retrieval(sim, mapping)
    chunked = evaluate_retrieval(sim, mapping, chunk_size=chunk_size)
    assert full.metrics == chunked.metrics
    for a, b in [(full.t2v, chunked.t2v), (full.v2t, chunked.v2t), (full.v2t_any, chunked.v2t_any)]:
        np.testing.assert_array_equal(a.ranks, b.ranks)
        np.testing.assert_array_equal(a.tied, b.tied)
    single = np.round(rng.normal(size=(9, 9)), 1).astype(np.float32)
    perm = rng.permutation(9)
    assert retrieval_metrics(single, perm) == retrieval_metrics(single, perm, chunk_size=chunk_size)


def test_auto_chunking_over_many_blocks(monkeypatch):
    import tvr.score_matrix as score_matrix

    rng = np.random.default_rng(6)
    sim = np.round(rng.normal(size=(40, 40)), 1).astype(np.float32)
    ref = retrieval_metrics(sim, np.arange(40))
    monkeypatch.setattr(score_matrix, "AUTO_CHUNK_ELEMENTS", 50)  # ~1 row per block
    assert retrieval_metrics(sim, np.arange(40)) == ref


@pytest.mark.parametrize("chunk_size", [0, -2, 1.5, True])
def test_bad_chunk_size(chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        t2v_ranks(TIED, np.arange(4), chunk_size=chunk_size)


# --------------------------------------------------------------------------------------------
# Non-finite scores and bad inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_t2v_names_the_row(bad):
    sim = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)
    sim[3, 1] = bad
    with pytest.raises(
        ValueError, match=rf"t2v: query 3 has a non-finite score {bad} at sim\[3, 1\]"
    ):
        t2v_ranks(sim, np.arange(6), chunk_size=2)
    with pytest.raises(ValueError, match="query 3"):
        retrieval_metrics(torch.from_numpy(sim), np.arange(6))


def test_nonfinite_v2t_names_the_video():
    sim = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    sim[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"v2t: query 2 has a non-finite score nan at sim\[4, 2\]"):
        v2t_ranks(sim, MSVD_MAP)
    with pytest.raises(ValueError, match=r"v2t_any: query 2 .*sim\[4, 2\]"):
        v2t_any_ranks(sim, MSVD_MAP, chunk_size=1)
    single = np.eye(3, dtype=np.float32)
    single[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"v2t: query 1 has a non-finite score inf at sim\[0, 1\]"):
        v2t_ranks(single, [0, 1, 2])


def test_v2t_sim_nonfinite_is_caught():
    bad = TIED.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"v2t: query 0 .*sim\[2, 0\]"):
        evaluate_retrieval(TIED, np.arange(4), v2t_sim=bad)


def test_bad_mapping_errors():
    with pytest.raises(
        ValueError, match=r"text_to_video\[2\] = 7 is out of range.*4 video columns"
    ):
        t2v_ranks(TIED, [0, 1, 7, 3])
    with pytest.raises(ValueError, match=r"text_to_video\[0\] = -1"):
        t2v_ranks(TIED, [-1, 1, 2, 3])
    with pytest.raises(ValueError, match=r"expected shape \(4,\)"):
        t2v_ranks(TIED, [0, 1, 2])
    with pytest.raises(TypeError, match="integer video indices.*float"):
        t2v_ranks(TIED, np.array([0.0, 1.0, 2.0, 3.0]))
    # t2v needs no caption per video, v2t does
    assert t2v_ranks(TIED, [0, 0, 1, 1]).tolist() == [1, 3, 4, 3]
    with pytest.raises(ValueError, match="2 of 4 videos have no caption.*video indices 2, 3"):
        v2t_ranks(TIED, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="have no caption"):
        retrieval_metrics(TIED, [0, 0, 1, 1])


def test_bad_sim_errors():
    with pytest.raises(ValueError, match=r"2-D \[queries, gallery\] matrix, got shape \(4,\)"):
        t2v_ranks(np.zeros(4, dtype=np.float32), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="non-empty"):
        t2v_ranks(np.zeros((0, 3), dtype=np.float32), [])
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        t2v_ranks([[1.0, 0.0], [0.0, 1.0]], [0, 1])
    with pytest.raises(TypeError, match="floating-point tensor"):
        t2v_ranks(torch.eye(2, dtype=torch.long), [0, 1])
    with pytest.raises(ValueError, match="v2t_sim: expected shape"):
        evaluate_retrieval(TIED, np.arange(4), v2t_sim=TIED[:3])
    with pytest.raises(ValueError, match="direction"):
        direction_ranks(TIED, np.arange(4), "x2y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recall_ks"):
        retrieval_metrics(TIED, np.arange(4), recall_ks=(0, 1))


def test_rank_metrics_directly():
    m = rank_metrics(np.array([1, 3, 7, 60]), recall_ks=(1, 5, 10, 50), prefix="t2v")
    assert m["t2v/R@1"] == 25.0 and m["t2v/R@5"] == 50.0 and m["t2v/R@10"] == 75.0
    assert m["t2v/R@50"] == 75.0 and m["t2v/MdR"] == 5.0 and m["t2v/MnR"] == 17.75
    assert "t2v/ties" not in m
    with pytest.raises(ValueError, match="ranks >= 1"):
        rank_metrics(np.array([0, 1]))
