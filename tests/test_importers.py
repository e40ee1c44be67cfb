"""Foreign checkpoints -> HF CLIPModel: OpenAI (.pt, TorchScript) and CLIP4Clip-family files.

No downloads: a tiny random HF CLIP is exported to the OpenAI layout, saved, imported back and
checked against both the original model and an independent functional re-implementation of the
OpenAI CLIP forward written here (so a mapping error that round-trips, e.g. q and k swapped both
ways, still fails).
"""

from __future__ import annotations

import pickle
import zipfile

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import CLIPConfig, CLIPModel

from tests.helpers_importers import convert_hf_to_openai, dummy_clip_inputs, verify_conversion
from tvr.config import ExperimentConfig
from tvr.models.backbone import HFClipEncoder
from tvr.models.clip4clip import load_clip4clip_checkpoint
from tvr.models.importers import CheckpointImportError, ImportReport, clip_model_from_hf_state
from tvr.models.loading import build_encoder, load_encoder
from tvr.models.openai_clip import (
    convert_openai_to_hf,
    load_openai_clip_state,
    openai_config_from_state,
)
from tvr.models.torchscript_reader import read_torchscript_state

VOCAB, BOS, EOS = 64, 62, 63
TEXT_W, VISION_W, EMBED, PATCH, IMAGE, CONTEXT = 64, 128, 32, 8, 32, 16


def tiny_hf_config() -> CLIPConfig:
    """OpenAI-compatible head counts (width // 64): text 1 head, vision 2 heads."""
    return CLIPConfig(
        text_config=dict(vocab_size=VOCAB, hidden_size=TEXT_W, intermediate_size=4 * TEXT_W,
                         num_hidden_layers=2, num_attention_heads=1, max_position_embeddings=CONTEXT,
                         hidden_act="quick_gelu", projection_dim=EMBED, bos_token_id=BOS,
                         eos_token_id=EOS, pad_token_id=EOS),
        vision_config=dict(hidden_size=VISION_W, intermediate_size=4 * VISION_W,
                           num_hidden_layers=2, num_attention_heads=2, image_size=IMAGE,
                           patch_size=PATCH, hidden_act="quick_gelu", projection_dim=EMBED),
        projection_dim=EMBED,
        logit_scale_init_value=3.0,
    )


@pytest.fixture(scope="module")
def hf_model() -> CLIPModel:
    torch.manual_seed(0)
    model = CLIPModel(tiny_hf_config()).eval()
    with torch.no_grad():  # HF initialises biases/LN to constants; randomise so mapping errors show
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture(scope="module")
def openai_sd(hf_model) -> dict[str, Tensor]:
    return convert_hf_to_openai(hf_model.state_dict())


