"""tvr/config/migrate.py: old-shape configs and old override keys become head / objectives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvr.config import ConfigError, from_dict, load_config, to_dict
from tvr.config.migrate import alias_override, apply_canonical_overrides, is_old_shape, migrate

ROOT = Path(__file__).resolve().parents[1]
RUNS = ["demo-base", "demo-drgi"]


def _pairs(cfg) -> list[tuple[str, float]]:
    return [(o.name, o.weight) for o in cfg.objectives]


@pytest.mark.parametrize("run", RUNS)
def test_committed_run_configs_migrate_losslessly(run):
    """The committed runs' config.json (old shape) load; every setting that acts on the model
    keeps its value at its new place, and the file writes back in the new shape."""
    old = json.loads((ROOT / "checkpoints" / run / "config.json").read_text())
    assert is_old_shape(old)
    cfg = load_config(ROOT / "checkpoints" / run / "config.json")
    new = to_dict(cfg)
    assert not is_old_shape(new) and "head" not in new["model"]
    assert new["head"] == {"name": "seqtransf"}  # its settings: the temporal module below
    assert new["seqtransf"] == old["seqtransf"]
    expected = [("infonce", 1.0)] + ([("drgi", 1.0)] if run == "demo-drgi" else [])
    assert _pairs(cfg) == expected
    for entry in new["objectives"]:  # every setting kept, the switch gone
        assert {k: v for k, v in entry.items() if k != "name"} == {
            k: v for k, v in old[entry["name"]].items() if k != "enable"}
    for key in ("name", "output_root", "data", "train"):
        assert new[key] == {**new[key], **old[key]} if isinstance(old[key], dict) else new[key] == old[key]
    assert {k: v for k, v in new["model"].items() if k in old["model"]} == {
        k: v for k, v in old["model"].items() if k != "head"}
    assert from_dict(new) == cfg  # the new shape round-trips


@pytest.mark.parametrize("run", RUNS)
def test_committed_runs_rebuild_the_same_model(run):
    """Same model from the migrated config: the state-dict keys are those of the committed
    weights (strict load), and the metrics file sits where it did."""
    from safetensors import safe_open

    from tvr.checkpoint import load_pretrained

    folder = ROOT / "checkpoints" / run
    model, _, cfg = load_pretrained(folder)  # strict: raises on a missing/unexpected key
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        saved = set(f.keys())  # noqa: SIM118
    assert set(model.state_dict()) == saved
    assert cfg.run_dir.name == run and (ROOT / cfg.output_root / run / "metrics.json").is_file()


@pytest.mark.parametrize("path", sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml") if p.name[0] != "_"))
def test_every_recipe_is_in_the_new_shape(path):
    from tvr.config import config_layers

    assert not any(is_old_shape(layer) for _, layer in config_layers(ROOT / path))


def test_old_shape_selection_rule():
    """Which objectives an old config.json trained with: the old rule, schema defaults for
    keys it lacks (TC-MGC's SDR and GARE's regularisers were on by default)."""
    def pairs(old: dict) -> list[tuple[str, float]]:
        return _pairs(from_dict(old))

    assert pairs({"model": {"head": "tcmgc"}}) == [("infonce", 1.0), ("sdr", 0.5)]
    assert pairs({"model": {"head": "tcmgc"}, "tcmgc": {"sdr": False}}) == [("infonce", 1.0)]
    assert pairs({"model": {"head": "gare"}, "gare": {"beta": 0.5}}) == [
        ("infonce", 1.0), ("gare_reg", 1.0)]
    assert from_dict({"model": {"head": "gare"}, "gare": {"beta": 0.5}}).gare_reg.beta == 0.5
    assert pairs({"model": {"head": "seqtransf"}, "tcmgc": {"sdr": True}}) == [("infonce", 1.0)]
    assert pairs({"negnce": {"enable": True, "weight": 2.0}, "drgi": {"enable": True},
                  "cdcr": {"enable": False}}) == [("negnce", 2.0), ("drgi", 0.1)]
    held = migrate({"drgi": {"enable": False, "weight": 1.0}, "cdcr": {"weight": 0.001}})
    assert held["objective_defaults"] == {"drgi": {"weight": 1.0}}  # cdcr: its default


def test_owned_objectives_take_their_settings_from_the_old_head_section():
    new = migrate({"model": {"head": "gare"}, "gare": {"temp": 2.0, "regularize": True,
                                                       "beta": 0.3, "trust_region": "hard_cut"}})
    assert new["head"] == {"name": "gare", "temp": 2.0}
    assert new["objectives"][1] == {"name": "gare_reg", "beta": 0.3, "trust_region": "hard_cut"}
    tc = migrate({"model": {"head": "tcmgc"}, "tcmgc": {"keep_rate": 0.2, "sdr_weight": 0.7}})
    assert tc["head"] == {"name": "tcmgc", "keep_rate": 0.2}
    assert tc["objectives"] == [{"name": "infonce"}, {"name": "sdr", "weight": 0.7}]


def test_old_and_new_files_do_not_mix(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  head: wti\n")
    (tmp_path / "m.yaml").write_text("include: base.yaml\nobjectives: [infonce]\n")
    with pytest.raises(ConfigError, match=r"base\.yaml use the old shape .*m\.yaml the new"):
        load_config(tmp_path / "m.yaml")
    (tmp_path / "old.yaml").write_text("include: base.yaml\ncdcr:\n  enable: true\n")
    assert _pairs(load_config(tmp_path / "old.yaml")) == [("infonce", 1.0), ("cdcr", 0.001)]


@pytest.mark.parametrize("old,new", [
    ("model.head", "head.name"), ("drgi.enable", "objectives.drgi"),
    ("drgi.weight", "objectives.drgi.weight"), ("drgi.root", "objectives.drgi.root"),
    ("negnce.enable", "objectives.negnce"), ("tcmgc.sdr", "@head.tcmgc.objectives.sdr"),
    ("tcmgc.sdr_weight", "@head.tcmgc.objectives.sdr.weight"),
    ("tcmgc.keep_rate", "@head.tcmgc.head.keep_rate"),
    ("gare.regularize", "@head.gare.objectives.gare_reg"),
    ("gare.beta", "@head.gare.objectives.gare_reg.beta"),
    ("gare.temp", "@head.gare.head.temp"), ("wti.temporal", "@head.wti.head.temporal"),
    ("seqtransf.layers", "seqtransf.layers"), ("train.lr", "train.lr"),
    ("head.arch", "head.arch"), ("objectives.drgi", "objectives.drgi"),
])
def test_old_override_keys_alias(old, new):
    assert ".".join(alias_override(old.split("."))) == new


def _demo_base() -> dict:
    return to_dict(load_config(ROOT / "configs/synthvtt/demo-base.yaml"))


def _names(d: dict) -> list[tuple[str, float | None]]:
    return [(e["name"], e.get("weight")) for e in d["objectives"]]


@pytest.mark.parametrize("overrides", [
    ["drgi.enable=true", "drgi.weight=1.0"], ["drgi.weight=1.0", "drgi.enable=true"],
    ["objectives.drgi=true", "objectives.drgi.weight=1.0"],
    ["objectives.drgi.weight=1.0", "objectives.drgi=true"],
])
def test_old_and_new_drgi_overrides_agree_in_any_order(overrides):
    cfg = load_config(ROOT / "configs/synthvtt/demo-base.yaml", overrides)
    drgi = load_config(ROOT / "configs/synthvtt/demo-drgi.yaml")
    assert _pairs(cfg) == [("infonce", 1.0), ("drgi", 1.0)]
    assert to_dict(cfg) == {**to_dict(drgi), "name": "demo-base"}


def test_setting_a_param_of_an_absent_objective_does_not_add_it():
    held = apply_canonical_overrides(_demo_base(), ["drgi.weight=0.5"])  # as before
    assert _names(held) == [("infonce", 1.0)] and held["objective_defaults"] == {"drgi": {"weight": 0.5}}
    cfg = load_config(ROOT / "configs/synthvtt/demo-base.yaml", ["drgi.weight=0.5"])
    assert cfg.objective_names == ["infonce"]
    off = load_config(ROOT / "configs/synthvtt/demo-drgi.yaml", ["drgi.enable=false"])
    assert off.objective_names == ["infonce"]


def test_recipe_objective_defaults_apply_when_added():
    """The SynthVTT base holds DRGI's λ chosen on val; adding DRGI to any method uses it."""
    for method in ("wti", "tcmgc", "seqtransf"):
        cfg = load_config(ROOT / f"configs/synthvtt/{method}.yaml", ["objectives.drgi=true"])
        assert cfg.drgi.weight == 1.0 and cfg.objective_names[-1] == "drgi"


