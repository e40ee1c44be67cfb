"""Similarity heads (tvr/models/heads): the contract of every head, then meanP, seqTransf
and WTI. X-CLIP, TC-MGC, GARE and DMAE have their own files, tests/test_heads_<name>.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers_heads import (
    SMALL_LAMBDA,
    D,
    L,
    T,
    add_drgi,
    assert_drgi_alone_reaches_inputs,
    assert_every_parameter_gets_gradient,
    garbage_padding,
    make_text,
    make_video,
    seed_cfg,
    seed_head,
    step_outputs,
    total_loss,
)
from tvr.config import ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads import build_head
from tvr.models.heads.dmae import DMAEVideoFeatures
from tvr.models.heads.meanp import meanp_pool
from tvr.models.heads.xclip import block_side as xclip_block_side
from tvr.models.temporal import TemporalTransformer
from tvr.objectives import build_objectives
from tvr.registry import RegistryError, names

# (name, overrides of the wti section)
HEADS = [
    ("meanp", {}),
    ("seqtransf", {}),
    ("wti", {}),
    ("wti", {"arch": 1}),
    ("wti", {"arch": 3, "temporal": False}),
    ("wti", {"weighted": False}),
    ("wti", {"masked_max": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for n, o in HEADS]


def make_cfg(head: str, **wti) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.set_head(head)
    cfg.seqtransf.layers = 2
    cfg.seqtransf.heads = 4
    cfg.seqtransf.max_frames = 8
    for key, value in wti.items():
        setattr(cfg.wti, key, value)
    return cfg


def make_head(name: str, overrides: dict, seed: int = 0):
    torch.manual_seed(seed)
    return build_head(make_cfg(name, **overrides), D)


# ------------------------------------------------------------------ all heads


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
def test_score_shape_and_finite(name, overrides):
    head = make_head(name, overrides)
    scores = head(make_text(5), make_video(3))
    assert scores.shape == (5, 3)
    assert torch.isfinite(scores).all()
    # cosine scale: every head's score is a (weighted) mean of cosines
    assert scores.abs().max() <= 1 + 1e-5


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
def test_backward_reaches_every_parameter(name, overrides):
    head = make_head(name, overrides)
    text, video = make_text(4), make_video(4)
    text.tokens.requires_grad_(True)
    video.tokens.requires_grad_(True)
    head(text, video).square().sum().backward()
    assert_every_parameter_gets_gradient(head)
    assert video.tokens.grad is not None and video.tokens.grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
def test_padding_garbage_does_not_change_scores(name, overrides):
    head = make_head(name, overrides).eval()
    text, video = make_text(4), make_video(3)
    ref = head(text, video)
    padded = head(garbage_padding(text, 3, seed=5), garbage_padding(video, 2, seed=6))
    torch.testing.assert_close(padded, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "overrides"), HEADS[:2], ids=IDS[:2])
def test_factorized_score_is_pooled_matmul(name, overrides):
    head = make_head(name, overrides)
    assert head.factorized is True
    et, ev = head.embed_text(make_text(4)), head.embed_video(make_video(6))
    torch.testing.assert_close(head.score(et, ev), et.pooled @ ev.pooled.T)
    torch.testing.assert_close(et.pooled.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(ev.pooled.norm(dim=-1), torch.ones(6))


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
def test_all_zero_video_mask_raises(name, overrides):
    head = make_head(name, overrides)
    video = make_video(3)
    video.mask[1] = 0
    with pytest.raises(ValueError, match=r"items \[1\] have an all-zero mask"):
        head.embed_video(video)


def test_unknown_head_names_choices():
    from tvr.config import ConfigError, HeadSpec

    cfg = ExperimentConfig()
    cfg.head = HeadSpec("nope")
    with pytest.raises(RegistryError, match="unknown head 'nope'.*meanp.*seqtransf.*wti"):
        build_head(cfg, D)
    with pytest.raises(ConfigError, match="'head.name': unknown head 'nope'; registered: .*wti"):
        make_cfg("nope")


@pytest.mark.parametrize(("name", "overrides"), HEADS, ids=IDS)
@pytest.mark.parametrize("with_drgi", [False, True])
def test_training_step_with_and_without_drgi(name, overrides, with_drgi):
    cfg = make_cfg(name, **overrides)
    if with_drgi:
        cfg.add_objective("drgi")
    torch.manual_seed(0)
    head = build_head(cfg, D)
    objectives = build_objectives(cfg, D)
    assert ("drgi" in objectives) is with_drgi
    text, video = make_text(6), make_video(6)
    text.tokens.requires_grad_(True)
    video.tokens.requires_grad_(True)
    outputs = step_outputs(head, text, video)
    total = total_loss(objectives, outputs)
    assert torch.isfinite(total)
    total.backward()
    for pname, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    if with_drgi:
        for pname, p in objectives["drgi"].named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"drgi.{pname}"
        # DRGI alone reaches the input features (through its GAT), not only via InfoNCE
        assert_drgi_alone_reaches_inputs(head, objectives, outputs, text, video)


# ------------------------------------------------------------------ seed-method heads
# X-CLIP, TC-MGC, GARE, DMAE. Faithful no-mask defaults (X-CLIP's ``mask_padding=false``,
# GARE's mask-after-softmax, DMAE's zero-filled maxima) make scores depend on padding by
# design; padding invariance is tested on the masked modes, and the X-CLIP / GARE defaults
# are shown to depend on padded slots. Their own parts: tests/test_heads_<name>.py.

# (head, overrides as "section.key": value); TC-MGC runs at SMALL_LAMBDA (tests/helpers_heads.py)
SEED_HEADS = [
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
SEED_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items() if 'lambda' not in k and 'lsa' not in k) or 'default'}" for n, o in SEED_HEADS]

# padding-independent configurations (masked modes; DMAE's zero fill is independent of what
# padded slots hold, but not of how many there are)
SEED_MASKED = [
    ("xclip", {"xclip.mask_padding": True}, False),
    ("tcmgc", SMALL_LAMBDA, False),
    ("gare", {"gare.masked_softmax": True}, True),
    ("gare", {"gare.masked_softmax": True, "gare.side": "video"}, True),
    ("dmae", {"dmae.masked_max": True}, True),
    ("dmae", {"dmae.masked_max": True, "dmae.interaction": "ti"}, True),
    ("dmae", {}, False),
]


def test_heads_are_registered():
    assert {"xclip", "tcmgc", "gare", "dmae"} <= set(names("head"))


@pytest.mark.parametrize(("name", "overrides"), SEED_HEADS, ids=SEED_IDS)
def test_score_shape_finite_and_not_factorized(name, overrides):
    head = seed_head(name, overrides)
    assert head.factorized is False
    scores = head(make_text(5), make_video(3))
    assert scores.shape == (5, 3)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize(("name", "overrides"), SEED_HEADS, ids=SEED_IDS)
def test_seed_heads_backward_reaches_every_parameter(name, overrides):
    head = seed_head(name, overrides)
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


@pytest.mark.parametrize(("name", "overrides", "extra_slots"), SEED_MASKED)
def test_padding_garbage_does_not_change_scores_in_masked_modes(name, overrides, extra_slots):
    head = seed_head(name, overrides).eval()
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
    head = seed_head(name, overrides).eval()
    text, video = make_text(4), make_video(3)
    ref = head(text, video)
    padded = head(garbage_padding(text, 0, seed=5), garbage_padding(video, 0, seed=6))
    assert not torch.allclose(padded, ref, atol=1e-4)


# heads that score in blocks of pairs: the seed-method heads and WTI
BLOCKED_HEADS = [*SEED_HEADS, ("wti", {}), ("wti", {"wti.masked_max": True})]
BLOCKED_IDS = [*SEED_IDS, "wti-default", "wti-masked_max=True"]


@pytest.mark.parametrize(("name", "overrides"), BLOCKED_HEADS, ids=BLOCKED_IDS)
def test_blocked_equals_unblocked(name, overrides):
    head = seed_head(name, overrides).eval()
    et, ev = head.embed_text(make_text(7)), head.embed_video(make_video(5))
    with torch.no_grad():
        head.block_size = 1000
        full = head.score(et, ev)
        for size in (1, 2, 3):
            head.block_size = size
            torch.testing.assert_close(head.score(et, ev), full, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["xclip", "tcmgc", "gare", "dmae"])
def test_all_zero_masks_raise(name):
    head = seed_head(name, SMALL_LAMBDA if name == "tcmgc" else {})
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
    head = seed_head(name, SMALL_LAMBDA if name == "tcmgc" else {})
    text = TokenFeatures(torch.randn(2, L + 1, D), torch.ones(2, L + 1), torch.randn(2, D))
    video = head.embed_video(make_video(2))
    with pytest.raises(ValueError, match=f"data.max_words={L}"):
        head.score(head.embed_text(text), video)


# ------------------------------------------------------------------ seed-method heads with and without DRGI


@pytest.mark.parametrize(("name", "overrides"), SEED_HEADS, ids=SEED_IDS)
@pytest.mark.parametrize("with_drgi", [False, True])
def test_seed_heads_training_step_with_and_without_drgi(name, overrides, with_drgi):
    cfg = seed_cfg(name, overrides)
    if with_drgi:
        add_drgi(cfg)
    if name == "dmae":
        cfg.add_objective("negnce")
        cfg.add_objective("tpmcl")
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
    xclip = seed_head("xclip")
    ev = xclip.embed_video(video)
    torch.testing.assert_close(ev.tokens, F.normalize(video.tokens, dim=-1))
    for name in ("tcmgc", "gare"):
        head = seed_head(name, SMALL_LAMBDA if name == "tcmgc" else {})
        torch.testing.assert_close(
            head.embed_video(video).tokens, head.temporal(video.tokens, video.mask)
        )
    dmae = seed_head("dmae")
    ev = dmae.embed_video(video)
    assert isinstance(ev, DMAEVideoFeatures)
    torch.testing.assert_close(ev.frames_in, F.normalize(video.tokens, dim=-1))
    torch.testing.assert_close(ev.tokens, dmae.temporal(ev.frames_in, video.mask))
    # the extra field survives gathering/slicing (map) and is dropped by cat
    assert ev[:2].frames_in.shape == (2, T, D)
    assert TokenFeatures.cat([ev, ev]).tokens.shape == (6, T, D)


# ------------------------------------------------------------------ meanP


def test_meanp_known_answer():
    frames = torch.tensor([[[3.0, 4.0], [0.0, 2.0], [9.0, 9.0]]])  # third frame is padding
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    mean = (torch.tensor([0.6, 0.8]) + torch.tensor([0.0, 1.0])) / 2
    torch.testing.assert_close(meanp_pool(frames, mask), (mean / mean.norm())[None])


# ------------------------------------------------------------------ seqTransf


def test_seqtransf_parameter_names_and_count():
    head = build_head(ExperimentConfig(), 512)  # default head: seqtransf, 4 blocks, 77 rows
    names = dict(head.temporal.named_parameters())
    assert names["frame_position.weight"].shape == (77, 512)
    for suffix in [
        "attn.q_proj.weight",
        "attn.k_proj.bias",
        "attn.v_proj.weight",
        "attn.out_proj.bias",
        "ln_1.weight",
        "ln_2.bias",
        "mlp.fc1.weight",
        "mlp.fc2.bias",
    ]:
        assert f"blocks.3.{suffix}" in names
    assert sum(p.numel() for p in head.parameters()) == 12_648_960  # methods.md §1.2
    assert head.temporal.blocks[0].ln_1.eps == 1e-12


def test_seqtransf_heads_must_divide_width():
    cfg = make_cfg("seqtransf")
    cfg.seqtransf.heads = 5
    with pytest.raises(ValueError, match=r"seqtransf.heads=5 .*D=16"):
        build_head(cfg, D)


def test_seqtransf_too_many_frames_raises():
    head = make_head("seqtransf", {})
    video = TokenFeatures(torch.randn(1, 9, D), torch.ones(1, 9), torch.randn(1, D))
    with pytest.raises(ValueError, match="max_frames=8"):
        head.embed_video(video)


def test_seqtransf_output_is_residual_of_blocks():
    module = TemporalTransformer(D, layers=1, heads=4, max_frames=8)
    for p in module.blocks.parameters():  # zero blocks -> F' = (F + P) + F
        torch.nn.init.zeros_(p)
    frames = torch.randn(2, 3, D)
    out = module(frames, torch.ones(2, 3))
    torch.testing.assert_close(out, 2 * frames + module.frame_position.weight[:3][None])


def tiny_text_model(width: int = D, layers: int = 2):
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPTextConfig(
        vocab_size=50,
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=12,
        layer_norm_eps=1e-12,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(3)
    return transformers.CLIPTextModel(config).eval()


def test_seqtransf_init_from_text_layers_copies_weights():
    model = tiny_text_model(layers=3)  # more text layers than blocks: the first 2 are used
    head = make_head("seqtransf", {})
    layers = model.encoder.layers
    table = model.embeddings.position_embedding
    assert head.init_from_text_layers(layers, table) == 2
    for i in range(2):
        src, dst = layers[i], head.temporal.blocks[i]
        pairs = [
            (src.self_attn.q_proj, dst.attn.q_proj),
            (src.self_attn.k_proj, dst.attn.k_proj),
            (src.self_attn.v_proj, dst.attn.v_proj),
            (src.self_attn.out_proj, dst.attn.out_proj),
            (src.layer_norm1, dst.ln_1),
            (src.layer_norm2, dst.ln_2),
            (src.mlp.fc1, dst.mlp.fc1),
            (src.mlp.fc2, dst.mlp.fc2),
        ]
        for a, b in pairs:
            torch.testing.assert_close(b.weight, a.weight, rtol=0, atol=0)
            torch.testing.assert_close(b.bias, a.bias, rtol=0, atol=0)
    torch.testing.assert_close(head.temporal.frame_position.weight, table.weight[:8])
    # same computation: our block == HF's encoder layer with bidirectional attention
    x = torch.randn(2, 5, D)
    with torch.no_grad():
        ours = head.temporal.blocks[0](x, torch.ones(2, 5))
        theirs = layers[0](x, None)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_seqtransf_init_from_text_layers_skips_other_width():
    model = tiny_text_model(width=8)
    head = make_head("seqtransf", {})
    before = head.temporal.blocks[0].attn.q_proj.weight.clone()
    copied = head.init_from_text_layers(model.encoder.layers, model.embeddings.position_embedding)
    assert copied == 0
    torch.testing.assert_close(head.temporal.blocks[0].attn.q_proj.weight, before)


# ------------------------------------------------------------------ WTI


def naive_wti(head, text: TokenFeatures, video: TokenFeatures, masked_max: bool) -> torch.Tensor:
    """Methods.md §3.1 with explicit loops over pairs, words and frames."""
    et, ev = head.embed_text(text), head.embed_video(video)
    out = torch.zeros(len(text), len(video))
    for a in range(len(text)):
        for b in range(len(video)):
            words = [i for i in range(L) if et.mask[a, i]]
            frames = [j for j in range(T) if ev.mask[b, j]]

            def sim(i, j, a=a, b=b):
                if et.mask[a, i] and ev.mask[b, j]:
                    return float(et.tokens[a, i] @ ev.tokens[b, j])
                return 0.0

            all_j = frames if masked_max else range(T)
            all_i = words if masked_max else range(L)
            t2v = sum(et.weights[a, i] * max(sim(i, j) for j in all_j) for i in words)
            v2t = sum(ev.weights[b, j] * max(sim(i, j) for i in all_i) for j in frames)
            out[a, b] = 0.5 * (t2v + v2t)
    return out


@pytest.mark.parametrize("masked_max", [False, True])
def test_wti_matches_naive_loops(masked_max):
    head = make_head("wti", {"masked_max": masked_max}).eval()
    text, video = make_text(3), make_video(4)
    with torch.no_grad():
        torch.testing.assert_close(
            head(text, video), naive_wti(head, text, video, masked_max), atol=1e-5, rtol=1e-5
        )


def einsum_wti(et: TokenFeatures, ev: TokenFeatures, masked_max: bool) -> torch.Tensor:
    """The WTI formula on all pairs at once (the ``"ald,btd->ablt"`` einsum, masked)."""
    sims = torch.einsum("ald,btd->ablt", et.tokens, ev.tokens)  # [a, b, L, T]
    mt = et.mask.bool()[:, None, :, None]
    mv = ev.mask.bool()[None, :, None, :]
    valid = mt & mv
    filled = sims.masked_fill(~valid, float("-inf")) if masked_max else torch.where(valid, sims, 0)
    best_frame = filled.max(-1).values.masked_fill(~mt.squeeze(-1), 0)  # [a, b, L]
    best_word = filled.max(-2).values.masked_fill(~mv.squeeze(-2), 0)  # [a, b, T]
    t2v = (best_frame * et.weights[:, None, :]).sum(-1)
    v2t = (best_word * ev.weights[None, :, :]).sum(-1)
    return 0.5 * (t2v + v2t)


@pytest.mark.parametrize("masked_max", [False, True])
@pytest.mark.parametrize("block", [None, 1, 3, 1000])
@pytest.mark.parametrize("extra", [0, 2])
def test_wti_gemm_blocks_equal_einsum(masked_max, block, extra):
    """Odd sizes, ragged masks (full-length items among them), garbage in padded slots, extra
    padded slots, items out of length order: same scores and gradients as the einsum."""
    head = make_head("wti", {"masked_max": masked_max, "temporal": False}).eval()
    t_len = [L, 2, 5, L, 1, 3, 6, L, 4, 2, 7][:11]
    text = garbage_padding(make_text(11, lengths=t_len), extra=extra, seed=3)
    video = garbage_padding(make_video(7, lengths=[5, 1, 3, 5, 2, 4, T]), extra=extra, seed=4)
    text.tokens.requires_grad_(True)
    video.tokens.requires_grad_(True)
    et, ev = head.embed_text(text), head.embed_video(video)
    expected = einsum_wti(et, ev, masked_max)
    ref_grads = torch.autograd.grad(
        expected.square().sum(), [text.tokens, video.tokens], retain_graph=True
    )
    head.block_size = block
    got = head.score(et, ev)
    assert got.shape == (11, 7)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(got.square().sum(), [text.tokens, video.tokens])
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def test_wti_default_blocks_bound_memory(monkeypatch):
    """Without a set block size, no block's ``[a, L, b, T]`` tensor exceeds BLOCK_ELEMENTS."""
    from tvr.models.heads import wti

    head = make_head("wti", {"temporal": False}).eval()
    et = head.embed_text(make_text(300, lengths=[3] * 300))
    ev = head.embed_video(make_video(200, lengths=[4] * 200))
    monkeypatch.setattr(wti, "block_side", lambda per_pair: xclip_block_side(per_pair, 4000))
    seen = []
    inner = head._score_block

    def spy(t, v):
        seen.append(len(t) * len(v) * L * T)
        return inner(t, v)

    monkeypatch.setattr(head, "_score_block", spy)
    with torch.no_grad():
        got = head.score(et, ev)
        torch.testing.assert_close(got, einsum_wti(et, ev, False), atol=1e-5, rtol=1e-5)
    assert len(seen) > 1 and max(seen) <= 4000


