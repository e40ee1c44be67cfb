"""DRGI on the val split: every lever alone, combinations, λ, where the gradient lands.

Each setting trains ``configs/synthvtt/seqtransf.yaml`` (the demo recipe) with DRGI switched on
plus the setting's overrides, for several seeds, against the same-seed base; every run keeps its
best-on-val epoch (``train.select=best_val``) and nothing here reads the test split. The table
(``## DRGI on val`` in RESULTS.md) gives val t2v R@1, the paired difference DRGI - base with its
std and 95% interval, and beside every row the information test of tvr.drgi_probe on val
(the discriminator's accuracy against the split's hardest negative, overall and on the anchors
the base ranks wrongly) with the graph diagnostics.

    python -m tvr.demo --backbone
    OMP_WAIT_POLICY=PASSIVE python benchmarks/drgi_val_sweep.py [--seeds 0,1,2] [--jobs 2]
        [--only "LABEL;..."] [--reuse-only]

Per-run records: benchmarks/runs/drgi-val/<setting>/s<seed>.json (committed). ``--reuse-only``
renders the table from them without training.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.drgi_protocol import (  # noqa: E402
    RUNS,
    Setting,
    fmt_paired,
    info,
    load_records,
    mean_std,
    metric,
    paired,
    paired_diffs,
    run_all,
)
from benchmarks.results import add_results_args, command_line, publish  # noqa: E402

STUDY = "drgi-val"
SECTION = "## DRGI on val"
M = "seqtransf"
ON = ("drgi.enable=true", "drgi.weight=0.1")  # the spec default λ (the YAMLs now hold the val choice)
# DRGI's own optimiser group: exempt from the global clip, 5x the new-module lr (2e-3)
OWN = ("drgi.clip=0", "drgi.lr=1e-2")
BEST = (*OWN, "drgi.root=free", "drgi.attn_temperature=0.1", "drgi.score=tokens")
UNFROZEN = ("model.train_vision_layers=1", "train.cache_video_features=false")
WHOLE_TOWER = ("model.freeze_vision=false", "train.cache_video_features=false")
LONG = ("train.epochs=8",)

SETTINGS: list[Setting] = [
    Setting("base", M, ()),
    Setting("DRGI default (λ 0.1)", M, ON, "base"),
    Setting("λ 0.3", M, (*ON, "drgi.weight=0.3"), "base"),
    Setting("λ 1", M, (*ON, "drgi.weight=1.0"), "base"),
    Setting("own optimiser group (no clip, lr ×5)", M, (*ON, *OWN), "base"),
    Setting("root term (free)", M, (*ON, "drgi.root=free"), "base"),
    Setting("GATv2", M, (*ON, "drgi.attention=gatv2"), "base"),
    Setting("τ 0.1", M, (*ON, "drgi.attn_temperature=0.1"), "base"),
    Setting("top-4 graph", M, (*ON, "drgi.graph_topk=4"), "base"),
    Setting("token scoring", M, (*ON, "drgi.score=tokens"), "base"),
    Setting("pooled as node + summary", M, (*ON, "drgi.global_node=true", "drgi.summary=pooled"),
            "base"),
    Setting("random negatives", M, (*ON, "drgi.negatives=random"), "base"),
    Setting("curriculum 156/312", M, (*ON, "drgi.negatives=curriculum",
                                      "drgi.curriculum=[156,312]"), "base"),
    Setting("shuffle corruption", M, (*ON, "drgi.shuffle_corruption=true"), "base"),
    Setting("λ warm-up 117", M, (*ON, "drgi.weight_warmup=117"), "base"),
    Setting("combo: own group + root + τ 0.1 + tokens (λ 0.1)", M, (*ON, *BEST), "base"),
    Setting("combo, λ 0.3", M, (*ON, *BEST, "drgi.weight=0.3"), "base"),
    Setting("combo, λ 1", M, (*ON, *BEST, "drgi.weight=1.0"), "base"),
    Setting("combo + curriculum + shuffle", M, (*ON, *BEST, "drgi.negatives=curriculum",
                                                "drgi.curriculum=[156,312]",
                                                "drgi.shuffle_corruption=true"), "base"),
    # sanity: DRGI on detached features (only its own parameters learn): can the
    # discriminator separate hard negatives at all? Retrieval equals the base's by construction.
    Setting("sanity: default on detached features", M, (*ON, "drgi.detach_inputs=true"),
            "base"),
    Setting("sanity: combo on detached features", M, (*ON, *BEST, "drgi.detach_inputs=true"),
            "base"),
    # re-checks of the demo recipe (chosen on test in earlier sessions), against "base"
    Setting("recipe check: base, lr 1e-3", M, ("train.lr=1e-3",), "base"),
    Setting("recipe check: base, lr 4e-3", M, ("train.lr=4e-3",), "base"),
    Setting("base, last vision block trained", M, UNFROZEN),
    Setting("combo, last vision block trained", M, (*ON, *BEST, *UNFROZEN),
            "base, last vision block trained"),
    Setting("base, whole vision tower trained", M, WHOLE_TOWER),
    Setting("combo, whole vision tower trained", M, (*ON, *BEST, *WHOLE_TOWER),
            "base, whole vision tower trained"),
    Setting("base, 8 epochs", M, LONG),
    Setting("combo, 8 epochs", M, (*ON, *BEST, *LONG), "base, 8 epochs"),
]
BY_LABEL = {s.label: s for s in SETTINGS}


def _f(x: float, digits: int = 2) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}f}"


def _mean(values: list[float]) -> float:
    values = [v for v in values if math.isfinite(v)]
    return statistics.mean(values) if values else math.nan


def render(seeds: list[int], command: str) -> str:
    lines = [
        f"Command: `python -m tvr.demo --backbone && {command}`",
        "",
        "Chosen on **val** (SynthVTT val, 500 videos x 1 caption; test is not read here). Every "
        "run is the demo recipe (`configs/synthvtt/seqtransf.yaml`: demo backbone, vision tower "
        "frozen unless the row says otherwise, 4 epochs x 117 steps of 64 pairs) with "
        "`train.select=best_val` (the epoch with the best val t2v R@1 is kept). Seeds "
        f"{', '.join(map(str, seeds))}, each paired with the same-seed base. Δ = DRGI - base "
        "(t2v R@1, points): mean ± std of the per-seed differences [95% t interval].",
        "",
        "Information test (tvr.drgi_probe, on val, kept epoch): accuracy of the discriminator "
        "against the split's hardest negative for caption queries (t→v: video nodes) / video "
        "queries (v→t: text nodes); *base-wrong*: the same on the anchors whose hardest "
        "negative the base similarity ranks above the true pair (chance 0.50). Entropy: "
        "normalised attention entropy (1 = uniform), text / video graphs. Node cos: mean "
        "pairwise cosine of a graph's GAT outputs (1 = collapsed). Grad ratio: ‖∇ λL_DRGI‖ / "
        "‖∇ L_base‖ on the shared parameters (text tower, head), last epoch of training. "
        "Train acc: in-batch accuracy against the negatives the loss trains on (random, "
        "semi-hard or hardest in the batch), last epoch.",
        "",
        "| setting | seeds | val t2v R@1 | Δ t2v R@1 | Δ v2t R@1 | train acc | disc. acc t→v / v→t | "
        "acc on base-wrong t→v / v→t | base right t→v / v→t | entropy t / v | node cos t / v | "
        "grad ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in SETTINGS:
        runs = {k: v for k, v in load_records(STUDY, s).items() if k in seeds}
        if not runs:
            continue
        vals = [metric(r, "t2v/R@1") for r in runs.values()]
        if s.base is None:
            d_t = d_v = "(base)"
        else:
            base = load_records(STUDY, BY_LABEL[s.base])
            d_t = fmt_paired(paired(paired_diffs(runs, base, "t2v/R@1")))
            d_v = fmt_paired(paired(paired_diffs(runs, base, "v2t/R@1")))
        recs = list(runs.values())
        has = any(r["metrics"].get("drgi_info") for r in recs)

        def both(key: str, recs=recs) -> str:
            return (f"{_f(_mean([info(r, 'video', key) for r in recs]))} / "
                    f"{_f(_mean([info(r, 'text', key) for r in recs]))}")

        def diag(key: str, recs=recs) -> float:
            return _mean([r["metrics"]["drgi_info"]["synthvtt-val"][key] for r in recs])

        def train_diag(key: str, recs=recs) -> float:
            return _mean([r["train_diagnostics"].get(key, math.nan) for r in recs])

        cells = (
            [_f(train_diag("drgi_acc")), both("acc"), both("acc_base_wrong"), both("base_right"),
             f"{_f(diag('entropy_text'), 3)} / {_f(diag('entropy_video'), 3)}",
             f"{_f(diag('node_cos_text'), 3)} / {_f(diag('node_cos_video'), 3)}",
             _f(train_diag("grad_shared_ratio"), 3)]
            if has else ["–"] * 7
        )
        lines.append(f"| {s.label} | {len(runs)} | {mean_std(vals)} | {d_t} | {d_v} | "
                     + " | ".join(cells) + " |")
    n_base_wrong = [info(r, "video", "n_base_wrong") for s in SETTINGS[1:2]
                    for r in load_records(STUDY, s).values()]
    if n_base_wrong:
        lines += ["", f"Base-wrong anchors per run (t→v): about {_mean(n_base_wrong):.0f} of 500."]
    return "\n".join(lines)


CHOSEN = "chosen.json"  # benchmarks/runs/drgi-val/chosen.json: the val-chosen DRGI setting


def choose(seeds: list[int]) -> dict | None:
    """The val-chosen DRGI setting, by a rule fixed before the sweep ran: among the DRGI
    settings of the demo recipe (paired with "base"), the highest mean paired Δ t2v R@1 on val
    over all seeds (ties: the smaller std of Δ). Settings that change the recipe itself
    (vision block trained, 8 epochs) are measured against their own base but not chosen."""
    base = load_records(STUDY, BY_LABEL["base"])
    best = None
    for s in SETTINGS:
        if (s.base != "base" or "drgi.enable=true" not in s.overrides
                or "drgi.detach_inputs=true" in s.overrides):
            continue
        runs = {k: v for k, v in load_records(STUDY, s).items() if k in seeds}
        if len(runs) < len(seeds):
            continue
        p = paired(paired_diffs(runs, base, "t2v/R@1"))
        key = (p["mean"], -p["sd"])
        if best is None or key > best[0]:
            best = (key, s, p)
    if best is None:
        return None
    _, s, p = best
    last: dict[str, str] = {}  # one override per key, the later one winning (as in training)
    for o in s.overrides:
        if o != "drgi.enable=true":
            last[o.split("=", 1)[0]] = o
    overrides = list(last.values())
    return {"label": s.label, "overrides": overrides, "val_delta_t2v_r1": p,
            "rule": " ".join(choose.__doc__.split(":", 1)[1].split()),
            "seeds": seeds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once (1 thread each)")
    p.add_argument("--only", default="", help="setting labels separated by ; (default: all)")
    p.add_argument("--out", type=Path, default=Path("/tmp/drgi-val-runs"),
                   help="folder of the run folders (only the small records are kept)")
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--reuse-only", action="store_true", help="render the committed records")
    add_results_args(p)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    only = [x for x in args.only.split(";") if x]
    unknown = [x for x in only if x not in BY_LABEL]
    if unknown:
        p.error(f"unknown setting(s) {unknown}; expected some of {list(BY_LABEL)}")
    os.chdir(REPO)
    if not args.reuse_only:
        chosen = [s for s in SETTINGS if not only or s.label in only]
        # the demo recipe first (bases before DRGI), then the settings that change the recipe
        # (a trained vision block costs ~10x a frozen run)
        def order(s: Setting) -> tuple[bool, bool, bool]:
            changes = any(o in UNFROZEN + WHOLE_TOWER + LONG for o in s.overrides)
            vision = UNFROZEN[0] in s.overrides or WHOLE_TOWER[0] in s.overrides
            return (changes and vision, changes, s.base is not None)

        todo = [(s, seed) for s in sorted(chosen, key=order) for seed in seeds]
        t0 = time.perf_counter()
        run_all(STUDY, todo, args.out, jobs=args.jobs, retrain=args.retrain)
        print(f"trained in {(time.perf_counter() - t0) / 60:.0f} min", flush=True)
    command = command_line("benchmarks/drgi_val_sweep.py", argv).replace(" --reuse-only", "")
    body = render(seeds, command)
    # only a call over every setting chooses (a partial call, --only, must not overwrite it)
    chosen = None if only else choose(seeds)
    if chosen is not None:
        (RUNS / STUDY).mkdir(parents=True, exist_ok=True)
        (RUNS / STUDY / CHOSEN).write_text(json.dumps(chosen, indent=1) + "\n")
        d = chosen["val_delta_t2v_r1"]
        body += (f"\n\n**Chosen on val** (rule: {chosen['rule']}): *{chosen['label']}* "
                 f"(`{' '.join(chosen['overrides']) or 'the defaults'}`), val Δ t2v R@1 "
                 f"{fmt_paired(d)}. This setting, and the old default, go to the test table.")
    publish(args, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
