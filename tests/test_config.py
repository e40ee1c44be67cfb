"""Strict config loading: YAML + dotted overrides; unknown keys and wrong types are named."""

from __future__ import annotations

import json

import pytest

from tvr.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    from_dict,
    load_config,
    save_config,
    to_dict,
)


def write(tmp_path, text):
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def test_yaml_and_overrides(tmp_path):
    p = write(tmp_path, "name: demo\ndata:\n  num_frames: 8\ntrain:\n  epochs: 2\n")
    cfg = load_config(p, ["train.epochs=7", "drgi.enable=true", "drgi.weight=0.5",
                          "train.betas=[0.9, 0.99]"])
    assert cfg.name == "demo"
    assert cfg.data.num_frames == 8
    assert cfg.train.epochs == 7
    assert cfg.objective_names == ["infonce", "drgi"] and cfg.drgi.weight == 0.5
    assert cfg.train.betas == (0.9, 0.99)
    assert cfg.data.max_words == 32  # default kept


def test_unknown_key_is_named_with_file(tmp_path):
    p = write(tmp_path, "train:\n  epochz: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "train.epochz" in str(exc.value)
    assert str(p) in str(exc.value)
    assert "epochs" in str(exc.value)  # lists the known keys


def test_unknown_override_key():
    with pytest.raises(ConfigError, match="drgi.lambda"):
        load_config(None, ["drgi.enable=true", "drgi.lambda=0.1"])
    with pytest.raises(ConfigError, match="drgi.lambda"):  # held for when DRGI is added
        load_config(None, ["objectives.drgi.lambda=0.1"])


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("train.epochs=three", "train.epochs", "integer"),
        ("train.epochs=2.5", "train.epochs", "integer"),
        ("objectives.drgi=1", "objectives.drgi", "true (add the objective) or false"),
        ("drgi.enable=1", "drgi.enable", "true (add the objective) or false"),
        ("head.name=3", "head.name", "string"),
        ("model.head=3", "model.head", "string"),
        ("objectives.drgi.weight=heavy", "objectives.drgi.weight", "number"),
        ("train.lr=fast", "train.lr", "number"),
        ("data=5", "data", "mapping"),
    ],
)
def test_wrong_type_is_named(override, key, expected):
    with pytest.raises(ConfigError) as exc:
        load_config(None, [override])
    assert repr(key) in str(exc.value)
    assert expected in str(exc.value)


def test_int_accepted_as_float():
    cfg = load_config(None, ["train.lr=1"])
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides({}, ["train.epochs"])


def test_round_trip_json(tmp_path):
    cfg = load_config(None, ["name=x", "drgi.enable=true", "head.name=wti", "head.arch=3"])
    save_config(cfg, tmp_path / "config.json")
    saved = json.loads((tmp_path / "config.json").read_text())
    again = from_dict(saved)
    assert again == cfg
    assert saved["head"]["name"] == "wti" and saved["head"]["arch"] == 3
    assert [(o["name"], o["weight"]) for o in saved["objectives"]] == [("infonce", 1.0), ("drgi", 0.1)]
    assert "head" not in saved["model"] and "drgi" not in saved and "wti" not in saved


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    p = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)


def test_defaults_are_a_complete_config():
    cfg = ExperimentConfig()
    assert cfg.run_dir.name == "run"
    assert cfg.head.name == "seqtransf" and cfg.objective_names == ["infonce"]
    assert cfg.settings("drgi").mode == "cross"
    with pytest.raises(AttributeError, match="'drgi' is not in use.*add_objective"):
        _ = cfg.drgi


# ------------------------------------------------------------------ composition (include:)


def _files(tmp_path, **files: str):
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_overlay_merges_over_its_base(tmp_path):
    _files(tmp_path, **{
        "base.yaml": "name: base\ndata:\n  num_frames: 8\n  max_words: 20\n"
                     "objective_defaults:\n  drgi:\n    weight: 0.5\n"
                     "train:\n  epochs: 2\n  betas: [0.8, 0.9]\n",
        "m.yaml": "include: base.yaml\nname: m\ndata:\n  num_frames: 4\ntrain:\n  betas: [0.1, 0.2]\n",
    })
    cfg = load_config(tmp_path / "m.yaml", ["drgi.enable=true"])
    assert cfg.name == "m" and cfg.data.num_frames == 4 and cfg.data.max_words == 20
    assert cfg.train.epochs == 2 and cfg.train.betas == (0.1, 0.2)  # lists replace
    assert "drgi" in cfg.objective_names and cfg.drgi.weight == 0.5


def test_includes_nest_in_order_relative_to_each_file(tmp_path):
    _files(tmp_path, **{
        "recipes__a.yaml": "name: a\ntrain:\n  epochs: 1\n  lr: 0.5\n",
        "recipes__b.yaml": "include: a.yaml\ntrain:\n  epochs: 2\n",
        "other.yaml": "train:\n  epochs: 3\n  seed: 7\n",
        "methods__m.yaml": "include: [../recipes/b.yaml, ../other.yaml]\nname: m\n",
    })
    cfg = load_config(tmp_path / "methods" / "m.yaml")
    assert (cfg.name, cfg.train.epochs, cfg.train.lr, cfg.train.seed) == ("m", 3, 0.5, 7)