# ----------------------------------------------------------------------- reference forward
def _ref_blocks(x: Tensor, sd: dict[str, Tensor], prefix: str, heads: int,
                attn_mask: Tensor | None = None) -> Tensor:
    """OpenAI ResidualAttentionBlocks (pre-LN, nn.MultiheadAttention layout, QuickGELU)."""
    d = x.shape[-1]
    i = 0
    while f"{prefix}{i}.attn.in_proj_weight" in sd:
        p = f"{prefix}{i}."
        h = F.layer_norm(x, (d,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], 1e-5).transpose(0, 1)
        a, _ = F.multi_head_attention_forward(
            h, h, h, d, heads, sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"],
            None, None, False, 0.0, sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"],
            training=False, need_weights=False, attn_mask=attn_mask,
        )
        x = x + a.transpose(0, 1)
        h = F.layer_norm(x, (d,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], 1e-5)
        h = F.linear(h, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])
        h = h * torch.sigmoid(1.702 * h)
        x = x + F.linear(h, sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
        i += 1
    return x


def ref_encode_text(sd: dict[str, Tensor], ids: Tensor) -> Tensor:
    sd = {k: v.float() for k, v in sd.items()}
    length = ids.shape[1]
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"][:length]
    causal = torch.full((length, length), float("-inf")).triu_(1)
    x = _ref_blocks(x, sd, "transformer.resblocks.", TEXT_W // 64, causal)
    x = F.layer_norm(x, (TEXT_W,), sd["ln_final.weight"], sd["ln_final.bias"], 1e-5)
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ sd["text_projection"]


def ref_encode_image(sd: dict[str, Tensor], pixels: Tensor) -> Tensor:
    sd = {k: v.float() for k, v in sd.items()}
    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=PATCH)  # [B, W, g, g]
    x = x.flatten(2).transpose(1, 2)  # [B, g*g, W]
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + sd["visual.positional_embedding"]
    x = F.layer_norm(x, (VISION_W,), sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"], 1e-5)
    x = _ref_blocks(x, sd, "visual.transformer.resblocks.", VISION_W // 64)
    x = F.layer_norm(x[:, 0], (VISION_W,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"],
                     1e-5)
    return x @ sd["visual.proj"]


def ref_logits(sd: dict[str, Tensor]):
    def forward(pixels: Tensor, ids: Tensor) -> Tensor:
        img = F.normalize(ref_encode_image(sd, pixels), dim=-1)
        txt = F.normalize(ref_encode_text(sd, ids), dim=-1)
        return sd["logit_scale"].float().exp() * img @ txt.t()

    return forward


def embeddings(model: CLIPModel, seed: int = 0) -> tuple[Tensor, Tensor]:
    pixels, ids = dummy_clip_inputs(model.config, batch=3, seed=seed)
    with torch.no_grad():
        return (model.get_text_features(input_ids=ids).pooler_output,
                model.get_image_features(pixel_values=pixels).pooler_output)


def save_torchscript(sd: dict[str, Tensor], path) -> None:
    """A TorchScript archive whose state_dict() has exactly ``sd``'s names (like OpenAI's)."""
    root = nn.Module()
    for key, tensor in sd.items():
        *parts, leaf = key.split(".")
        mod = root
        for part in parts:
            if part not in mod._modules:
                mod.add_module(part, nn.Module())
            mod = mod._modules[part]
        if tensor.is_floating_point():
            mod.register_parameter(leaf, nn.Parameter(tensor.clone(), requires_grad=False))
        else:
            mod.register_buffer(leaf, tensor.clone())
    torch.jit.script(root).save(str(path))


class EvilModule(nn.Module):
    """A scripted module whose exported ``__setstate__`` writes a file when torch.jit.load runs."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(2), requires_grad=False)
        self.target = target

    def forward(self, x: Tensor) -> Tensor:
        return x * self.w

    @torch.jit.export
    def __getstate__(self) -> tuple[Tensor, str, bool]:
        return (self.w, self.target, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[Tensor, str, bool]) -> None:
        self.w = state[0]
        self.target = state[1]
        self.training = state[2]
        torch.save(torch.zeros(1), self.target)


def _no_jit_load(*args, **kwargs):
    raise AssertionError("torch.jit.load was called on a user file")


# ----------------------------------------------------------------------------- OpenAI format
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
def test_openai_file_round_trip(hf_model, openai_sd, tmp_path, fmt):
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
    for got, want in zip(embeddings(encoder.clip), embeddings(hf_model)):
        assert torch.allclose(got, want, atol=1e-5)


def test_torchscript_archive_read_without_torch_jit_load(hf_model, openai_sd, tmp_path,
                                                         monkeypatch):
    path = tmp_path / "ViT-tiny.pt"
    half = {k: (v.half() if k.startswith("visual.") else v) for k, v in openai_sd.items()}
    save_torchscript({**half, "input_resolution": torch.tensor(IMAGE)}, path)
    want = dict(torch.jit.load(str(path)).state_dict())  # our own file: the reference reader
    monkeypatch.setattr(torch.jit, "load", _no_jit_load)
    got = read_torchscript_state(path)
    assert set(got) == set(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    encoder = build_encoder(_cfg(path), FakeTokenizer()).encoder
    for got_emb, want_emb in zip(embeddings(encoder.clip), embeddings(hf_model)):
        assert torch.allclose(got_emb, want_emb, atol=5e-3, rtol=1e-2)


@pytest.mark.parametrize("nested", [False, True])
def test_malicious_torchscript_refused_without_running_code(openai_sd, tmp_path, monkeypatch,
                                                            nested):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if nested:  # an OpenAI-layout archive with one booby-trapped submodule
        root = nn.Module()
        root.register_parameter("logit_scale", nn.Parameter(openai_sd["logit_scale"].clone()))
        root.add_module("visual", EvilModule(str(target)))
        torch.jit.script(root).save(str(path))
    else:
        torch.jit.script(EvilModule(str(target))).save(str(path))
    assert not target.exists()
    with monkeypatch.context() as m:
        m.setattr(torch.jit, "load", _no_jit_load)
        with pytest.raises(CheckpointImportError, match=r"evil.pt: .*__setstate__.*safetensors"):
            load_openai_clip_state(path)
        with pytest.raises(CheckpointImportError, match="evil.pt"):
            build_encoder(_cfg(path), FakeTokenizer())
    assert not target.exists()
    torch.jit.load(str(path))  # control: the archive really is malicious
    assert target.exists()


def test_torchscript_with_foreign_global_refused(tmp_path):
    target = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(target), "w"))

    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bad/data.pkl", pickle.dumps(Payload(), protocol=2))
        zf.writestr("bad/constants.pkl", pickle.dumps((), protocol=2))
        zf.writestr("bad/code/__torch__.py", "")
    with pytest.raises(CheckpointImportError, match=r"bad.pt: .*open' is not allowed"):
        load_openai_clip_state(path)
    assert not target.exists()


def test_openai_safetensors_file_imports(hf_model, openai_sd, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "ViT-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in openai_sd.items()}, str(path))
    encoder = build_encoder(_cfg(path), FakeTokenizer()).encoder
    for got, want in zip(embeddings(encoder.clip), embeddings(hf_model)):
        assert torch.allclose(got, want, atol=1e-5)


def test_fp16_openai_file_is_cast_to_fp32(openai_sd, tmp_path):
    half = {k: v.half() for k, v in openai_sd.items()}
    torch.save(half, tmp_path / "half.pt")
    hf_sd, report = convert_openai_to_hf(load_openai_clip_state(tmp_path / "half.pt"))
    assert all(v.dtype == torch.float32 for v in hf_sd.values())
    assert "floating tensors cast to fp32" in report.notes


def test_missing_and_unexpected_keys_named(openai_sd):
    sd = dict(openai_sd)
    del sd["ln_final.weight"]
    del sd["visual.transformer.resblocks.1.attn.in_proj_bias"]
    sd["visual.conv2.weight"] = torch.zeros(1)
    hf_sd, report = convert_openai_to_hf(sd)
    assert "text_model.final_layer_norm.weight" in report.missing
    assert {f"vision_model.encoder.layers.1.self_attn.{p}_proj.bias" for p in "qkv"} <= set(
        report.missing)
    assert report.unexpected == ["visual.conv2.weight"]
    assert not report.ok and "text_model.final_layer_norm.weight" in report.summary()
    with pytest.raises(CheckpointImportError, match="missing .*final_layer_norm.weight"):
        clip_model_from_hf_state(hf_sd, report.config, source="x.pt")


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


def test_hf_to_openai_rejects_unknown_keys(hf_model):
    with pytest.raises(CheckpointImportError, match="'foo.bar'"):
        convert_hf_to_openai({"foo.bar": torch.zeros(1)})
    sd = {k: v for k, v in hf_model.state_dict().items()
          if k != "text_model.encoder.layers.0.self_attn.v_proj.weight"}
    with pytest.raises(CheckpointImportError, match=r"found only \['k', 'q'\]"):
        convert_hf_to_openai(sd)


# ----------------------------------------------------------------------------- CLIP4Clip
FP16_PARTS = ("attn.", "mlp.", "conv1.weight", "text_projection", "visual.proj")
SEQ_W, SEQ_BLOCKS, FRAMES = EMBED, 2, 12


def make_clip4clip_state(openai_sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """A DRL-style checkpoint: fp16 CLIP under clip./module., seqTransf blocks, WTI MLPs."""
    g = torch.Generator().manual_seed(3)
    sd: dict[str, Tensor] = {}
    for k, v in openai_sd.items():
        sd[f"clip.{k}"] = v.half() if any(p in k for p in FP16_PARTS) else v.clone()
    sd["frame_position_embeddings.weight"] = torch.randn(CONTEXT, SEQ_W, generator=g)
    shapes = {"attn.in_proj_weight": (3 * SEQ_W, SEQ_W), "attn.in_proj_bias": (3 * SEQ_W,),
              "attn.out_proj.weight": (SEQ_W, SEQ_W), "attn.out_proj.bias": (SEQ_W,),
              "ln_1.weight": (SEQ_W,), "ln_1.bias": (SEQ_W,), "ln_2.weight": (SEQ_W,),
              "ln_2.bias": (SEQ_W,), "mlp.c_fc.weight": (4 * SEQ_W, SEQ_W),
              "mlp.c_fc.bias": (4 * SEQ_W,), "mlp.c_proj.weight": (SEQ_W, 4 * SEQ_W),
              "mlp.c_proj.bias": (SEQ_W,)}
    for n in range(SEQ_BLOCKS):
        for name, shape in shapes.items():
            sd[f"transformerClip.resblocks.{n}.{name}"] = torch.randn(*shape, generator=g)
    for side in ("text", "video"):
        sd[f"{side}_weight_fc.0.weight"] = torch.randn(SEQ_W, SEQ_W, generator=g)
        sd[f"{side}_weight_fc.0.bias"] = torch.randn(SEQ_W, generator=g)
        sd[f"{side}_weight_fc.2.weight"] = torch.randn(1, SEQ_W, generator=g)
        sd[f"{side}_weight_fc.2.bias"] = torch.randn(1, generator=g)
    sd["lstm_visual.weight_ih_l0"] = torch.zeros(4, 4)  # a head this library does not have
    return {f"module.{k}": v for k, v in sd.items()}


@pytest.fixture()
def clip4clip_file(openai_sd, tmp_path):
    state = make_clip4clip_state(openai_sd)
    path = tmp_path / "pytorch_model.bin.4"
    torch.save(state, path)
    return path, state


def test_clip4clip_import(clip4clip_file, openai_sd, hf_model):
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
    orig_text, orig_image = embeddings(hf_model)
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


# ----------------------------------------------------------------------------- build_encoder
class FakeTokenizer:
    bos_token_id, eos_token_id, pad_token_id = BOS, EOS, EOS

    def __len__(self) -> int:
        return VOCAB


def _cfg(pretrained) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.model.pretrained = str(pretrained)
    cfg.data.image_size, cfg.data.max_words, cfg.data.num_frames = IMAGE, CONTEXT, FRAMES
    return cfg


def test_build_encoder_dispatches_openai_and_clip4clip(openai_sd, hf_model, clip4clip_file,
                                                       tmp_path):
    torch.save(openai_sd, tmp_path / "ViT-tiny.pt")
    loaded = build_encoder(_cfg(tmp_path / "ViT-tiny.pt"), FakeTokenizer())
    encoder = loaded.encoder
    assert isinstance(encoder, HFClipEncoder) and loaded.head_state == {}
    assert loaded.kind == "openai"
    for got, want in zip(embeddings(encoder.clip), embeddings(hf_model)):
        assert torch.allclose(got, want, atol=1e-5)

    path, _ = clip4clip_file
    loaded = build_encoder(_cfg(path), FakeTokenizer())
    encoder = loaded.encoder
    assert "blocks.0.attn.q_proj.weight" in loaded.head_state and loaded.kind == "clip4clip"
    assert encoder.embed_dim == EMBED and encoder.eos_token_id == EOS

    cfg = _cfg(tmp_path / "ViT-tiny.pt")
    cfg.data.image_size = 64
    with pytest.raises(ValueError, match="data.image_size=64"):
        build_encoder(cfg, FakeTokenizer())
