"""DRGI variants (methods.md §9.9): GAT attention / root / temperature / top-k graphs, token
scores, attention readout, negative sampling and the objective's schedule and couplings
(tvr/models/graph.py, tvr/objectives/drgi.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.test_drgi import drgi_cfg
from tvr.config import ConfigError, ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.graph import (
    AttentionReadout,
    BilinearDiscriminator,
    DenseGAT,
    GraphInfomax,
    masked_readout,
)
from tvr.objectives.drgi import DRGI
from tvr.objectives.drgi_diagnostics import attention_entropy
from tvr.objectives.drgi_negatives import mine_negatives, negatives_at, sample_negatives

# ------------------------------------------------------------------ helpers



def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def node_batch(b=3, n=6, d=8, lengths=(6, 4, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, d, generator=g)
    mask = torch.arange(n)[None] < torch.tensor(lengths)[:, None]
    return x, mask


def features(b: int, n: int, d: int, lengths: list[int], seed: int, pooled_grad=False):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.arange(n)[None] < torch.tensor(lengths)[:, None]).float()
    pooled = torch.randn(b, d, generator=g)
    return TokenFeatures(torch.randn(b, n, d, generator=g), mask,
                         pooled.requires_grad_(pooled_grad))


def batch_outputs(b=6, d=16, seed=0, vid=None, pooled_grad=False):
    text = features(b, 7, d, [7, 5, 3, 6, 2, 4][:b], seed, pooled_grad)
    video = features(b, 4, d, [4, 3, 4, 2, 4, 1][:b], seed + 1, pooled_grad)
    g = torch.Generator().manual_seed(seed + 2)
    sim = torch.randn(b, b, generator=g)
    sim.diagonal().add_(2.0)
    vid = torch.arange(b) if vid is None else vid
    return {"text": text, "video": video, "sim": sim, "logit_scale": torch.tensor(100.0),
            "video_index": vid, "local": slice(0, b)}


def naive_gat_graph(gat: DenseGAT, x: torch.Tensor, neighbours: torch.Tensor | None = None):
    """One graph's valid nodes ``x [n, d]`` through ``gat`` with explicit loops (§9.3, §9.9)."""
    w = gat.proj.weight.view(gat.heads, gat.out_dim, gat.in_dim)
    tau = float(gat.log_temperature.detach().exp())
    n = len(x)
    outs = []
    for k in range(gat.heads):
        z = x @ w[k].T  # [n, F]
        e = torch.full((n, n), float("-inf"))
        for i in range(n):
            for j in range(n):
                if neighbours is not None and not neighbours[i, j]:
                    continue
                if gat.attention == "gat":
                    logit = F.leaky_relu(gat.att_self[k] @ z[i] + gat.att_neighbor[k] @ z[j], 0.2)
                else:
                    logit = gat.att[k] @ F.leaky_relu(z[i] + z[j], 0.2)
                e[i, j] = logit / tau
        h = torch.softmax(e, dim=-1) @ z
        if gat.root == "free":
            h = h + z
        elif gat.root == "weight":
            wr = gat.root_proj.weight.view(gat.heads, gat.out_dim, gat.in_dim)
            h = h + x @ wr[k].T
        outs.append(h)
    return gat.act(torch.stack(outs).mean(0))


def naive_topk_neighbours(x: torch.Tensor, k: int) -> torch.Tensor:
    """Row i: i itself plus its k most cosine-similar *other* nodes (methods.md §9.9)."""
    n = len(x)
    xn = F.normalize(x, dim=-1)
    keep = torch.eye(n, dtype=torch.bool)
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: -float(xn[i] @ xn[j]))
        for j in others[:k]:
            keep[i, j] = True
    return keep


VARIANTS = [
    dict(attention="gat", root="none"),
    dict(attention="gat", root="free"),
    dict(attention="gat", root="weight"),
    dict(attention="gatv2", root="none"),
    dict(attention="gatv2", root="weight", temperature=0.3),
    dict(attention="gat", root="free", temperature=2.0, learn_temperature=True),
]


# ------------------------------------------------------------------ DenseGAT variants


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("kw", VARIANTS)
def test_gat_variants_match_naive_loops(kw, heads):
    torch.manual_seed(3)
    gat = DenseGAT(8, 5, heads, **kw)
    x, mask = node_batch()
    h = gat(x, mask)
    for b in range(len(x)):
        n = int(mask[b].sum())
        torch.testing.assert_close(h[b, :n], naive_gat_graph(gat, x[b, :n]), atol=1e-5, rtol=1e-4)
        assert (h[b, n:] == 0).all()


