"""The shipped SynthVTT recipes load strictly and follow the val protocol (methods.md §9.8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tvr.config import config_layers, load_config
from tvr.selection import check_selection_config

REPO = Path(__file__).resolve().parents[1]
SYNTHVTT = sorted((REPO / "configs" / "synthvtt").glob("[!_]*.yaml"))  # _base.yaml: a base


def test_there_are_synthvtt_recipes():
    assert len(SYNTHVTT) >= 9  # seven methods and the two demo runs


@pytest.mark.parametrize("path", SYNTHVTT, ids=lambda p: p.stem)
def test_synthvtt_recipes_choose_on_val_and_report_test(path):
    cfg = load_config(path)
    check_selection_config(cfg)
    assert cfg.train.val_split == "val" and cfg.train.select == "best_val"
    assert cfg.data.eval_split == "test"
    if path.stem != "demo-base":  # (the base demo run keeps DRGI off and its defaults)
        # the λ chosen on val (benchmarks/runs/drgi-val), however DRGI is added
        assert load_config(path, ["objectives.drgi=true"]).drgi.weight == 1.0
        assert load_config(path, ["drgi.enable=true"]).drgi.weight == 1.0
    assert ("drgi" in cfg.objective_names) is (path.stem == "demo-drgi")


# ------------------------------------------------------------------ composition
OVERLAYS = sorted(p for p in (REPO / "configs").rglob("[!_]*.yaml")
                  if "include" in (yaml.safe_load(p.read_text()) or {}))


def _leaves(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_method_configs_are_overlays_of_their_dataset_base():
    for folder in ("msrvtt", "synthvtt"):
        methods = [p for p in (REPO / "configs" / folder).glob("[!_]*.yaml")
                   if not p.stem.startswith("demo-")]
        assert methods and all(p in OVERLAYS for p in methods), folder
    assert REPO / "configs" / "synthvtt" / "demo-drgi.yaml" in OVERLAYS


@pytest.mark.parametrize("path", OVERLAYS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_overlays_repeat_nothing_of_their_base(path):
    """An overlay holds only what differs from what it includes (no copied blocks)."""
    layers = config_layers(path)
    below: dict = {}
    for _, layer in layers[:-1]:
        below.update(_leaves(layer))
    own = _leaves(layers[-1][1])
    repeated = sorted(k for k, v in own.items() if k in below and below[k] == v)
    assert not repeated, f"{path} repeats {repeated} of its includes"
    load_config(path)
