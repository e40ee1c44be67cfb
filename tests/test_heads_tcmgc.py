"""TC-MGC head (tvr/models/heads/tcmgc.py): similarity reorganisation, ISA, grains.

The contract every head meets (shapes, gradients, padding, DRGI) is in tests/test_heads.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers_heads import SMALL_LAMBDA, make_text, make_video, seed_head
from tvr.config import ExperimentConfig
from tvr.models.heads import build_head
from tvr.models.heads.tcmgc import (
    bi_top_k,
    fused_remainder,
    isa_pool,
    isa_weights,
    top_k_similarities,
)


def test_similarity_reorganisation_keeps_exactly_top_k():
    x = torch.tensor([[0.1, 0.9, -0.2, 0.5, 0.7, 0.3]])
    values, ok = top_k_similarities(x, 3)
    torch.testing.assert_close(values, torch.tensor([[0.9, 0.7, 0.5]]))
    assert ok.all()
    # masked: 0.9 and 0.7 are padding -> the three largest *valid* values, sorted
    valid = torch.tensor([[True, False, True, True, False, True]])
    values, ok = top_k_similarities(x, 3, valid)
    torch.testing.assert_close(values, torch.tensor([[0.5, 0.3, 0.1]]))
    # fewer valid values than k: the missing slots are invalid and hold 0
    values, ok = top_k_similarities(x, 3, torch.tensor([[True, True] + [False] * 4]))
    torch.testing.assert_close(values, torch.tensor([[0.9, 0.1, 0.0]]))
    assert ok.tolist() == [[True, True, False]]


def test_video_word_grain_ignores_everything_below_top_k():
    """s2 = Σ x̃ ⊙ ISA(x̃): only the k largest similarities matter, whatever the rest are."""
    p = torch.tensor([[1.0, 0.3, 0.0], [0.2, 1.0, 0.0], [0.0, 0.1, 1.0]])
    x = torch.tensor([0.40, 0.10, 0.35, -0.20, 0.30, 0.05])
    ref = isa_pool(top_k_similarities(x, 3)[0], p, 5.0)
    y = x.clone()
    y[[1, 3, 5]] = torch.tensor([0.29, -0.9, 0.0])  # change every value outside the top 3
    torch.testing.assert_close(isa_pool(top_k_similarities(y, 3)[0], p, 5.0), ref)
    z = x.clone()
    z[2] = 0.36  # change one kept value: the grain moves
    assert not torch.allclose(isa_pool(top_k_similarities(z, 3)[0], p, 5.0), ref)


def test_isa_hand_computed():
    z = torch.tensor([0.3, 0.1])
    p = torch.tensor([[1.0, 0.5], [0.0, 1.0]])
    lam = 2.0
    e = [math.exp(lam * v) for v in (0.3, 0.1)]
    inner = [v / sum(e) for v in e]
    mixed = [inner[0] * 1.0 + inner[1] * 0.0, inner[0] * 0.5 + inner[1] * 1.0]
    e2 = [math.exp(lam * v) for v in mixed]
    outer = [v / sum(e2) for v in e2]
    assert isa_weights(z, p, lam).tolist() == pytest.approx(outer, rel=1e-6)
    assert isa_pool(z, p, lam).item() == pytest.approx(0.3 * outer[0] + 0.1 * outer[1], rel=1e-6)


def test_fused_remainder_hand_computed():
    y = torch.tensor([0.9, 0.1, 0.5, 0.3])
    z, ok = fused_remainder(y, 2)
    e = [math.exp(0.1), math.exp(0.3)]
    u = (0.1 * e[0] + 0.3 * e[1]) / sum(e)
    assert z.tolist() == pytest.approx([0.9, 0.5, u], rel=1e-6)
    assert ok.all()
    # nothing valid outside the top-k: the fused slot is invalid
    z, ok = fused_remainder(y, 2, torch.tensor([True, False, True, False]))
    assert z.tolist() == pytest.approx([0.9, 0.5, 0.0])
    assert ok.tolist() == [True, True, False]


def test_bi_top_k_hand_computed():
    m = torch.tensor([[0.1, 0.8, 0.3], [0.7, 0.2, 0.4], [0.5, 0.6, 0.9]])  # [w, f]
    vals, ok = bi_top_k(m, 2, torch.ones(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool))
    # top-2 over w per column: [[0.7, 0.8, 0.9], [0.5, 0.6, 0.4]]; then top-2 per row
    torch.testing.assert_close(vals, torch.tensor([[0.9, 0.8], [0.6, 0.5]]))
    assert ok.all()
    # word 2 and frame 2 are padding
    valid = torch.tensor([True, True, False])
    vals, ok = bi_top_k(m, 2, valid, valid)
    torch.testing.assert_close(vals, torch.tensor([[0.8, 0.7], [0.2, 0.1]]))


def test_tcmgc_parameter_count():
    cfg = ExperimentConfig()
    cfg.set_head("tcmgc")  # 32 words, keep rate 0.1 -> k = 3, 512-d
    head = build_head(cfg, 512)
    assert head.k == 3
    own = sum(p.numel() for n, p in head.named_parameters() if not n.startswith("temporal."))
    assert own == 790_093  # methods.md §5.4


def test_tcmgc_score_outputs_grains_and_lsa():
    head = seed_head("tcmgc", SMALL_LAMBDA).eval()
    et, ev = head.embed_text(make_text(3)), head.embed_video(make_video(4))
    with torch.no_grad():
        out = head.score_outputs(et, ev)
        assert out["tcmgc_grains"].shape == (3, 4, 4)
        torch.testing.assert_close(out["sim"], head.score(et, ev))
        g = out["tcmgc_grains"]
        beta = torch.softmax(5.0 * g, dim=-1)  # W_lsa = I at init
        torch.testing.assert_close(out["sim"], (beta * g).sum(-1))


def test_tcmgc_bad_keep_rate_raises():
    with pytest.raises(ValueError, match="tcmgc.keep_rate=0.1 with data.max_words=7"):
        seed_head("tcmgc", {"tcmgc.keep_rate": 0.1})
