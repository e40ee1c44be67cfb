"""The analysis export at growing split sizes: time, peak memory and bundle size.

For each size N (or NxK: K captions per test video, ``--test-captions``; ``2990x20`` is the
MSR-VTT full shape) a SynthVTT dataset with an N-video test split (64 px, the demo's shape) is
generated once under ``--data`` (``data/synthvtt-scale-<N>[x<K>]``), and the
demo run (``checkpoints/demo-base``, copied without its bundles into a temporary folder so the
committed run is never touched) is exported on it in a fresh process:
``python -m analysis.export --run COPY --root DATA --split test --projection umap,pca --force``
with the default ``--projection-budget`` and ``--token-dtype``. The table gives the export's
wall time (model forward included), the process's peak RSS (``wait4``), the bundle's size and
its largest files, and how many map points were fitted vs placed.

Prints the table and writes the ``## Analysis export at scale`` section of
``benchmarks/RESULTS.md``.

Usage:
    OMP_WAIT_POLICY=PASSIVE python benchmarks/analysis_scale.py [--sizes 500,5000,2990x20]
        [--no-write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from benchmarks.results import add_results_args, command_line, load_note, publish  # noqa: E402

SECTION = "## Analysis export at scale"
RUN_FILES = ("config.json", "model.safetensors", "encoder.json", "tokenizer")


def parse_size(text: str) -> tuple[int, int]:
    """``"500"`` -> (500, 1); ``"2990x20"`` -> (2990, 20)."""
    videos, _, per = text.strip().partition("x")
    return int(videos), int(per or 1)


def dataset(data: Path, n_test: int, per_video: int, workers: int) -> Path:
    """``data/synthvtt-scale-<N>[x<K>]``: SynthVTT with an ``n_test``-video test split of
    ``per_video`` captions each (generated once; train and val are tiny)."""
    from tvr.data.synthvtt import generate

    out = data / (f"synthvtt-scale-{n_test}" + (f"x{per_video}" if per_video > 1 else ""))
    generate(out, seed=0, n_train=8, n_val=8, n_test=n_test, test_captions=per_video,
             workers=workers, progress=False)
    return out


def copy_run(run: Path, dest: Path, names: tuple[str, ...] = RUN_FILES) -> Path:
    """The run's files ``names`` (default: the model's; never bundles or train state) in
    ``dest``."""
    dest.mkdir(parents=True)
    for name in names:
        src = run / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def export(run: Path, root: Path, threads: int) -> dict[str, float | int]:
    """Export ``run`` on ``root``'s test split in a child process; time, peak RSS, bundle."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "analysis.export", "--run", str(run), "--dataset", "synthvtt",
           "--root", str(root), "--split", "test", "--projection", "umap,pca", "--force",
           "--quiet", "--device", "cpu"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    log = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export failed ({' '.join(cmd)}):\n{log[-3000:]}")
    from analysis.bundle import Bundle, bundle_dir_for

    b = Bundle.load(bundle_dir_for(run, "synthvtt", "test"), check=False)
    disk = b.disk_bytes()
    proj = b.info.projections
    points = sum(proj.kinds.values())
    fitted = sum(proj.fitted.values()) if proj.fitted else points
    return {
        "videos": b.num_videos, "captions": b.num_texts, "seconds": seconds,
        "rss_gb": usage.ru_maxrss / 1e6,  # KiB on Linux
        "bundle_mb": disk["total"] / 1e6,
        "sim_mb": disk["similarity"] / 1e6, "emb_mb": disk["embeddings"] / 1e6,
        "points": points, "fitted": fitted,
        "map_s": sum(m.get("seconds", 0.0) for m in proj.methods.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,5000", help="test split sizes (videos)")
    parser.add_argument("--run", type=Path, default=ROOT / "checkpoints" / "demo-base")
    parser.add_argument("--data", type=Path, default=ROOT / "data",
                        help="where the datasets are generated (once)")
    parser.add_argument("--threads", type=int, default=2, help="OMP threads of the export")
    parser.add_argument("--workers", type=int, default=2, help="generation processes")
    add_results_args(parser)
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="analysis-scale-") as tmp:
        for n, per_video in sizes:
            root = dataset(args.data, n, per_video, args.workers)
            run = copy_run(args.run, Path(tmp) / f"{args.run.name}-{n}x{per_video}")
            rows.append(export(run, root, args.threads))
            print(rows[-1], flush=True)
    lines = [
        "| test videos | captions | export s | of which maps s | peak RSS GB | bundle MB | "
        "similarity.npy MB | embeddings MB | map points fitted / all |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['videos']:,} | {r['captions']:,} | {r['seconds']:.0f} | {r['map_s']:.0f} | "
            f"{r['rss_gb']:.2f} | {r['bundle_mb']:.0f} | {r['sim_mb']:.0f} | {r['emb_mb']:.0f} | "
            f"{r['fitted']:,} / {r['points']:,} |"
        )
    body = "\n".join([
        f"`{command_line('benchmarks/analysis_scale.py', argv)}`",
        "",
        f"`python -m analysis.export` of `{args.run.name}` (UMAP and PCA maps, default point "
        "budget and float16 token features) on SynthVTT test splits of each size, "
        f"in a fresh process with {args.threads} OMP threads; the export "
        "time includes the model's forward pass and the single decode of each video.",
        "",
        *lines,
        "",
        load_note(load_start, os.getloadavg()[0]),
    ])
    publish(args, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
