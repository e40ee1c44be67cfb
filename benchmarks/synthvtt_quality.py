"""Retrieval quality on SynthVTT: every method, base vs + DRGI, several seeds.

Trains ``configs/synthvtt/<method>.yaml`` (the demo recipe: the pretrained demo backbone, vision
tower frozen, 4 epochs) with ``drgi.enable`` false and true for each seed, keeps each run's
best epoch on val (``train.select=best_val``) and evaluates it once on the test split, and writes
the ``## SynthVTT quality`` section of benchmarks/RESULTS.md: t2v / v2t R@1, R@5 and MnR as
mean ± std over seeds, the paired DRGI - base difference, training time per step and parameter
counts. Nothing is chosen here: DRGI variants are compared on val by
``benchmarks/drgi_val_sweep.py``, and the final settings on test by
``benchmarks/drgi_test_table.py``.

    python -m tvr.demo --backbone        # checkpoints/demo-backbone, when missing (~2 min)
    OMP_WAIT_POLICY=PASSIVE python benchmarks/synthvtt_quality.py [--methods meanp,wti]
        [--seeds 0,1,2] [--out checkpoints/quality]

Finished runs (a run folder with ``metrics.json``) are reused, so an interrupted sweep resumes;
``--retrain`` trains everything again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmarks.results import (  # noqa: E402
    add_results_args,
    command_line,
    load_note,
    publish,
)
from tvr.checkpoint import load_pretrained  # noqa: E402
from tvr.config import load_config  # noqa: E402

METHODS = ("meanp", "seqtransf", "wti", "xclip", "tcmgc", "gare", "dmae")
LABELS = {
    "meanp": "meanP (CLIP4Clip)", "seqtransf": "seqTransf (CLIP4Clip)", "wti": "WTI + CDCR (DRL)",
    "xclip": "X-CLIP", "tcmgc": "TC-MGC + SDR", "gare": "GARE", "dmae": "DMAE + NegNCE + TPM-CL",
}
METRICS = ("t2v/R@1", "t2v/R@5", "t2v/MnR", "v2t/R@1", "v2t/R@5", "v2t/MnR")
SECTION = "## SynthVTT quality"


@dataclass
class RunResult:
    """One trained and evaluated run."""

    name: str
    seed: int
    metrics: dict[str, float]
    step_ms: float  # median wall time per logged training step (cached frozen features)
    wall_s: float  # training + evaluation wall time (0 when the run was reused)
    params: dict[str, int]


def _step_ms(log_path: Path) -> float:
    """Median wall time per step between consecutive log lines of ``log.jsonl``."""
    rows = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    per_step = [
        (b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"])
        for a, b in zip(rows, rows[1:])
        if b["step"] > a["step"]
    ]
    return 1e3 * statistics.median(per_step) if per_step else float("nan")


def _params(run: Path) -> dict[str, int]:
    """Parameter counts: trainable (vision tower frozen), head, DRGI, other objectives."""
    model, _, cfg = load_pretrained(run)

    def count(params) -> int:
        return sum(p.numel() for p in params)

    vision = count(model.encoder.vision_parameters()) if cfg.model.freeze_vision else 0
    objectives = {name: count(m.parameters()) for name, m in model.objectives.items()}
    return {
        "trainable": count(model.parameters()) - vision,
        "head": count(model.head.parameters()),
        "drgi": objectives.pop("drgi", 0),
        "other_objectives": sum(objectives.values()),
        "frozen_vision": vision,
    }


def train_one(method: str, name: str, seed: int, overrides: list[str], out: Path,
              retrain: bool, reuse_only: bool = False) -> RunResult | None:
    """Train and evaluate one run (or reuse a finished one; ``reuse_only``: None if there is
    none)."""
    from tvr.train import train

    cfg = load_config(REPO / "configs" / "synthvtt" / f"{method}.yaml",
                      [f"name={name}", f"output_root={out}", "train.eval_after=true",
                       "train.log_every=10", f"train.seed={seed}", "train.val_split=val",
                       "train.select=best_val", *overrides])
    run = cfg.run_dir
    key = f"{cfg.data.dataset}-{cfg.data.eval_split}"
    done = (run / "metrics.json").is_file() and key in json.loads((run / "metrics.json").read_text())
    wall = 0.0
    if reuse_only and not done:
        print(f"  {name}: not trained (--reuse-only)", flush=True)
        return None
    if retrain or not done:
        if run.exists():
            shutil.rmtree(run)
        t0 = time.perf_counter()
        train(cfg, progress=False)
        wall = time.perf_counter() - t0
    (run / "train_state.pt").unlink(missing_ok=True)  # a few MB per run; not needed here
    metrics = json.loads((run / "metrics.json").read_text())[key]
    result = RunResult(name, seed, {k: float(metrics[k]) for k in METRICS},
                       _step_ms(run / "log.jsonl"), wall, _params(run))
    print(f"  {name}: t2v R@1 {result.metrics['t2v/R@1']:.1f}  v2t R@1 "
          f"{result.metrics['v2t/R@1']:.1f}  step {result.step_ms:.0f} ms"
          + (f"  ({wall:.0f} s)" if wall else "  (reused)"), flush=True)
    return result


def _mean_std(values: list[float], digits: int = 1) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _paired(base: list[RunResult], drgi: list[RunResult], key: str) -> str:
    """Mean of the per-seed DRGI - base differences, with the count of seeds where DRGI is
    better (for MnR lower is better)."""
    by_seed = {b.seed: b for b in base}
    diffs = [d.metrics[key] - by_seed[d.seed].metrics[key] for d in drgi if d.seed in by_seed]
    if not diffs:
        return "-"
    better = sum((x < 0) if key.endswith("MnR") else (x > 0) for x in diffs)
    return f"{statistics.mean(diffs):+.1f} ({better}/{len(diffs)})"


def _row(label: str, runs: list[RunResult], delta: str = "") -> str:
    cells = [_mean_std([r.metrics[k] for r in runs]) for k in METRICS]
    step = statistics.mean(r.step_ms for r in runs)
    p = runs[0].params
    return (f"| {label} | {len(runs)} | " + " | ".join(cells) + f" | {delta} | {step:.0f} | "
            f"{p['trainable']:,} | {p['head']:,} | {p['drgi']:,} |")


def render(results: dict[str, dict[str, list[RunResult]]], seeds: list[int],
           command: str, load: tuple[float, float], minutes: float) -> str:
    lines = [
        f"Command: `python -m tvr.demo --backbone && {command}`",
        "",
        "Each run: `configs/synthvtt/<method>.yaml` (the demo recipe: tiny CLIP with the "
        "pretrained demo backbone, vision tower frozen and its frame features cached, text tower "
        "and head trained for 4 epochs of 117 steps of 64 pairs, lr 2e-3 / 1e-3; the best val "
        "epoch kept, test read once), with "
        "`drgi.enable=false` and `true` (DRGI as the config sets it: cross-modal, token nodes, "
        f"hardest negative, the λ chosen on val), seeds {', '.join(map(str, seeds))} (`train.seed`: initialisation and batch "
        "order; the backbone is shared). SynthVTT default size, test split 500 x 500 (chance "
        f"R@1 0.2 %). torch {torch.__version__}, {torch.get_num_threads()} threads, on "
        f"{time.strftime('%Y-%m-%d')}" + (f"; {minutes:.0f} min of training in this call."
                                           if minutes >= 1 else "."),
        "",
        "mean ± std over the seeds that finished (the seeds column); \"DRGI - base\" is the mean paired difference in t2v R@1 over "
        "seeds, with the number of seeds where DRGI was better. Step: median wall time of a "
        "training step (the frozen vision tower's features come from the cache, so this is "
        "text tower + head + objectives). Parameters: trainable (text tower, head, objectives, "
        "logit scale; the frozen vision tower, 136k, excluded), the head's, DRGI's (training "
        "only; 0 at inference).",
        "",
        "| method | seeds | t2v R@1 | t2v R@5 | t2v MnR | v2t R@1 | v2t R@5 | v2t MnR | DRGI - "
        "base (t2v R@1) | step (ms) | trainable params | head params | DRGI params |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, pair in results.items():
        lines.append(_row(LABELS[method], pair["base"]))
        lines.append(_row(f"{LABELS[method]} + DRGI", pair["drgi"],
                          _paired(pair["base"], pair["drgi"], "t2v/R@1")))
    lines += [
        "",
        load_note(load[0], load[1], detail=" (step times only; the metrics do not depend on "
                  "load)"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated head names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated train.seed values")
    p.add_argument("--out", type=Path, default=REPO / "checkpoints" / "quality",
                   help="folder of the run folders")
    p.add_argument("--retrain", action="store_true", help="train finished runs again")
    p.add_argument("--reuse-only", action="store_true",
                   help="train nothing: report the finished runs only")
    add_results_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown method(s) {unknown}; expected some of {', '.join(METHODS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if not (REPO / "checkpoints" / "demo-backbone" / "model.safetensors").is_file():
        p.error("checkpoints/demo-backbone is missing: run `python -m tvr.demo --backbone` first")
    os.chdir(REPO)  # the configs name data/ and checkpoints/ relative to the repository
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    results: dict[str, dict[str, list[RunResult]]] = {}
    for method in methods:
        print(f"{method}:", flush=True)
        arms = {
            arm: [train_one(method, f"q-{method}-{arm}-s{seed}", seed,
                            [f"drgi.enable={str(arm == 'drgi').lower()}"],
                            args.out, args.retrain, args.reuse_only)
                  for seed in seeds]
            for arm in ("base", "drgi")
        }
        arms = {arm: [r for r in runs if r is not None] for arm, runs in arms.items()}
        if all(arms.values()):
            results[method] = arms
    command = command_line("benchmarks/synthvtt_quality.py", argv)
    if args.reuse_only:  # the table of runs trained earlier: show the command that trains them
        command = command.replace(" --reuse-only", "")
    body = render(results, seeds, command, (load0, os.getloadavg()[0]),
                  (time.perf_counter() - t0) / 60)
    publish(args, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
