"""Demo runs: configs, per-frame targets, the two-stage pipeline, and the committed run folders."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.conftest import tiny_overrides
from tvr.checkpoint import load_pretrained
from tvr.config import apply_overrides
from tvr.data.synthvtt import BACKGROUNDS, nearest_colour, read_meta
from tvr.demo import pretrain, runs
from tvr.demo.__main__ import main as demo_main

REPO = Path(__file__).resolve().parents[1]
COMMITTED = {name: REPO / "checkpoints" / name for name in runs.RUNS}
MIN_R1 = 20.0  # t2v R@1 (%) both demo runs must reach on the SynthVTT test split (chance 0.2)


# ----------------------------------------------------------------------------- configs
def test_demo_configs_differ_only_in_name_and_drgi():
    cfgs = runs.demo_configs(config_dir=REPO / runs.CONFIG_DIR)
    base, drgi = cfgs["demo-base"], cfgs["demo-drgi"]
    assert base.objective_names == ["infonce"] and drgi.objective_names == ["infonce", "drgi"]
    assert base.head == drgi.head and base.modules == drgi.modules
    assert base.train == drgi.train and base.model == drgi.model and base.data == drgi.data
    assert base.model.pretrained == "checkpoints/demo-backbone" and base.model.freeze_vision
    assert base.data.frame_cache == "data/synthvtt/.frame_cache"
    assert base.run_dir == Path("checkpoints/demo-base")


def test_demo_configs_refuse_a_schedule_mismatch(tmp_path):
    for name in runs.RUNS:
        data = yaml.safe_load((REPO / runs.CONFIG_DIR / f"{name}.yaml").read_text())
        if name == "demo-drgi":
            data = apply_overrides(data, ["train.epochs=99"])
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"differ only in name and the drgi objective.*train.epochs"):
        runs.demo_configs(config_dir=tmp_path)


def test_demo_configs_may_differ_in_drgi_settings(tmp_path):
    for name in runs.RUNS:
        data = yaml.safe_load((REPO / runs.CONFIG_DIR / f"{name}.yaml").read_text())
        if name == "demo-drgi":
            data = apply_overrides(data, ["drgi.root=free", "objectives.drgi.attn_temperature=0.5"])
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    cfgs = runs.demo_configs(config_dir=tmp_path)
    assert cfgs["demo-drgi"].drgi.root == "free" and cfgs["demo-drgi"].drgi.attn_temperature == 0.5
    assert "drgi" not in cfgs["demo-base"].objective_names


# ----------------------------------------------------------------------------- frame targets
def test_frame_targets_match_the_pixels(tiny_synthvtt):
    data = pretrain.frame_targets(tiny_synthvtt, "train", 4, 32, progress=False)
    meta = read_meta(tiny_synthvtt)
    assert data.num_videos == 16 and len(data) == 16 * 4 and data.frames.shape[1:] == (32, 32, 3)
    classes = pretrain._classes()
    none = classes["colour"].index("none")
    assert bool((data.colour == none).any()) and bool((data.colour != none).any())
    for i in range(len(data)):
        frame = data.frames[i].reshape(-1, 3).astype(float)
        bg = np.asarray(BACKGROUNDS[classes["background"][int(data.background[i])]], float)
        off_bg = np.abs(frame - bg).sum(1) > 120  # pixels far from the background colour
        if int(data.colour[i]) == none:
            assert off_bg.sum() <= 2, i  # a gap frame shows only the background
            assert bool(torch.isnan(data.geometry[i]).all())
            continue
        assert off_bg.sum() > 0, i
        assert nearest_colour(frame[off_bg].mean(0)) == classes["colour"][int(data.colour[i])], i
        x, y, _ = data.geometry[i].tolist()
        ys, xs = np.nonzero(off_bg.reshape(32, 32))
        assert abs((xs.mean() + 0.5) / 32 - x) < 0.12 and abs((ys.mean() + 0.5) / 32 - y) < 0.12
    # per_video scatters frames back into [V, T] in sampling order.
    grid, mask = data.per_video(data.colour)
    assert grid.shape == (16, 4) and bool(mask.all())
    assert meta.videos["video0"].background == classes["background"][int(data.background[0])]


# ----------------------------------------------------------------------------- pipeline
def _tiny_demo_configs(root: Path, folder: Path) -> Path:
    """demo-base/demo-drgi YAML files for a tiny model on the tiny SynthVTT."""
    folder.mkdir()
    for name, drgi in (("demo-base", "false"), ("demo-drgi", "true")):
        overrides = tiny_overrides(root, folder, name, "model.head=seqtransf",
                                   "model.freeze_vision=true", f"drgi.enable={drgi}",
                                   "train.epochs=1", "model.clip.patch_size=8")
        data = apply_overrides({}, [o for o in overrides if not o.startswith("output_root=")])
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return folder


TINY_PRETRAIN = pretrain.PretrainSettings(vision_epochs=1, vision_batch_size=16, temporal_epochs=2,
                                      temporal_batch_size=4, log_every=1, eval_split="val")


def test_run_demo_pretrains_then_trains_both_runs_from_it(tiny_synthvtt, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "ensure_dataset", lambda root, progress=True: False)
    tiny_synthvtt = shutil.copytree(tiny_synthvtt, tmp_path / "synthvtt")  # gets a frame cache
    configs = _tiny_demo_configs(tiny_synthvtt, tmp_path / "configs")
    ckpt = tmp_path / "ckpt"
    result = runs.run_demo(data_root=tiny_synthvtt, checkpoints=ckpt, config_dir=configs,
                           progress=False, pretrain=TINY_PRETRAIN)
    assert result["trained"] == ["demo-backbone", "demo-base", "demo-drgi"]
    backbone = ckpt / runs.BACKBONE
    info = json.loads((backbone / pretrain.PRETRAIN_FILE).read_text())
    assert info["data"] == {"root": str(tiny_synthvtt), "split": "train", "videos": 16,
                            "frames": 64, "num_frames": 4, "image_size": 32}
    assert len(info["vision_curve"]) == 4 and len(info["temporal_curve"]) == 2
    assert 0 <= info["val_scores"]["shape_acc"] <= 1 and "action_acc" in info["val_scores"]
    stage1 = load_file(str(backbone / "model.safetensors"))
    assert any(k.startswith("head.temporal.") for k in stage1)
    assert json.loads((backbone / "encoder.json").read_text())["config"]["vision_stem"] == "conv"

    for name in runs.RUNS:
        run = ckpt / name
        weights = load_file(str(run / "model.safetensors"))
        # The vision tower stayed frozen; the text tower and the head trained.
        for key in ("encoder.clip.visual_projection.weight",
                    "encoder.clip.vision_model.embeddings.patch_embedding.layers.0.weight"):
            assert torch.equal(weights[key], stage1[key]), key
        assert not torch.equal(weights["encoder.clip.text_projection.weight"],
                               stage1["encoder.clip.text_projection.weight"])
        assert 0 <= result["metrics"][name]["t2v/R@1"] <= 100
    assert any(k.startswith("objectives.drgi.") for k in
               load_file(str(ckpt / "demo-drgi" / "model.safetensors")))
    weights_base = load_file(str(ckpt / "demo-base" / "model.safetensors"))[
        "encoder.clip.text_projection.weight"]

    # Everything present: nothing is trained again; a run whose evaluation is missing is
    # resumed alone (its last epoch is done, so it is only evaluated again).
    again = dict(data_root=tiny_synthvtt, checkpoints=ckpt, config_dir=configs, progress=False)
    assert runs.run_demo(**again)["trained"] == []
    (ckpt / "demo-base" / "metrics.json").unlink()
    assert runs.run_demo(**again)["trained"] == ["demo-base"]
    assert torch.equal(load_file(str(ckpt / "demo-base" / "model.safetensors"))[
        "encoder.clip.text_projection.weight"], weights_base)

    # Run folders are self-contained: they load without the backbone folder.
    shutil.rmtree(backbone)
    model, tokenizer, cfg = load_pretrained(ckpt / "demo-drgi")
    assert cfg.model.freeze_vision and tokenizer.vocab_size == model.encoder.vocab_size

    # A rebuilt backbone retrains both runs from scratch, even a resumable one.
    (ckpt / "demo-base" / "metrics.json").unlink()
    assert runs.run_demo(**again, pretrain=TINY_PRETRAIN)["trained"] == [
        "demo-backbone", "demo-base", "demo-drgi"]
    log = [json.loads(x) for x in (ckpt / "demo-base" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [x + 1 for x in range(len(log))]  # one fresh run


# ----------------------------------------------------------------------------- committed runs
@pytest.mark.parametrize("name", runs.RUNS)
def test_committed_run_is_self_contained(name):
    run = COMMITTED[name]
    for part in ("config.json", "encoder.json", "model.safetensors", "tokenizer", "metrics.json"):
        assert (run / part).exists(), f"{run / part} is missing; run python -m tvr.demo --train"
    model, tokenizer, cfg = load_pretrained(run)  # needs no checkpoints/demo-backbone
    assert cfg.name == name and cfg.head.name == "seqtransf"
    assert ("drgi" in cfg.objective_names) == (name == "demo-drgi")
    assert model.encoder.vision_stem == "conv"
    for path in (cfg.data.root, cfg.data.frame_cache, cfg.model.pretrained, cfg.output_root):
        assert not Path(path).is_absolute(), path  # no machine-specific paths in the clone


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for root in roots for p in sorted(root.rglob("*"))}


@pytest.mark.slow
def test_demo_with_everything_present_does_nothing(default_synthvtt, tmp_path, capsys):
    ckpt = tmp_path / "checkpoints"
    for name, run in COMMITTED.items():
        shutil.copytree(run, ckpt / name, ignore=shutil.ignore_patterns("analysis", "train_state.pt"))
    before = _snapshot(default_synthvtt, ckpt)
    t0 = time.perf_counter()
    assert demo_main(["--data-root", str(default_synthvtt), "--checkpoints", str(ckpt),
                      "--configs", str(REPO / runs.CONFIG_DIR), "--quiet"]) == 0
    assert time.perf_counter() - t0 < 15
    assert "nothing to do" in capsys.readouterr().out
    assert _snapshot(default_synthvtt, ckpt) == before


@pytest.mark.slow
@pytest.mark.parametrize("name", runs.RUNS)
def test_committed_run_reaches_r1_on_fresh_synthvtt(name, default_synthvtt, tmp_path, monkeypatch):
    from tvr.evaluate import evaluate_run

    monkeypatch.chdir(tmp_path)  # the run's relative frame cache lands in tmp_path
    metrics = evaluate_run(COMMITTED[name], root=str(default_synthvtt), split="test",
                           progress=False, write=False)
    assert metrics["num_texts"] == 500 and metrics["num_videos"] == 500
    assert metrics["t2v/R@1"] >= MIN_R1, (
        f"{name}: t2v R@1 {metrics['t2v/R@1']:.1f} < {MIN_R1} on a freshly generated SynthVTT; "
        "did the generator change? Retrain with python -m tvr.demo --train"
    )
    recorded = json.loads((COMMITTED[name] / "metrics.json").read_text())["synthvtt-test"]
    assert metrics["t2v/R@1"] == pytest.approx(recorded["t2v/R@1"], abs=1.0), (
        f"{name}: metrics.json no longer describes this run on the generated test split"
    )


def test_ensure_backbone_builds_only_the_backbone_once(tiny_synthvtt, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "ensure_dataset", lambda root, progress=True: False)
    root = shutil.copytree(tiny_synthvtt, tmp_path / "synthvtt")
    configs = _tiny_demo_configs(root, tmp_path / "configs")
    ckpt = tmp_path / "ckpt"
    kwargs = dict(data_root=root, checkpoints=ckpt, config_dir=configs, progress=False,
                  pretrain=TINY_PRETRAIN)
    assert runs.ensure_backbone(**kwargs) is True
    assert runs.backbone_complete(ckpt / runs.BACKBONE)
    assert sorted(p.name for p in ckpt.iterdir()) == [runs.BACKBONE]  # no demo run trained
    before = (ckpt / runs.BACKBONE / "model.safetensors").stat().st_mtime_ns
    assert runs.ensure_backbone(**kwargs) is False  # present: nothing is rebuilt
    assert (ckpt / runs.BACKBONE / "model.safetensors").stat().st_mtime_ns == before