@pytest.mark.parametrize("kw", VARIANTS + [dict(topk=2), dict(topk=1, root="weight")])
def test_gat_variants_respect_masks(kw):
    torch.manual_seed(4)
    gat = DenseGAT(8, 5, 2, **kw)
    x, mask = node_batch()
    h, attn = gat(x, mask, return_attention=True)
    assert (h[~mask] == 0).all()
    rows = mask[:, None, :].expand(-1, 2, -1)
    torch.testing.assert_close(attn.sum(-1)[rows], torch.ones(int(rows.sum())))
    assert (attn.sum(-1)[~rows] == 0).all()  # padded rows
    assert (attn.permute(0, 1, 3, 2)[~rows] == 0).all()  # padded columns
    garbage = torch.where(mask[..., None], x, 50 * torch.randn_like(x))
    torch.testing.assert_close(gat(garbage, mask)[mask], h[mask])


def zero_attention(gat: DenseGAT) -> None:
    with torch.no_grad():
        for name in ("att_self", "att_neighbor", "att"):
            if hasattr(gat, name):
                getattr(gat, name).zero_()


@pytest.mark.parametrize("attention", ["gat", "gatv2"])
def test_flat_attention_collapses_nodes_without_a_root(attention):
    x, mask = node_batch(lengths=(6, 4, 3))
    outs = {}
    for root in ("none", "free", "weight"):
        torch.manual_seed(0)
        gat = DenseGAT(8, 5, attention=attention, root=root)
        zero_attention(gat)
        h, attn = gat(x, mask, return_attention=True)
        for b in range(3):
            n = int(mask[b].sum())
            torch.testing.assert_close(attn[b, 0, :n, :n], torch.full((n, n), 1.0 / n))
        outs[root] = h
    for b in range(3):
        n = int(mask[b].sum())
        # no root: every node is ELU(W * graph mean), the collapse of methods.md §9.7
        none = outs["none"][b, :n]
        torch.testing.assert_close(none, none[:1].expand(n, -1))
        for root in ("free", "weight"):
            h = outs[root][b, :n]
            gaps = (h[:, None] - h[None]).abs().amax(-1) + torch.eye(n)
            assert float(gaps.detach().min()) > 1e-3, root  # every pair of nodes stays distinct
    # the free root is exactly act(z_i + mean_j z_j)
    torch.manual_seed(0)
    gat = DenseGAT(8, 5, attention=attention, root="free")
    z = x[0] @ gat.proj.weight.T
    torch.testing.assert_close(outs["free"][0], F.elu(z + z.mean(0, keepdim=True)))


def test_gat_v1_is_static_and_gatv2_is_dynamic():
    """GAT: argmax_j e_ij is the same j for every i (LeakyReLU is monotone); GATv2 is not."""
    for seed in range(4):
        torch.manual_seed(seed)
        gat = DenseGAT(8, 8, attention="gat")
        x = torch.randn(1, 16, 8)
        _, attn = gat(x, return_attention=True)
        best = attn[0, 0].argmax(-1)
        assert (best == best[0]).all(), seed
    torch.manual_seed(0)
    gat2 = DenseGAT(8, 8, attention="gatv2")
    x = torch.randn(1, 16, 8)
    _, attn = gat2(x, return_attention=True)
    assert len(set(attn[0, 0].argmax(-1).tolist())) > 1
    # GATv2 logits: e_ij = a . LeakyReLU(W x_i + W x_j)
    z = x[0] @ gat2.proj.weight.T  # [N, F]
    naive = torch.stack([torch.stack([gat2.att[0] @ F.leaky_relu(z[i] + z[j], 0.2)
                                      for j in range(16)]) for i in range(16)])
    torch.testing.assert_close(gat2.attention_logits(z[None, None])[0, 0], naive)


