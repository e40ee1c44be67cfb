"""HF CLIP backbone -> TokenFeatures: pooling, masks, HF folders and run folders through
:mod:`tvr.models.loading` (every source kind: tests/test_loading.py)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from tvr import registry
from tvr.config import ExperimentConfig
from tvr.models.backbone import (
    BackboneError,
    BackboneNotFoundError,
    Encoder,
    HFClipEncoder,
    tiny_clip_config,
)
from tvr.models.features import TokenFeatures
from tvr.models.loading import build_encoder, load_encoder

VOCAB, BOS, EOS, PAD = 50, 48, 49, 0
IMAGE = 32


class FakeTokenizer:
    """The slice of the HF tokenizer API the backbone reads."""

    def __init__(self, vocab: int = VOCAB, bos: int = BOS, eos: int = EOS, pad: int = EOS):
        self.vocab, self.bos_token_id, self.eos_token_id, self.pad_token_id = vocab, bos, eos, pad

    def __len__(self) -> int:
        return self.vocab


def make_encoder(**kw) -> HFClipEncoder:
    torch.manual_seed(0)
    return HFClipEncoder.from_config(
        tiny_clip_config(VOCAB, max_positions=16),
        vocab_size=VOCAB,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        image_size=IMAGE,
        max_positions=16,
        **kw,
    ).eval()


@pytest.fixture(scope="module")
def enc() -> HFClipEncoder:
    return make_encoder()


def tiny_cfg(**data) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.model.clip = tiny_clip_config(VOCAB, max_positions=16)
    cfg.data.image_size = IMAGE
    cfg.data.max_words = 8
    cfg.data.num_frames = 3
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


# OpenAI-style padding (0 after EOT) and HF-style padding (EOT repeated).
IDS_ZERO_PAD = torch.tensor([[BOS, 5, 6, 7, EOS, 0, 0, 0], [BOS, 9, EOS, 0, 0, 0, 0, 0]])
IDS_EOT_PAD = torch.tensor([[BOS, 5, 6, 7, EOS, EOS, EOS, EOS], [BOS, 9, EOS, EOS, EOS, EOS, EOS, EOS]])
TEXT_MASK = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]])


def test_registered_and_is_an_encoder(enc):
    assert registry.get("encoder", "hf_clip") is HFClipEncoder
    assert isinstance(enc, Encoder)
    assert enc.embed_dim == 16


def test_text_features_shapes_and_mask(enc):
    with torch.no_grad():
        out = enc.encode_text(IDS_ZERO_PAD, TEXT_MASK)
    assert isinstance(out, TokenFeatures)
    assert out.tokens.shape == (2, 8, 16)
    assert out.pooled.shape == (2, 16)
    assert torch.equal(out.mask, TEXT_MASK)


@pytest.mark.parametrize("ids", [IDS_ZERO_PAD, IDS_EOT_PAD], ids=["zero_pad", "eot_pad"])
def test_eot_pooling_picks_first_eot_and_matches_hf(enc, ids):
    with torch.no_grad():
        out = enc.encode_text(ids, TEXT_MASK)
        hf = enc.clip.get_text_features(input_ids=ids).pooler_output
        direct = enc.clip.text_projection(enc.clip.text_model(input_ids=ids).last_hidden_state)
    assert torch.allclose(out.pooled[0], out.tokens[0, 4], atol=0)  # EOT at position 4
    assert torch.allclose(out.pooled[1], out.tokens[1, 2], atol=0)  # EOT at position 2
    assert torch.allclose(out.pooled, hf, atol=1e-6)
    assert torch.allclose(out.tokens, direct, atol=1e-6)


def test_valid_positions_do_not_depend_on_padding(enc):
    with torch.no_grad():
        a = enc.encode_text(IDS_ZERO_PAD, TEXT_MASK)
        b = enc.encode_text(IDS_EOT_PAD, TEXT_MASK)
    valid = TEXT_MASK.bool()
    assert torch.allclose(a.tokens[valid], b.tokens[valid], atol=1e-5)
    assert torch.allclose(a.pooled, b.pooled, atol=1e-5)


def test_row_without_eot_raises(enc):
    ids = IDS_ZERO_PAD.clone()
    ids[1, 2] = 3
    with pytest.raises(BackboneError, match=r"rows \[1\] contain no EOT id 49"):
        enc.encode_text(ids, TEXT_MASK)


def test_text_longer_than_positions_raises(enc):
    ids = torch.full((1, 17), 3)
    with pytest.raises(BackboneError, match="17 tokens exceed .* 16 positions"):
        enc.encode_text(ids, torch.ones_like(ids))


def test_text_mask_shape_checked(enc):
    with pytest.raises(BackboneError, match="ids \\[B, L\\]"):
        enc.encode_text(IDS_ZERO_PAD, TEXT_MASK[:, :5])


def test_video_pooled_is_masked_mean_and_padding_is_ignored(enc):
    torch.manual_seed(1)
    video = torch.randn(2, 3, 3, IMAGE, IMAGE)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    with torch.no_grad():
        out = enc.encode_video(video, mask)
        per_frame = enc.clip.get_image_features(pixel_values=video.flatten(0, 1)).pooler_output
        changed = video.clone()
        changed[0, 2] = torch.randn(3, IMAGE, IMAGE) * 5  # a padded frame
        out2 = enc.encode_video(changed, mask)
    assert out.tokens.shape == (2, 3, 16) and out.pooled.shape == (2, 16)
    assert torch.allclose(out.tokens.flatten(0, 1), per_frame, atol=1e-5)
    assert torch.allclose(out.pooled[0], out.tokens[0, :2].mean(0), atol=1e-6)
    assert torch.allclose(out.pooled[1], out.tokens[1].mean(0), atol=1e-6)
    assert torch.allclose(out2.pooled, out.pooled, atol=1e-6)
    assert torch.equal(out.mask, mask)


def test_skip_padded_frames_gives_same_valid_features():
    base, skip = make_encoder(), make_encoder(skip_padded_frames=True)
    video = torch.randn(2, 3, 3, IMAGE, IMAGE)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    with torch.no_grad():
        a, b = base.encode_video(video, mask), skip.encode_video(video, mask)
    assert torch.allclose(a.pooled, b.pooled, atol=1e-5)
    assert torch.allclose(a.tokens[mask.bool()], b.tokens[mask.bool()], atol=1e-5)
    assert torch.count_nonzero(b.tokens[0, 1:]) == 0


def test_video_errors(enc):
    with pytest.raises(BackboneError, match=r"rows \[1\] have no valid frame"):
        enc.encode_video(torch.zeros(2, 2, 3, IMAGE, IMAGE), torch.tensor([[1, 0], [0, 0]]))
    with pytest.raises(BackboneError, match="frames are 16x16 .* expects 32x32"):
        enc.encode_video(torch.zeros(1, 2, 3, 16, 16), torch.ones(1, 2))
    with pytest.raises(BackboneError, match=r"video \[B, T, 3, H, W\]"):
        enc.encode_video(torch.zeros(2, 3, IMAGE, IMAGE), torch.ones(2, 3))


def test_text_layers_for_init(enc):
    layers = enc.text_layers_for_init()
    assert isinstance(layers, nn.ModuleList) and len(layers) == 2
    names = {k for k, _ in layers[0].named_parameters()}
    assert {"self_attn.q_proj.weight", "layer_norm1.weight", "mlp.fc1.weight"} <= names
    assert layers[0] is enc.clip.text_model.encoder.layers[0]
    assert enc.text_positions_for_init().shape == (16, 32)


def test_config_carries_ids_and_projection_dim(enc):
    cfg = enc.config
    assert (cfg.text_config.bos_token_id, cfg.text_config.eos_token_id) == (BOS, EOS)
    assert cfg.text_config.pad_token_id == PAD
    assert cfg.text_config.projection_dim == cfg.vision_config.projection_dim == 16
    assert cfg.text_config.hidden_act == "quick_gelu"


def test_eager_attention_flag():
    enc = make_encoder(eager_attention=True)
    assert enc.config._attn_implementation == "eager"
    ids = IDS_ZERO_PAD
    out = enc.clip.text_model(input_ids=ids, output_attentions=True)
    assert out.attentions[0].shape == (2, 4, 8, 8)
    enc.set_eager_attention(False)
    assert enc.config._attn_implementation == "sdpa"


def test_from_config_rejects_bad_sizes():
    with pytest.raises(BackboneError, match="data.image_size=30 must be a positive multiple of 8"):
        HFClipEncoder.from_config(tiny_clip_config(VOCAB), vocab_size=VOCAB, bos_id=BOS,
                                  eos_id=EOS, pad_id=PAD, image_size=30, max_positions=16)
    with pytest.raises(BackboneError, match="eos_id=50 is outside the vocabulary"):
        HFClipEncoder.from_config(tiny_clip_config(VOCAB), vocab_size=VOCAB, bos_id=BOS,
                                  eos_id=50, pad_id=PAD, image_size=32, max_positions=16)


def test_save_and_from_pretrained_round_trip(enc, tmp_path):
    folder = tmp_path / "clip"
    enc.save_pretrained(folder)
    enc.save_pretrained(folder)  # overwriting an existing folder works
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    loaded = load_encoder(folder).encoder.eval()
    video = torch.randn(1, 2, 3, IMAGE, IMAGE)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_text(IDS_ZERO_PAD, TEXT_MASK).tokens,
                              enc.encode_text(IDS_ZERO_PAD, TEXT_MASK).tokens, atol=1e-6)
        assert torch.allclose(loaded.encode_video(video, torch.ones(1, 2)).pooled,
                              enc.encode_video(video, torch.ones(1, 2)).pooled, atol=1e-6)
    assert loaded.config.text_config.projection_dim == 16
    other = load_encoder(folder, eos_id=47, eager_attention=True).encoder
    assert other.eos_token_id == 47 and other.clip.text_model.eos_token_id == 47
    assert other.config._attn_implementation == "eager"


def test_from_pretrained_legacy_eos_two_pools_at_argmax(enc, tmp_path):
    enc.save_pretrained(tmp_path / "clip")
    cfg_file = tmp_path / "clip" / "config.json"
    data = json.loads(cfg_file.read_text())
    data["text_config"]["eos_token_id"] = 2
    cfg_file.write_text(json.dumps(data))
    legacy = load_encoder(tmp_path / "clip").encoder
    assert legacy.legacy_argmax_pooling
    with torch.no_grad():
        out = legacy.encode_text(IDS_ZERO_PAD, TEXT_MASK)  # EOS=49 is the largest id
    assert torch.allclose(out.pooled[0], out.tokens[0, 4], atol=0)
    fixed = load_encoder(tmp_path / "clip", eos_id=EOS).encoder
    assert not fixed.legacy_argmax_pooling


def test_hub_id_offline_raises_naming_the_id(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneNotFoundError, match="'openai/clip-vit-base-patch32'.*HF_HUB_OFFLINE"):
        load_encoder("openai/clip-vit-base-patch32")


def test_missing_and_foreign_folders(tmp_path):
    with pytest.raises(BackboneNotFoundError, match="does/not/exist"):
        load_encoder(tmp_path / "does/not/exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneNotFoundError, match="config.json is missing"):
        load_encoder(tmp_path / "empty")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(BackboneError, match="model_type is 'bert', expected 'clip'"):
        load_encoder(tmp_path / "bert")


def test_export_config_round_trip(enc):
    data = json.loads(json.dumps(enc.export_config()))
    rebuilt = HFClipEncoder.from_exported_config(data)
    assert rebuilt.config.to_dict()["text_config"] == enc.config.to_dict()["text_config"]
    assert rebuilt.embed_dim == enc.embed_dim and rebuilt.eos_token_id == EOS
    rebuilt.load_state_dict(enc.state_dict())
    with pytest.raises(BackboneError, match="'clip' mapping"):
        HFClipEncoder.from_exported_config({"nope": 1})


# ----------------------------------------------------------------------------- build_encoder
def test_build_encoder_from_scratch_uses_tokenizer_ids():
    tok = FakeTokenizer(vocab=40, bos=38, eos=39, pad=39)
    encoder = build_encoder(tiny_cfg(), tok).encoder
    assert isinstance(encoder, HFClipEncoder)
    tc = encoder.config.text_config
    assert (tc.vocab_size, tc.bos_token_id, tc.eos_token_id, tc.pad_token_id) == (40, 38, 39, 39)
    assert encoder.image_size == IMAGE and encoder.max_text_length == 16


def test_build_encoder_checks_lengths_and_tokenizer():
    with pytest.raises(BackboneError, match="data.max_words=20 exceeds model.clip.max_positions=16"):
        build_encoder(tiny_cfg(max_words=20), FakeTokenizer())
    with pytest.raises(BackboneError, match="needs a tokenizer"):
        build_encoder(tiny_cfg(), None)
    with pytest.raises(BackboneError, match="bos_token_id"):
        build_encoder(tiny_cfg(), object())


def test_build_encoder_from_hf_folder(enc, tmp_path):
    enc.save_pretrained(tmp_path / "clip")
    cfg = tiny_cfg()
    cfg.model.pretrained = str(tmp_path / "clip")
    encoder = build_encoder(cfg, FakeTokenizer(pad=EOS)).encoder
    assert encoder.config.text_config.pad_token_id == EOS
    cfg.data.image_size = 64
    with pytest.raises(BackboneError, match="data.image_size=64 but model.pretrained=.* 32x32"):
        build_encoder(cfg, FakeTokenizer())
    cfg.data.image_size = IMAGE
    with pytest.raises(BackboneError, match="tokenizer has 60 ids .* embeds only 50"):
        build_encoder(cfg, FakeTokenizer(vocab=60))
    cfg.model.pretrained = str(tmp_path / "weights.safetensors")  # read as OpenAI layout
    (tmp_path / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(Exception, match=r"weights\.safetensors: cannot be read as safetensors"):
        build_encoder(cfg, FakeTokenizer())
    cfg.model.pretrained = str(tmp_path / "weights.npz")
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(BackboneError, match="unsupported file"):
        build_encoder(cfg, FakeTokenizer())


def test_build_encoder_from_run_folder(enc, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "encoder.json").write_text(json.dumps({"encoder": "hf_clip",
                                                  "config": enc.export_config()}))
    state = {f"encoder.{k}": v.contiguous() for k, v in enc.state_dict().items()}
    state["head.frame_position.weight"] = torch.ones(4, 16)
    save_file(state, str(run / "model.safetensors"))
    (run / "config.json").write_text("{}")
    cfg = tiny_cfg()
    cfg.model.pretrained = str(run)
    loaded = build_encoder(cfg, FakeTokenizer())
    assert loaded.kind == "run" and loaded.source == str(run)
    with torch.no_grad():
        assert torch.allclose(loaded.encoder.encode_text(IDS_ZERO_PAD, TEXT_MASK).pooled,
                              enc.encode_text(IDS_ZERO_PAD, TEXT_MASK).pooled, atol=1e-6)
    assert torch.equal(loaded.head_state["frame_position.weight"], torch.ones(4, 16))
    save_file({"encoder.bogus": torch.zeros(1)}, str(run / "model.safetensors"))
    with pytest.raises(BackboneError, match="encoder weights do not fit"):
        load_encoder(run)
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])  # truncated: the error names the file
    with pytest.raises(BackboneError, match=f"{weights}.*truncated or corrupt"):
        load_encoder(run)


def test_conv_stem_round_trips_through_export_config(tmp_path):
    conv = make_encoder(vision_stem="conv")
    stem = conv.clip.vision_model.embeddings.patch_embedding
    assert not isinstance(stem, nn.Conv2d) and stem.weight.dtype == torch.float32
    video = torch.randn(2, 3, 3, IMAGE, IMAGE)
    mask = torch.ones(2, 3, dtype=torch.long)
    data = json.loads(json.dumps(conv.export_config()))
    assert data["vision_stem"] == "conv"
    rebuilt = HFClipEncoder.from_exported_config(data).eval()
    rebuilt.load_state_dict(conv.state_dict())  # strict: same modules, same shapes
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.encode_video(video, mask).tokens,
                                   conv.encode_video(video, mask).tokens)
    # Older exports without the key rebuild CLIP's patch embedding.
    data.pop("vision_stem")
    plain = HFClipEncoder.from_exported_config(data)
    assert isinstance(plain.clip.vision_model.embeddings.patch_embedding, nn.Conv2d)
    with pytest.raises(BackboneError, match="cannot hold vision_stem='conv'"):
        conv.save_pretrained(tmp_path / "hf")
    with pytest.raises(BackboneError, match="power-of-two patch_size"):
        HFClipEncoder.from_config(
            tiny_clip_config(VOCAB, patch_size=6), vocab_size=VOCAB, bos_id=BOS, eos_id=EOS,
            pad_id=PAD, image_size=36, max_positions=16, vision_stem="conv")
    with pytest.raises(BackboneError, match="vision_stem='pixels'"):
        make_encoder(vision_stem="pixels")


def test_vision_parameters_are_the_vision_tower_and_projection(enc):
    names = {id(p): n for n, p in enc.named_parameters()}
    vision = {names[id(p)] for p in enc.vision_parameters()}
    expected = {n for n in names.values()
                if n.startswith(("clip.vision_model.", "clip.visual_projection."))}
    assert vision == expected and "clip.visual_projection.weight" in vision
    assert not any(n.startswith("clip.text") for n in vision)