def test_unknown_key_names_the_included_file(tmp_path):
    _files(tmp_path, **{"base.yaml": "train:\n  epoch: 2\n", "m.yaml": "include: base.yaml\n"})
    with pytest.raises(ConfigError, match=r"'train\.epoch' in .*base\.yaml"):
        load_config(tmp_path / "m.yaml")


def test_wrong_type_names_the_overlay(tmp_path):
    _files(tmp_path, **{"base.yaml": "train:\n  epochs: 2\n",
                        "m.yaml": "include: base.yaml\ntrain:\n  epochs: two\n"})
    with pytest.raises(ConfigError, match=r"'train\.epochs' in .*m\.yaml: expected an integer"):
        load_config(tmp_path / "m.yaml")


@pytest.mark.parametrize(("files", "match"), [
    ({"m.yaml": "include: nope.yaml\n"}, r"nope\.yaml \(included from .*m\.yaml\) does not exist"),
    ({"m.yaml": "include: {a: 1}\n"}, r"'include' in .*m\.yaml: expected a file name"),
    ({"m.yaml": "include: n.yaml\n", "n.yaml": "include: m.yaml\n"}, "includes it back"),
    ({"m.yaml": "include: m.yaml\n"}, "includes it back"),
])
def test_bad_includes_are_named(tmp_path, files, match):
    _files(tmp_path, **files)
    with pytest.raises(ConfigError, match=match):
        load_config(tmp_path / "m.yaml")


def test_include_is_a_file_key_not_a_config_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'include'"):
        load_config(None, ["include=base.yaml"])


# ------------------------------------------------------------------ registered sections, plug-ins


def test_unknown_top_level_key_lists_core_fields_and_modules():
    with pytest.raises(ConfigError) as exc:
        from_dict({"drgj": {"enable": True}}, origin="x.yaml")
    msg = str(exc.value)
    assert "'drgj' in x.yaml" in msg and "objectives" in msg and "train" in msg
    assert "seqtransf" in msg and "head" in msg


def test_a_method_section_in_a_new_shape_file_is_named():
    with pytest.raises(ConfigError, match=r"'drgi' in x.yaml \('drgi' belongs to a method"):
        from_dict({"head": {"name": "wti"}, "drgi": {"weight": 1.0}}, origin="x.yaml")


def test_sections_in_use_read_as_attributes():
    cfg = ExperimentConfig()
    cfg.add_objective("drgi", weight=0.7)
    assert to_dict(cfg)["objectives"][1] == {"name": "drgi", **to_dict(cfg.drgi)}
    assert cfg.drgi.weight == 0.7 and cfg.objective("drgi").weight == 0.7
    cfg.set_head("wti", arch=3)
    assert cfg.wti.arch == 3 and to_dict(cfg)["head"]["arch"] == 3
    with pytest.raises(AttributeError, match="'xclip' is not in use"):
        _ = cfg.xclip
    with pytest.raises(AttributeError, match="no field or registered config section 'nope'"):
        _ = cfg.nope
    with pytest.raises(AttributeError):  # a removed key fails loudly instead of doing nothing
        cfg.model.head = "wti"


def test_plugins_that_do_not_import_are_named(tmp_path):
    path = write(tmp_path, "plugins: [no_such_plugin_module]\n")
    with pytest.raises(ConfigError, match=r"'plugins' in .*: cannot import .*'no_such_plugin_module'"):
        load_config(path)


def test_config_json_without_plugins_keeps_its_keys():
    """Runs without plug-ins write exactly the keys they always wrote (no 'plugins': [])."""
    data = to_dict(ExperimentConfig())
    assert "plugins" not in data and "modules" not in data
    assert list(data) == ["name", "output_root", "data", "model", "head", "objectives",
                          "seqtransf", "train"]




def test_a_saved_config_cannot_import_a_plugin_by_itself(tmp_path, monkeypatch):
    """config.json is data: a plug-in it names is imported only when already imported, allowed
    in DRGI_LAB_PLUGINS, or the config is a recipe the user runs (load_config)."""
    import sys

    from tvr.config import PLUGINS_ENV, from_dict

    pkg = tmp_path / "evil_plugin_xyz.py"
    marker = tmp_path / "imported"
    pkg.write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    sys.modules.pop("evil_plugin_xyz", None)
    data = {"name": "x", "plugins": ["evil_plugin_xyz"]}
    with pytest.raises(ConfigError, match=r"'evil_plugin_xyz'.*DRGI_LAB_PLUGINS=evil_plugin_xyz"):
        from_dict(data, origin="run/config.json")
    assert not marker.exists() and "evil_plugin_xyz" not in sys.modules
    monkeypatch.setenv(PLUGINS_ENV, "other, evil_plugin_xyz")
    cfg = from_dict(data, origin="run/config.json")
    assert cfg.plugins == ["evil_plugin_xyz"] and marker.exists()
    sys.modules.pop("evil_plugin_xyz", None)
    marker.unlink()
    monkeypatch.delenv(PLUGINS_ENV)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\nplugins: [evil_plugin_xyz]\n")
    assert load_config(recipe).plugins == ["evil_plugin_xyz"] and marker.exists()
    sys.modules.pop("evil_plugin_xyz", None)
