"""tvr/objectives/selection.py: one rule picks a config's objectives, for the model builder and
for the model card (analysis/cards.py), and the two agree on every committed config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.cards import objectives_of
from tvr.config import ExperimentConfig, load_config, to_dict
from tvr.objectives import build_objectives, selected_objectives

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
RUNS = sorted(p.parent for p in (ROOT / "checkpoints").glob("demo-*/config.json"))
# switches a config file may flip, tried on top of every head
VARIANTS = [[], ["negnce.enable=true", "negnce.weight=2.5"], ["cdcr.enable=true"],
            ["tpmcl.enable=true"], ["drgi.enable=true", "drgi.weight=0.3"],
            ["tcmgc.sdr=false", "gare.regularize=false"]]
HEADS = ["seqtransf", "tcmgc", "gare", "dmae", "wti"]


def _built(cfg: ExperimentConfig) -> dict[str, float]:
    """Names (in order) and weights of the objectives the model is built with."""
    objectives = build_objectives(cfg, 16)
    return {name: float(getattr(obj, "weight", 1.0)) for name, obj in objectives.items()}


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_card_agrees_with_builder_on_committed_configs(path):
    cfg = load_config(path, ["drgi.hidden=8", "drgi.factor_k=4"])
    assert list(objectives_of(to_dict(cfg)).items()) == list(_built(cfg).items())


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_card_agrees_with_builder_on_committed_runs(run):
    raw = json.loads((run / "config.json").read_text())
    cfg = load_config(run / "config.json")
    assert list(objectives_of(raw).items()) == list(_built(cfg).items())
    assert "infonce" in objectives_of(raw)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "+".join(v) or "default")
def test_card_agrees_with_builder_on_switches(head, variant):
    cfg = load_config(None, [f"model.head={head}", "drgi.hidden=8", *variant])
    assert list(objectives_of(to_dict(cfg)).items()) == list(_built(cfg).items())


def test_known_selections():
    def pick(*overrides: str) -> dict[str, float]:
        return selected_objectives(to_dict(load_config(None, list(overrides))))

    assert pick() == {"infonce": 1.0}
    assert pick("negnce.enable=true") == {"negnce": 1.0}  # replaces InfoNCE
    assert pick("model.head=tcmgc", "drgi.enable=true", "cdcr.enable=true") == {
        "infonce": 1.0, "cdcr": 0.001, "sdr": 0.5, "drgi": 0.1}
    assert pick("model.head=gare") == {"infonce": 1.0, "gare_reg": 1.0}
    assert pick("model.head=seqtransf", "tcmgc.sdr=true") == {"infonce": 1.0}  # owner head only


def test_missing_keys_take_the_schema_defaults():
    """An old config.json without a section: the card reads the defaults, as loading does."""
    raw = {"model": {"head": "tcmgc"}}
    assert objectives_of(raw) == {"infonce": 1.0, "sdr": 0.5}
    assert selected_objectives(raw) == {"infonce": 1.0}  # without defaults a missing switch is off
