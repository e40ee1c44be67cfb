"""Seed-method heads: X-CLIP, TC-MGC, GARE, DMAE (tvr/models/heads), alone and under DRGI.

Faithful no-mask defaults (X-CLIP's ``mask_padding=false``, GARE's mask-after-softmax, DMAE's
zero-filled maxima) make scores depend on padding by design; padding invariance is tested on
the masked modes, and the X-CLIP / GARE defaults are shown to depend on padded slots.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers_heads import (
    D,
    L,
    T,
    assert_drgi_alone_reaches_inputs,
    assert_every_parameter_gets_gradient,
    garbage_padding,
    make_text,
    make_video,
    step_outputs,
    total_loss,
)
from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads import build_head
from tvr.models.heads.dmae import DMAEVideoFeatures, NearestFrames, interaction_score
from tvr.models.heads.tcmgc import (
    bi_top_k,
    fused_remainder,
    isa_pool,
    isa_weights,
    top_k_similarities,
)
from tvr.models.heads.xclip import attention_pool, score_in_blocks
from tvr.objectives import build_objectives
from tvr.registry import names

# (head, overrides as "section.key": value). TC-MGC's ISA softmax at λ_s = 100 is nearly
# one-hot on random features (its matrices then get ~1e-40 gradients); the contract tests
# use λ_s = 5 so every gradient is measurable.
SMALL_LAMBDA = {"tcmgc.softmax_lambda": 5.0, "tcmgc.lsa_scale": 5.0}
HEADS = [
    ("xclip", {}),
    ("xclip", {"xclip.mask_padding": True}),
    ("tcmgc", SMALL_LAMBDA),
    ("tcmgc", {**SMALL_LAMBDA, "tcmgc.mask_padding": False}),
    ("gare", {}),
    ("gare", {"gare.side": "video", "gare.masked_softmax": True}),
    ("gare", {"gare.psi_identity_init": True, "gare.gap_masked_mean": False}),
    ("dmae", {}),
    ("dmae", {"dmae.interaction": "wti"}),
    ("dmae", {"dmae.interaction": "ti", "dmae.nfc": False}),
    ("dmae", {"dmae.interaction": "att_ti", "dmae.masked_max": True}),
    ("dmae", {"dmae.wti_arch": 2, "dmae.masked_max": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items() if 'lambda' not in k and 'lsa' not in k) or 'default'}" for n, o in HEADS]

# padding-independent configurations (masked modes; DMAE's zero fill is independent of what
# padded slots hold, but not of how many there are)
MASKED = [
    ("xclip", {"xclip.mask_padding": True}, False),
    ("tcmgc", SMALL_LAMBDA, False),
    ("gare", {"gare.masked_softmax": True}, True),
    ("gare", {"gare.masked_softmax": True, "gare.side": "video"}, True),
    ("dmae", {"dmae.masked_max": True}, True),
    ("dmae", {"dmae.masked_max": True, "dmae.interaction": "ti"}, True),
    ("dmae", {}, False),
]


def make_cfg(head: str, overrides: dict | None = None) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.model.head = head
    cfg.data.max_words = L
    cfg.data.num_frames = T
    cfg.seqtransf.layers = 1
    cfg.seqtransf.heads = 4
    cfg.seqtransf.max_frames = 8
    cfg.tcmgc.keep_rate = 0.3  # k = floor(7 * 0.3) = 2
    cfg.drgi.hidden = 8
    for key, value in (overrides or {}).items():
        section, field = key.split(".")
        setattr(getattr(cfg, section), field, value)
    return cfg


def make_head(name: str, overrides: dict | None = None, seed: int = 0):
    torch.manual_seed(seed)
    return build_head(make_cfg(name, overrides), D)


# ------------------------------------------------------------------ contract, every head


def test_heads_are_registered():
    assert {"xclip", "tcmgc", "gare", "dmae"} <= set(names("head"))


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
def test_score_shape_finite_and_not_factorized(name, overrides):
    head = make_head(name, overrides)
    assert head.factorized is False
    scores = head(make_text(5), make_video(3))
    assert scores.shape == (5, 3)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
def test_backward_reaches_every_parameter(name, overrides):
    head = make_head(name, overrides)
    text, video = make_text(4), make_video(4)
    text.tokens.requires_grad_(True)
    text.pooled.requires_grad_(True)
    video.tokens.requires_grad_(True)
    head(text, video).square().sum().backward()
    assert_every_parameter_gets_gradient(head)
    assert text.pooled.grad.abs().sum() > 0  # every head scores the sentence vector
    # GARE and sentence-only DMAE score no words (the words are still DRGI's nodes)
    if name != "gare" and overrides.get("dmae.interaction", "att_").startswith("att_"):
        assert text.tokens.grad.abs().sum() > 0
    assert video.tokens.grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "overrides", "extra_slots"), MASKED)
def test_padding_garbage_does_not_change_scores_in_masked_modes(name, overrides, extra_slots):
    head = make_head(name, overrides).eval()
    text, video = make_text(4), make_video(3)
    ref = head(text, video)
    extra_t, extra_v = (3, 2) if extra_slots else (0, 0)
    padded = head(garbage_padding(text, extra_t, seed=5), garbage_padding(video, extra_v, seed=6))
    torch.testing.assert_close(padded, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "overrides"), [("xclip", {}), ("gare", {})], ids=["xclip-default", "gare-default"]
)
def test_faithful_defaults_depend_on_padded_slots(name, overrides):
    """Documented: the code's unmasked padding (X-CLIP) / post-softmax mask (GARE) leak."""
    head = make_head(name, overrides).eval()
    text, video = make_text(4), make_video(3)
    ref = head(text, video)
    padded = head(garbage_padding(text, 0, seed=5), garbage_padding(video, 0, seed=6))
    assert not torch.allclose(padded, ref, atol=1e-4)


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
def test_blocked_equals_unblocked(name, overrides):
    head = make_head(name, overrides).eval()
    et, ev = head.embed_text(make_text(7)), head.embed_video(make_video(5))
    with torch.no_grad():
        head.block_size = 1000
        full = head.score(et, ev)
        for size in (1, 2, 3):
            head.block_size = size
            torch.testing.assert_close(head.score(et, ev), full, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["xclip", "tcmgc", "gare", "dmae"])
