"""tvr.models.loading: one entry point detects every weights source kind and loads it.

A tiny random HF CLIP is written on the spot in each format (HF folder, OpenAI state dict and
safetensors, CLIP4Clip ``pytorch_model.bin*`` and ``.pt``, a run folder); each loads back through
:func:`load_encoder` with the same CLIP weights, and only the formats that carry head tensors
return them.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel

from tests.helpers_importers import (
    EMBED,
    FakeTokenizer,
    convert_hf_to_openai,
    embeddings,
    encoder_cfg,
)
from tvr.models.backbone import BackboneError, BackboneNotFoundError, HFClipEncoder
from tvr.models.loading import (
    SOURCE_KINDS,
    LoadedEncoder,
    build_encoder,
    load_encoder,
    source_kind,
)

VOCAB, BOS, EOS = 64, 62, 63


@pytest.fixture(scope="module")
def hf_model() -> CLIPModel:
    """OpenAI-compatible head counts (width // 64) so the OpenAI mapping applies."""
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=1, num_attention_heads=1, max_position_embeddings=16,
                         hidden_act="quick_gelu", projection_dim=32, bos_token_id=BOS,
                         eos_token_id=EOS, pad_token_id=EOS),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                           num_attention_heads=1, image_size=32, patch_size=16,
                           hidden_act="quick_gelu", projection_dim=32),
        projection_dim=32,
    )
    model = CLIPModel(config).eval()
    with torch.no_grad():  # constant LN/bias inits would hide a mapping error
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _clip4clip_state(hf_model: CLIPModel) -> dict[str, torch.Tensor]:
    state = {f"module.clip.{k}": v for k, v in convert_hf_to_openai(hf_model.state_dict()).items()}
    state["module.frame_position_embeddings.weight"] = torch.full((12, 32), 0.5)
    return state


def _write_run(hf_model: CLIPModel, run) -> None:
    encoder = HFClipEncoder(hf_model)
    run.mkdir()
    (run / "encoder.json").write_text(json.dumps({"encoder": "hf_clip",
                                                  "config": encoder.export_config()}))
    state = {f"encoder.{k}": v.contiguous() for k, v in encoder.state_dict().items()}
    state["head.temporal.frame_position.weight"] = torch.ones(4, 32)
    save_file(state, str(run / "model.safetensors"))


def _write(kind: str, hf_model: CLIPModel, tmp_path):
    """Write ``hf_model`` as a ``kind`` source under tmp_path; return its path."""
    if kind == "hf":
        return HFClipEncoder(hf_model).save_pretrained(tmp_path / "clip-hf")
    if kind == "openai_pt":
        torch.save(convert_hf_to_openai(hf_model.state_dict()), tmp_path / "ViT-tiny.pt")
        return tmp_path / "ViT-tiny.pt"
    if kind == "openai_safetensors":
        sd = {k: v.contiguous() for k, v in convert_hf_to_openai(hf_model.state_dict()).items()}
        save_file(sd, str(tmp_path / "ViT-tiny.safetensors"))
        return tmp_path / "ViT-tiny.safetensors"
    if kind == "clip4clip_bin":
        torch.save(_clip4clip_state(hf_model), tmp_path / "pytorch_model.bin.2")
        return tmp_path / "pytorch_model.bin.2"
    if kind == "clip4clip_pt":  # a .pt that is a CLIP4Clip state dict, told apart by its keys
        torch.save({"state_dict": _clip4clip_state(hf_model), "epoch": 3}, tmp_path / "drl.pt")
        return tmp_path / "drl.pt"
    _write_run(hf_model, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("written", "kind"),
    [("hf", "hf"), ("openai_pt", "openai"), ("openai_safetensors", "openai"),
     ("clip4clip_bin", "clip4clip"), ("clip4clip_pt", "clip4clip"), ("run", "run")],
)
def test_every_source_kind_loads_the_same_clip_weights(hf_model, tmp_path, written, kind):
    path = _write(written, hf_model, tmp_path)
    assert source_kind(path) == kind and kind in SOURCE_KINDS
    loaded = load_encoder(path, eos_id=EOS) if kind != "run" else load_encoder(str(path))
    assert isinstance(loaded, LoadedEncoder) and isinstance(loaded.encoder, HFClipEncoder)
    assert loaded.kind == kind and loaded.source == str(path)
    want = hf_model.state_dict()
    got = loaded.encoder.clip.state_dict()
    assert set(got) == set(want)
    for key, value in want.items():
        assert torch.allclose(got[key], value, atol=1e-6), key
    assert loaded.encoder.eos_token_id == EOS
    if kind == "clip4clip":
        assert list(loaded.head_state) == ["frame_position.weight"]
        assert torch.equal(loaded.head_state["frame_position.weight"], torch.full((12, 32), 0.5))
    elif kind == "run":
        assert list(loaded.head_state) == ["temporal.frame_position.weight"]
    else:
        assert loaded.head_state == {}


