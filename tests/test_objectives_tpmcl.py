"""TPM-CL objective of DMAE (tvr/objectives/tpmcl.py): token weights, partial matching."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers_heads import D, L, T, lengths_mask
from tvr.config import ConfigError, ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.models.heads import build_head
from tvr.objectives import build_objectives
from tvr.objectives.tpmcl import TPMCL, CrossModalTokenWeights, adaptive_keep, margin_term


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
    cfg.set_head("dmae")
    cfg.data.max_words, cfg.data.num_frames = L, T
    cfg.seqtransf.layers, cfg.seqtransf.heads, cfg.seqtransf.max_frames = 1, 4, 8
    cfg.add_objective("tpmcl")
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
    cfg.add_objective("tpmcl", threshold=0.0)
    with pytest.raises(ConfigError, match="tpmcl.threshold"):
        TPMCL(cfg, D)