def test_wti_weights_are_masked_softmax():
    head = make_head("wti", {})
    text, video = make_text(4), make_video(4)
    et, ev = head.embed_text(text), head.embed_video(video)
    for feats in (et, ev):
        torch.testing.assert_close(feats.weights.sum(-1), torch.ones(4))
        assert (feats.weights[feats.mask == 0] == 0).all()
        torch.testing.assert_close(feats.tokens.norm(dim=-1), torch.ones(feats.mask.shape))
    ti = make_head("wti", {"weighted": False})
    assert not any("weight_fc" in n for n, _ in ti.named_parameters())
    et = ti.embed_text(text)
    torch.testing.assert_close(et.weights, text.mask / text.mask.sum(-1, keepdim=True))


def test_wti_weight_mlp_parameter_count():
    for arch, expected in [(1, 2 * 513), (2, 526_338), (3, 2 * (2 * 262_656 + 513))]:
        cfg = ExperimentConfig()
        cfg.set_head("wti", arch=arch, temporal=False)
        assert sum(p.numel() for p in build_head(cfg, 512).parameters()) == expected


def test_wti_bad_arch_raises():
    with pytest.raises(ValueError, match="wti.arch=4"):
        make_head("wti", {"arch": 4})


def test_wti_zero_floor_differs_from_masked_max_on_negative_sims():
    """DRL's zero-filled padding acts as a floor when every valid similarity is negative."""
    cfg_zero, cfg_mask = make_cfg("wti", temporal=False), make_cfg("wti", temporal=False)
    cfg_mask.wti.masked_max = True
    torch.manual_seed(0)
    zero, masked = build_head(cfg_zero, D), build_head(cfg_mask, D)
    masked.load_state_dict(zero.state_dict())
    v = torch.randn(D)
    text = TokenFeatures(
        torch.stack([v, v, v])[None], torch.tensor([[1.0, 1.0, 0.0]]), torch.randn(1, D)
    )
    video = TokenFeatures(
        torch.stack([-v, -v])[None], torch.tensor([[1.0, 0.0]]), torch.randn(1, D)
    )
    assert zero(text, video).item() == pytest.approx(0.0, abs=1e-6)
    assert masked(text, video).item() == pytest.approx(-1.0, abs=1e-5)


def test_wti_pair_analysis_sums_to_score():
    head = make_head("wti", {}).eval()
    et, ev = head.embed_text(make_text(4)), head.embed_video(make_video(4))
    with torch.no_grad():
        sims = head.token_similarity(et, ev)
        assert sims.shape == (4, L, T)
        assert (sims[et.mask == 0] == 0).all()
        expected = F.normalize(et.tokens[0, 0], dim=-1) @ F.normalize(ev.tokens[0, 0], dim=-1)
        torch.testing.assert_close(sims[0, 0, 0], expected)
        words = head.word_contributions(et, ev)
        frames = head.frame_contributions(et, ev)
        assert words.shape == (4, L) and frames.shape == (4, T)
        diag = torch.diagonal(head.score(et, ev))
        torch.testing.assert_close(0.5 * (words.sum(-1) + frames.sum(-1)), diag)
    with pytest.raises(ValueError, match="aligned pairs"):
        head.token_similarity(et, ev[:3])