def test_special_ids_and_eager_attention_reach_the_model(hf_model, tmp_path):
    path = _write("openai_pt", hf_model, tmp_path)
    encoder = load_encoder(path, bos_id=1, eos_id=2, pad_id=3, eager_attention=True).encoder
    tc = encoder.config.text_config
    assert (tc.bos_token_id, tc.eos_token_id, tc.pad_token_id) == (1, 2, 3)
    assert encoder.config._attn_implementation == "eager"


def test_unknown_path_names_it_and_the_expected_kinds(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(BackboneNotFoundError, match=rf"{missing}.*expected a run folder .*"
                                                    r"OpenAI CLIP .pt.*CLIP4Clip"):
        load_encoder(missing)
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(BackboneError, match=r"weights\.npz.*unsupported file; expected"):
        load_encoder(tmp_path / "weights.npz")
    with pytest.raises(BackboneError, match="an empty weights source"):
        load_encoder("  ")


def test_incomplete_run_folder_names_the_missing_weights(hf_model, tmp_path):
    run = _write("run", hf_model, tmp_path)
    (run / "model.safetensors").unlink()
    with pytest.raises(BackboneError, match=rf"{run} is not a complete run folder: "
                                            r"model.safetensors is missing"):
        load_encoder(run)
    (run / "encoder.json").write_text("{")
    save_file({"encoder.x": torch.zeros(1)}, str(run / "model.safetensors"))
    with pytest.raises(BackboneError, match=r"encoder.json: not valid JSON"):
        load_encoder(run)


# ----------------------------------------------------------------------------- build_encoder
def test_build_encoder_dispatches_openai_and_clip4clip(openai_sd, tiny_clip, clip4clip_file,
                                                       tmp_path):
    torch.save(openai_sd, tmp_path / "ViT-tiny.pt")
    loaded = build_encoder(encoder_cfg(tmp_path / "ViT-tiny.pt"), FakeTokenizer())
    encoder = loaded.encoder
    assert isinstance(encoder, HFClipEncoder) and loaded.head_state == {}
    assert loaded.kind == "openai"
    for got, want in zip(embeddings(encoder.clip), embeddings(tiny_clip)):
        assert torch.allclose(got, want, atol=1e-5)

    path, _ = clip4clip_file
    loaded = build_encoder(encoder_cfg(path), FakeTokenizer())
    encoder = loaded.encoder
    assert "blocks.0.attn.q_proj.weight" in loaded.head_state and loaded.kind == "clip4clip"
    assert encoder.embed_dim == EMBED and encoder.eos_token_id == EOS

    cfg = encoder_cfg(tmp_path / "ViT-tiny.pt")
    cfg.data.image_size = 64
    with pytest.raises(ValueError, match="data.image_size=64"):
        build_encoder(cfg, FakeTokenizer())
