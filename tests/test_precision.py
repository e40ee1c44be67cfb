"""tvr.precision (inference autocast) and the ``amp`` switch of evaluation and export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tvr import precision
from tvr.precision import autocast_dtype, inference_autocast


def test_autocast_dtype_choices(monkeypatch) -> None:
    assert autocast_dtype("off", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    monkeypatch.setattr(precision, "_cpu_native", lambda dtype: False)
    assert autocast_dtype("auto", "cpu") is None  # no native bf16: stay in float32
    with pytest.raises(ValueError, match="amp='fp16' on this CPU"):
        autocast_dtype("fp16", "cpu")
    monkeypatch.setattr(precision, "_cpu_native", lambda dtype: True)
    assert autocast_dtype("auto", "cpu") is torch.bfloat16
    assert autocast_dtype("fp16", "cpu") is torch.float16
    with pytest.raises(ValueError, match=r"amp='half': expected one of off, auto, bf16, fp16"):
        autocast_dtype("half", "cpu")


def test_inference_autocast_runs_matmuls_in_bf16() -> None:
    a = torch.randn(8, 8)
    with inference_autocast("bf16", "cpu") as dtype:
        assert dtype is torch.bfloat16
        assert (a @ a).dtype is torch.bfloat16
    with inference_autocast("off", "cpu") as dtype:
        assert dtype is None
        assert (a @ a).dtype is torch.float32


def test_embed_split_under_bf16_returns_float32_close_to_fp32(tiny_run_pair) -> None:
    from tvr.checkpoint import load_pretrained
    from tvr.data.sources import load_split
    from tvr.evaluate import EmbedOptions, embed_split, evaluate_run

    model, tokenizer, cfg = load_pretrained(tiny_run_pair.base)
    model = model.for_inference()
    records = load_split("synthvtt", tiny_run_pair.data / "synthvtt", "test")
    opts = EmbedOptions(num_frames=cfg.data.num_frames, image_size=cfg.data.image_size,
                        max_words=cfg.data.max_words, progress=False)
    with torch.no_grad():
        ref = embed_split(model, tokenizer, records, opts)
        low = embed_split(model, tokenizer, records, opts, amp="bf16")
    for feats in (low.text, low.video):
        assert feats.tokens.dtype is torch.float32 and feats.pooled.dtype is torch.float32
    assert low.sim.dtype == np.float32
    diff = np.abs(low.sim - ref.sim)
    assert 0 < diff.max() < 0.05  # bf16 really ran, and stayed near float32
    metrics = evaluate_run(tiny_run_pair.base, split="test", amp="bf16", progress=False,
                           write=False)
    assert metrics["precision"] == "bfloat16"
    assert evaluate_run(tiny_run_pair.base, split="test", progress=False,
                        write=False)["precision"] == "float32"


def test_export_refuses_an_unknown_amp() -> None:
    from analysis.export import ExportError, ExportOptions

    with pytest.raises(ExportError, match="amp='fp8'"):
        ExportOptions(amp="fp8")


def test_export_amp_is_a_content_parameter(tiny_run_pair, tmp_path) -> None:
    """A bundle exported before ``amp`` existed counts as float32: kept for ``amp="off"``,
    rebuilt for ``amp="bf16"``, which is recorded."""
    import json
    import shutil

    from analysis.export import ExportOptions, export_bundle

    run = tmp_path / "base"
    shutil.copytree(tiny_run_pair.base, run)
    kwargs = dict(dataset="synthvtt", root=tiny_run_pair.data / "synthvtt", split="test",
                  progress=False)
    meta_path = next(run.glob("analysis/*/meta.json"))
    meta = json.loads(meta_path.read_text())
    assert meta["export_params"].pop("amp") == "off"
    meta_path.write_text(json.dumps(meta))
    kept = export_bundle(run, options=ExportOptions(projections=("pca",), device="cpu"), **kwargs)
    assert not kept.written
    redone = export_bundle(
        run, options=ExportOptions(projections=("pca",), device="cpu", amp="bf16"), **kwargs
    )
    assert redone.written
    assert json.loads(meta_path.read_text())["export_params"]["amp"] == "bf16"
