"""SDR objective of TC-MGC (tvr/objectives/sdr.py): the grain-variance penalty."""

from __future__ import annotations

import pytest
import torch

from tvr.config import ExperimentConfig
from tvr.objectives.sdr import SDR, sdr_penalty


def test_sdr_hand_computed():
    grains = torch.zeros(2, 2, 4)
    grains[0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    grains[1, 1] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    grains[0, 1] = torch.tensor([9.0, -9.0, 9.0, -9.0])  # off-diagonal: ignored
    # λ = 10: Var([1, 2, 3, 4]) = 5/3 (unbiased), Var(const) = 0
    assert sdr_penalty(grains, 10.0).item() == pytest.approx(5 / 6, rel=1e-5)
    cfg = ExperimentConfig()
    cfg.set_head("tcmgc")  # brings SDR (weight 0.5)
    out = SDR(cfg, 8)({"tcmgc_grains": grains, "logit_scale": torch.tensor(10.0)}, {})
    assert out["sdr_loss"].item() == pytest.approx(0.5 * 5 / 6, rel=1e-5)


def test_sdr_needs_grains():
    with pytest.raises(KeyError, match="tcmgc_grains"):
        cfg = ExperimentConfig()
        cfg.set_head("tcmgc")
        SDR(cfg, 8)({"sim": torch.zeros(2, 2)}, {})
    with pytest.raises(ValueError, match=r"\[B, B, G >= 2\]"):
        sdr_penalty(torch.zeros(2, 3, 4))