def test_temperature_sharpens_attention():
    torch.manual_seed(5)
    warm = DenseGAT(8, 8, temperature=1.0)
    cold = DenseGAT(8, 8, temperature=0.1)
    cold.load_state_dict(warm.state_dict())
    assert "log_temperature" not in dict(warm.named_parameters())
    x, mask = node_batch(lengths=(6, 5, 4))
    _, a_warm = warm(x, mask, return_attention=True)
    _, a_cold = cold(x, mask, return_attention=True)
    e_warm, e_cold = attention_entropy(a_warm, mask), attention_entropy(a_cold, mask)
    assert (e_cold < e_warm).all()
    # exactly the logits divided by tau: softmax(log a_warm / 0.1) == a_cold on valid entries
    for b in range(3):
        n = int(mask[b].sum())
        expected = torch.softmax(a_warm[b, 0, :n, :n].log() / 0.1, dim=-1)
        torch.testing.assert_close(a_cold[b, 0, :n, :n], expected, atol=1e-5, rtol=1e-4)


def test_learned_temperature_is_a_parameter_with_a_gradient():
    torch.manual_seed(6)
    gat = DenseGAT(8, 8, temperature=0.5, learn_temperature=True)
    assert isinstance(gat.log_temperature, nn.Parameter)
    assert float(gat.log_temperature.detach()) == pytest.approx(math.log(0.5))
    assert any(p is gat.log_temperature for p in gat.parameters())
    x, mask = node_batch()
    h = gat(x, mask)
    (h * torch.randn_like(h)).sum().backward()
    grad = gat.log_temperature.grad
    assert grad is not None and torch.isfinite(grad) and float(grad.abs()) > 0


@pytest.mark.parametrize("k", [1, 2, 3, 5, 9])
def test_topk_graph_attends_to_self_and_the_k_most_similar_nodes(k):
    """methods.md §9.9: each node attends to its k most similar nodes (cosine of x) plus
    itself, i.e. min(k, n - 1) other valid nodes and itself; never a padded node."""
    torch.manual_seed(7)
    gat = DenseGAT(8, 5, topk=k)
    x, mask = node_batch(lengths=(6, 4, 1))
    _, attn = gat(x, mask, return_attention=True)
    nonzero = attn[:, 0] > 0  # [B, N, N]
    for b in range(3):
        n = int(mask[b].sum())
        assert not nonzero[b, :, n:].any()  # never a padded column
        assert not nonzero[b, n:].any()  # padded rows attend to nothing
        rows = nonzero[b, :n, :n]
        assert rows.diagonal().all()  # always itself
        assert (rows.sum(-1) <= k + 1).all()
        assert rows.sum(-1).tolist() == [min(k, n - 1) + 1] * n, "k other nodes plus itself"
        torch.testing.assert_close(rows, naive_topk_neighbours(x[b, :n], k))


def test_topk_matches_naive_gat_on_the_sparse_graph():
    torch.manual_seed(8)
    gat = DenseGAT(8, 5, 2, topk=2, root="free")
    x, mask = node_batch(lengths=(6, 5, 3))
    h = gat(x, mask)
    for b in range(3):
        n = int(mask[b].sum())
        expected = naive_gat_graph(gat, x[b, :n], naive_topk_neighbours(x[b, :n], 2))
        torch.testing.assert_close(h[b, :n], expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (dict(), lambda h, i, o: h * (i * o + 2 * o)),
        (dict(activation="prelu"), lambda h, i, o: h * (i * o + 2 * o) + 1),
        (dict(learn_temperature=True), lambda h, i, o: h * (i * o + 2 * o) + 1),
        (dict(attention="gatv2"), lambda h, i, o: h * (i * o + o)),
        (dict(root="free"), lambda h, i, o: h * (i * o + 2 * o)),
        (dict(root="weight"), lambda h, i, o: h * (i * o + 2 * o) + h * i * o),
        (dict(attention="gatv2", root="weight"), lambda h, i, o: h * (i * o + o) + h * i * o),
        (dict(topk=3, temperature=0.2), lambda h, i, o: h * (i * o + 2 * o)),
    ],
)
@pytest.mark.parametrize("heads", [1, 3])
def test_gat_variant_parameter_counts(kw, expected, heads):
    gat = DenseGAT(12, 7, heads, **kw)
    assert count(gat) == expected(heads, 12, 7)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(attention="gatv3"), "attention='gatv3'"),
        (dict(root="both"), "root='both'"),
        (dict(temperature=0.0), "temperature=0.0"),
        (dict(topk=-1), "topk=-1"),
    ],
)
def test_gat_variant_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        DenseGAT(8, 4, **kw)


# ------------------------------------------------------------------ token scores, readout


