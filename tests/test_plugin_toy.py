"""The plug-in seam end to end: the toy method of tests/plugins/toy.py (a head, an objective,
their config sections) and its YAML overlay tests/plugins/toy.yaml register, train, evaluate,
export and open in the app with no change to the library (docs/adding-a-method.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import tiny_overrides
from tests.helpers_app import app_test, assert_no_errors
from tvr.config import ConfigError, load_config
from tvr.registry import names

TOY_YAML = Path(__file__).parent / "plugins" / "toy.yaml"


def _overrides(root: Path, out: Path) -> list[str]:
    """The tiny from-scratch model on the tiny SynthVTT instead of the demo backbone."""
    return tiny_overrides(root, out, "toy", "train.epochs=1", "model.pretrained=",
                          "model.freeze_vision=false", "data.frame_cache=",
                          "train.cache_video_features=false")


@pytest.fixture(scope="module")
def toy_run(tiny_synthvtt, tmp_path_factory) -> Path:
    """The toy method trained (CLI), evaluated (CLI) and exported (CLI) on the tiny SynthVTT."""
    from analysis.export import main as export_main
    from tvr.evaluate import main as evaluate_main
    from tvr.train import main as train_main

    out = tmp_path_factory.mktemp("toy_checkpoints")
    assert train_main(["--config", str(TOY_YAML), *_overrides(tiny_synthvtt, out)]) == 0
    run = out / "toy"
    assert evaluate_main(["--run", str(run), "--split", "test", "--device", "cpu"]) == 0
    assert export_main(["--run", str(run), "--split", "test", "--projection", "pca",
                        "--device", "cpu", "--quiet"]) == 0
    return run


def test_the_overlay_registers_the_toy_method(tiny_synthvtt, tmp_path):
    cfg = load_config(TOY_YAML, _overrides(tiny_synthvtt, tmp_path))
    assert cfg.plugins == ["tests.plugins.toy"] and cfg.head.name == "toy"
    assert {"toy"} <= set(names("head")) and {"toy_align"} <= set(names("objective"))
    assert cfg.toy.gain == 1.0 and cfg.objective_names == ["infonce", "toy_align"]
    assert cfg.toy_align.weight == 0.1
    assert cfg.data.num_frames == 4 and cfg.train.select == "best_val"  # base, then overrides


def test_a_config_without_the_plugin_names_it():
    import tests.plugins.toy  # noqa: F401  (registered, but the config does not list it)

    for overrides in (["objectives.toy_align=true"], ["toy_align.enable=true"]):
        with pytest.raises(ConfigError, match=r"'toy_align' .*'tests\.plugins\.toy', which "
                                              "registers it: list it under plugins"):
            load_config(None, overrides)
    with pytest.raises(ConfigError, match=r"head 'toy' .*'tests\.plugins\.toy'"):
        load_config(None, ["head.name=toy"])


def test_toy_run_trains_and_evaluates(toy_run):
    cfg = json.loads((toy_run / "config.json").read_text())
    assert cfg["plugins"] == ["tests.plugins.toy"] and cfg["head"] == {"name": "toy", "gain": 1.0}
    assert {"name": "toy_align", "weight": 0.1} in cfg["objectives"]
    log = [json.loads(line) for line in (toy_run / "log.jsonl").read_text().splitlines()]
    assert any("toy_align_loss" in row for row in log), "the toy objective was not trained"
    metrics = json.loads((toy_run / "metrics.json").read_text())
    assert "t2v/R@1" in json.dumps(metrics)


def test_toy_run_reloads_with_its_plugin(toy_run):
    """The run folder alone rebuilds the model: config.json names the plug-in."""
    from tvr.checkpoint import load_pretrained

    model, _, cfg = load_pretrained(toy_run)
    assert type(model.head).__name__ == "ToyHead" and cfg.toy.gain == 1.0


def test_toy_bundle_and_model_card(toy_run):
    from analysis.cards import model_card

    meta = json.loads((toy_run / "analysis" / "synthvtt-test" / "meta.json").read_text())
    assert meta["head"] == "toy" and meta["factorized"] is True
    card = model_card(toy_run)
    assert card.head == "toy" and card.objectives == {"infonce": 1.0, "toy_align": 0.1}


def test_toy_run_opens_in_the_app(toy_run, tiny_synthvtt, monkeypatch):
    import streamlit as st

    from app.main import PAGES

    monkeypatch.setenv("DRGI_LAB_CHECKPOINTS", str(toy_run.parent))
    monkeypatch.setenv("DRGI_LAB_DATA", str(tiny_synthvtt.parent))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = app_test(base="toy", drgi="(none)").run()
        assert_no_errors(at)
        for page, *_ in PAGES:
            at.switch_page(page).run()
            assert_no_errors(at)
            assert len(at.main.children) > 0, page
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
