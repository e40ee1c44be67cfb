"""Tests for tvr.models.clip4clip: CLIP4Clip-family checkpoints (DRL, X-CLIP) -> HF CLIP + head state."""

from __future__ import annotations

import pytest
import torch

from tests.helpers_importers import (
    EMBED,
    FRAMES,
    PATCH,
    SEQ_BLOCKS,
    SEQ_W,
    VISION_W,
    dummy_clip_inputs,
    embeddings,
    make_clip4clip_state,
    ref_encode_image,
    ref_encode_text,
)
from tvr.models.clip4clip import load_clip4clip_checkpoint
from tvr.models.importers import CheckpointImportError, clip_model_from_hf_state
from tvr.models.loading import load_encoder


def test_clip4clip_import(clip4clip_file, openai_sd, tiny_clip):
    path, state = clip4clip_file
    hf_sd, head, report = load_clip4clip_checkpoint(path, expect_frames=FRAMES)
    assert report.missing == []
    assert report.unexpected == ["lstm_visual.weight_ih_l0"]
    assert any("eps 1e-12" in n for n in report.notes)
    assert any("cast to fp32" in n for n in report.notes)
    assert all(v.dtype == torch.float32 for v in [*hf_sd.values(), *head.values()])
    # head state: documented names, in_proj split q, k, v
    in_proj = state["module.transformerClip.resblocks.1.attn.in_proj_weight"]
    for i, p in enumerate("qkv"):
        assert torch.equal(head[f"blocks.1.attn.{p}_proj.weight"], in_proj[i * SEQ_W:(i + 1) * SEQ_W])
    bias = state["module.transformerClip.resblocks.0.attn.in_proj_bias"]
    assert torch.equal(head["blocks.0.attn.v_proj.bias"], bias[2 * SEQ_W:])
    assert torch.equal(head["blocks.0.mlp.fc1.weight"],
                       state["module.transformerClip.resblocks.0.mlp.c_fc.weight"])
    assert torch.equal(head["blocks.1.mlp.fc2.bias"],
                       state["module.transformerClip.resblocks.1.mlp.c_proj.bias"])
    assert torch.equal(head["blocks.0.ln_2.weight"],
                       state["module.transformerClip.resblocks.0.ln_2.weight"])
    assert torch.equal(head["frame_position.weight"], state["module.frame_position_embeddings.weight"])
    assert torch.equal(head["text_weight.2.bias"], state["module.text_weight_fc.2.bias"])
    assert torch.equal(head["video_weight.0.weight"], state["module.video_weight_fc.0.weight"])
    per_block = {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj", "ln_1", "ln_2",
                 "mlp.fc1", "mlp.fc2"}
    expected = {f"blocks.{n}.{m}.{w}" for n in range(SEQ_BLOCKS) for m in per_block
                for w in ("weight", "bias")}
    expected |= {"frame_position.weight"} | {f"{s}_weight.{i}.{w}" for s in ("text", "video")
                                              for i in (0, 2) for w in ("weight", "bias")}
    assert set(head) == expected
    # CLIP: equal to the fp16-rounded reference exactly, to the fp32 original within fp16 error
    model = clip_model_from_hf_state(hf_sd, report.config)
    rounded = {k[len("module.clip."):]: v for k, v in state.items() if k.startswith("module.clip.")}
    pixels, ids = dummy_clip_inputs(model.config, batch=3)
    text, image = embeddings(model)
    assert torch.allclose(text, ref_encode_text(rounded, ids), atol=1e-5)
    assert torch.allclose(image, ref_encode_image(rounded, pixels), atol=1e-5)
    orig_text, orig_image = embeddings(tiny_clip)
    assert torch.allclose(text, orig_text, atol=5e-3, rtol=1e-2)
    assert torch.allclose(image, orig_image, atol=5e-3, rtol=1e-2)


def test_clip4clip_without_module_prefix_and_planted_conv2(openai_sd, tmp_path):
    state = {k[len("module."):]: v for k, v in make_clip4clip_state(openai_sd).items()}
    state["clip.visual.conv2.weight"] = torch.zeros(VISION_W, 3, 3, PATCH, PATCH).half()
    del state["clip.ln_final.bias"]
    torch.save(state, tmp_path / "pytorch_model.bin.0")
    _, _, report = load_clip4clip_checkpoint(tmp_path / "pytorch_model.bin.0")
    assert report.unexpected == ["clip.visual.conv2.weight", "lstm_visual.weight_ih_l0"]
    assert report.missing == ["text_model.final_layer_norm.bias"]
    assert any("3-D patch" in n for n in report.notes)
    with pytest.raises(CheckpointImportError, match="CLIP keys missing .*final_layer_norm.bias"):
        load_encoder(tmp_path / "pytorch_model.bin.0")


def test_clip4clip_xclip_matrices_and_frame_checks(openai_sd, tmp_path):
    state = make_clip4clip_state(openai_sd)
    state["module.global_mat_weight"] = torch.eye(EMBED)
    state["module.frame_logit_weight"] = torch.eye(FRAMES)
    state["module.word_mat_weight"] = torch.eye(32)
    path = tmp_path / "pytorch_model.bin.1"
    torch.save(state, path)
    _, head, report = load_clip4clip_checkpoint(path, expect_frames=FRAMES, expect_words=32)
    assert torch.equal(head["frame_logit_weight"], torch.eye(FRAMES))
    assert "global_mat_weight" in head and report.unexpected == ["lstm_visual.weight_ih_l0"]
    with pytest.raises(CheckpointImportError, match="'frame_logit_weight' .*N_f .* is 8"):
        load_clip4clip_checkpoint(path, expect_frames=8)
    with pytest.raises(CheckpointImportError, match="'word_mat_weight' .*N_w .* is 24"):
        load_clip4clip_checkpoint(path, expect_words=24)


def test_clip4clip_frame_table_shorter_than_frames_refused(clip4clip_file):
    path, _ = clip4clip_file
    with pytest.raises(CheckpointImportError, match="16 rows, fewer than the 20 frames"):
        load_clip4clip_checkpoint(path, expect_frames=20)


def test_clip4clip_without_clip_keys_refused(tmp_path):
    torch.save({"module.frame_position_embeddings.weight": torch.zeros(4, 4)},
               tmp_path / "pytorch_model.bin.0")
    with pytest.raises(CheckpointImportError, match="no 'clip.\\*' keys"):
        load_clip4clip_checkpoint(tmp_path / "pytorch_model.bin.0")
