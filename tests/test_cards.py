"""Model cards from a run folder: config summary and parameter counts from the header."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from analysis.cards import CardError, model_card, objectives_of, parameter_counts


def _run(tmp_path, cfg, tensors):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(cfg))
    save_file(tensors, str(run / "model.safetensors"))
    return run


def test_parameter_counts_group_by_prefix(tmp_path):
    run = _run(tmp_path, {}, {
        "encoder.w": np.zeros((4, 5), np.float32), "head.b": np.zeros(3, np.float32),
        "objectives.drgi.gat": np.zeros((2, 2), np.float32), "logit_scale": np.zeros(1, np.float32),
    })
    assert parameter_counts(run / "model.safetensors") == {
        "encoder": 20, "head": 3, "objectives.drgi": 4, "other": 1, "total": 28}
    with pytest.raises(CardError, match="missing"):
        parameter_counts(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CardError, match="bad.safetensors"):
        parameter_counts(tmp_path / "bad.safetensors")


def test_model_card_summarises_a_drgi_run(tmp_path):
    cfg = {
        "model": {"encoder": "hf_clip", "pretrained": "", "head": "seqtransf",
                  "clip": {"embed_dim": 16, "text_layers": 1, "text_width": 32,
                           "vision_layers": 1, "vision_width": 32, "patch_size": 16}},
        "infonce": {"weight": 1.0},
        "drgi": {"enable": True, "mode": "cross", "nodes": "tokens", "hidden": 8, "weight": 0.1},
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.001},
        "data": {"dataset": "synthvtt", "num_frames": 4},
    }
    run = _run(tmp_path, cfg, {
        "encoder.w": np.zeros((10, 9), np.float32), "head.w": np.zeros(5, np.float32),
        "objectives.drgi.w": np.zeros(5, np.float32),
    })
    card = model_card(run)
    assert card.head == "seqtransf" and card.backbone.startswith("hf_clip (from scratch")
    assert card.objectives == {"infonce": 1.0, "drgi": 0.1}
    assert card.parameters["total"] == 100 and card.drgi_parameters == 5
    assert card.inference_parameters == 95 and card.drgi_share == pytest.approx(0.05)
    assert card.drgi["mode"] == "cross" and card.training["epochs"] == 2
    fields = dict(card.rows())
    assert fields["DRGI parameters"] == "5 (5.00 %)"


def test_objectives_follow_the_config():
    cfg = {"head": {"name": "tcmgc"}, "objectives": [
        {"name": "negnce", "weight": 2.0}, {"name": "sdr", "weight": 0.5}]}
    assert objectives_of(cfg) == {"negnce": 2.0, "sdr": 0.5}
    old = {"model": {"head": "tcmgc"}, "negnce": {"enable": True, "weight": 2.0},
           "tcmgc": {"sdr": True, "sdr_weight": 0.5}, "cdcr": {"enable": False}}
    assert objectives_of(old) == {"negnce": 2.0, "sdr": 0.5}  # an old config.json, migrated
    assert objectives_of({}, {"objectives.extra": 3}) == {"infonce": 1.0, "extra": pytest.approx(
        float("nan"), nan_ok=True)}


# ------------------------------------------------------------------ the card reads the built list
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("[!_]*.yaml"))
RUNS = sorted(p.parent for p in (ROOT / "checkpoints").glob("demo-*/config.json"))
VARIANTS = [[], ["negnce.enable=true", "negnce.weight=2.5"], ["cdcr.enable=true"],
            ["objectives.tpmcl=true"], ["drgi.enable=true", "drgi.weight=0.3"],
            ["objectives.sdr=false", "objectives.gare_reg=false"]]
HEADS = ["seqtransf", "tcmgc", "gare", "dmae", "wti"]


def _built(cfg) -> dict[str, float]:
    """Names (in order) and weights of the objectives the model is built with."""
    from tvr.objectives import build_objectives

    return {name: float(obj.weight) for name, obj in build_objectives(cfg, 16).items()}


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_card_agrees_with_builder_on_committed_configs(path):
    from tvr.config import load_config, to_dict

    cfg = load_config(path, ["drgi.hidden=8", "drgi.factor_k=4"])
    assert list(objectives_of(to_dict(cfg)).items()) == list(_built(cfg).items())


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_card_agrees_with_builder_on_committed_runs(run):
    from tvr.config import load_config

    raw = json.loads((run / "config.json").read_text())
    cfg = load_config(run / "config.json")
    assert list(objectives_of(raw).items()) == list(_built(cfg).items())
    assert "infonce" in objectives_of(raw)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "+".join(v) or "default")
def test_card_agrees_with_builder_on_overrides(head, variant):
    from tvr.config import load_config, to_dict

    cfg = load_config(None, [f"head.name={head}", "drgi.hidden=8", *variant])
    assert list(objectives_of(to_dict(cfg)).items()) == list(_built(cfg).items())


def test_known_lists():
    from tvr.config import load_config, to_dict

    def pick(*overrides: str) -> dict[str, float]:
        return objectives_of(to_dict(load_config(None, list(overrides))))

    assert pick() == {"infonce": 1.0}
    assert pick("negnce.enable=true") == {"negnce": 1.0}  # replaces InfoNCE
    assert pick("model.head=tcmgc", "drgi.enable=true", "cdcr.enable=true") == {
        "infonce": 1.0, "cdcr": 0.001, "sdr": 0.5, "drgi": 0.1}
    assert pick("model.head=gare") == {"infonce": 1.0, "gare_reg": 1.0}
    assert pick("model.head=seqtransf", "tcmgc.sdr=true") == {"infonce": 1.0}  # ignored, as before


def test_model_card_errors_name_the_file(tmp_path):
    with pytest.raises(CardError, match="config.json is missing"):
        model_card(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(CardError, match="expected a JSON object"):
        model_card(tmp_path)
