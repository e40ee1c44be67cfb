"""GARE head (tvr/models/heads/gare.py): increments, pooling, ψ, re-ranking.

The contract every head meets (shapes, gradients, padding, DRGI) is in tests/test_heads.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers_heads import D, make_text, make_video, seed_head
from tvr.config import ExperimentConfig
from tvr.models.heads import build_head


def test_gare_zero_initialised_increment_is_zero_and_score_is_baseline():
    head = seed_head("gare", {"gare.zero_init_delta": True}).eval()
    text, video = make_text(3), make_video(4)
    et, ev = head.embed_text(text), head.embed_video(video)
    with torch.no_grad():
        out = head.score_outputs(et, ev)
        assert out["gare_delta"].shape == (3, 4, D)
        assert (out["gare_delta"] == 0).all()
        pooled = head.pool(et.pooled, ev.tokens, ev.mask)  # [3, 4, D]
        baseline = F.cosine_similarity(et.pooled[:, None, :], pooled, dim=-1)
        torch.testing.assert_close(out["sim"], baseline)
    # W_mu is trainable from there: it gets a gradient at Δ = 0
    head.train()
    head.score_outputs(head.embed_text(text), head.embed_video(video))["sim"].sum().backward()
    assert head.psi.mu.weight.grad.abs().sum() > 0


def test_gare_pool_mask_after_softmax_hand_computed():
    head = seed_head("gare", {"gare.temp": 2.0})
    t = torch.tensor([[1.0] + [0.0] * (D - 1)])
    frames = torch.zeros(1, 3, D)
    frames[0, :, 0] = torch.tensor([2.0, 0.0, 4.0])  # third frame is padding
    frames[0, :, 1] = torch.tensor([1.0, 3.0, 5.0])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    e = [math.exp(2.0 / 2), math.exp(0.0), math.exp(4.0 / 2)]
    w = [e[0] / sum(e), e[1] / sum(e)]  # no renormalisation over the real frames
    got = head.pool(t, frames, mask)[0, 0]
    assert got[0].item() == pytest.approx(2.0 * w[0], rel=1e-6)
    assert got[1].item() == pytest.approx(1.0 * w[0] + 3.0 * w[1], rel=1e-6)
    head.masked_softmax = True
    w = [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])]
    got = head.pool(t, frames, mask)[0, 0]
    assert got[1].item() == pytest.approx(1.0 * w[0] + 3.0 * w[1], rel=1e-6)


def test_gare_psi_parameter_count_and_inits():
    cfg = ExperimentConfig()
    cfg.set_head("gare")
    head = build_head(cfg, 512)
    assert sum(p.numel() for p in head.psi.parameters()) == 1_579_008  # paper's "1.58M"
    assert head.psi.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    ident = seed_head("gare", {"gare.psi_identity_init": True})
    torch.testing.assert_close(ident.psi.mu.weight, torch.eye(D))


def test_gare_gap_mean_switch():
    video = make_video(2, lengths=[2, 5])
    masked = seed_head("gare").embed_video(video)
    legacy = seed_head("gare", {"gare.gap_masked_mean": False}).embed_video(video)
    torch.testing.assert_close(masked.pooled[0], masked.tokens[0, :2].mean(0))
    torch.testing.assert_close(legacy.pooled[0], legacy.tokens[0].mean(0))


def test_gare_rerank_rescores_only_top_k():
    head = seed_head("gare", {"gare.rerank_topk": 2}).eval()
    et, ev = head.embed_text(make_text(3)), head.embed_video(make_video(6))
    with torch.no_grad():
        reranked = head.score(et, ev)
        head.rerank_topk = 0
        full = head.score(et, ev)
    kept = reranked > -1.5
    assert kept.sum(dim=1).tolist() == [2, 2, 2]
    torch.testing.assert_close(reranked[kept], full[kept])
    assert (reranked[~kept] < -1.5).all()


def test_gare_bad_side_raises():
    with pytest.raises(ValueError, match="gare.side='both'"):
        seed_head("gare", {"gare.side": "both"})
