"""Retriever: DRGI is training-only; it changes no score and leaves no weight at inference."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers_heads import plugin_modules
from tvr.checkpoint import save_weights
from tvr.config import load_config
from tvr.models.backbone import HFClipEncoder, tiny_clip_config
from tvr.registry import names
from tvr.retriever import Retriever

HEADS = names("head")  # every registered head


def tiny_encoder() -> HFClipEncoder:
    torch.manual_seed(0)
    return HFClipEncoder.from_config(
        tiny_clip_config(vocab_size=40), vocab_size=40, bos_id=0, eos_id=1, pad_id=1,
        image_size=32, max_positions=32,
    )


def batch(b: int = 4, length: int = 7, frames: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    text = torch.randint(2, 40, (b, length), generator=g)
    text_mask = torch.ones(b, length, dtype=torch.long)
    text[:, 0] = 0
    text[:, -1] = 1
    text[0, 4:] = 1  # a shorter caption: EOT at 4, padding after
    text_mask[0, 5:] = 0
    video_mask = torch.ones(b, frames, dtype=torch.long)
    video_mask[1, -1] = 0
    return {
        "text": text, "text_mask": text_mask, "video_mask": video_mask,
        "video": torch.randn(b, frames, 3, 32, 32, generator=g),
        "video_index": torch.arange(b),
    }


def overrides(head: str, drgi: bool) -> list[str]:
    return [f"plugins=[{', '.join(plugin_modules())}]",  # registered plug-in heads, configured
            f"model.head={head}", f"drgi.enable={str(drgi).lower()}", "drgi.hidden=8",
            "seqtransf.layers=1", "seqtransf.heads=2", "seqtransf.max_frames=8",
            "data.max_words=7", "data.num_frames=3", "tcmgc.keep_rate=0.3"]


@pytest.mark.parametrize("head", HEADS)
def test_drgi_changes_no_inference_score(head, tmp_path):
    enc = tiny_encoder()
    torch.manual_seed(2)
    with_drgi = Retriever(load_config(None, overrides(head, True)), enc)
    without = Retriever(load_config(None, overrides(head, False)), tiny_encoder())
    missing, unexpected = without.load_state_dict(with_drgi.state_dict(), strict=False)
    assert not missing and all(k.startswith("objectives.drgi.") for k in unexpected)
    assert unexpected, "the DRGI run should carry objective weights while training"

    b = batch()
    inference = with_drgi.for_inference()
    assert "drgi" not in inference.objectives and "drgi" in with_drgi.objectives
    with torch.no_grad():
        s1 = inference(b)["sim"]
        s2 = without.eval()(b)["sim"]
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)

    # An inference export holds no DRGI weights.
    save_weights(with_drgi, tmp_path / "w.safetensors", inference=True)
    assert not [k for k in load_file(str(tmp_path / "w.safetensors")) if "drgi" in k]


def test_losses_sum_weighted_terms():
    model = Retriever(load_config(None, overrides("seqtransf", True)), tiny_encoder())
    out = model(batch(), with_losses=True)
    report = out["report"]
    assert out["loss"].item() == pytest.approx(report["infonce_loss"] + report["drgi_loss"], rel=1e-5)
    assert report["logit_scale"] == pytest.approx(100.0, rel=1e-3)
    out["loss"].backward()
    assert model.objectives["drgi"].text.encoder is not None


def test_parameter_report_counts_objectives():
    model = Retriever(load_config(None, overrides("seqtransf", True)), tiny_encoder())
    rep = model.parameter_report()
    assert rep["objective.drgi"] == sum(p.numel() for p in model.objectives["drgi"].parameters())
    assert rep["total"] == sum(p.numel() for p in model.parameters())
