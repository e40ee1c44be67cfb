"""Seed-method objectives: NegNCE, TPM-CL, SDR, GARE regularisers (tvr/objectives)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

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
from tvr.objectives.negnce import NegNCE, hard_negative_set
from tvr.objectives.sdr import SDR, sdr_penalty
from tvr.objectives.tpmcl import TPMCL, CrossModalTokenWeights, adaptive_keep, margin_term
from tvr.registry import names

D = 16
L, T = 7, 5


def lengths_mask(lengths: list[int], n: int) -> torch.Tensor:
    return (torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]).float()


# ------------------------------------------------------------------ factory


def test_objectives_are_registered():
    assert {"negnce", "tpmcl", "sdr", "gare_reg"} <= set(names("objective"))


def test_build_objectives_follows_switches():
    cfg = ExperimentConfig()
    assert list(build_objectives(cfg, 8)) == ["infonce"]
    cfg.negnce.enable = True
    cfg.tpmcl.enable = True
    cfg.drgi.enable = True
    assert list(build_objectives(cfg, 8)) == ["negnce", "tpmcl", "drgi"]  # NegNCE replaces it
    for head, extra in (("tcmgc", "sdr"), ("gare", "gare_reg")):
        cfg = ExperimentConfig()
        cfg.model.head = head
        assert list(build_objectives(cfg, 8)) == ["infonce", extra]
    cfg.tcmgc.sdr = False
    cfg.gare.regularize = False
    assert list(build_objectives(cfg, 8)) == ["infonce"]
    cfg = ExperimentConfig()  # the head-specific losses need their head
    cfg.model.head = "seqtransf"
    assert list(build_objectives(cfg, 8)) == ["infonce"]


# ------------------------------------------------------------------ NegNCE

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
    cfg.negnce.scale = 10.0
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
    cfg.negnce.scale = 5.0  # P stays inside the [1e-6, 1 - 1e-6] clamp
    out = NegNCE(cfg, 8)({"sim": sim, "video_index": torch.arange(3)}, {})
    target = torch.arange(3)
    ce = 0.5 * (F.cross_entropy(5 * sim, target) + F.cross_entropy(5 * sim.T, target))
    assert out["negnce_hard_pairs"].item() == 0.0
    torch.testing.assert_close(out["negnce_loss"], ce, rtol=1e-4, atol=1e-6)
    out["negnce_loss"].backward()
    assert torch.isfinite(sim.grad).all()


def test_negnce_needs_video_index_for_exclusion():
    with pytest.raises(KeyError, match="video_index"):
        NegNCE(ExperimentConfig(), 8)({"sim": S3}, {})
    cfg = ExperimentConfig()
    cfg.negnce.exclude_same_video = False
    assert torch.isfinite(NegNCE(cfg, 8)({"sim": S3}, {})["negnce_loss"])


def test_negnce_same_video_pairs_are_not_pushed():
    cfg = ExperimentConfig()
    sim = S3.clone().requires_grad_(True)
    NegNCE(cfg, 8)({"sim": sim, "video_index": torch.tensor([7, 7, 3])}, {})[
        "negnce_loss"
    ].backward()
    excluded = sim.grad.clone()
    sim.grad = None
    NegNCE(cfg, 8)({"sim": sim, "video_index": torch.arange(3)}, {})["negnce_loss"].backward()
    assert not torch.allclose(excluded, sim.grad)


# ------------------------------------------------------------------ SDR


def test_sdr_hand_computed():
    grains = torch.zeros(2, 2, 4)
    grains[0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    grains[1, 1] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    grains[0, 1] = torch.tensor([9.0, -9.0, 9.0, -9.0])  # off-diagonal: ignored
    # λ = 10: Var([1, 2, 3, 4]) = 5/3 (unbiased), Var(const) = 0
    assert sdr_penalty(grains, 10.0).item() == pytest.approx(5 / 6, rel=1e-5)
    cfg = ExperimentConfig()
    out = SDR(cfg, 8)({"tcmgc_grains": grains, "logit_scale": torch.tensor(10.0)}, {})
    assert out["sdr_loss"].item() == pytest.approx(0.5 * 5 / 6, rel=1e-5)


def test_sdr_needs_grains():
    with pytest.raises(KeyError, match="tcmgc_grains"):
        SDR(ExperimentConfig(), 8)({"sim": torch.zeros(2, 2)}, {})
    with pytest.raises(ValueError, match=r"\[B, B, G >= 2\]"):
        sdr_penalty(torch.zeros(2, 3, 4))


# ------------------------------------------------------------------ GARE regularisers


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


def test_gare_reg_total_and_finite_gradient_at_zero_increment():
    cfg = ExperimentConfig()
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
        GARERegularizers(ExperimentConfig(), 8)({"sim": torch.zeros(2, 2)}, {})
    cfg = ExperimentConfig()
    cfg.gare.trust_region = "soft"
    with pytest.raises(ConfigError, match="gare.trust_region"):
        GARERegularizers(cfg, 8)


def test_gare_head_and_regularisers_train_psi():
    cfg = ExperimentConfig()
    cfg.model.head = "gare"
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


# ------------------------------------------------------------------ TPM-CL


def test_adaptive_keep_masks_the_most_important_tokens():
    w = torch.tensor([[0.15, 0.5, 0.05, 0.3], [0.7, 0.2, 0.1, 0.0], [0.35, 0.1, 0.25, 0.3]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]])
    keep = adaptive_keep(w, mask, 0.6)
    # row 0: sorted 0.5 (cum .5 < .6: masked), 0.3 (cum .8: kept), ...
    # row 1: 0.7 alone reaches .6, so nothing is masked; padding is never kept
    # row 2: 0.35 (cum .35: masked), 0.3 (cum .65: kept), ...
    assert keep.tolist() == [
        [True, False, True, True],
        [True, True, True, False],
        [False, True, True, True],
    ]
    # the order of the tokens does not matter, only their weights
    perm = torch.tensor([2, 0, 3, 1])
    assert adaptive_keep(w[:, perm], mask[:, perm], 0.6).tolist() == keep[:, perm].tolist()


def test_margin_term_hand_computed():
    pos, partial = torch.tensor([0.9, 0.5]), torch.tensor([0.1, 0.2])
    # ReLU(0.6 - 0.8) = 0, ReLU(0.6 - 0.3) = 0.3
    assert margin_term(pos, partial, 0.6).item() == pytest.approx(0.15)


def test_cross_modal_token_weights_are_masked_and_normalised():
    torch.manual_seed(0)
    pred = CrossModalTokenWeights(T, L, D)
    context, ctx_mask = torch.randn(3, T, D), lengths_mask([2, 5, 1], T)
    tokens, mask = torch.randn(3, L, D), lengths_mask([3, 7, 2], L)
    w = pred(context, ctx_mask, tokens, mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(3))
    assert (w[mask == 0] == 0).all() and (w[mask == 1] > 0).all()
    garbage = torch.where(ctx_mask.bool()[..., None], context, 99.0)
    torch.testing.assert_close(pred(garbage, ctx_mask, tokens, mask), w)
    with pytest.raises(ValueError, match="5 context and 7 tokens"):
        pred(torch.randn(3, T + 1, D), None, tokens, mask)


def tpm_setup(seed: int = 0, **dmae):
    cfg = ExperimentConfig()
    cfg.model.head = "dmae"
    cfg.data.max_words, cfg.data.num_frames = L, T
    cfg.seqtransf.layers, cfg.seqtransf.heads, cfg.seqtransf.max_frames = 1, 4, 8
    cfg.tpmcl.enable = True
    for key, value in dmae.items():
        setattr(cfg.dmae, key, value)
    torch.manual_seed(seed)
    head = build_head(cfg, D)
    objective = build_objectives(cfg, D)["tpmcl"]
    return cfg, head, objective


def tpm_inputs(b: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    text = TokenFeatures(
        torch.randn(b, L, D, generator=g),
        lengths_mask([3, 7, 5, 2][:b], L),
        torch.randn(b, D, generator=g),
    )
    video = TokenFeatures(
        torch.randn(b, T, D, generator=g),
        lengths_mask([2, 5, 4, 1][:b], T),
        torch.randn(b, D, generator=g),
    )
    return text, video


def tpm_outputs(head, text, video):
    return {"text": head.embed_text(text), "video": head.embed_video(video), "head": head,
            "local": slice(0, len(text))}


def test_tpmcl_matches_its_definition():
    _, head, objective = tpm_setup()
    text, video = tpm_inputs()
    out = tpm_outputs(head, text, video)
    got = objective(out, {})["tpmcl_loss"]

    et, ev = out["text"], out["video"]
    w_t = objective.word_weights(ev.frames_in, ev.mask, et.tokens, et.mask)
    w_v = objective.frame_weights(et.pooled[:, None, :], None, ev.frames_in, ev.mask)

    def keep_of(w, mask):  # loops over the sorted weights, as described
        w = w.detach()
        keep = mask.bool().clone()
        for k in range(len(w)):
            cum = 0.0
            for j in sorted(range(w.shape[1]), key=lambda j: -float(w[k, j])):
                cum += float(w[k, j])
                if cum < 0.6:
                    keep[k, j] = False
        return keep

    keep_t, keep_v = keep_of(w_t, et.mask), keep_of(w_v, ev.mask)
    t_g = F.normalize((w_t[..., None] * et.tokens).sum(1), dim=-1)
    t_part = (w_t[..., None] * keep_t[..., None] * et.tokens).sum(1)
    v_part = head.temporal(ev.frames_in * keep_v[..., None], ev.mask)
    wv_part = head.frame_weights(v_part, ev.mask)

    def s(x, v, w):
        return head.pair_sentence_score(x, v, ev.mask, w)

    def hinge(a, b):
        return torch.relu(0.6 - (a - b)).mean()

    expected = (
        hinge(s(et.pooled, ev.tokens, ev.weights), s(et.pooled, v_part, wv_part))
        + hinge(s(t_g, ev.tokens, ev.weights), s(t_g, v_part, wv_part))
        + hinge(s(t_g, ev.tokens, ev.weights), s(t_part, ev.tokens, ev.weights))
    )
    torch.testing.assert_close(got, expected)


def test_tpmcl_gradients_and_the_frame_predictor():
    cfg, head, objective = tpm_setup()
    text, video = tpm_inputs()
    objective(tpm_outputs(head, text, video), {})["tpmcl_loss"].backward()
    for name, p in objective.word_weights.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # partial_type 4: the frame predictor only chooses which frames to mask -> no gradient
    assert all(p.grad is None for p in objective.frame_weights.parameters())
    assert head.temporal.frame_position.weight.grad.abs().sum() > 0  # V' re-runs seqTransf

    cfg.tpmcl.video_global = True  # the code's fourth triplet trains it
    torch.manual_seed(0)
    objective = TPMCL(cfg, D)
    objective(tpm_outputs(head, text, video), {})["tpmcl_loss"].backward()
    for name, p in objective.frame_weights.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_tpmcl_padding_garbage_does_not_change_the_loss():
    _, head, objective = tpm_setup(masked_max=True)
    head.eval()
    text, video = tpm_inputs()
    ref = objective(tpm_outputs(head, text, video), {})["tpmcl_loss"]
    g = torch.Generator().manual_seed(9)
    text_g = TokenFeatures(
        torch.where(text.mask.bool()[..., None], text.tokens, 50 * torch.randn(4, L, D, generator=g)),
        text.mask,
        text.pooled,
    )
    video_g = TokenFeatures(
        torch.where(video.mask.bool()[..., None], video.tokens, 50 * torch.randn(4, T, D, generator=g)),
        video.mask,
        video.pooled,
    )
    got = objective(tpm_outputs(head, text_g, video_g), {})["tpmcl_loss"]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_tpmcl_uses_only_the_anchor_rows():
    _, head, objective = tpm_setup()
    text, video = tpm_inputs()
    out = tpm_outputs(head, text, video)
    out["local"] = slice(1, 3)
    part = objective(out, {})
    sub = tpm_outputs(head, text[1:3], video[1:3])
    torch.testing.assert_close(part["tpmcl_loss"], objective(sub, {})["tpmcl_loss"])


def test_tpmcl_errors_name_what_is_missing():
    _, head, objective = tpm_setup()
    text, video = tpm_inputs()
    out = tpm_outputs(head, text, video)
    with pytest.raises(KeyError, match="outputs\\['head'\\]"):
        objective({**out, "head": None}, {})
    plain = TokenFeatures(out["video"].tokens, out["video"].mask, out["video"].pooled,
                          out["video"].weights)
    with pytest.raises(ValueError, match="frames_in"):
        objective({**out, "video": plain}, {})
    cfg = ExperimentConfig()
    cfg.tpmcl.threshold = 0.0
    with pytest.raises(ConfigError, match="tpmcl.threshold"):
        TPMCL(cfg, D)
