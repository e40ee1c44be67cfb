"""The app at growing split sizes: page times, a lasso and the server's memory, both runs open.

For each size N (or NxK: K captions per test video; ``2990x20`` is the MSR-VTT full shape) the
SynthVTT dataset of :mod:`benchmarks.analysis_scale` is generated once under ``--data``, and
both demo runs (``checkpoints/demo-base``, ``checkpoints/demo-drgi``; their model files, log
and metrics copied, never the committed runs themselves) are exported on its test split into
``--work/<size>/<run>`` with :func:`benchmarks.analysis_scale.export`. An export is reused by
later invocations while its bundle is fresh (``--work`` keeps them; ``--reexport`` forces),
so the app part can be rerun alone.

Then ``python -m app`` serves ``--work/<size>`` (``DRGI_LAB_CHECKPOINTS``) and ``--data``
(``DRGI_LAB_DATA``), and headless Debian chromium (the harness of
:mod:`benchmarks.app_interactions`) opens ``?base=demo-base&drgi=demo-drgi`` and times, from
the click to the moment the script is idle and every chart is drawn:

- every page from the sidebar, first visit, then ``--reps`` later visits;
- a lasso on the Embeddings map (``--reps`` times).

The server's memory is read from ``/proc/<pid>/status`` (the server process and any children):
``VmRSS`` after each page's first visit and at the end, ``VmHWM`` (peak) at the end.

Targets (issue 13, MSR-VTT full shape, demo model, 2 cores): every page <= 3 s to idle, a
lasso <= 2 s, server RSS <= 2 GB with both runs open.

Prints the table and writes the ``## App at scale`` section of ``benchmarks/RESULTS.md``.

Usage:
    OMP_WAIT_POLICY=PASSIVE python benchmarks/app_scale.py [--sizes 500,5000,2990x20]
        [--work data/app-scale] [--reps 2] [--reexport] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from benchmarks.analysis_scale import RUN_FILES, copy_run, dataset, export, parse_size  # noqa: E402
from benchmarks.app_interactions import (  # noqa: E402
    lasso,
    open_page,
    settle,
    start_server,
    timed,
    watch_runs,
)
from benchmarks.app_startup import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from benchmarks.procfs import cpu_seconds, descendants  # noqa: E402
from benchmarks.results import add_results_args, command_line, load_note, publish  # noqa: E402

SECTION = "## App at scale"
RUNS = ("demo-base", "demo-drgi")
# the model plus what the Overview's model cards and Hard negatives' training diagnostics read
SERVED_FILES = (*RUN_FILES, "log.jsonl", "metrics.json")
STATS = "export.json"  # the export's figures, next to the run copy
PAGE_TARGET_S = 3.0
LASSO_TARGET_S = 2.0
RSS_TARGET_GB = 2.0
TIMEOUT_MS = 600_000  # a page at the largest size may take minutes: measure it, do not fail


def size_label(n: int, per_video: int) -> str:
    return f"{n}" + (f"x{per_video}" if per_video > 1 else "")


def prepared_run(src: Path, dest: Path, root: Path, threads: int, force: bool) -> dict:
    """``src`` copied to ``dest`` and exported on ``root``'s test split, or the earlier export
    when its bundle is still fresh; returns the export's figures
    (:func:`benchmarks.analysis_scale.export`) with ``reused``."""
    from analysis.bundle import bundle_dir_for, bundle_status, read_meta

    stats_file = dest / STATS
    if not force and stats_file.is_file():
        bundle = bundle_dir_for(dest, "synthvtt", "test")
        status = bundle_status(bundle, root)
        if status.state == "fresh" and read_meta(bundle).has_negatives:
            return {**json.loads(stats_file.read_text()), "reused": True}
        why = "; ".join(status.reasons) or "no ranked negatives"
        print(f"{dest}: bundle {status.state} ({why}), exporting again", flush=True)
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    copy_run(src, dest, SERVED_FILES)
    stats = export(dest, root, threads)
    stats_file.write_text(json.dumps(stats))
    return {**stats, "reused": False}


def server_memory_gb(pid: int) -> dict[str, float]:
    """GB of memory of process ``pid`` and its descendants, summed: ``rss`` (VmRSS),
    ``peak`` (VmHWM), and the RSS split into ``anon`` (RssAnon: the heap) and ``file``
    (RssFile: pages of memory-mapped files such as ``similarity.npy``, shared with the page
    cache and dropped under memory pressure)."""
    keys = {"rss": "VmRSS", "peak": "VmHWM", "anon": "RssAnon", "file": "RssFile"}
    out = dict.fromkeys(keys, 0.0)
    for p in descendants(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        for name, field in keys.items():
            out[name] += int(fields.get(field, "0 kB").split()[0]) * 1024 / 1e9
    return out


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants."""
    return sum(cpu_seconds(p) for p in descendants(pid))