def test_head_overrides_and_owned_objectives():
    tc = to_dict(load_config(ROOT / "configs/msrvtt/tcmgc.yaml"))
    # old keys in any order: the head choice applies first; settings of another head's
    # section are ignored, as they had no effect before
    out = apply_canonical_overrides(tc, ["wti.temporal=false", "model.head=wti",
                                         "xclip.mask_padding=true"])
    assert out["head"] == {"name": "wti", "temporal": False}
    assert _names(out) == [("infonce", 1.0)]  # SDR belongs to TC-MGC and leaves with it
    gare = load_config(None, ["head.name=gare"])  # the head brings its regularisers
    assert gare.objective_names == ["infonce", "gare_reg"]
    assert load_config(None, ["model.head=gare", "gare.regularize=false"]).objective_names == [
        "infonce"]
    neg = load_config(None, ["negnce.enable=true"])
    assert neg.objective_names == ["negnce"]  # negnce replaces infonce
    assert load_config(None, ["objectives=[negnce, drgi]"]).objective_names == ["negnce", "drgi"]


@pytest.mark.parametrize("overrides,match", [
    (["objectives.nope=true"], r"unknown objective 'nope'; registered: .*drgi"),
    (["head.name=nope"], r"unknown head 'nope'; registered: .*seqtransf"),
    (["objectives=[infonce, negnce]"], "'negnce' replaces 'infonce'; list one of them"),
    (["objectives=[infonce, sdr]"], "'sdr' trains only with head 'tcmgc'"),
    (["objectives=[infonce, infonce]"], "'infonce' is listed twice"),
    (["head.arch=2"], "head 'seqtransf' has no settings"),
    (["objectives=[{weight: 1}]"], "expected objective names or mappings with 'name'"),
])
def test_bad_head_and_objectives_are_named(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, overrides)


