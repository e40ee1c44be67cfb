"""GARE regularisers (tvr/objectives/gare_reg.py): relaxed VIB, diversity, trust region."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers_heads import D, L, T, lengths_mask
from tvr.config import ConfigError, ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads import build_head
from tvr.objectives import build_objectives
from tvr.objectives.gare_reg import (
    GARERegularizers,
    directional_diversity,
    norm_diversity,
    relaxed_vib,
    trust_region,
)


def test_relaxed_vib_hand_computed():
    delta = torch.tensor([[[1.0]], [[3.0]]])  # [Bt=2, Bv=1, D=1]
    sigma = math.sqrt(2.0 + 1e-12) + 1e-6  # unbiased std of {1, 3}
    expected = 0.5 * (sigma**2 + 2.0**2 - 1 - math.log(sigma**2))
    assert relaxed_vib(delta).item() == pytest.approx(expected, rel=1e-6)


def test_directional_diversity_hand_computed():
    delta = torch.tensor([[[2.0, 0.0], [0.0, 5.0]]])  # one text, orthogonal increments
    expected = math.log((2 + 2 * math.exp(-2.0)) / 4 + 1e-8)
    assert directional_diversity(delta, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_trust_region_clamp_and_hard_cut():
    delta = torch.zeros(1, 3, 2)
    delta[0, :, 0] = torch.tensor([1.0, 2.0, 3.0])  # norms 1, 2, 3: Var = 1
    l_eps = norm_diversity(delta)
    assert l_eps.item() == pytest.approx(-1.0)
    assert trust_region(l_eps, 0.5, "clamp").item() == pytest.approx(-0.5)
    assert trust_region(l_eps, 0.5, "hard_cut").item() == 0.0
    above = torch.tensor(-0.2)
    assert trust_region(above, 0.5, "clamp").item() == pytest.approx(-0.2)
    assert trust_region(above, 0.5, "hard_cut").item() == pytest.approx(-0.2)
    with pytest.raises(ConfigError, match="gare.trust_region"):
        trust_region(above, 0.5, "soft")


def _with_reg() -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.set_head("gare")  # brings gare_reg
    return cfg


def test_gare_reg_total_and_finite_gradient_at_zero_increment():
    cfg = _with_reg()
    reg = GARERegularizers(cfg, 8)
    delta = torch.randn(3, 4, 8)
    out = reg({"gare_delta": delta}, {})
    expected = (
        1e-4 * relaxed_vib(delta)
        + 0.01 * directional_diversity(delta, 2.0)
        + 0.01 * trust_region(norm_diversity(delta), 0.5, "clamp")
    )
    torch.testing.assert_close(out["gare_reg_loss"], expected)
    zero = torch.zeros(3, 4, 8, requires_grad=True)  # a zero-initialised ψ
    out = reg({"gare_delta": zero}, {})
    assert torch.isfinite(out["gare_reg_loss"])
    out["gare_reg_loss"].backward()
    assert torch.isfinite(zero.grad).all()


def test_gare_reg_errors():
    with pytest.raises(KeyError, match="gare_delta"):
        GARERegularizers(_with_reg(), 8)({"sim": torch.zeros(2, 2)}, {})
    cfg = _with_reg()
    cfg.gare_reg.trust_region = "soft"
    with pytest.raises(ConfigError, match="objectives.gare_reg.trust_region"):
        GARERegularizers(cfg, 8)


def test_gare_head_and_regularisers_train_psi():
    cfg = _with_reg()
    cfg.seqtransf.layers, cfg.seqtransf.heads, cfg.seqtransf.max_frames = 1, 4, 8
    torch.manual_seed(0)
    head = build_head(cfg, D)
    text = TokenFeatures(torch.randn(4, L, D), lengths_mask([3, 4, 5, 7], L), torch.randn(4, D))
    video = TokenFeatures(torch.randn(4, T, D), lengths_mask([2, 3, 5, 5], T), torch.randn(4, D))
    out = head.score_outputs(head.embed_text(text), head.embed_video(video))
    reg = build_objectives(cfg, D)["gare_reg"]
    reg(out, {})["gare_reg_loss"].backward()
    for name, p in head.psi.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
