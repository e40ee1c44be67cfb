"""InfoNCE and CDCR objectives, and the objective factory (tvr/objectives). The other
objectives have their own files, tests/test_objectives_<name>.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.objectives import build_objectives
from tvr.objectives.cdcr import CDCR
from tvr.objectives.infonce import InfoNCE, same_video_mask
from tvr.registry import names


def infonce_outputs(sim, scale=10.0, video_index=None):
    return {"sim": sim, "logit_scale": torch.tensor(scale), "video_index": video_index}


def test_build_objectives_follows_config():
    cfg = ExperimentConfig()
    assert list(build_objectives(cfg, 8)) == ["infonce"]
    cfg.add_objective("drgi")
    cfg.add_objective("cdcr")  # kept in the declared order
    objectives = build_objectives(cfg, 8)
    assert isinstance(objectives, torch.nn.ModuleDict)
    assert list(objectives) == ["infonce", "cdcr", "drgi"]
    assert all(o.training_only for o in objectives.values())


def test_objectives_are_registered():
    assert {"negnce", "tpmcl", "sdr", "gare_reg"} <= set(names("objective"))


def test_build_objectives_follows_the_list():
    cfg = ExperimentConfig()
    assert list(build_objectives(cfg, 8)) == ["infonce"]
    cfg.add_objective("negnce")
    cfg.add_objective("tpmcl")
    cfg.add_objective("drgi")
    assert list(build_objectives(cfg, 8)) == ["negnce", "tpmcl", "drgi"]  # NegNCE replaces it
    for head, extra in (("tcmgc", "sdr"), ("gare", "gare_reg")):
        cfg = ExperimentConfig()
        cfg.set_head(head)  # as head.name=<head>: the head brings its objective
        assert list(build_objectives(cfg, 8)) == ["infonce", extra]
        cfg.remove_objective(extra)
        assert list(build_objectives(cfg, 8)) == ["infonce"]
        cfg.add_objective(extra)
        cfg.set_head("seqtransf")  # the head-specific losses leave with their head
        assert list(build_objectives(cfg, 8)) == ["infonce"]


# ------------------------------------------------------------------ InfoNCE


def test_infonce_hand_computed():
    sim = torch.tensor([[0.5, 0.1], [0.3, 0.2]])
    out = InfoNCE(ExperimentConfig(), 8)(infonce_outputs(sim), {})
    # rows (t2v): -log softmax of [5, 1] at 0 and of [3, 2] at 1
    t2v = 0.5 * (-5 + math.log(math.exp(5) + math.exp(1)) - 2 + math.log(math.exp(3) + math.exp(2)))
    # columns (v2t): [5, 3] at 0 and [1, 2] at 1
    v2t = 0.5 * (-5 + math.log(math.exp(5) + math.exp(3)) - 2 + math.log(math.exp(1) + math.exp(2)))
    assert out["infonce_t2v"].item() == pytest.approx(t2v, rel=1e-6)
    assert out["infonce_v2t"].item() == pytest.approx(v2t, rel=1e-6)
    assert out["infonce_loss"].item() == pytest.approx(0.5 * (t2v + v2t), rel=1e-6)
    assert not out["infonce_t2v"].requires_grad


def test_infonce_weight_scales_loss():
    cfg = ExperimentConfig()
    cfg.infonce.weight = 2.0
    sim = torch.randn(4, 4)
    base = InfoNCE(ExperimentConfig(), 8)(infonce_outputs(sim), {})["infonce_loss"]
    torch.testing.assert_close(InfoNCE(cfg, 8)(infonce_outputs(sim), {})["infonce_loss"], 2 * base)


def test_infonce_mask_same_video():
    cfg = ExperimentConfig()
    cfg.infonce.mask_same_video = True
    sim = torch.tensor([[0.5, 0.4, 0.0], [0.45, 0.6, 0.1], [0.2, 0.3, 0.7]])
    vid = torch.tensor([7, 7, 3])  # pairs 0 and 1 show the same video
    assert same_video_mask(vid).tolist() == [
        [False, True, False],
        [True, False, False],
        [False, False, False],
    ]
    out = InfoNCE(cfg, 8)(infonce_outputs(sim, 1.0, vid), {})
    e = math.exp
    t2v = (
        -0.5
        + math.log(e(0.5) + e(0.0))  # row 0 without column 1
        - 0.6
        + math.log(e(0.6) + e(0.1))  # row 1 without column 0
        - 0.7
        + math.log(e(0.2) + e(0.3) + e(0.7))
    ) / 3
    v2t = (
        -0.5
        + math.log(e(0.5) + e(0.2))  # column 0 without row 1
        - 0.6
        + math.log(e(0.6) + e(0.3))
        - 0.7
        + math.log(e(0.0) + e(0.1) + e(0.7))
    ) / 3
    assert out["infonce_t2v"].item() == pytest.approx(t2v, rel=1e-6)
    assert out["infonce_v2t"].item() == pytest.approx(v2t, rel=1e-6)
    unmasked = InfoNCE(ExperimentConfig(), 8)(infonce_outputs(sim, 1.0, vid), {})
    assert unmasked["infonce_loss"] > out["infonce_loss"]
    # no duplicates: the mask changes nothing
    distinct = torch.tensor([0, 1, 2])
    torch.testing.assert_close(
        InfoNCE(cfg, 8)(infonce_outputs(sim, 1.0, distinct), {})["infonce_loss"],
        unmasked["infonce_loss"],
    )


def test_infonce_rejects_non_square():
    with pytest.raises(ValueError, match=r"square \[B, B\].*\(2, 3\)"):
        InfoNCE(ExperimentConfig(), 8)(infonce_outputs(torch.randn(2, 3)), {})


def test_infonce_mask_same_video_needs_video_index():
    cfg = ExperimentConfig()
    cfg.infonce.mask_same_video = True
    with pytest.raises(KeyError, match="video_index"):
        InfoNCE(cfg, 8)(infonce_outputs(torch.randn(2, 2)), {})


# ------------------------------------------------------------------ CDCR


def wti_like_features(b=3, n=4, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([n, 2, 3][:b])
    mask = (torch.arange(n)[None] < lengths[:, None]).float()
    tokens = F.normalize(torch.randn(b, n, d, generator=g), dim=-1)
    logits = torch.randn(b, n, generator=g).masked_fill(mask == 0, float("-inf"))
    return TokenFeatures(tokens, mask, torch.randn(b, d, generator=g), torch.softmax(logits, -1))


def naive_cdcr(text, video, a1, a2, eps=1e-8):
    """Methods.md §3.2 with explicit loops over pairs and tokens."""
    b, d = len(text), text.tokens.shape[-1]
    z, zp, wz, x, xp, wx = [], [], [], [], [], []
    for a in range(b):
        words = [i for i in range(text.tokens.shape[1]) if text.mask[a, i]]
        frames = [j for j in range(video.tokens.shape[1]) if video.mask[a, j]]
        for i in words:
            best = max(frames, key=lambda j, i=i: float(text.tokens[a, i] @ video.tokens[a, j]))
            z.append(text.tokens[a, i])
            zp.append(video.tokens[a, best])
            wz.append(text.weights[a, i])
        for j in frames:
            best = max(words, key=lambda i, j=j: float(text.tokens[a, i] @ video.tokens[a, j]))
            x.append(video.tokens[a, j])
            xp.append(text.tokens[a, best])
            wx.append(video.weights[a, j])

    def std(rows):
        m = torch.stack(rows)
        mean = m.mean(0)
        var = ((m - mean) ** 2).sum(0) / (len(rows) - 1)
        return (m - mean) / torch.sqrt(var + eps)

    c = torch.zeros(d, d)
    for rows, partners, weights in ((z, zp, wz), (x, xp, wx)):
        s, sp = std(rows), std(partners)
        for n in range(len(rows)):
            c += 0.5 * weights[n] * torch.outer(s[n], sp[n]) / b
    loss = 0.0
    for p in range(d):
        for q in range(d):
            loss += a1 * (c[p, q] - 1) ** 2 if p == q else a2 * c[p, q] ** 2
    return loss


def test_cdcr_matches_naive_implementation():
    cfg = ExperimentConfig()
    cfg.add_objective("cdcr", alpha_diag=0.7, alpha_offdiag=0.3, weight=0.5)
    text, video = wti_like_features(seed=0), wti_like_features(seed=1)
    out = CDCR(cfg, 5)({"text": text, "video": video}, {})
    expected = naive_cdcr(text, video, 0.7, 0.3)
    assert out["cdcr_value"].item() == pytest.approx(float(expected), rel=1e-5)
    assert out["cdcr_loss"].item() == pytest.approx(0.5 * float(expected), rel=1e-5)


def test_cdcr_gradients_reach_tokens_and_weights():
    cfg = ExperimentConfig()
    cfg.add_objective("cdcr", alpha_offdiag=0.06)
    text, video = wti_like_features(seed=2), wti_like_features(seed=3)
    for feats in (text, video):
        feats.tokens.requires_grad_(True)
        feats.weights.requires_grad_(True)
    CDCR(cfg, 5)({"text": text, "video": video}, {})["cdcr_loss"].backward()
    for t in (text.tokens, text.weights, video.tokens, video.weights):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_cdcr_constant_channel_is_finite():
    text, video = wti_like_features(seed=4), wti_like_features(seed=5)
    text.tokens[..., 0] = 0.3  # zero variance in one channel: eps guard
    text.tokens.requires_grad_(True)
    cfg = ExperimentConfig()
    cfg.add_objective("cdcr")
    out = CDCR(cfg, 5)({"text": text, "video": video}, {})
    out["cdcr_loss"].backward()
    assert torch.isfinite(out["cdcr_loss"]) and torch.isfinite(text.tokens.grad).all()


def test_cdcr_without_token_weights_raises():
    text, video = wti_like_features(), wti_like_features(seed=1)
    text.weights = None
    cfg = ExperimentConfig()
    cfg.add_objective("cdcr")
    with pytest.raises(ValueError, match=r"cdcr needs per-token weights.*head.name=wti"):
        CDCR(cfg, 5)({"text": text, "video": video}, {})
