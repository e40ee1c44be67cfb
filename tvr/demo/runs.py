"""The demo's configs and orchestration: provide SynthVTT, the demo backbone and both runs.

:func:`run_demo` is what ``python -m tvr.demo`` does; :func:`ensure_backbone` is ``--backbone``.
Stage 1 (the backbone) is :func:`tvr.demo.pretrain.pretrain_backbone`; stage 2 is
:func:`tvr.train.train` on ``configs/synthvtt/demo-base.yaml`` and ``demo-drgi.yaml``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tvr.config import ExperimentConfig, load_config, to_dict
from tvr.run_folder import CONFIG, ENCODER, TOKENIZER, TRAIN_STATE, WEIGHTS

if TYPE_CHECKING:  # the check that everything is there imports no torch (make app's start)
    from tvr.demo.pretrain import PretrainSettings

log = logging.getLogger(__name__)

DATA_ROOT = Path("data/synthvtt")
CHECKPOINTS = Path("checkpoints")
CONFIG_DIR = Path("configs/synthvtt")
BACKBONE = "demo-backbone"
RUNS: tuple[str, ...] = ("demo-base", "demo-drgi")
FRAME_CACHE = ".frame_cache"  # inside the dataset root


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"a.b.c": value}`` (empty dicts stay values)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def demo_configs(
    data_root: str | Path = DATA_ROOT,
    checkpoints: str | Path = CHECKPOINTS,
    config_dir: str | Path = CONFIG_DIR,
) -> dict[str, ExperimentConfig]:
    """The two demo run configs, pointed at ``data_root`` and ``checkpoints``.

    With the default roots the overrides repeat the YAML values, so the resolved configs (and
    the ``config.json`` of the runs) hold the same relative paths.

    Raises:
        ConfigError: a config file is missing or invalid.
        ValueError: the two configs differ in anything but ``name`` and the drgi objective, or
            the DRGI run does not enable DRGI (they must share seed, schedule and backbone).
    """
    data_root, checkpoints = Path(data_root), Path(checkpoints)
    overrides = [
        f"data.root={data_root}",
        f"data.frame_cache={data_root / FRAME_CACHE}",
        f"output_root={checkpoints}",
        f"model.pretrained={checkpoints / BACKBONE}",
    ]
    cfgs = {name: load_config(Path(config_dir) / f"{name}.yaml", overrides) for name in RUNS}
    base, drgi = (cfgs[name] for name in RUNS)
    if base.name != RUNS[0] or drgi.name != RUNS[1]:
        raise ValueError(
            f"{config_dir}: the demo configs must be named {RUNS}, got {base.name!r} and "
            f"{drgi.name!r}"
        )
    if "drgi" in base.objective_names or "drgi" not in drgi.objective_names:
        raise ValueError(
            f"{config_dir}: expected drgi in the objectives of {RUNS[1]}.yaml and not of "
            f"{RUNS[0]}.yaml"
        )

    def without_drgi(cfg: ExperimentConfig) -> dict[str, Any]:
        data = to_dict(cfg)
        data["objectives"] = [o for o in data["objectives"] if o["name"] != "drgi"]
        return _flatten(data)

    a, b = without_drgi(base), without_drgi(drgi)
    diff = sorted(k for k in a.keys() | b.keys() if k != "name" and a.get(k) != b.get(k))
    if diff:
        raise ValueError(
            f"{config_dir}: {RUNS[0]}.yaml and {RUNS[1]}.yaml must differ only in name and "
            f"the drgi objective (same seed, schedule and backbone); they also differ in {diff}"
        )
    return cfgs


def backbone_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a pretrained demo backbone (encoder, weights, tokenizer)."""
    p = Path(path)
    return (p / ENCODER).is_file() and (p / WEIGHTS).is_file() and (p / TOKENIZER).is_dir()


def run_complete(cfg: ExperimentConfig) -> bool:
    """Whether ``cfg``'s run folder is finished: model files and its evaluation are there."""
    run = cfg.run_dir
    files = (run / CONFIG, run / ENCODER, run / WEIGHTS, run / "metrics.json")
    if not all(f.is_file() for f in files) or not (run / TOKENIZER).is_dir():
        return False
    try:
        metrics = json.loads((run / "metrics.json").read_text())
    except json.JSONDecodeError:
        return False
    return f"{cfg.data.dataset}-{cfg.data.eval_split}" in metrics


