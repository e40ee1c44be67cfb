"""NegNCE objective (tvr/objectives/negnce.py): the hard-negative set and the loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tvr.config import ExperimentConfig
from tvr.objectives.negnce import NegNCE, hard_negative_set

S3 = torch.tensor([[0.5, 0.6, 0.1], [0.2, 0.4, 0.45], [0.3, 0.1, 0.2]])


def test_negnce_hard_set_matches_definition():
    # (i, j) is hard when S_ij beats S_ii (its text's positive) or S_jj (its video's positive)
    assert hard_negative_set(S3).nonzero().tolist() == [[0, 1], [1, 2], [2, 0]]
    # a margin of 0.15 also admits (0, 2): 0.1 + 0.15 > 0.2 = S_22, and (2, 1) likewise
    assert hard_negative_set(S3, 0.15).nonzero().tolist() == [[0, 1], [0, 2], [1, 2], [2, 0], [2, 1]]
    # the diagonal is never hard, and pairs of the same video are excluded
    same = torch.tensor([[False, True, False], [True, False, False], [False, False, False]])
    assert hard_negative_set(S3, 0.0, same).nonzero().tolist() == [[1, 2], [2, 0]]
    # brute force over the definition
    for m in (0.0, 0.05, 0.3):
        expected = [
            [i, j]
            for i in range(3)
            for j in range(3)
            if i != j
            and max(0.0, m + S3[i, j] - S3[i, i]) + max(0.0, m + S3[i, j] - S3[j, j]) > 0
        ]
        assert hard_negative_set(S3, m).nonzero().tolist() == expected


def test_negnce_loss_hand_computed():
    cfg = ExperimentConfig()
    cfg.add_objective("negnce", scale=10.0)
    sim = torch.tensor([[0.5, 0.6], [0.2, 0.4]])
    out = NegNCE(cfg, 8)({"sim": sim, "video_index": torch.tensor([0, 1])}, {})

    def softmax(xs):
        e = [math.exp(x) for x in xs]
        return [v / sum(e) for v in e]

    # rows: H = {(0, 1)} (0.6 > 0.5)
    p0, p1 = softmax([5.0, 6.0]), softmax([2.0, 4.0])
    rows = 0.5 * (-math.log(p0[0]) - math.log(p1[1])) + 0.5 * -math.log(1 - p0[1])
    # columns (Sᵀ = [[0.5, 0.2], [0.6, 0.4]]): H = {(1, 0)} (0.6 > 0.4)
    q0, q1 = softmax([5.0, 2.0]), softmax([6.0, 4.0])
    cols = 0.5 * (-math.log(q0[0]) - math.log(q1[1])) + 0.5 * -math.log(1 - q1[0])
    assert out["negnce_loss"].item() == pytest.approx(0.5 * (rows + cols), rel=1e-5)
    assert out["negnce_hard_pairs"].item() == 1.0


def test_negnce_without_hard_negatives_is_fixed_scale_infonce():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.0, 0.3, 0.7]], requires_grad=True)
    cfg = ExperimentConfig()
    cfg.add_objective("negnce", scale=5.0)  # P stays inside the [1e-6, 1 - 1e-6] clamp
    out = NegNCE(cfg, 8)({"sim": sim, "video_index": torch.arange(3)}, {})
    target = torch.arange(3)
    ce = 0.5 * (F.cross_entropy(5 * sim, target) + F.cross_entropy(5 * sim.T, target))
    assert out["negnce_hard_pairs"].item() == 0.0
    torch.testing.assert_close(out["negnce_loss"], ce, rtol=1e-4, atol=1e-6)
    out["negnce_loss"].backward()
    assert torch.isfinite(sim.grad).all()


def test_negnce_needs_video_index_for_exclusion():
    cfg = ExperimentConfig()
    cfg.add_objective("negnce")
    with pytest.raises(KeyError, match="video_index"):
        NegNCE(cfg, 8)({"sim": S3}, {})
    cfg = ExperimentConfig()
    cfg.add_objective("negnce", exclude_same_video=False)
    assert torch.isfinite(NegNCE(cfg, 8)({"sim": S3}, {})["negnce_loss"])


def test_negnce_same_video_pairs_are_not_pushed():
    cfg = ExperimentConfig()
    cfg.add_objective("negnce")
    sim = S3.clone().requires_grad_(True)
    NegNCE(cfg, 8)({"sim": sim, "video_index": torch.tensor([7, 7, 3])}, {})[
        "negnce_loss"
    ].backward()
    excluded = sim.grad.clone()
    sim.grad = None
    NegNCE(cfg, 8)({"sim": sim, "video_index": torch.arange(3)}, {})["negnce_loss"].backward()
    assert not torch.allclose(excluded, sim.grad)
