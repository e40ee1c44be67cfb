"""DRGI objective: hard-negative mining, graph outputs and loss (tvr/objectives/drgi.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tvr.config import ConfigError, ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.objectives.drgi import DRGI
from tvr.objectives.drgi_negatives import mine_negatives


def drgi_cfg(**overrides) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.add_objective("drgi", **overrides)
    return cfg


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def features(b: int, n: int, d: int, lengths: list[int], seed: int) -> TokenFeatures:
    g = torch.Generator().manual_seed(seed)
    mask = (torch.arange(n)[None] < torch.tensor(lengths)[:, None]).float()
    return TokenFeatures(torch.randn(b, n, d, generator=g), mask, torch.randn(b, d, generator=g))


def outputs_for(text, video, sim, vid, local=None):
    return {
        "text": text,
        "video": video,
        "sim": sim,
        "logit_scale": torch.tensor(100.0),
        "video_index": vid,
        "local": local if local is not None else slice(0, len(text)),
    }


# ------------------------------------------------------------------ mining


def brute_force_negatives(sim, vid, i, m, exclude_same_video=True):
    b = len(vid)
    cand = [j for j in range(b) if (vid[j] != vid[i] if exclude_same_video else j != i)]
    videos = sorted(cand, key=lambda j: -float(sim[i, j]))[:m]
    texts = sorted(cand, key=lambda k: -float(sim[k, i]))[:m]
    return videos, texts


@pytest.mark.parametrize("topm", [1, 3])
def test_mined_negatives_never_share_the_video(topm):
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        vid = torch.randint(0, 4, (12,), generator=g)  # many duplicates
        sim = torch.randn(12, 12, generator=g)
        sim.diagonal().add_(3.0)  # positives score high, as in training
        for i in range(12):  # same-video duplicates score higher than any true negative
            sim[i, vid == vid[i]] += 5.0
        neg = mine_negatives(sim, vid, topm)
        for a in range(12):
            videos, texts = brute_force_negatives(sim, vid, a, topm)
            valid = neg.valid[a]
            assert int(valid.sum()) == len(videos)
            assert neg.video[a][valid].tolist() == videos  # hardest first
            assert neg.text[a][valid].tolist() == texts
            assert (vid[neg.video[a][valid]] != vid[a]).all()
            assert (vid[neg.text[a][valid]] != vid[a]).all()


def test_topm_takes_the_m_hardest():
    sim = torch.tensor(
        [
            [9.0, 0.1, 0.7, 0.3, 0.5],
            [0.0, 9.0, 0.0, 0.0, 0.0],
            [0.2, 0.0, 9.0, 0.0, 0.0],
            [0.6, 0.0, 0.0, 9.0, 0.0],
            [0.4, 0.0, 0.0, 0.0, 9.0],
        ]
    )
    neg = mine_negatives(sim, torch.arange(5), topm=2, anchors=torch.tensor([0]))
    assert neg.video.tolist() == [[2, 4]]  # row 0: 0.7 (video 2), 0.5 (video 4)
    assert neg.text.tolist() == [[3, 4]]  # column 0: 0.6 (text 3), 0.4 (text 4)
    assert neg.valid.all()


def test_empty_candidate_sets_are_skipped_and_counted():
    sim = torch.randn(4, 4)
    neg = mine_negatives(sim, torch.tensor([5, 5, 5, 1]), topm=2)
    assert neg.valid.tolist() == [[True, False]] * 3 + [[True, True]]
    assert neg.video[:3, 0].tolist() == [3, 3, 3] and neg.skipped == 0
    neg = mine_negatives(sim, torch.tensor([5, 5, 5, 1]), topm=1, anchors=slice(0, 3))
    assert neg.anchors.tolist() == [0, 1, 2] and neg.skipped == 0
    neg = mine_negatives(sim, torch.tensor([2, 2, 2, 1]), topm=1, anchors=torch.tensor([0, 3]))
    assert neg.skipped == 0
    neg = mine_negatives(sim, torch.tensor([2, 2, 2, 2]), topm=1)
    assert neg.skipped == 4 and not neg.anchor_valid.any()


def test_exclude_same_video_off_excludes_only_self():
    sim = torch.eye(3) * 5 + torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    vid = torch.tensor([0, 0, 1])
    assert mine_negatives(sim, vid, 1, exclude_same_video=False).video[0].item() == 1
    assert mine_negatives(sim, vid, 1).video[0].item() == 2


def test_mine_negatives_bad_input():
    with pytest.raises(ValueError, match="square"):
        mine_negatives(torch.randn(2, 3), torch.arange(2), 1)
    with pytest.raises(ValueError, match="video_index has shape"):
        mine_negatives(torch.randn(3, 3), torch.arange(2), 1)
    with pytest.raises(ValueError, match="NaN"):
        mine_negatives(torch.full((2, 2), float("nan")), torch.arange(2), 1)


# ------------------------------------------------------------------ parameters and config


def test_parameter_budget():
    assert count(DRGI(drgi_cfg(), 512)) == 73_986  # methods.md §9.5
    assert count(DRGI(drgi_cfg(nodes="factors"), 512)) == 75_778
    assert count(DRGI(drgi_cfg(mode="intra"), 512)) == 73_986
    assert count(DRGI(drgi_cfg(activation="prelu"), 512)) == 73_988


def test_bad_config_raises():
    with pytest.raises(ConfigError, match="drgi.mode.*'sideways'"):
        DRGI(drgi_cfg(mode="sideways"), 16)
    with pytest.raises(ConfigError, match="drgi.nodes"):
        DRGI(drgi_cfg(nodes="patches"), 16)
    with pytest.raises(ConfigError, match="drgi.factor_k.*D=20"):
        DRGI(drgi_cfg(nodes="factors"), 20)
    with pytest.raises(ConfigError, match="drgi.neg_topm"):
        DRGI(drgi_cfg(neg_topm=0), 16)
    with pytest.raises(NotImplementedError, match="drgi.factor_video='text_conditioned'"):
        DRGI(drgi_cfg(nodes="factors", factor_video="text_conditioned"), 16)


# ------------------------------------------------------------------ loss


def naive_gat(gat, x):
    w = gat.proj.weight.view(gat.heads, gat.out_dim, gat.in_dim)
    outs = []
    for k in range(gat.heads):
        z = x @ w[k].T
        e = torch.stack(
            [
                torch.stack(
                    [F.leaky_relu(gat.att_self[k] @ zi + gat.att_neighbor[k] @ zj, 0.2) for zj in z]
                )
                for zi in z
            ]
        )
        outs.append(torch.softmax(e, -1) @ z)
    return F.elu(torch.stack(outs).mean(0))


def naive_drgi(obj, text, video, sim, vid, topm, mode, anchors):
    """Methods.md §9.3-9.4 written out per graph, per node, per anchor."""

    def encode(branch, feats):
        nodes, summaries = [], []
        for b in range(len(feats)):
            x = F.normalize(feats.tokens[b][feats.mask[b].bool()], dim=-1)
            h = naive_gat(branch.encoder, x)
            nodes.append(h)
            summaries.append(torch.sigmoid(h.mean(0)))
        return nodes, summaries

    def disc(branch, h, s):
        return h @ branch.discriminator.weight @ s + branch.discriminator.bias

    def bce(logits, label):
        p = torch.sigmoid(logits)
        return -(label * torch.log(p) + (1 - label) * torch.log(1 - p))

    ht, st = encode(obj.text, text)
    hv, sv = encode(obj.video, video)
    total, kept = 0.0, 0
    for i in anchors:
        videos, texts = brute_force_negatives(sim, vid, i, topm)
        if not videos:
            continue
        kept += 1
        s_video_nodes = st[i] if mode == "cross" else sv[i]
        s_text_nodes = sv[i] if mode == "cross" else st[i]
        pos_v = bce(disc(obj.video, hv[i], s_video_nodes), 1).mean()
        neg_v = torch.cat([bce(disc(obj.video, hv[j], s_video_nodes), 0) for j in videos]).mean()
        pos_t = bce(disc(obj.text, ht[i], s_text_nodes), 1).mean()
        neg_t = torch.cat([bce(disc(obj.text, ht[k], s_text_nodes), 0) for k in texts]).mean()
        total = total + 0.5 * (0.5 * (pos_v + neg_v) + 0.5 * (pos_t + neg_t))
    return total / max(kept, 1), len(anchors) - kept


@pytest.mark.parametrize("mode", ["cross", "intra"])
@pytest.mark.parametrize("topm", [1, 2, 3])
@pytest.mark.parametrize("vid", [[0, 0, 1, 2, 2], [0, 0, 1, 1, 1]])
def test_loss_matches_hand_computation(mode, topm, vid):
    torch.manual_seed(0)
    obj = DRGI(drgi_cfg(mode=mode, neg_topm=topm, hidden=3, weight=0.5), 4)
    with torch.no_grad():  # non-trivial discriminator biases
        obj.text.discriminator.bias.fill_(0.3)
        obj.video.discriminator.bias.fill_(-0.2)
    text = features(5, 4, 4, [4, 2, 3, 2, 3], seed=1)
    video = features(5, 3, 4, [3, 1, 2, 3, 2], seed=2)
    sim = torch.randn(5, 5, generator=torch.Generator().manual_seed(3))
    vid = torch.tensor(vid)  # the second has candidate sets smaller than topm = 3
    local = slice(1, 5)
    out = obj(outputs_for(text, video, sim, vid, local), {})
    with torch.no_grad():
        expected, skipped = naive_drgi(obj, text, video, sim, vid, topm, mode, range(1, 5))
    assert out["drgi_bce"].item() == pytest.approx(float(expected), rel=1e-5)
    assert out["drgi_loss"].item() == pytest.approx(0.5 * float(expected), rel=1e-5)
    assert out["drgi_skipped"].item() == skipped == 0


def test_loss_at_init_is_near_ln2():
    torch.manual_seed(0)
    for nodes in ("tokens", "factors"):
        obj = DRGI(drgi_cfg(nodes=nodes), 512)
        text = features(16, 32, 512, [3 + i for i in range(16)], seed=4)
        video = features(16, 12, 512, [12 - (i % 4) for i in range(16)], seed=5)
        out = obj(outputs_for(text, video, torch.randn(16, 16), torch.arange(16)), {})
        assert out["drgi_bce"].item() == pytest.approx(math.log(2), abs=0.05)
        assert out["drgi_pos_score"].item() == pytest.approx(0.5, abs=0.05)
        assert out["drgi_neg_score"].item() == pytest.approx(0.5, abs=0.05)


def test_intra_mode_runs_and_differs_from_cross():
    torch.manual_seed(0)
    cross = DRGI(drgi_cfg(), 8)
    intra = DRGI(drgi_cfg(mode="intra"), 8)
    intra.load_state_dict(cross.state_dict())
    text, video = features(4, 5, 8, [5, 3, 2, 4], 1), features(4, 3, 8, [3, 3, 1, 2], 2)
    outs = outputs_for(text, video, torch.randn(4, 4), torch.arange(4))
    a, b = cross(outs, {})["drgi_loss"], intra(outs, {})["drgi_loss"]
    assert torch.isfinite(b) and a.item() != pytest.approx(b.item())


def test_all_anchors_skipped_gives_zero_loss_with_a_graph():
    obj = DRGI(drgi_cfg(), 8)
    text, video = features(3, 4, 8, [4, 2, 3], 1), features(3, 2, 8, [2, 1, 2], 2)
    out = obj(outputs_for(text, video, torch.randn(3, 3), torch.tensor([7, 7, 7])), {})
    assert out["drgi_skipped"].item() == 3
    assert out["drgi_loss"].item() == 0.0
    out["drgi_loss"].backward()  # still connected to every parameter (DDP-safe)
    assert all(p.grad is not None for p in obj.parameters())


def test_gradients_reach_features_and_parameters_not_sim():
    torch.manual_seed(0)
    obj = DRGI(drgi_cfg(), 8)
    text, video = features(4, 5, 8, [5, 3, 2, 4], 1), features(4, 3, 8, [3, 3, 1, 2], 2)
    text.tokens.requires_grad_(True)
    video.tokens.requires_grad_(True)
    sim = torch.randn(4, 4, requires_grad=True)
    obj(outputs_for(text, video, sim, torch.arange(4)), {})["drgi_loss"].backward()
    assert sim.grad is None  # S is detached
    for name, p in obj.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert text.tokens.grad.abs().sum() > 0 and video.tokens.grad.abs().sum() > 0
    # padded positions get no gradient
    assert (text.tokens.grad[text.mask == 0] == 0).all()


def test_factor_mode_graph_outputs():
    torch.manual_seed(0)
    obj = DRGI(drgi_cfg(nodes="factors", hidden=6), 16)  # K = 8 chunks of 2 dims, 8 heads
    text, video = features(4, 5, 16, [5, 3, 2, 4], 1), features(4, 3, 16, [3, 3, 1, 2], 2)
    text.pooled.requires_grad_(True)
    video.tokens.requires_grad_(True)
    neg = mine_negatives(torch.randn(4, 4), torch.arange(4), 1)
    g = obj.graph_outputs(text, video, neg.text, neg.video, neg.valid, return_attention=True)
    assert g.text.attention.shape == (4, 8, 8, 8)
    assert g.pos_video_scores.shape == (4, 8) and g.neg_text_scores.shape == (4, 1, 8)
    g.anchor_losses().mean().backward()
    assert text.pooled.grad.abs().sum() > 0 and video.tokens.grad.abs().sum() > 0
    assert (video.tokens.grad[video.mask == 0] == 0).all()


def test_graph_outputs_for_analysis():
    torch.manual_seed(0)
    obj = DRGI(drgi_cfg(neg_topm=2), 8).eval()
    text, video = features(6, 5, 8, [5, 3, 2, 4, 5, 2], 1), features(6, 3, 8, [3, 3, 1, 2, 3, 1], 2)
    sim = torch.zeros(6, 6)
    sim[0, 5] = sim[5, 0] = 1.0  # anchor 0's hardest negatives live outside the anchor rows
    vid = torch.tensor([0, 0, 1, 2, 3, 4])
    neg = mine_negatives(sim, vid, 2, anchors=slice(0, 2))
    with torch.no_grad():
        g = obj.graph_outputs(
            text, video, neg.text, neg.video, neg.valid, anchors=neg.anchors, return_attention=True
        )
    assert neg.video[0, 0].item() == 5 and neg.text[0, 0].item() == 5
    assert g.text.attention.shape == (6, 1, 5, 5) and g.video.attention.shape == (6, 1, 3, 3)
    assert g.text.nodes.shape == (6, 5, 64) and g.text.summary.shape == (6, 64)
    assert g.pos_text_scores.shape == (2, 5) and g.pos_video_scores.shape == (2, 3)
    assert g.neg_video_scores.shape == (2, 2, 3) and g.neg_text_mask.shape == (2, 2, 5)
    torch.testing.assert_close(g.neg_video_mask[0, 0], video.mask[5].bool())
    # the loss is the mean of the graph outputs' per-anchor losses
    out = obj(outputs_for(text, video, sim, vid, slice(0, 2)), {})
    torch.testing.assert_close(out["drgi_bce"], g.anchor_losses().mean())
    with pytest.raises(ValueError, match="A=2"):
        obj.graph_outputs(text, video, neg.text, neg.video[:1], anchors=neg.anchors)
