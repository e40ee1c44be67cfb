"""X-CLIP head (tvr/models/heads/xclip.py): attention pooling, AOSM, blocked scoring.

The contract every head meets (shapes, gradients, padding, DRGI) is in tests/test_heads.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers_heads import D, L, make_text, make_video, seed_cfg, seed_head
from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads import build_head
from tvr.models.heads.xclip import attention_pool, score_in_blocks


def test_xclip_parameter_count():
    cfg = ExperimentConfig()
    cfg.set_head("xclip")  # 32 words, 12 frames, 512-d, default seqTransf
    head = build_head(cfg, 512)
    own = sum(p.numel() for n, p in head.named_parameters() if not n.startswith("temporal."))
    assert own == 527_792  # methods.md §4.2
    assert head.word_logit_weight.shape == (32, 32) and head.frame_mat_weight2.shape == (12, 12)


def test_attention_pool_hand_computed():
    x = torch.tensor([0.2, 0.5, -0.1])
    p = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.0, 1.0]])
    tau = 0.5
    e = [math.exp(v / tau) for v in x.tolist()]
    att = [v / sum(e) for v in e]
    mixed = [sum(att[i] * p[i, j].item() for i in range(3)) for j in range(3)]
    expected = sum(x[j].item() * mixed[j] for j in range(3))
    assert attention_pool(x, p, tau).item() == pytest.approx(expected, rel=1e-6)
    # masked: the last entry gets no attention, no weight after mixing and no value
    e2 = e[:2]
    att2 = [v / sum(e2) for v in e2] + [0.0]
    mixed2 = [sum(att2[i] * p[i, j].item() for i in range(3)) for j in range(2)]
    expected2 = sum(x[j].item() * mixed2[j] for j in range(2))
    valid = torch.tensor([True, True, False])
    assert attention_pool(x, p, tau, valid).item() == pytest.approx(expected2, rel=1e-6)


def test_xclip_aosm_hand_computed():
    cfg = seed_cfg("xclip", {"xclip.attention_temperature": 0.5})
    cfg.data.max_words, cfg.data.num_frames = 2, 2
    torch.manual_seed(0)
    head = build_head(cfg, D)
    with torch.no_grad():
        head.word_mat_weight.copy_(torch.tensor([[1.0, 0.3], [0.0, 0.8]]))
        head.frame_mat_weight.copy_(torch.tensor([[0.9, 0.0], [0.4, 1.0]]))
        head.word_mat_weight2.copy_(torch.tensor([[1.0, 0.0], [0.5, 1.0]]))
        head.frame_mat_weight2.copy_(torch.tensor([[1.0, 0.2], [0.0, 1.0]]))
    m = [[0.2, 0.5], [0.1, -0.3]]  # M[w][f]

    def pool(values, mat):
        e = [math.exp(v / 0.5) for v in values]
        att = [v / sum(e) for v in e]
        mixed = [sum(att[i] * mat[i][j] for i in range(2)) for j in range(2)]
        return sum(values[j] * mixed[j] for j in range(2))

    qw = head.word_mat_weight.tolist()
    qf = head.frame_mat_weight.tolist()
    r = [pool([m[0][f], m[1][f]], qw) for f in range(2)]  # word-level pooling per frame
    c = [pool(m[w], qf) for w in range(2)]  # frame-level pooling per word
    p = pool(r, head.frame_mat_weight2.tolist())
    q = pool(c, head.word_mat_weight2.tolist())
    with torch.no_grad():
        got = head.aosm(torch.tensor(m))
    assert got.item() == pytest.approx(0.5 * (p + q), rel=1e-5)

    # the frame-word grain of ``grains`` is AOSM on M = (Ŵ L) F̂ᵀ
    text, video = make_text(1, lengths=[2]), make_video(1, lengths=[2])
    text = TokenFeatures(text.tokens[:, :2], text.mask[:, :2], text.pooled)
    video = TokenFeatures(video.tokens[:, :2], video.mask[:, :2], video.pooled)
    with torch.no_grad():
        et, ev = head.embed_text(text), head.embed_video(video)
        mat = (et.tokens[0] @ head.local_mat_weight) @ ev.tokens[0].T
        torch.testing.assert_close(head.grains(et, ev)[0, 0, 3], head.aosm(mat))
        s1 = (et.pooled[0] @ head.global_mat_weight) @ ev.pooled[0]
        torch.testing.assert_close(head.grains(et, ev)[0, 0, 0], s1)


def test_xclip_identity_init_is_plain_softmax_pooling():
    head = seed_head("xclip")
    x = torch.randn(3, L)
    plain = (x * torch.softmax(x / 0.01, dim=-1)).sum(-1)
    torch.testing.assert_close(attention_pool(x, head.word_logit_weight, 0.01), plain)


def test_score_in_blocks_stitches_tuples():
    text = TokenFeatures(torch.randn(5, 2, 3), torch.ones(5, 2), torch.arange(5.0)[:, None])
    video = TokenFeatures(torch.randn(4, 2, 3), torch.ones(4, 2), torch.arange(4.0)[:, None])

    def fn(t, v):
        s = t.pooled * 10 + v.pooled.T  # [a, b]
        return s, s[..., None].expand(-1, -1, 2)

    s, extra = score_in_blocks(fn, text, video, 2, 3)
    expected = torch.arange(5.0)[:, None] * 10 + torch.arange(4.0)[None]
    torch.testing.assert_close(s, expected)
    torch.testing.assert_close(extra, expected[..., None].expand(-1, -1, 2))