def measure(url: str, pid: int, reps: int) -> dict:
    """Page times (first and later visits), lasso times, the server's CPU seconds of each
    (``*_cpu``) and its memory."""
    from playwright.sync_api import sync_playwright

    from app.main import PAGES

    titles = [t for _, t, _, _ in PAGES]
    out: dict = {"first": {}, "first_cpu": {}, "later": {t: [] for t in titles},
                 "later_cpu": {t: [] for t in titles}, "rss_after": {}}

    def visit(page, title: str) -> tuple[float, float]:
        cpu = server_cpu_s(pid)
        seconds = timed(page, lambda: open_page(page, title), timeout_ms=TIMEOUT_MS)
        return seconds, server_cpu_s(pid) - cpu

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        watch_runs(page)
        t0, cpu = time.perf_counter(), server_cpu_s(pid)
        page.goto(f"{url}/?base={RUNS[0]}&drgi={RUNS[1]}&split=synthvtt-test")
        settle(page, timeout_ms=TIMEOUT_MS)
        out["tab"], out["tab_cpu"] = time.perf_counter() - t0, server_cpu_s(pid) - cpu
        for t in [*titles[1:], titles[0]]:
            out["first"][t], out["first_cpu"][t] = visit(page, t)
            out["rss_after"][t] = server_memory_gb(pid)
            print(f"  {t}: {out['first'][t]:.2f} s (server CPU {out['first_cpu'][t]:.2f} s), "
                  f"server RSS {out['rss_after'][t]}", flush=True)
        for _ in range(reps):
            for t in [*titles[1:], titles[0]]:
                seconds, cpu = visit(page, t)
                out["later"][t].append(seconds)
                out["later_cpu"][t].append(cpu)
        timed(page, lambda: open_page(page, "Embeddings"), timeout_ms=TIMEOUT_MS)
        out["lasso"], out["lasso_cpu"] = [], []
        for _ in range(reps):
            cpu = server_cpu_s(pid)
            out["lasso"].append(timed(page, lambda: lasso(page), timeout_ms=TIMEOUT_MS))
            out["lasso_cpu"].append(server_cpu_s(pid) - cpu)
            clear = page.get_by_role("button", name="Clear selection")
            if clear.count():  # back to no selection for the next lasso
                clear.first.click()
                settle(page, timeout_ms=TIMEOUT_MS)
        browser.close()
    out["memory"] = server_memory_gb(pid)
    return out