def test_token_scores_match_a_naive_max():
    torch.manual_seed(9)
    disc = BilinearDiscriminator(5)
    with torch.no_grad():
        disc.bias.fill_(0.3)
    h = torch.randn(4, 3, 5)
    others = torch.randn(4, 6, 5)
    other_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1],
                               [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    others = torch.where(other_mask[..., None], others, 1e3)  # padded garbage is ignored
    got = disc.token_scores(h, others, other_mask).detach()
    assert got.shape == (4, 3)
    for a in range(4):
        for n in range(3):
            vals = [float(h[a, n] @ disc.weight.detach() @ others[a, m])
                    for m in range(6) if other_mask[a, m]]
            expected = (max(vals) if vals else 0.0) + 0.3  # no valid other: just b
            assert float(got[a, n]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # leading dims broadcast: [A, m, N, F] nodes against [A, 1, M, F] others
    h2 = torch.randn(4, 2, 3, 5)
    got2 = disc.token_scores(h2, others[:, None], other_mask[:, None])
    for j in range(2):
        torch.testing.assert_close(got2[:, j], disc.token_scores(h2[:, j], others, other_mask))


def test_attention_readout_starts_as_the_mean_readout_and_respects_masks():
    torch.manual_seed(10)
    readout = AttentionReadout(5)
    assert count(readout) == 5
    h = torch.randn(3, 4, 5)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(readout(h, mask), masked_readout(h, mask))
    with torch.no_grad():
        readout.query.copy_(torch.randn(5))
    garbage = torch.where(mask[..., None], h, 100.0)
    out = readout(garbage, mask)
    for b in range(3):
        n = int(mask[b].sum())
        w = torch.softmax(h[b, :n] @ readout.query, dim=0)
        torch.testing.assert_close(out[b], torch.sigmoid(w @ h[b, :n]))
    # GraphInfomax uses an injected readout for the summary
    gi = GraphInfomax(DenseGAT(5, 5), BilinearDiscriminator(5), readout=readout)
    enc = gi.encode(h, mask)
    torch.testing.assert_close(enc.summary, readout(enc.nodes, mask))


# ------------------------------------------------------------------ negative sampling


def duplicated_batch(seed: int, b: int = 12, n_videos: int = 4):
    g = torch.Generator().manual_seed(seed)
    vid = torch.randint(0, n_videos, (b,), generator=g)
    sim = torch.randn(b, b, generator=g)
    for i in range(b):  # same-video duplicates score highest: a miner must skip them
        sim[i, vid == vid[i]] += 5.0
    return sim, vid


@pytest.mark.parametrize("mode", ["random", "semihard"])
def test_sampled_negatives_never_share_the_anchor_video(mode):
    for seed in range(6):
        sim, vid = duplicated_batch(seed)
        if len(set(vid.tolist())) < 2:
            continue
        torch.manual_seed(seed)
        neg = sample_negatives(sim, vid, mode, semihard_k=3)
        assert neg.video.shape == neg.text.shape == neg.valid.shape == (12, 1)
        assert neg.valid.all() and neg.skipped == 0
        assert (vid[neg.video[:, 0]] != vid).all()
        assert (vid[neg.text[:, 0]] != vid).all()


def test_semihard_draws_within_the_k_hardest_candidates():
    sim, vid = duplicated_batch(1, b=16, n_videos=8)
    k = 3
    seen_v = [set() for _ in range(16)]
    for draw in range(60):
        torch.manual_seed(draw)
        neg = sample_negatives(sim, vid, "semihard", semihard_k=k)
        for i in range(16):
            cand = [j for j in range(16) if vid[j] != vid[i]]
            top_v = sorted(cand, key=lambda j: -float(sim[i, j]))[:k]
            top_t = sorted(cand, key=lambda j: -float(sim[j, i]))[:k]
            assert int(neg.video[i, 0]) in top_v
            assert int(neg.text[i, 0]) in top_t
            seen_v[i].add(int(neg.video[i, 0]))
    # a draw among the k hardest, not always the hardest
    assert all(len(s) == k for s in seen_v)
    # semihard_k = 1 is the hardest negative
    torch.manual_seed(0)
    one = sample_negatives(sim, vid, "semihard", semihard_k=1)
    hardest = mine_negatives(sim, vid, 1)
    assert torch.equal(one.video, hardest.video) and torch.equal(one.text, hardest.text)


def test_random_negatives_cover_every_candidate():
    sim, vid = duplicated_batch(2, b=10, n_videos=5)
    seen = set()
    for draw in range(200):
        torch.manual_seed(draw)
        seen.add(int(sample_negatives(sim, vid, "random").video[0, 0]))
    assert seen == {j for j in range(10) if vid[j] != vid[0]}


def test_hardest_mode_equals_mine_negatives():
    sim, vid = duplicated_batch(3)
    a = sample_negatives(sim, vid, "hardest", anchors=slice(2, 7))
    b = mine_negatives(sim, vid, 1, anchors=slice(2, 7))
    for field in ("anchors", "video", "text", "valid"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("mode", ["random", "semihard", "hardest"])
def test_sampled_negatives_with_empty_candidate_sets(mode):
    vid = torch.tensor([0, 0, 0, 1])
    sim = torch.randn(4, 4)
    neg = sample_negatives(sim, vid, mode)
    assert neg.valid[:, 0].tolist() == [True, True, True, True]
    same = torch.zeros(4, dtype=torch.long)
    neg = sample_negatives(sim, same, mode, anchors=torch.tensor([1, 3]))
    assert neg.anchors.tolist() == [1, 3]
    assert not neg.valid.any() and neg.skipped == 2
    assert neg.video[:, 0].tolist() == [1, 3] and neg.text[:, 0].tolist() == [1, 3]


def test_sampled_negatives_without_exclude_same_video_exclude_only_self():
    vid = torch.zeros(5, dtype=torch.long)
    sim = torch.randn(5, 5)
    for draw in range(20):
        torch.manual_seed(draw)
        neg = sample_negatives(sim, vid, "random", exclude_same_video=False)
        assert neg.valid.all()
        assert (neg.video[:, 0] != torch.arange(5)).all()
        assert (neg.text[:, 0] != torch.arange(5)).all()


def test_sample_negatives_bad_input():
    sim, vid = torch.randn(4, 4), torch.arange(4)
    with pytest.raises(ValueError, match="mode='sideways'"):
        sample_negatives(sim, vid, "sideways")
    with pytest.raises(ValueError, match="semihard_k=0"):
        sample_negatives(sim, vid, "semihard", semihard_k=0)


def test_negatives_curriculum_boundaries():
    sched = (3, 7)
    assert [negatives_at("curriculum", s, sched) for s in (0, 2, 3, 6, 7, 100)] == [
        "random", "random", "semihard", "semihard", "hardest", "hardest"]
    assert negatives_at("curriculum", 0, (0, 0)) == "hardest"
    assert negatives_at("curriculum", 4, (0, 5)) == "semihard"
    for mode in ("random", "semihard", "hardest"):
        assert negatives_at(mode, 10**6, sched) == mode
    drgi = DRGI(drgi_cfg(negatives="curriculum", curriculum=(2, 4), hidden=8), 16)
    modes = []
    for step in range(6):
        drgi.on_step(step, log=False)
        modes.append(drgi.current_negatives)
    assert modes == ["random", "random", "semihard", "semihard", "hardest", "hardest"]


# ------------------------------------------------------------------ the objective


def test_variant_parameter_budget_at_width_512():
    base = 73_986  # methods.md §9.5
    assert count(DRGI(drgi_cfg(), 512)) == base
    assert count(DRGI(drgi_cfg(root="weight"), 512)) == base + 2 * 512 * 64
    assert count(DRGI(drgi_cfg(root="free"), 512)) == base
    assert count(DRGI(drgi_cfg(readout="attention"), 512)) == base + 2 * 64
    assert count(DRGI(drgi_cfg(attention="gatv2"), 512)) == base - 2 * 64
    assert count(DRGI(drgi_cfg(learn_temperature=True), 512)) == base + 2
    for kw in (dict(graph_topk=4), dict(score="tokens"), dict(global_node=True),
               dict(summary="pooled"), dict(shuffle_corruption=True), dict(attn_temperature=0.1),
               dict(negatives="curriculum", curriculum=(5, 10))):
        assert count(DRGI(drgi_cfg(**kw), 512)) == base, kw


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(score="tokens", mode="intra"), "drgi.score"),
        (dict(attention="gatv3"), "drgi.attention.*gatv3"),
        (dict(root="both"), "drgi.root"),
        (dict(readout="max"), "drgi.readout"),
        (dict(summary="mean"), "drgi.summary"),
        (dict(negatives="easy"), "drgi.negatives"),
        (dict(negatives="random", neg_topm=2), "drgi.neg_topm"),
        (dict(attn_temperature=0.0), "drgi.attn_temperature"),
        (dict(graph_topk=-1), "drgi.graph_topk"),
        (dict(semihard_k=0), "drgi.semihard_k"),
        (dict(weight_warmup=-1), "drgi.weight_warmup"),
        (dict(lr=-1e-3), "drgi.lr"),
        (dict(clip=-0.5), "drgi.clip"),
        (dict(curriculum=(5, 2)), "drgi.curriculum"),
        (dict(nodes="factors", global_node=True), "drgi.nodes=tokens"),
        (dict(nodes="factors", summary="pooled"), "drgi.nodes=tokens"),
    ],
)
def test_variant_config_errors_name_the_key(kw, match):
    with pytest.raises(ConfigError, match=match):
        DRGI(drgi_cfg(hidden=8, **kw), 16)