def ensure_dataset(root: str | Path, *, progress: bool = True) -> bool:
    """Generate the default SynthVTT into ``root`` unless it is there; True when generated.

    Raises:
        FileExistsError: ``root`` holds something else, or SynthVTT with other parameters.
    """
    from tvr.data.synthvtt import generate

    summary = generate(root, progress=progress)
    return not summary.skipped


def run_demo(
    *,
    data_root: str | Path = DATA_ROOT,
    checkpoints: str | Path = CHECKPOINTS,
    config_dir: str | Path = CONFIG_DIR,
    retrain: bool = False,
    progress: bool = True,
    pretrain: PretrainSettings | None = None,
) -> dict[str, Any]:
    """Provide the dataset and both demo runs; train only what is missing (all with ``retrain``).

    A run folder left by an interrupted training (``train_state.pt`` but no ``metrics.json``)
    is resumed. When the backbone has to be (re)built, both runs are retrained from it, so they
    always share their backbone.

    Returns:
        ``{"generated": bool, "trained": [names], "seconds": {stage: s}, "metrics": {run: ...}}``.
    """
    t0 = time.time()
    seconds: dict[str, float] = {}
    generated = ensure_dataset(data_root, progress=progress)
    if generated:
        seconds["dataset"] = round(time.time() - t0, 1)
    cfgs = demo_configs(data_root, checkpoints, config_dir)
    backbone = Path(checkpoints) / BACKBONE
    if retrain:
        for path in (backbone, *(c.run_dir for c in cfgs.values())):
            if path.exists():
                log.info("--train: removing %s", path)
                shutil.rmtree(path)
    todo = [name for name, c in cfgs.items() if not run_complete(c)]
    trained: list[str] = []
    new_backbone = bool(todo) and not backbone_complete(backbone)
    if new_backbone:
        from tvr.demo.pretrain import pretrain_backbone

        t = time.time()
        pretrain_backbone(cfgs[RUNS[0]], backbone, pretrain, progress=progress)
        seconds["backbone"] = round(time.time() - t, 1)
        trained.append(BACKBONE)
        todo = list(RUNS)  # both runs must start from this backbone
    for name in todo:
        cfg = cfgs[name]
        # Resume an interrupted run, unless it started from an earlier backbone.
        resume = not new_backbone and (cfg.run_dir / TRAIN_STATE).is_file()
        if cfg.run_dir.exists() and not resume:
            log.info("removing %s (retrained from the backbone)", cfg.run_dir)
            shutil.rmtree(cfg.run_dir)
        from tvr.train import train

        t = time.time()
        train(cfg, resume=resume, progress=progress)
        seconds[name] = round(time.time() - t, 1)
        trained.append(name)
    if trained:
        seconds["total"] = round(time.time() - t0, 1)
    metrics = {}
    for name, cfg in cfgs.items():
        all_metrics = json.loads((cfg.run_dir / "metrics.json").read_text())
        metrics[name] = all_metrics[f"{cfg.data.dataset}-{cfg.data.eval_split}"]
    return {"generated": generated, "trained": trained, "seconds": seconds, "metrics": metrics}


def ensure_backbone(
    *,
    data_root: str | Path = DATA_ROOT,
    checkpoints: str | Path = CHECKPOINTS,
    config_dir: str | Path = CONFIG_DIR,
    progress: bool = True,
    pretrain: PretrainSettings | None = None,
) -> bool:
    """Provide the dataset and ``checkpoints/demo-backbone`` (stage 1 only, ~2 min when
    missing), the starting point of the ``configs/synthvtt/<method>.yaml`` runs; the demo run
    folders are left as they are.

    Returns:
        True when the backbone was built now.
    """
    ensure_dataset(data_root, progress=progress)
    backbone = Path(checkpoints) / BACKBONE
    if backbone_complete(backbone):
        return False
    from tvr.demo.pretrain import pretrain_backbone

    cfgs = demo_configs(data_root, checkpoints, config_dir)
    pretrain_backbone(cfgs[RUNS[0]], backbone, pretrain, progress=progress)
    return True
