"""Shared machinery of the DRGI experiments (val sweep, final test table).

A *run* is ``configs/synthvtt/<method>.yaml`` plus overrides, trained in a subprocess with
``train.val_split=val`` and ``train.select=best_val`` (methods.md §9.8). Each finished run's
small record (its ``metrics.json`` and the in-training DRGI diagnostics of its last epoch) is
copied into ``benchmarks/runs/<study>/<setting>/s<seed>.json``: the tables are rendered from
these committed files, so anyone can recheck them without training.

Statistics: seeds are paired (same ``train.seed`` = same initialisation and batch order); a
difference is reported as the mean of the per-seed differences, their std, and a 95% t
interval of the mean difference (``scipy.stats.t``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "benchmarks" / "runs"
PROTOCOL = ["train.val_split=val", "train.select=best_val", "train.log_every=20"]
# in-training diagnostics averaged over the last epoch's log lines
TRAIN_DIAGNOSTICS = (
    "drgi_acc", "drgi_acc_hard_video", "drgi_acc_hard_text", "drgi_entropy_text",
    "drgi_entropy_video", "drgi_node_cos_text", "drgi_node_cos_video", "grad_shared_ratio",
    "drgi_bce",
)


@dataclass(frozen=True)
class Setting:
    """One configuration of a study: a method, overrides, and the base it is compared with."""

    label: str
    method: str
    overrides: tuple[str, ...]
    base: str | None = None  # label of the same-seed baseline setting (None: it is a base)

    @property
    def tag(self) -> str:
        return "".join(c if c.isalnum() or c in "-." else "-" for c in self.label).strip("-")


def record_path(study: str, setting: Setting, seed: int) -> Path:
    return RUNS / study / setting.tag / f"s{seed}.json"


def _last_epoch_diagnostics(log_path: Path) -> dict[str, float]:
    rows = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    train_rows = [r for r in rows if "split" not in r]
    if not train_rows:
        return {}
    last = max(r["epoch"] for r in train_rows)
    rows = [r for r in train_rows if r["epoch"] == last]
    out = {}
    for key in TRAIN_DIAGNOSTICS:
        vals = [r[key] for r in rows if key in r and math.isfinite(r[key])]
        if vals:
            out[key] = statistics.mean(vals)
    return out


def code_revision() -> str:
    """The commit the runs are trained from (``+dirty`` when the tracked tree has changes), so
    a record says which code made it."""
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                         text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return rev + ("+dirty" if dirty else "")


def run_setting(study: str, setting: Setting, seed: int, out: Path, *, test: bool = False,
                retrain: bool = False) -> Path:
    """Train one (setting, seed) in a subprocess (1 thread) unless its record exists; returns
    the record path. ``test``: also evaluate the test split once on the selected weights."""
    rec = record_path(study, setting, seed)
    if rec.is_file() and not retrain:
        return rec
    name = f"{study}-{setting.tag}-s{seed}"
    run = out / name
    if run.exists():
        shutil.rmtree(run)
    overrides = [f"name={name}", f"output_root={out}", f"train.seed={seed}", *PROTOCOL,
                 f"train.eval_after={'true' if test else 'false'}", *setting.overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "tvr.train", "--config",
           str(REPO / "configs" / "synthvtt" / f"{setting.method}.yaml"), *overrides]
    code = code_revision()  # before training: the tree may change while it runs
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    metrics = json.loads((run / "metrics.json").read_text())
    record = {
        "study": study, "setting": setting.label, "method": setting.method, "seed": seed,
        "overrides": list(setting.overrides), "protocol": PROTOCOL, "code": code,
        "wall_s": round(time.perf_counter() - t0, 1), "metrics": metrics,
        "train_diagnostics": _last_epoch_diagnostics(run / "log.jsonl"),
    }
    rec.parent.mkdir(parents=True, exist_ok=True)
    tmp = rec.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=float) + "\n")
    os.replace(tmp, rec)
    for big in ("train_state.pt", "last.safetensors"):
        (run / big).unlink(missing_ok=True)
    print(f"  {name}: val t2v R@1 {metrics['synthvtt-val']['t2v/R@1']:.1f} "
          f"({record['wall_s']:.0f} s)", flush=True)
    return rec


def run_all(study: str, jobs_list: list[tuple[Setting, int]], out: Path, *, jobs: int = 2,
            test: bool = False, retrain: bool = False,
            after: Callable[[Setting, int], None] | None = None) -> None:
    """Train every (setting, seed) with ``jobs`` subprocesses at a time (then ``after`` on each
    finished one); failures are printed and re-raised at the end."""
    errors = []

    def one(item: tuple[Setting, int]) -> None:
        try:
            run_setting(study, item[0], item[1], out, test=test, retrain=retrain)
            if after is not None:
                after(*item)
        except Exception as exc:  # report every failure, not only the first
            print(f"  FAILED {item[0].label} s{item[1]}: {exc}", flush=True)
            errors.append(exc)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, jobs_list))
    if errors:
        raise RuntimeError(f"{len(errors)} run(s) failed; first: {errors[0]}")


def load_records(study: str, setting: Setting) -> dict[int, dict[str, Any]]:
    """The committed records of a setting, by seed."""
    folder = RUNS / study / setting.tag
    out = {}
    for path in sorted(folder.glob("s*.json")):
        rec = json.loads(path.read_text())
        out[int(rec["seed"])] = rec
    return out


def metric(rec: dict[str, Any], key: str, split: str = "synthvtt-val") -> float:
    return float(rec["metrics"][split][key])


def info(rec: dict[str, Any], side: str, key: str, split: str = "synthvtt-val") -> float:
    block = rec["metrics"].get("drgi_info", {}).get(split)
    return float(block[side][key]) if block else math.nan


def mean_std(values: list[float], digits: int = 1) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def paired(diffs: list[float]) -> dict[str, float]:
    """Mean, std and 95% t interval of paired differences."""
    from scipy.stats import t

    n = len(diffs)
    mean = statistics.mean(diffs) if n else math.nan
    sd = statistics.stdev(diffs) if n > 1 else math.nan
    half = t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half}


def fmt_paired(p: dict[str, float]) -> str:
    if not p["n"]:
        return "–"
    if p["n"] == 1:
        return f"{p['mean']:+.1f}"
    return f"{p['mean']:+.1f} ± {p['sd']:.1f} [{p['lo']:+.1f}, {p['hi']:+.1f}]"


def paired_diffs(runs: dict[int, dict], base: dict[int, dict], key: str,
                 split: str = "synthvtt-val") -> list[float]:
    return [metric(r, key, split) - metric(base[s], key, split)
            for s, r in sorted(runs.items()) if s in base]