TRAINABLE_VARIANTS = [
    dict(attention="gatv2"),
    dict(root="free"),
    dict(root="weight"),
    dict(attn_temperature=0.2, learn_temperature=True),
    dict(graph_topk=2),
    dict(readout="attention"),
    dict(score="tokens"),
    dict(global_node=True),
    dict(summary="pooled"),
    dict(negatives="random"),
    dict(negatives="semihard", semihard_k=2),
    dict(negatives="curriculum", curriculum=(1, 2)),
    dict(shuffle_corruption=True),
    dict(weight_warmup=3),
    dict(attention="gatv2", root="weight", graph_topk=2, readout="attention",
         shuffle_corruption=True, negatives="semihard", semihard_k=3, weight_warmup=10),
    dict(score="tokens", global_node=True, root="free", shuffle_corruption=True,
         negatives="curriculum", curriculum=(2, 8)),
]


@pytest.mark.parametrize("kw", TRAINABLE_VARIANTS)
def test_every_variant_gives_a_finite_loss_and_gradients(kw):
    torch.manual_seed(11)
    drgi = DRGI(drgi_cfg(hidden=8, **kw), 16)
    drgi.on_step(5, log=True)
    out = drgi(batch_outputs(), {})
    loss = out["drgi_loss"]
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    loss.backward()
    for name, p in drgi.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in drgi.text.encoder.parameters())