def measure_size(work: Path, data: Path, reps: int, repo: Path = REPO) -> dict:
    proc, url = start_server(work, data, log_name="drgi_app_scale.log", repo=repo)
    try:
        return measure(url, proc.pid, reps)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render(sizes: list[dict]) -> list[str]:
    """The table: one row per page (first / later visit, wall and server CPU seconds), the
    lasso, memory and the exports; one column per size."""
    from app.main import PAGES

    med = statistics.median
    head = "| | " + " | ".join(f"{s['captions']:,} captions ({s['videos']:,} videos)"
                                 for s in sizes) + " | target | met at the largest |"
    lines = [head, "|---|" + "---:|" * len(sizes) + "---:|---|"]
    big = sizes[-1]
    lines.append("| open the app in a new tab (Overview) s [server CPU s] | " + " | ".join(
        f"{s['tab']:.1f} [{s['tab_cpu']:.1f}]" for s in sizes) + " | | |")
    for _, title, _, _ in PAGES:
        cells = [f"{s['first'][title]:.1f} / {med(s['later'][title]):.1f} "
                 f"[{s['first_cpu'][title]:.1f} / {med(s['later_cpu'][title]):.1f}]"
                 for s in sizes]
        worst = max(big["first"][title], med(big["later"][title]))
        lines.append(f"| {title}: first / later visit s [server CPU s] | " + " | ".join(cells)
                     + f" | {PAGE_TARGET_S:.0f} | {_yes(worst <= PAGE_TARGET_S)} |")
    lines.append("| Embeddings lasso s, p50 / max [server CPU s] | " + " | ".join(
        f"{med(s['lasso']):.1f} / {max(s['lasso']):.1f} [{med(s['lasso_cpu']):.1f}]"
        for s in sizes) + f" | {LASSO_TARGET_S:.0f} | "
        f"{_yes(med(big['lasso']) <= LASSO_TARGET_S)} |")
    lines.append("| server RSS GB at the end (heap + mapped files) / peak | " + " | ".join(
        f"{s['memory']['rss']:.2f} ({s['memory']['anon']:.2f} + {s['memory']['file']:.2f}) / "
        f"{s['memory']['peak']:.2f}" for s in sizes)
        + f" | {RSS_TARGET_GB:.0f} | {_yes(big['memory']['peak'] <= RSS_TARGET_GB)} |")
    lines.append("| export s, base / DRGI (forward included) | " + " | ".join(
        f"{s['export'][RUNS[0]]:.0f} / {s['export'][RUNS[1]]:.0f}" for s in sizes) + " | | |")
    lines.append("| bundle MB, base / DRGI | " + " | ".join(
        f"{s['bundle_mb'][RUNS[0]]:.0f} / {s['bundle_mb'][RUNS[1]]:.0f}" for s in sizes)
        + " | | |")
    return lines


def before_after_lines(before: dict, after: dict, label: str) -> list[str]:
    """Wall seconds [server CPU s] per page at one size, served by the baseline checkout and
    by this one, one after the other in the same run."""
    from app.main import PAGES

    med = statistics.median

    def cell(s: dict, title: str) -> str:
        return (f"{s['first'][title]:.1f} / {med(s['later'][title]):.1f} "
                f"[{s['first_cpu'][title]:.1f} / {med(s['later_cpu'][title]):.1f}]")

    lines = [f"| {label}: first / later visit s [server CPU s] | before ({before['repo']}) | "
             "after (this checkout) |", "|---|---:|---:|",
             f"| open the app in a new tab | {before['tab']:.1f} [{before['tab_cpu']:.1f}] | "
             f"{after['tab']:.1f} [{after['tab_cpu']:.1f}] |"]
    for _, title, _, _ in PAGES:
        lines.append(f"| {title} | {cell(before, title)} | {cell(after, title)} |")
    lines.append(f"| Embeddings lasso (p50) | {med(before['lasso']):.1f} "
                 f"[{med(before['lasso_cpu']):.1f}] | {med(after['lasso']):.1f} "
                 f"[{med(after['lasso_cpu']):.1f}] |")
    lines.append(f"| server RSS GB at the end / peak | {before['memory']['rss']:.2f} / "
                 f"{before['memory']['peak']:.2f} | {after['memory']['rss']:.2f} / "
                 f"{after['memory']['peak']:.2f} |")
    return lines


