"""Optimiser groups, BertAdam and the warm-up cosine schedule (methods.md §1.4)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tvr.config import TrainConfig
from tvr.optim import BertAdam, build_optimizer, param_groups, warmup_cosine


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.head = nn.Linear(4, 2)
        self.logit_scale = nn.Parameter(torch.tensor(1.0))


def test_groups_split_backbone_and_decay():
    cfg = TrainConfig(lr=1e-3, clip_lr=1e-6, weight_decay=0.2)
    groups = {g["group"]: g for g in param_groups(Toy(), cfg)}
    assert groups["backbone/decay"]["lr"] == 1e-6
    assert groups["new/decay"]["lr"] == 1e-3
    assert groups["backbone/no_decay"]["weight_decay"] == 0.0
    # encoder Linear weight decays; its bias and the LayerNorm do not
    assert len(groups["backbone/decay"]["params"]) == 1
    assert len(groups["backbone/no_decay"]["params"]) == 3
    # logit_scale is new and never decayed
    assert any(p.ndim == 0 for p in groups["new/no_decay"]["params"])


def test_schedule_matches_recipe():
    assert warmup_cosine(0, 100, 0.1) == 0.0
    assert warmup_cosine(5, 100, 0.1) == pytest.approx(0.5)
    # not re-based after warm-up: already 0.976 at x = 0.1
    assert warmup_cosine(10, 100, 0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))
    assert warmup_cosine(100, 100, 0.1) == pytest.approx(0.0)


def test_bertadam_has_no_bias_correction():
    p = nn.Parameter(torch.tensor([1.0]))
    opt = BertAdam([p], lr=0.1, betas=(0.9, 0.98), eps=0.0, max_grad_norm=0.0)
    p.grad = torch.tensor([0.5])
    opt.step()
    m, v = 0.1 * 0.5, 0.02 * 0.25
    assert p.item() == pytest.approx(1.0 - 0.1 * m / math.sqrt(v))


def test_bertadam_per_parameter_clip():
    p = nn.Parameter(torch.zeros(2))
    opt = BertAdam([p], lr=1.0, betas=(0.0, 0.0), eps=0.0, max_grad_norm=1.0)
    p.grad = torch.tensor([30.0, 40.0])
    opt.step()
    assert torch.allclose(p.grad, torch.tensor([0.6, 0.8]))


def test_unknown_optimizer_named():
    with pytest.raises(ValueError, match="sgd"):
        build_optimizer(Toy(), TrainConfig(optim="sgd"))
