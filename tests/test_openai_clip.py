"""Tests for tvr.models.openai_clip: OpenAI CLIP state dicts (.pt, safetensors) -> HF CLIPModel.

No downloads: a tiny random HF CLIP is exported to the OpenAI layout, saved, imported back and
checked against both the original model and an independent functional re-implementation of the
OpenAI CLIP forward (``tests/helpers_importers.py``), so a mapping error that round-trips still
fails.
"""

from __future__ import annotations

import pytest
import torch

from tests.helpers_importers import (
    BOS,
    CONTEXT,
    EMBED,
    EOS,
    IMAGE,
    PATCH,
    TEXT_W,
    VISION_W,
    VOCAB,
    FakeTokenizer,
    convert_hf_to_openai,
    dummy_clip_inputs,
    embeddings,
    encoder_cfg,
    ref_encode_image,
    ref_encode_text,
    ref_logits,
    save_torchscript,
    verify_conversion,
)
from tvr.models.importers import CheckpointImportError, ImportReport, clip_model_from_hf_state
from tvr.models.loading import build_encoder, load_encoder
from tvr.models.openai_clip import (
    convert_openai_to_hf,
    load_openai_clip_state,
    openai_config_from_state,
)


def test_exporter_writes_openai_names_and_shapes(openai_sd):
    assert openai_sd["transformer.resblocks.1.attn.in_proj_weight"].shape == (3 * TEXT_W, TEXT_W)
    assert openai_sd["visual.transformer.resblocks.0.attn.in_proj_bias"].shape == (3 * VISION_W,)
    assert openai_sd["text_projection"].shape == (TEXT_W, EMBED)
    assert openai_sd["visual.proj"].shape == (VISION_W, EMBED)
    assert openai_sd["visual.positional_embedding"].shape == ((IMAGE // PATCH) ** 2 + 1, VISION_W)
    assert {"visual.ln_pre.weight", "ln_final.bias", "logit_scale", "visual.class_embedding",
            "transformer.resblocks.0.mlp.c_fc.weight"} <= set(openai_sd)
    assert not any("position_ids" in k or "q_proj" in k for k in openai_sd)


def test_architecture_inferred_from_shapes(openai_sd):
    cfg = openai_config_from_state(openai_sd)
    tc, vc = cfg.text_config, cfg.vision_config
    assert (tc.hidden_size, tc.num_hidden_layers, tc.num_attention_heads) == (TEXT_W, 2, 1)
    assert (tc.intermediate_size, tc.max_position_embeddings, tc.vocab_size) == (4 * TEXT_W,
                                                                               CONTEXT, VOCAB)
    assert (vc.hidden_size, vc.num_hidden_layers, vc.num_attention_heads) == (VISION_W, 2, 2)
    assert (vc.patch_size, vc.image_size, vc.intermediate_size) == (PATCH, IMAGE, 4 * VISION_W)
    assert cfg.projection_dim == tc.projection_dim == vc.projection_dim == EMBED
    assert tc.hidden_act == vc.hidden_act == "quick_gelu"
    assert tc.layer_norm_eps == vc.layer_norm_eps == 1e-5
    assert (tc.bos_token_id, tc.eos_token_id, tc.pad_token_id) == (BOS, EOS, EOS)
    assert cfg.logit_scale_init_value == pytest.approx(3.0)
    assert openai_config_from_state(openai_sd, text_heads=4).text_config.num_attention_heads == 4


def test_conversion_matches_independent_reference_forward(openai_sd):
    hf_sd, report = convert_openai_to_hf(openai_sd)
    assert report.ok and not report.missing and not report.unexpected
    model = clip_model_from_hf_state(hf_sd, report.config)
    pixels, ids = dummy_clip_inputs(model.config, batch=3)
    with torch.no_grad():
        assert torch.allclose(model.get_text_features(input_ids=ids).pooler_output,
                              ref_encode_text(openai_sd, ids), atol=1e-5)
        assert torch.allclose(model.get_image_features(pixel_values=pixels).pooler_output,
                              ref_encode_image(openai_sd, pixels), atol=1e-5)
    assert verify_conversion(ref_logits(openai_sd), model) < 1e-4


def test_verification_fails_on_wrong_weights(openai_sd):
    hf_sd, report = convert_openai_to_hf(openai_sd)
    q = "text_model.encoder.layers.0.self_attn.q_proj.weight"
    k = "text_model.encoder.layers.0.self_attn.k_proj.weight"
    hf_sd[q], hf_sd[k] = hf_sd[k], hf_sd[q]  # the classic in_proj split mistake
    model = clip_model_from_hf_state(hf_sd, report.config)
    with pytest.raises(CheckpointImportError, match="verification failed"):
        verify_conversion(ref_logits(openai_sd), model)


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_openai_file_round_trip(tiny_clip, openai_sd, tmp_path, fmt):
    path = tmp_path / "ViT-tiny.pt"
    meta = {"input_resolution": torch.tensor(IMAGE), "context_length": torch.tensor(CONTEXT),
            "vocab_size": torch.tensor(VOCAB)}
    if fmt == "state_dict":
        torch.save({**openai_sd, **meta}, path)
    else:
        save_torchscript({**openai_sd, **meta}, path)
    sd = load_openai_clip_state(path)
    assert not set(meta) & set(sd)
    assert set(sd) == set(openai_sd)
    encoder = load_encoder(path).encoder
    for got, want in zip(embeddings(encoder.clip), embeddings(tiny_clip)):
        assert torch.allclose(got, want, atol=1e-5)


def test_openai_safetensors_file_imports(tiny_clip, openai_sd, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "ViT-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in openai_sd.items()}, str(path))
    encoder = build_encoder(encoder_cfg(path), FakeTokenizer()).encoder
    for got, want in zip(embeddings(encoder.clip), embeddings(tiny_clip)):
        assert torch.allclose(got, want, atol=1e-5)


def test_fp16_openai_file_is_cast_to_fp32(openai_sd, tmp_path):
    half = {k: v.half() for k, v in openai_sd.items()}
    torch.save(half, tmp_path / "half.pt")
    hf_sd, report = convert_openai_to_hf(load_openai_clip_state(tmp_path / "half.pt"))
    assert all(v.dtype == torch.float32 for v in hf_sd.values())
    assert "floating tensors cast to fp32" in report.notes


def test_openai_checkpoint_with_missing_key_refused(openai_sd, tmp_path):
    sd = dict(openai_sd)
    del sd["visual.ln_post.bias"]
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(CheckpointImportError, match="vision_model.post_layernorm.bias"):
        load_encoder(tmp_path / "broken.pt")


def test_bad_inputs_raise_clear_errors(openai_sd, tmp_path):
    with pytest.raises(CheckpointImportError, match="does not exist"):
        load_openai_clip_state(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointImportError, match="junk.pt: cannot be read"):
        load_openai_clip_state(tmp_path / "junk.pt")
    torch.save(ImportReport(), tmp_path / "pickled.pt")  # an arbitrary object: never unpickled
    with pytest.raises(CheckpointImportError, match="weights-only"):
        load_openai_clip_state(tmp_path / "pickled.pt")
    resnet = {**openai_sd, "visual.layer1.0.conv1.weight": torch.zeros(1)}
    with pytest.raises(CheckpointImportError, match="ResNet CLIP"):
        openai_config_from_state(resnet)
    no_proj = {k: v for k, v in openai_sd.items() if k != "text_projection"}
    with pytest.raises(CheckpointImportError, match="'text_projection'"):
        openai_config_from_state(no_proj)
    wrong = {**openai_sd, "visual.proj": torch.zeros(VISION_W, EMBED + 1)}
    with pytest.raises(CheckpointImportError, match="projection shapes disagree"):
        openai_config_from_state(wrong)
    cfg = openai_config_from_state(openai_sd)
    bad = {**openai_sd, "ln_final.weight": torch.zeros(TEXT_W + 1)}
    with pytest.raises(CheckpointImportError, match="ln_final.weight -> .*final_layer_norm"):
        convert_openai_to_hf(bad, cfg)


def test_hf_to_openai_rejects_unknown_keys(tiny_clip):
    with pytest.raises(CheckpointImportError, match="'foo.bar'"):
        convert_hf_to_openai({"foo.bar": torch.zeros(1)})
    sd = {k: v for k, v in tiny_clip.state_dict().items()
          if k != "text_model.encoder.layers.0.self_attn.v_proj.weight"}
    with pytest.raises(CheckpointImportError, match=r"found only \['k', 'q'\]"):
        convert_hf_to_openai(sd)