def test_all_zero_masks_raise(name):
    head = make_head(name, SMALL_LAMBDA if name == "tcmgc" else {})
    video = make_video(3)
    video.mask[1] = 0
    with pytest.raises(ValueError, match=r"items \[1\] have an all-zero mask"):
        head.embed_video(video)
    text = make_text(3)
    text.mask[2] = 0
    with pytest.raises(ValueError, match=r"items \[2\] have an all-zero mask"):
        head.embed_text(text)


@pytest.mark.parametrize("name", ["xclip", "tcmgc"])
def test_position_tied_heads_reject_other_lengths(name):
    head = make_head(name, SMALL_LAMBDA if name == "tcmgc" else {})
    text = TokenFeatures(torch.randn(2, L + 1, D), torch.ones(2, L + 1), torch.randn(2, D))
    video = head.embed_video(make_video(2))
    with pytest.raises(ValueError, match=f"data.max_words={L}"):
        head.score(head.embed_text(text), video)


# ------------------------------------------------------------------ with and without DRGI


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
@pytest.mark.parametrize("with_drgi", [False, True])
def test_training_step_with_and_without_drgi(name, overrides, with_drgi):
    cfg = make_cfg(name, overrides)
    cfg.drgi.enable = with_drgi
    if name == "dmae":
        cfg.negnce.enable = True
        cfg.tpmcl.enable = True
    torch.manual_seed(0)
    head = build_head(cfg, D)
    objectives = build_objectives(cfg, D)
    assert ("drgi" in objectives) is with_drgi
    text, video = make_text(6), make_video(6)
    text.tokens.requires_grad_(True)
    video.tokens.requires_grad_(True)
    outputs = {**step_outputs(head, text, video), "head": head}
    total = total_loss(objectives, outputs)
    assert torch.isfinite(total)
    total.backward()
    for pname, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    for oname, obj in objectives.items():
        for pname, p in obj.named_parameters():
            if oname == "tpmcl" and pname.startswith("frame_weights."):
                assert p.grad is None, "TPM-CL's frame predictor only selects frames (no grad)"
                continue
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{oname}.{pname}"
    if with_drgi:
        # DRGI alone reaches the input features through the head's node features
        assert_drgi_alone_reaches_inputs(head, objectives, outputs, text, video)


