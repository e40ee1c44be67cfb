"""DRGI diagnostics and the split-level information test (tvr/objectives/drgi_diagnostics.py,
tvr/drgi_probe.py; methods.md §9.8)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from tests.conftest import tiny_overrides
from tvr.config import ExperimentConfig
from tvr.drgi_probe import (
    INFO_KEY,
    _accuracy_split,
    drgi_query_outputs,
    flatten_info,
    format_info,
    information_test,
    main,
    mine_split_negatives,
    probe_run,
)
from tvr.models.features import TokenFeatures
from tvr.objectives.drgi import DRGI
from tvr.objectives.drgi_diagnostics import (
    attention_entropy,
    attention_logit_range,
    mean_pairwise_cosine,
    nanmean,
    node_mean_sigmoid,
    pairwise_accuracy,
)

# ------------------------------------------------------------------ diagnostics


def uniform_attention(mask: torch.Tensor, heads: int = 1) -> torch.Tensor:
    m = mask.float()
    rows = m[:, None, :, None] * m[:, None, None, :] / m.sum(-1).clamp_min(1)[:, None, None, None]
    return rows.expand(-1, heads, -1, -1).clone()


def test_attention_entropy_of_uniform_rows_is_one():
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    ent = attention_entropy(uniform_attention(mask, heads=2), mask)
    torch.testing.assert_close(ent, torch.ones(2))


def test_attention_entropy_of_one_hot_rows_is_zero():
    """A complete graph whose rows put all weight on one node has entropy 0: the sharpest
    attention, not an undefined one."""
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    attn = torch.zeros(2, 1, 4, 4)
    for b, n in enumerate((4, 3)):
        for i in range(n):
            attn[b, 0, i, (i + 1) % n] = 1.0
    torch.testing.assert_close(attention_entropy(attn, mask), torch.zeros(2))


def test_attention_entropy_mixes_sharp_and_flat_rows():
    """Half the rows one-hot (entropy 0), half uniform (1): the graph's mean is 0.5."""
    mask = torch.ones(1, 4, dtype=torch.bool)
    attn = uniform_attention(mask)
    attn[0, 0, :2] = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    torch.testing.assert_close(attention_entropy(attn, mask), torch.tensor([0.5]))


def test_attention_entropy_known_answer():
    mask = torch.ones(1, 3, dtype=torch.bool)
    p = torch.tensor([0.5, 0.25, 0.25])
    attn = p.expand(3, 3)[None, None].clone()
    expected = float(-(p * p.log()).sum() / math.log(3))
    assert float(attention_entropy(attn, mask)[0]) == pytest.approx(expected, rel=1e-6)
    # a graph with a single node has no row to measure
    assert math.isnan(float(attention_entropy(torch.ones(1, 1, 1, 1), torch.ones(1, 1))[0]))


def test_attention_logit_range_known_answers():
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(attention_logit_range(uniform_attention(mask), mask),
                               torch.zeros(2))
    # rows of two values p and q: log(p / q)
    attn = torch.zeros(1, 1, 3, 3)
    attn[0, 0] = torch.tensor([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]])
    got = float(attention_logit_range(attn, torch.ones(1, 3, dtype=torch.bool))[0])
    expected = (math.log(3.0) + math.log(8.0) + math.log(2.0)) / 3
    assert got == pytest.approx(expected, rel=1e-6)


def test_mean_pairwise_cosine_known_answers():
    same = torch.tensor([[[1.0, 2.0, 3.0]] * 4])
    assert float(mean_pairwise_cosine(same, torch.ones(1, 4))[0]) == pytest.approx(1.0)
    ortho = torch.eye(3)[None] * torch.tensor([1.0, 5.0, 0.2])[None, :, None]
    assert float(mean_pairwise_cosine(ortho, torch.ones(1, 3))[0]) == pytest.approx(0.0, abs=1e-7)
    # padded nodes are left out; one valid node is NaN
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    got = mean_pairwise_cosine(x, mask)
    assert float(got[0]) == pytest.approx(1.0) and math.isnan(float(got[1]))
    x[0, 2] = torch.tensor([0.0, 1.0])
    mask[0, 2] = True  # pairs (0,1)=1, (0,2)=0, (1,2)=0
    assert float(mean_pairwise_cosine(x, mask)[0]) == pytest.approx(1.0 / 3)