def rss_lines(sizes: list[dict]) -> list[str]:
    """Server RSS (heap + mapped files) after the first visit of each page, in visiting
    order."""
    from app.main import PAGES

    titles = [t for _, t, _, _ in PAGES]
    lines = ["| server RSS GB (heap + mapped files) after the first visit of | " + " | ".join(
        f"{s['captions']:,} captions" for s in sizes) + " |",
        "|---|" + "---:|" * len(sizes)]
    for t in [*titles[1:], titles[0]]:
        lines.append(f"| {t} | " + " | ".join(
            f"{m['rss']:.2f} ({m['anon']:.2f} + {m['file']:.2f})"
            for m in (s["rss_after"][t] for s in sizes)) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,5000,2990x20",
                        help="test split sizes (videos, or videos x captions per video)")
    parser.add_argument("--checkpoints", type=Path, default=REPO / "checkpoints",
                        help="where the demo runs are")
    parser.add_argument("--data", type=Path, default=REPO / "data",
                        help="where the datasets are generated (once); the app's data root")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "app-scale",
                        help="the exported run copies, reused while fresh")
    parser.add_argument("--reexport", action="store_true", help="export even when fresh")
    parser.add_argument("--reps", type=int, default=2, help="later visits of each page; lassos")
    parser.add_argument("--threads", type=int, default=2, help="OMP threads of the exports")
    parser.add_argument("--workers", type=int, default=2, help="generation processes")
    parser.add_argument("--export-only", action="store_true", help="prepare the bundles only")
    parser.add_argument("--baseline-repo", type=Path,
                        help="a checkout of an earlier commit (its own app code, this "
                        "checkout's harness and bundles): also measured at the largest size, "
                        "after this checkout, for a before/after table")
    add_results_args(parser)
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    data = args.data.resolve()
    prepared = []
    for n, per_video in sizes:
        root = dataset(data, n, per_video, args.workers)
        work = (args.work / size_label(n, per_video)).resolve()
        stats = {run: prepared_run(args.checkpoints / run, work / run, root, args.threads,
                                   args.reexport) for run in RUNS}
        print(size_label(n, per_video), stats, flush=True)
        prepared.append((work, stats))
    if args.export_only:
        return 0
    load_start = os.getloadavg()[0]
    rows = []
    for work, stats in prepared:
        print(f"serving {work}", flush=True)
        row = measure_size(work, data, args.reps)
        base = stats[RUNS[0]]
        row.update(videos=base["videos"], captions=base["captions"],
                   export={r: s["seconds"] for r, s in stats.items()},
                   bundle_mb={r: s["bundle_mb"] for r, s in stats.items()})
        rows.append(row)
        (work / "app.json").write_text(json.dumps(row))  # the raw figures, for the record
        print(json.dumps(row), flush=True)
    before = None
    if args.baseline_repo is not None:
        repo = args.baseline_repo.resolve()
        print(f"serving {prepared[-1][0]} from {repo}", flush=True)
        before = measure_size(prepared[-1][0], data, args.reps, repo=repo)
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        before["repo"] = commit or repo.name
        print(json.dumps(before), flush=True)
    load_end = os.getloadavg()[0]
    body = "\n".join([
        f"`{command_line('benchmarks/app_scale.py', argv)}`",
        "",
        "Both demo runs exported (UMAP and PCA maps, default point budget, float16 token "
        "features) on SynthVTT test splits of each size and open together in `python -m app` "
        "(`?base=demo-base&drgi=demo-drgi`); headless chromium times each page from the sidebar "
        "click until the script is idle and every chart is drawn (first visit, then the median "
        f"of {args.reps} later visits), and a lasso on the Embeddings map; in brackets the "
        "server process's CPU seconds over the same span (the rest of the wall time is the "
        "browser, and waiting for a core on this loaded machine). Server memory from `/proc` "
        "after every page was visited (`VmRSS` = `RssAnon`, the heap, + `RssFile`, pages of "
        "memory-mapped bundle files, shared with the page cache) and its peak (`VmHWM`). Export seconds are the "
        "cached exports' own figures (forward pass included; see \"Analysis export at scale\").",
        "",
        *render(rows),
        "",
        *rss_lines(rows),
        "",
        *([] if before is None else [
            f"Before and after this change at {rows[-1]['captions']:,} captions, the same "
            "bundles served by this checkout's app, then by the baseline checkout's, in the "
            "same run:",
            "",
            *before_after_lines(before, rows[-1], f"{rows[-1]['captions']:,} captions"),
            ""]),
        load_note(load_start, load_end),
        f"On {time.strftime('%Y-%m-%d')}.",
    ])
    publish(args, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