def test_drgi_node_features_follow_methods_9_2():
    """Video nodes: raw CLIP frames for X-CLIP's frame branch, seqTransf outputs otherwise."""
    video = make_video(3)
    xclip = make_head("xclip")
    ev = xclip.embed_video(video)
    torch.testing.assert_close(ev.tokens, F.normalize(video.tokens, dim=-1))
    for name in ("tcmgc", "gare"):
        head = make_head(name, SMALL_LAMBDA if name == "tcmgc" else {})
        torch.testing.assert_close(
            head.embed_video(video).tokens, head.temporal(video.tokens, video.mask)
        )
    dmae = make_head("dmae")
    ev = dmae.embed_video(video)
    assert isinstance(ev, DMAEVideoFeatures)
    torch.testing.assert_close(ev.frames_in, F.normalize(video.tokens, dim=-1))
    torch.testing.assert_close(ev.tokens, dmae.temporal(ev.frames_in, video.mask))
    # the extra field survives gathering/slicing (map) and is dropped by cat
    assert ev[:2].frames_in.shape == (2, T, D)
    assert TokenFeatures.cat([ev, ev]).tokens.shape == (6, T, D)


# ------------------------------------------------------------------ X-CLIP


def test_xclip_parameter_count():
    cfg = ExperimentConfig()
    cfg.model.head = "xclip"  # 32 words, 12 frames, 512-d, default seqTransf
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
    cfg = make_cfg("xclip", {"xclip.attention_temperature": 0.5})
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
    head = make_head("xclip")
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


# ------------------------------------------------------------------ TC-MGC


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
    cfg.model.head = "tcmgc"  # 32 words, keep rate 0.1 -> k = 3, 512-d
    head = build_head(cfg, 512)
    assert head.k == 3
    own = sum(p.numel() for n, p in head.named_parameters() if not n.startswith("temporal."))
    assert own == 790_093  # methods.md §5.4


def test_tcmgc_score_outputs_grains_and_lsa():
    head = make_head("tcmgc", SMALL_LAMBDA).eval()
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
        make_head("tcmgc", {"tcmgc.keep_rate": 0.1})


# ------------------------------------------------------------------ GARE


def test_gare_zero_initialised_increment_is_zero_and_score_is_baseline():
    head = make_head("gare", {"gare.zero_init_delta": True}).eval()
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
    head = make_head("gare", {"gare.temp": 2.0})
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
    cfg.model.head = "gare"
    head = build_head(cfg, 512)
    assert sum(p.numel() for p in head.psi.parameters()) == 1_579_008  # paper's "1.58M"
    assert head.psi.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    ident = make_head("gare", {"gare.psi_identity_init": True})
    torch.testing.assert_close(ident.psi.mu.weight, torch.eye(D))


def test_gare_gap_mean_switch():
    video = make_video(2, lengths=[2, 5])
    masked = make_head("gare").embed_video(video)
    legacy = make_head("gare", {"gare.gap_masked_mean": False}).embed_video(video)
    torch.testing.assert_close(masked.pooled[0], masked.tokens[0, :2].mean(0))
    torch.testing.assert_close(legacy.pooled[0], legacy.tokens[0].mean(0))


def test_gare_rerank_rescores_only_top_k():
    head = make_head("gare", {"gare.rerank_topk": 2}).eval()
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
        make_head("gare", {"gare.side": "both"})


# ------------------------------------------------------------------ DMAE


def test_dmae_visual_enhancement_hand_computed():
    """s = ½ (max_f A + ½ C[f*, f**] A[f**] + Σ_f ω_f A_f) for the sentence as one token."""
    head = make_head("dmae")
    sentence = torch.tensor([[1.0, 0.0]])
    frames = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.8, 0.3]]])
    weights = torch.tensor([[0.5, 0.25, 0.25]])
    mask = torch.ones(1, 3)
    # A = [0.9, 0.2, 0.8]; f* = 0; C[0] = [., 0.26, 0.75] -> f** = 2
    t2v = 0.9 + 0.5 * 0.75 * 0.8
    v2t = 0.5 * 0.9 + 0.25 * 0.2 + 0.25 * 0.8
    got = head.pair_sentence_score(sentence, frames, mask, weights)
    assert got.item() == pytest.approx(0.5 * (t2v + v2t), rel=1e-6)
    head.nfc = False
    got = head.pair_sentence_score(sentence, frames, mask, weights)
    assert got.item() == pytest.approx(0.5 * (0.9 + v2t), rel=1e-6)


