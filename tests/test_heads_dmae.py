"""DMAE head (tvr/models/heads/dmae.py): visual enhancement, interactions, variants.

The contract every head meets (shapes, gradients, padding, DRGI) is in tests/test_heads.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers_heads import make_text, make_video, seed_head
from tvr.models.heads.dmae import NearestFrames, interaction_score


def test_dmae_visual_enhancement_hand_computed():
    """s = ½ (max_f A + ½ C[f*, f**] A[f**] + Σ_f ω_f A_f) for the sentence as one token."""
    head = seed_head("dmae")
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
    head = seed_head("dmae")
    et, ev = head.embed_text(text), head.embed_video(video)
    for feats in (et, ev):
        torch.testing.assert_close(feats.weights.sum(-1), torch.ones(3))
        assert (feats.weights[feats.mask == 0] == 0).all()
    assert head.text_weight_fc is not None and head.video_weight_fc is not None
    sentence_only = seed_head("dmae", {"dmae.interaction": "wti"})
    assert sentence_only.text_weight_fc is None  # the single sentence token has weight 1
    ti = seed_head("dmae", {"dmae.interaction": "ti"})
    assert not any("weight_fc" in n for n, _ in ti.named_parameters())
    with pytest.raises(ValueError, match="dmae.interaction='xti'"):
        seed_head("dmae", {"dmae.interaction": "xti"})


def test_dmae_normalize_frames_makes_the_frames_unit_and_keeps_the_rest():
    text, video = make_text(3), make_video(3)
    plain = seed_head("dmae", {"dmae.masked_max": True})
    unit = seed_head("dmae", {"dmae.masked_max": True, "dmae.normalize_frames": True})
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