def test_bad_objective_in_a_file_names_the_file(tmp_path):
    (tmp_path / "m.yaml").write_text("objectives:\n  - name: drgi\n    hiddn: 8\n")
    with pytest.raises(ConfigError, match=r"'objectives\.drgi\.hiddn' in .*m\.yaml.*hidden"):
        load_config(tmp_path / "m.yaml")
    (tmp_path / "h.yaml").write_text("head:\n  name: wti\n  arch: two\n")
    with pytest.raises(ConfigError, match=r"'head\.arch' in .*h\.yaml: expected an integer"):
        load_config(tmp_path / "h.yaml")


OLD_SHAPE = ROOT / "tests" / "fixtures" / "old_shape"  # configs/synthvtt/*.yaml before the change


@pytest.mark.parametrize("method", sorted(p.stem for p in OLD_SHAPE.glob("[!_]*.yaml")))
@pytest.mark.parametrize("overrides", [[], ["drgi.enable=true"], ["drgi.enable=true",
                                                                  "drgi.weight=0.1"]])
def test_old_shape_recipes_resolve_to_the_converted_ones(method, overrides):
    """The SynthVTT recipes as they were (old shape, composed with include:) load to exactly
    the config their converted files give, with the old override keys too."""
    old = load_config(OLD_SHAPE / f"{method}.yaml", overrides)
    new = load_config(ROOT / "configs" / "synthvtt" / f"{method}.yaml", overrides)
    assert to_dict(old) == to_dict(new)