def test_token_scores_mode_scores_nodes_against_the_other_modality_nodes():
    torch.manual_seed(12)
    drgi = DRGI(drgi_cfg(hidden=8, score="tokens"), 16)
    out = batch_outputs()
    neg = mine_negatives(out["sim"], out["video_index"])
    with torch.no_grad():
        g = drgi.graph_outputs(out["text"], out["video"], neg.text, neg.video, neg.valid)
    U_v, b_v = drgi.video.discriminator.weight.detach(), drgi.video.discriminator.bias.detach()
    U_t, b_t = drgi.text.discriminator.weight.detach(), drgi.text.discriminator.bias.detach()
    for a in range(6):
        t_valid = g.text.nodes[a][g.text.mask[a]]
        v_valid = g.video.nodes[a][g.video.mask[a]]
        for f in range(int(g.video.mask[a].sum())):
            expected = max(float(g.video.nodes[a, f] @ U_v @ t) for t in t_valid) + float(b_v)
            assert float(g.pos_video_scores[a, f]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
        j = int(neg.video[a, 0])  # the negative video's nodes against the anchor caption's
        for f in range(int(g.video.mask[j].sum())):
            expected = max(float(g.video.nodes[j, f] @ U_v @ t) for t in t_valid) + float(b_v)
            assert float(g.neg_video_scores[a, 0, f]) == pytest.approx(expected, rel=1e-5,
                                                                        abs=1e-5)
        for w in range(int(g.text.mask[a].sum())):
            expected = max(float(g.text.nodes[a, w] @ U_t @ v) for v in v_valid) + float(b_t)
            assert float(g.pos_text_scores[a, w]) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_shuffle_corruption_adds_negatives():
    out = batch_outputs()
    torch.manual_seed(13)
    plain = DRGI(drgi_cfg(hidden=8), 16)
    shuffled = DRGI(drgi_cfg(hidden=8, shuffle_corruption=True), 16)
    shuffled.load_state_dict(plain.state_dict())
    neg = mine_negatives(out["sim"], out["video_index"])
    g0 = plain.graph_outputs(out["text"], out["video"], neg.text, neg.video, neg.valid)
    assert g0.shuffle_text_scores is None and g0.shuffle_video_scores is None
    torch.manual_seed(0)
    g = shuffled.graph_outputs(out["text"], out["video"], neg.text, neg.video, neg.valid,
                               corrupt=True)
    assert g.shuffle_text_scores.shape == g.pos_text_scores.shape == (6, 7)
    assert g.shuffle_video_scores.shape == g.pos_video_scores.shape == (6, 4)
    # the per-anchor loss pools the shuffled graph's nodes with the hard negative's
    for side in ("video", "text"):
        pos_m = getattr(g, f"pos_{side}_mask")
        neg_s = getattr(g, f"neg_{side}_scores")[:, 0]
        neg_m = getattr(g, f"neg_{side}_mask")[:, 0]
        shuf = getattr(g, f"shuffle_{side}_scores")
        for a in range(6):
            negs = torch.cat([neg_s[a][neg_m[a]], shuf[a][pos_m[a]]])
            assert len(negs) == int(neg_m[a].sum() + pos_m[a].sum())
    per_anchor = g.anchor_losses()
    expected = []
    for a in range(6):
        terms = []
        for side in ("video", "text"):
            pos_m = getattr(g, f"pos_{side}_mask")[a]
            pos = F.softplus(-getattr(g, f"pos_{side}_scores")[a][pos_m]).mean()
            negs = torch.cat([getattr(g, f"neg_{side}_scores")[a, 0][getattr(g, f"neg_{side}_mask")[a, 0]],
                              getattr(g, f"shuffle_{side}_scores")[a][pos_m]])
            terms.append(0.5 * (pos + F.softplus(negs).mean()))
        expected.append(0.5 * (terms[0] + terms[1]))
    torch.testing.assert_close(per_anchor, torch.stack(expected))
    # end to end: the loss changes, gradients stay finite
    torch.manual_seed(1)
    loss_plain = plain(out, {})["drgi_loss"]
    torch.manual_seed(1)
    loss_shuffled = shuffled(out, {})["drgi_loss"]
    assert abs(float(loss_plain.detach()) - float(loss_shuffled.detach())) > 1e-6
    loss_shuffled.backward()
    assert all(torch.isfinite(p.grad).all() for p in shuffled.parameters())


def test_shuffle_corruption_draws_only_valid_nodes():
    """Padded token positions (garbage, here NaN) never enter the shuffled graphs."""
    out = batch_outputs()
    for feats in (out["text"], out["video"]):
        feats.tokens[~feats.mask.bool()] = float("nan")
    torch.manual_seed(14)
    drgi = DRGI(drgi_cfg(hidden=8, shuffle_corruption=True), 16)
    for seed in range(5):
        torch.manual_seed(seed)
        loss = drgi(out, {})["drgi_loss"]
        assert torch.isfinite(loss), seed


@pytest.mark.parametrize(
    ("kw", "coupled"),
    [
        (dict(), False),
        (dict(global_node=True), True),
        (dict(summary="pooled"), True),
        (dict(global_node=True, summary="pooled"), True),
    ],
)
def test_pooled_embeddings_get_a_gradient_only_when_coupled(kw, coupled):
    torch.manual_seed(15)
    drgi = DRGI(drgi_cfg(hidden=8, **kw), 16)
    drgi.on_step(0, log=False)
    out = batch_outputs(pooled_grad=True)
    loss = drgi(out, {})["drgi_loss"]
    pooled = [out["text"].pooled, out["video"].pooled]
    grads = torch.autograd.grad(loss, pooled, allow_unused=True)
    for side, g in zip(("text", "video"), grads):
        norm = 0.0 if g is None else float(g.abs().sum())
        if coupled:
            assert norm > 0, side
        else:
            assert norm == 0.0, side


def test_global_node_and_pooled_summary_are_the_pooled_embedding():
    torch.manual_seed(16)
    drgi = DRGI(drgi_cfg(hidden=8, global_node=True, summary="pooled"), 16)
    out = batch_outputs()
    xt, mt, xv, mv = drgi.node_features(out["text"], out["video"])
    assert xt.shape == (6, 8, 16) and xv.shape == (6, 5, 16)
    torch.testing.assert_close(xt[:, -1], out["text"].pooled)
    torch.testing.assert_close(xv[:, -1], out["video"].pooled)
    assert mt[:, -1].all() and mv[:, -1].all()
    assert torch.equal(mt[:, :-1], out["text"].mask.bool())
    neg = mine_negatives(out["sim"], out["video_index"])
    g = drgi.graph_outputs(out["text"], out["video"], neg.text, neg.video, neg.valid)
    w = drgi.text.encoder.proj.weight
    torch.testing.assert_close(g.text.summary,
                               torch.sigmoid(F.normalize(out["text"].pooled, dim=-1) @ w.T))


def test_weight_warmup_ramps_lambda():
    drgi = DRGI(drgi_cfg(hidden=8, weight=0.4, weight_warmup=10), 16)
    ramp = []
    for step in (0, 5, 10, 11, 1000):
        drgi.on_step(step, log=False)
        ramp.append(drgi.current_weight)
    assert ramp == pytest.approx([0.0, 0.2, 0.4, 0.4, 0.4])
    out = batch_outputs()
    drgi.on_step(0, log=False)
    with torch.no_grad():
        rep = drgi(out, {})
    assert float(rep["drgi_loss"]) == 0.0 and float(rep["drgi_weight"]) == 0.0
    assert float(rep["drgi_bce"]) > 0
    drgi.on_step(5, log=False)
    with torch.no_grad():
        rep = drgi(out, {})
    assert float(rep["drgi_weight"]) == pytest.approx(0.2)
    assert float(rep["drgi_loss"]) == pytest.approx(0.2 * float(rep["drgi_bce"]), rel=1e-6)
    no_warmup = DRGI(drgi_cfg(hidden=8, weight=0.4), 16)
    no_warmup.on_step(0)
    assert no_warmup.current_weight == 0.4


BASE_KEYS = {"drgi_loss", "drgi_bce", "drgi_pos_score", "drgi_neg_score", "drgi_skipped",
             "drgi_weight"}
UNIT_KEYS = ["drgi_acc", "drgi_acc_hard_video", "drgi_acc_hard_text", "drgi_base_right_video",
             "drgi_base_right_text", "drgi_entropy_text", "drgi_entropy_video"]


@pytest.mark.parametrize("negatives", ["hardest", "random"])
def test_diagnostics_only_on_log_steps(negatives):
    torch.manual_seed(17)
    drgi = DRGI(drgi_cfg(hidden=8, negatives=negatives), 16)
    out = batch_outputs(b=6)
    drgi.on_step(3, log=False)
    quiet = drgi(out, {})
    assert set(quiet) == BASE_KEYS
    drgi.on_step(3, log=True)
    with torch.no_grad():
        rep = drgi(out, {})
    for key in UNIT_KEYS:
        assert key in rep, key
        assert 0.0 <= float(rep[key]) <= 1.0, key
    for key in ("drgi_logit_range_text", "drgi_node_cos_text", "drgi_node_cos_video",
                "drgi_input_cos_text"):
        assert key in rep and math.isfinite(float(rep[key])), key
    assert float(rep["drgi_logit_range_video"]) >= 0
    # base_right is measured against the hardest negative whatever the training negatives
    sim, vid = out["sim"], out["video_index"]
    hardest = mine_negatives(sim, vid)
    right_v = [float(sim[i, i] > sim[i, hardest.video[i, 0]]) for i in range(6)]
    right_t = [float(sim[i, i] > sim[hardest.text[i, 0], i]) for i in range(6)]
    assert float(rep["drgi_base_right_video"]) == pytest.approx(sum(right_v) / 6)
    assert float(rep["drgi_base_right_text"]) == pytest.approx(sum(right_t) / 6)
    if negatives == "hardest":  # the training negative is the hardest one
        assert float(rep["drgi_acc"]) == pytest.approx(
            0.5 * (float(rep["drgi_acc_hard_video"]) + float(rep["drgi_acc_hard_text"])))


def test_detach_inputs_keeps_the_gradient_inside_drgi():
    """Sanity mode: DRGI's own parameters get gradients, the features it reads get none."""
    torch.manual_seed(0)
    cfg = ExperimentConfig()
    cfg.add_objective("drgi", hidden=8, detach_inputs=True)
    obj = DRGI(cfg, 16)
    b, n = 6, 5
    tokens = torch.randn(b, n, 16, requires_grad=True)
    frames = torch.randn(b, 4, 16, requires_grad=True)
    text = TokenFeatures(tokens, torch.ones(b, n, dtype=torch.bool), tokens.mean(1))
    video = TokenFeatures(frames, torch.ones(b, 4, dtype=torch.bool), frames.mean(1))
    out = obj({"text": text, "video": video, "sim": torch.randn(b, b),
               "video_index": torch.arange(b), "local": slice(0, b)}, {})
    out["drgi_loss"].backward()
    assert tokens.grad is None and frames.grad is None
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for p in obj.text.encoder.parameters())
