"""Tests for tvr.models.importers: the import report and building a CLIPModel from HF-named weights."""

from __future__ import annotations

import pytest
import torch

from tvr.models.importers import CheckpointImportError, clip_model_from_hf_state
from tvr.models.openai_clip import (
    convert_openai_to_hf,
)


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
