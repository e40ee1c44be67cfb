"""tvr.renorm: test-time re-normalisation, dual softmax (DSL) and QB-Norm, against hand-computed
values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.test_metrics import (
    TIED,  # the tie matrix of the rank tests (a row with a NaN names its query)
)
from tvr.metrics import t2v_ranks
from tvr.renorm import QB_NORM_PRESETS, dual_softmax, qb_norm

# --------------------------------------------------------------------------------------------
# Dual softmax
# --------------------------------------------------------------------------------------------


def test_dual_softmax_hand_computed():
    s = np.array([[0.5, 0.2], [0.1, 0.4]], dtype=np.float32)
    tau = 2.0
    e = [[math.exp(tau * float(x)) for x in row] for row in s]
    # t2v: softmax over texts (rows) per video column
    t2v = [[float(s[q, v]) * e[q][v] / (e[0][v] + e[1][v]) for v in range(2)] for q in range(2)]
    # v2t: softmax over videos per text row
    v2t = [[float(s[q, v]) * e[q][v] / (e[q][0] + e[q][1]) for v in range(2)] for q in range(2)]
    out = dual_softmax(s, temperature=tau)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_allclose(out, t2v, rtol=1e-6)
    np.testing.assert_allclose(dual_softmax(s, tau, direction="v2t"), v2t, rtol=1e-6)


def test_dual_softmax_stable_and_torch_roundtrip():
    s = torch.tensor([[1.0, 0.9], [0.95, 1.0], [0.2, 0.3]])
    out = dual_softmax(s, temperature=1e4)  # exp(1e4) would overflow without max-subtraction
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # column 0 is dominated by text 0, column 1 shared by texts 1 (and 0 only via exp(-1000))
    assert out[0, 0].item() == pytest.approx(1.0) and out[1, 1].item() == pytest.approx(1.0)
    assert out[2].abs().max().item() == 0.0


def test_dual_softmax_fixes_a_hub_video():
    # video 0 is a hub: it scores highest for both texts; DSL down-weights text 1 on it
    s = np.array([[0.60, 0.20], [0.58, 0.55]], dtype=np.float32)
    assert t2v_ranks(s, [0, 1]).tolist() == [1, 2]
    assert t2v_ranks(dual_softmax(s, 100.0), [0, 1]).tolist() == [1, 1]


def test_dual_softmax_errors():
    with pytest.raises(ValueError, match="temperature"):
        dual_softmax(TIED, temperature=0.0)
    with pytest.raises(ValueError, match="direction"):
        dual_softmax(TIED, direction="both")  # type: ignore[arg-type]
    bad = TIED.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"query 1 .*sim\[1, 2\]"):
        dual_softmax(bad)


# --------------------------------------------------------------------------------------------
# QB-Norm
# --------------------------------------------------------------------------------------------

BANK = np.array(
    [
        [0.9, 0.1, 0.2],  # top-1: item 0
        [0.8, 0.3, 0.1],  # top-1: item 0
        [0.2, 0.3, 0.7],  # top-1: item 2
    ],
    dtype=np.float32,
)
TEST = np.array(
    [
        [0.7, 0.6, 0.1],  # top-1 item 0 (hit by 2 bank queries)
        [0.2, 0.8, 0.3],  # top-1 item 1 (never a bank top-1): unchanged
        [0.1, 0.2, 0.5],  # top-1 item 2 (hit by 1 bank query)
    ],
    dtype=np.float32,
)


def _inverted(row: np.ndarray, beta: float) -> list[float]:
    return [
        math.exp(beta * float(row[j])) / sum(math.exp(beta * float(BANK[b, j])) for b in range(3))
        for j in range(3)
    ]


def test_qb_norm_hand_computed():
    beta = 5.0
    out = qb_norm(TEST, BANK, k=1, beta=beta, theta=1)
    np.testing.assert_allclose(out[0], _inverted(TEST[0], beta), rtol=1e-6)
    np.testing.assert_array_equal(out[1], TEST[1])
    np.testing.assert_allclose(out[2], _inverted(TEST[2], beta), rtol=1e-6)
    # theta = 2: only item 0 is a hub, so row 2 stays as it is
    out2 = qb_norm(TEST, BANK, k=1, beta=beta, theta=2)
    np.testing.assert_allclose(out2[0], _inverted(TEST[0], beta), rtol=1e-6)
    np.testing.assert_array_equal(out2[1:], TEST[1:])
    # k = 2: bank top-2 sets {0,2}, {0,1}, {2,1} -> every item is a hub at theta = 2
    out3 = qb_norm(TEST, BANK, k=2, beta=beta, theta=2)
    for q in range(3):
        np.testing.assert_allclose(out3[q], _inverted(TEST[q], beta), rtol=1e-6)


def test_qb_norm_log_space_torch_and_presets():
    beta = QB_NORM_PRESETS["reference"]["beta"]
    out = qb_norm(torch.from_numpy(TEST), torch.from_numpy(BANK), **QB_NORM_PRESETS["reference"])
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0].numpy(), _inverted(TEST[0], beta), rtol=1e-5)
    logs = qb_norm(TEST, BANK, beta=beta, log_space=True)
    np.testing.assert_allclose(logs[0], np.log(_inverted(TEST[0], beta)), rtol=1e-5)
    np.testing.assert_array_equal(logs[1], TEST[1])
    assert set(QB_NORM_PRESETS) >= {"reference", "dicosa_t2v", "dicosa_v2t"}
    assert QB_NORM_PRESETS["dicosa_v2t"] == {"k": 1, "beta": 70.0, "theta": 5}
    # a large beta on cosine scores overflows nothing in log space
    assert np.isfinite(qb_norm(TEST, BANK, beta=1e4, log_space=True)).all()


def test_qb_norm_errors():
    with pytest.raises(ValueError, match="bank: expected 3 gallery columns"):
        qb_norm(TEST, BANK[:, :2])
    with pytest.raises(ValueError, match=r"k: expected an integer in 1\.\.3"):
        qb_norm(TEST, BANK, k=4)
    with pytest.raises(ValueError, match="theta"):
        qb_norm(TEST, BANK, theta=0)
    with pytest.raises(ValueError, match="beta"):
        qb_norm(TEST, BANK, beta=-1.0)
    bad = BANK.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"qb_norm bank: query 2 .*sim\[2, 1\]"):
        qb_norm(TEST, bad)
    with pytest.raises(ValueError, match="overflows float32"):
        qb_norm(TEST * 100, BANK * 0, beta=10.0)