def test_dmae_zero_fill_vs_masked_max_on_negative_sims():
    sims = torch.tensor([-0.4, -0.1, 5.0]).view(1, 1, 1, 3)  # third frame is padding
    args = (torch.ones(1, 1, 1, dtype=torch.bool), torch.tensor([[[True, True, False]]]))
    weights = (torch.ones(1, 1, 1), torch.tensor([[[0.5, 0.5, 0.0]]]))
    zero = interaction_score(sims, *args, *weights, None, masked_max=False)
    masked = interaction_score(sims, *args, *weights, None, masked_max=True)
    assert zero.item() == pytest.approx(0.5 * (0.0 + (-0.4 - 0.1) / 2))
    assert masked.item() == pytest.approx(0.5 * (-0.1 + (-0.4 - 0.1) / 2))


def test_dmae_nearest_frames_lookup_is_used_per_token():
    near = NearestFrames(
        index=torch.tensor([[[1, 0]]]),
        value=torch.tensor([[[0.5, 0.5]]]),
        valid=torch.ones(1, 1, 2, dtype=torch.bool),
    )
    sims = torch.tensor([[[[0.6, 0.2], [0.1, 0.3]]]])  # two words, two frames
    ones = torch.ones(1, 1, 2, dtype=torch.bool)
    w = torch.tensor([[[0.5, 0.5]]])
    got = interaction_score(sims, ones, ones, w, w, near, masked_max=False, nfc_weight=0.5)
    t2v = 0.5 * (0.6 + 0.5 * 0.5 * 0.2) + 0.5 * (0.3 + 0.5 * 0.5 * 0.1)
    v2t = 0.5 * 0.6 + 0.5 * 0.3
    assert got.item() == pytest.approx(0.5 * (t2v + v2t), rel=1e-6)


def test_dmae_weights_and_variants():
    text, video = make_text(3), make_video(3)
    head = make_head("dmae")
    et, ev = head.embed_text(text), head.embed_video(video)
    for feats in (et, ev):
        torch.testing.assert_close(feats.weights.sum(-1), torch.ones(3))
        assert (feats.weights[feats.mask == 0] == 0).all()
    assert head.text_weight_fc is not None and head.video_weight_fc is not None
    sentence_only = make_head("dmae", {"dmae.interaction": "wti"})
    assert sentence_only.text_weight_fc is None  # the single sentence token has weight 1
    ti = make_head("dmae", {"dmae.interaction": "ti"})
    assert not any("weight_fc" in n for n, _ in ti.named_parameters())
    with pytest.raises(ValueError, match="dmae.interaction='xti'"):
        make_head("dmae", {"dmae.interaction": "xti"})


def test_dmae_normalize_frames_makes_the_frames_unit_and_keeps_the_rest():
    text, video = make_text(3), make_video(3)
    plain = make_head("dmae", {"dmae.masked_max": True})
    unit = make_head("dmae", {"dmae.masked_max": True, "dmae.normalize_frames": True})
    unit.load_state_dict(plain.state_dict())  # same weights: only the flag differs
    with torch.no_grad():  # grow the temporal output so unnormalised scores leave [-1, 1]
        for m in (plain, unit):
            m.temporal.frame_position.weight.mul_(200)
        ev_plain, ev_unit = plain.embed_video(video), unit.embed_video(video)
        valid = video.mask.bool()
        norms = ev_unit.tokens.norm(dim=-1)[valid]
        torch.testing.assert_close(norms, torch.ones_like(norms))
        torch.testing.assert_close(ev_unit.tokens[valid], F.normalize(ev_plain.tokens, dim=-1)[valid])
        torch.testing.assert_close(ev_unit.frames_in, ev_plain.frames_in)
        s_unit = unit.score(unit.embed_text(text), ev_unit)
        s_plain = plain.score(plain.embed_text(text), ev_plain)
    assert ev_plain.tokens.norm(dim=-1)[valid].min() > 5  # the unnormalised frames did grow
    # cosines, plus at most the nearest-frame term (0.5 x a cosine) on the max side
    assert s_unit.abs().max() <= 1.5 + 1e-5 < s_plain.abs().max()