def test_node_mean_sigmoid_and_pairwise_accuracy():
    logits = torch.tensor([[0.0, 2.0, 100.0], [1.0, -1.0, 3.0]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    got = node_mean_sigmoid(logits, mask)
    assert float(got[0]) == pytest.approx(0.5 * (0.5 + 1 / (1 + math.exp(-2))))
    assert math.isnan(float(got[1]))
    pos = torch.tensor([0.7, 0.5, 0.2, float("nan"), 0.9])
    neg = torch.tensor([0.6, 0.5, 0.3, 0.1, float("nan")])
    acc = pairwise_accuracy(pos, neg)
    assert acc[:3].tolist() == [1.0, 0.0, 0.0]  # a tie is wrong
    assert torch.isnan(acc[3:]).all()
    assert nanmean(acc) == pytest.approx(1 / 3)
    assert math.isnan(nanmean(torch.tensor([float("nan")])))


# ------------------------------------------------------------------ accuracy split


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_accuracy_split_known_answer():
    pos = np.array([0.9, 0.35, 0.6, 0.5, np.nan, 0.8, 0.7, 0.1])
    neg = np.array([0.1, 0.3, 0.6, 0.4, 0.2, 0.1, 0.2, 0.3])
    base = np.array([True, False, True, False, True, True, True, True])
    valid = np.array([True, True, True, True, True, False, True, True])
    # kept: 0 1 2 3 6 7 (4 has no score, 5 no negative); right: T T F(tie) T T F
    out = _accuracy_split(pos, neg, base, valid)
    assert out["n"] == 6
    assert out["acc"] == pytest.approx(4 / 6)
    assert out["base_right"] == pytest.approx(4 / 6)
    assert out["n_base_right"] == 4 and out["acc_base_right"] == pytest.approx(2 / 4)
    assert out["n_base_wrong"] == 2 and out["acc_base_wrong"] == pytest.approx(1.0)
    assert out["n_base_right"] + out["n_base_wrong"] == out["n"]
    for name, (k, n) in (("base_right", (2, 4)), ("base_wrong", (2, 2))):
        lo, hi = out[f"acc_{name}_ci95"]
        assert (lo, hi) == pytest.approx(wilson(k, n), abs=1e-6)
        assert lo <= out[f"acc_{name}"] <= hi


def test_accuracy_split_without_anchors():
    out = _accuracy_split(np.array([0.5, 0.6]), np.array([0.1, 0.2]),
                          np.array([True, True]), np.array([True, True]))
    assert out["n_base_wrong"] == 0 and math.isnan(out["acc_base_wrong"])
    assert all(math.isnan(v) for v in out["acc_base_wrong_ci95"])
    none = _accuracy_split(np.array([0.5]), np.array([0.1]), np.array([True]), np.array([False]))
    assert none["n"] == 0 and math.isnan(none["acc"]) and math.isnan(none["base_right"])


# ------------------------------------------------------------------ split negatives


def synthetic_split(n_videos=5, caps=(2, 1, 3, 1, 2), seed=0):
    rng = np.random.default_rng(seed)
    t2v = np.repeat(np.arange(n_videos), caps)
    sim = rng.normal(size=(len(t2v), n_videos)).astype(np.float32)
    return sim, t2v


@pytest.mark.parametrize("block", [1, 3, 1024])
def test_mine_split_negatives_matches_naive(block):
    sim, t2v = synthetic_split()
    nt, nv = sim.shape
    neg = mine_split_negatives(sim, t2v, block=block)
    rep = np.array([int(np.flatnonzero(t2v == v)[0]) for v in range(nv)])
    assert neg.representative.tolist() == rep.tolist()
    for i in range(nt):
        others = [v for v in range(nv) if v != t2v[i]]
        assert neg.text_neg_video[i] == max(others, key=lambda v: sim[i, v])
        assert neg.text_valid[i]
    for v in range(nv):
        others = [u for u in range(nv) if u != v]
        assert neg.video_neg_video[v] == max(others, key=lambda u: sim[rep[v], u])
        assert neg.video_neg_text[v] == rep[max(others, key=lambda u: sim[rep[u], v])]
        assert t2v[neg.video_neg_text[v]] != v
    assert neg.text_neg_text.tolist() == neg.video_neg_text[t2v].tolist()
    assert neg.video_valid.all()


def test_mine_split_negatives_single_video_has_no_candidate():
    neg = mine_split_negatives(np.ones((3, 1), dtype=np.float32), np.zeros(3, dtype=np.int64))
    assert not neg.text_valid.any() and not neg.video_valid.any()
    with pytest.raises(ValueError, match=r"videos \[1\]"):
        mine_split_negatives(np.ones((2, 3), dtype=np.float32), np.array([0, 2]))


def synthetic_features(n, length, d, lengths, seed):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.arange(length)[None] < torch.as_tensor(lengths)[:, None]).float()
    return TokenFeatures(torch.randn(n, length, d, generator=g), mask, torch.randn(n, d, generator=g))


def tiny_drgi(**kw) -> DRGI:
    cfg = ExperimentConfig()
    cfg.add_objective("drgi", **{"hidden": 8, **kw})
    torch.manual_seed(0)
    return DRGI(cfg, 16)


def test_query_outputs_do_not_depend_on_the_batch_size():
    sim, t2v = synthetic_split()
    nt, nv = sim.shape
    text = synthetic_features(nt, 6, 16, [6, 3, 5, 2, 4, 6, 1, 3, 5], 1)
    video = synthetic_features(nv, 4, 16, [4, 2, 3, 4, 1], 2)
    neg = mine_split_negatives(sim, t2v)
    drgi = tiny_drgi()
    args = (drgi, text, video, np.arange(nt), t2v, neg.text_neg_text, neg.text_neg_video,
            neg.text_valid)
    one = drgi_query_outputs(*args, keep="text", batch=2)
    big = drgi_query_outputs(*args, keep="text", batch=64)
    for k in one:
        np.testing.assert_allclose(one[k], big[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert one["attention"].shape == (nt, 1, 6, 6) and one["node_mask"].shape == (nt, 6)
    # the positive score is the anchor's own graph against its own caption's summary
    g = drgi.graph_outputs(text[np.arange(nt)], video[t2v], torch.zeros(nt, 1, dtype=torch.long),
                           torch.zeros(nt, 1, dtype=torch.long))
    expected = node_mean_sigmoid(g.pos_video_scores, g.pos_video_mask).detach().numpy()
    np.testing.assert_allclose(big["pos_video"], expected, rtol=1e-5, atol=1e-6)


def test_information_test_on_synthetic_features_restores_the_mode():
    sim, t2v = synthetic_split(seed=4)
    nt, nv = sim.shape
    text = synthetic_features(nt, 6, 16, [6, 3, 5, 2, 4, 6, 1, 3, 5], 5)
    video = synthetic_features(nv, 4, 16, [4, 2, 3, 4, 1], 6)
    drgi = tiny_drgi(attn_dropout=0.5)
    drgi.train()
    a = information_test(drgi, text, video, sim, t2v, batch=3)
    assert drgi.training  # restored
    b = information_test(drgi, text, video, sim, t2v, batch=64)
    assert flatten_info(a) == pytest.approx(flatten_info(b), nan_ok=True)  # eval mode: no dropout noise
    neg = mine_split_negatives(sim, t2v)
    base_video = sim[np.arange(nt), t2v] > sim[np.arange(nt), neg.text_neg_video]
    assert a["video"]["base_right"] == pytest.approx(base_video.mean())
    assert a["video"]["n"] == nt and a["text"]["n"] == nv
    assert a["num_texts"] == nt and a["num_videos"] == nv


def naive_entropy(attn: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over graphs of the mean over rows of H(row) / log(n) on complete graphs of n >= 2
    valid nodes (0 log 0 = 0)."""
    graphs = []
    for b in range(len(mask)):
        n = int(mask[b].sum())
        if n < 2:
            continue
        rows = []
        for i in range(n):
            p = attn[b, 0, i, :n].double()
            rows.append(float(-(p[p > 0] * p[p > 0].log()).sum()) / math.log(n))
        graphs.append(sum(rows) / n)
    return sum(graphs) / len(graphs)


@pytest.mark.parametrize("tau", [1.0, 0.01])
def test_information_test_entropy_is_the_gat_attention_entropy(tau):
    """The probe's entropy is that of the GAT's own (float32) attention over each caption
    graph's valid nodes, also when the attention is sharp (attn_temperature < 1)."""
    sim, t2v = synthetic_split(seed=4)
    text = synthetic_features(9, 6, 16, [6, 3, 5, 2, 4, 6, 1, 3, 5], 5)
    video = synthetic_features(5, 4, 16, [4, 2, 3, 4, 1], 6)
    drgi = tiny_drgi(attn_temperature=tau)
    info = information_test(drgi, text, video, sim, t2v)
    xt, mt, _, _ = drgi.node_features(text, video)
    with torch.no_grad():
        g = drgi.text.encode(xt, mt, return_attention=True)
    assert info["entropy_text"] == pytest.approx(naive_entropy(g.attention, g.mask), abs=5e-3)


# ------------------------------------------------------------------ on a trained run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_synthvtt):
    """A tiny DRGI run and a tiny run without DRGI (1 epoch each)."""
    from tvr.config import load_config
    from tvr.train import train

    out = tmp_path_factory.mktemp("probe_runs")
    made = {}
    for name, extra in (("drgi", ("drgi.enable=true",)), ("base", ())):
        cfg = load_config(None, tiny_overrides(tiny_synthvtt, out, name, "train.epochs=1",
                                               "train.eval_after=false", *extra))
        made[name] = train(cfg, progress=False)
    return made


def check_report(info: dict, n_texts: int, n_videos: int) -> None:
    assert info["num_texts"] == n_texts and info["num_videos"] == n_videos
    for side, n_max in (("video", n_texts), ("text", n_videos)):
        r = info[side]
        assert 0 < r["n"] <= n_max
        assert r["n_base_right"] + r["n_base_wrong"] == r["n"]
        for key in ("acc", "base_right", "acc_base_right", "acc_base_wrong"):
            assert math.isnan(r[key]) or 0.0 <= r[key] <= 1.0, (side, key)
        parts = [(r["acc_base_right"], r["n_base_right"]), (r["acc_base_wrong"], r["n_base_wrong"])]
        total = sum(a * n for a, n in parts if n)
        assert total / r["n"] == pytest.approx(r["acc"])
        assert r["base_right"] == pytest.approx(r["n_base_right"] / r["n"])
        for name in ("base_right", "base_wrong"):
            lo, hi = r[f"acc_{name}_ci95"]
            if r[f"n_{name}"]:
                assert 0.0 <= lo <= r[f"acc_{name}"] <= hi <= 1.0
    for key in ("pos_score", "neg_score", "entropy_text", "entropy_video"):
        assert 0.0 <= info[key] <= 1.0, key
    assert info["logit_range_text"] >= 0 and info["logit_range_video"] >= 0
    for key in ("node_cos_text", "node_cos_video", "input_cos_text", "input_cos_video"):
        assert -1.0 <= info[key] <= 1.0 + 1e-6, key


def test_information_test_on_a_trained_run(runs, tiny_synthvtt):
    from tvr.checkpoint import load_pretrained
    from tvr.data.sources import load_split
    from tvr.evaluate import evaluate_model

    model, tok, cfg = load_pretrained(runs["drgi"])
    records = load_split("synthvtt", tiny_synthvtt, "val")
    _, emb = evaluate_model(model, tok, cfg, records, dataset="synthvtt", split="val",
                            progress=False)
    info = information_test(model.objectives["drgi"], emb.text, emb.video, emb.sim,
                            emb.text_to_video)
    nt, nv = emb.sim.shape
    check_report(info, nt, nv)
    flat = flatten_info(info)
    assert flat["drgi_info/video/acc"] == info["video"]["acc"]
    assert flat["drgi_info/num_texts"] == nt
    assert not any(k.endswith("ci95") for k in flat)  # lists are not flattened
    table = format_info(info)
    assert "t->v (video)" in table and "v->t (text)" in table
    assert f"{info['video']['acc']:.3f}" in table


def test_probe_cli_writes_metrics_and_prints_a_table(runs, capsys):
    run = runs["drgi"]
    metrics_path = run / "metrics.json"
    assert main(["--run", str(run), "--split", "val", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "t->v (video)" in out and "v->t (text)" in out
    stored = json.loads(metrics_path.read_text())[INFO_KEY]
    assert set(stored) == {"synthvtt-val"}
    val = stored["synthvtt-val"]
    check_report(val, val["num_texts"], val["num_videos"])
    again = probe_run(run, split="val", device="cpu", progress=False, write=False)
    assert flatten_info(again) == pytest.approx(flatten_info(val), nan_ok=True)
    # another split is added beside it; --no-write leaves the file alone
    probe_run(run, split="test", device="cpu", progress=False)
    stored = json.loads(metrics_path.read_text())[INFO_KEY]
    assert set(stored) == {"synthvtt-val", "synthvtt-test"}
    before = metrics_path.read_text()
    assert main(["--run", str(run), "--split", "val", "--device", "cpu", "--no-write"]) == 0
    assert metrics_path.read_text() == before


def test_probe_of_a_run_without_drgi_names_the_run(runs):
    with pytest.raises(ValueError, match=re.escape(str(runs["base"]))):
        probe_run(runs["base"], split="val", device="cpu", progress=False)
    with pytest.raises(ValueError, match="DRGI"):
        main(["--run", str(runs["base"]), "--device", "cpu"])
