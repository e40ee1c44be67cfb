"""Embeddings lasso in a real browser: where the time goes, and before vs after.

Serves the demo runs with ``python -m app`` (this checkout, and with ``--baseline REF`` also
that git ref's app from a temporary worktree), opens the Embeddings page of each in its own
browser context of one headless Debian chromium (``--disable-gpu``: WebGL is rasterised in
software by SwiftShader) and lassos the middle of the first map, alternately on each server,
``--reps`` times. Per lasso it reads:

- the wall time from the mouse-down to the idle script with every chart drawn
  (:func:`benchmarks.app_interactions.timed`);
- CPU seconds from ``/proc`` of the app server and of chromium's processes by type (GPU
  process, renderers, the rest), only one page being driven at a time;
- whether each map's plotly element survived the rerun (updated in place by ``Plotly.react``)
  or was mounted anew (a new WebGL context, ``Plotly.newPlot``).

With ``--profile`` one more lasso per server runs under a DevTools CPU profile of its renderer
and the table lists the largest self times by function and by script.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/embeddings_lasso.py [--reps 3] [--baseline REF]
                                                                  [--profile] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.app_interactions import (  # noqa: E402
    lasso,
    open_page,
    runs,
    settle,
    start_server,
    timed,
    watch_runs,
)
from benchmarks.app_startup import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from benchmarks.procfs import cpu_seconds, descendants  # noqa: E402
from benchmarks.results import add_results_args, command_line, load_note, publish  # noqa: E402

SECTION = "## Embeddings lasso: where the browser's time goes"
MARK_CHARTS = """() => document.querySelectorAll('.js-plotly-plot').forEach(
  el => { el.__drgiMark = true; })"""
COUNT_KEPT = """() => { const els = [...document.querySelectorAll('.js-plotly-plot')];
  return [els.filter(el => el.__drgiMark).length, els.length]; }"""


def _chromium_kind(pid: int) -> str | None:
    """``gpu``, ``renderer`` or ``other`` for a chromium process, None for any other."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    if "chrom" not in os.path.basename(cmd.split("\0")[0].split(" ")[0]):
        return None
    # a child rewrites its argv into one string: look for the flag anywhere
    kind = re.search(r"--type=([\w-]+)", cmd)
    return {"gpu-process": "gpu", "renderer": "renderer"}.get(kind.group(1) if kind else "",
                                                             "other")


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: ``server`` (the app and its children) and chromium's ``gpu``,
    ``renderer`` and ``other`` processes (those started by this process)."""
    out = {"server": sum(cpu_seconds(p) for p in descendants(server_pid)), "gpu": 0.0, "renderer": 0.0,
           "other": 0.0}
    for pid in descendants(os.getpid()):
        kind = _chromium_kind(pid)
        if kind is not None:
            out[kind] += cpu_seconds(pid)
    return out


def profile_summary(profile: dict, top: int = 12) -> tuple[list[tuple[str, float]],
                                                           list[tuple[str, float]], float]:
    """The largest self times (ms) of a DevTools CPU profile by function and by script, and
    the profile's total ms."""
    nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
    self_ms: dict[int, float] = defaultdict(float)
    deltas = profile.get("timeDeltas", [])
    samples = profile.get("samples", [])
    for i, node in enumerate(samples):  # a sample's time: the gap to the next sample
        if i + 1 < len(deltas):
            self_ms[node] += deltas[i + 1] / 1000
    by_fn: dict[str, float] = defaultdict(float)
    by_url: dict[str, float] = defaultdict(float)
    for node, ms in self_ms.items():
        frame = nodes[node]
        url = frame.get("url", "").rsplit("/", 1)[-1] or "(native)"
        name = frame.get("functionName") or "(anonymous)"
        by_fn[f"{name} · {url}:{frame.get('lineNumber', -1) + 1}" if frame.get("url")
              else name] += ms
        by_url[url if frame.get("url") else name] += ms
    total = sum(self_ms.values())
    return (sorted(by_fn.items(), key=lambda kv: -kv[1])[:top],
            sorted(by_url.items(), key=lambda kv: -kv[1])[:top], total)


def clear_selection(page) -> None:
    clear = page.get_by_role("button", name="Clear selection")
    if clear.count():
        clear.first.click()
        settle(page)


def one_lasso(page, server_pid: int, half: float) -> dict[str, float]:
    """One timed lasso (a square of half-side ``half``, see
    :func:`benchmarks.app_interactions.lasso`), then the selection cleared."""
    page.evaluate(MARK_CHARTS)
    c0 = cpu_snapshot(server_pid)
    drag: list[float] = []
    mid: list[dict[str, float]] = []

    def act() -> None:
        t0 = time.perf_counter()
        lasso(page, half)
        drag.append(time.perf_counter() - t0)
        mid.append(cpu_snapshot(server_pid))

    wall = timed(page, act, "a lasso")
    c1 = cpu_snapshot(server_pid)
    kept, charts = page.evaluate(COUNT_KEPT)
    gallery = page.locator("[data-testid=stImage] img").count()
    clear_selection(page)
    return {"wall": wall, "drag": drag[0], "after": wall - drag[0], **{k: c1[k] - c0[k] for k in c0},
            **{f"drag_{k}": mid[0][k] - c0[k] for k in c0}, "kept": kept, "charts": charts,
            "images": gallery}


def measure(servers: list[tuple[str, object, str]], args: argparse.Namespace) -> tuple[
        dict[str, list[dict[str, float]]], dict[str, dict]]:
    from playwright.sync_api import sync_playwright

    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in servers}
    profiles: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        pages = {}
        for name, _, url in servers:  # one context each: its own renderer process
            page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
            watch_runs(page)
            page.goto(f"{url}/?base={args.base}&drgi={args.drgi}")
            settle(page)
            timed(page, lambda page=page: open_page(page, "Embeddings"))
            pages[name] = page
        for name, proc, _ in servers:  # a warm-up lasso each (caches, shader compiles)
            one_lasso(pages[name], proc.pid, 0.15)
        for rep in range(args.reps):  # each lasso a different size: a new selection
            for name, proc, _ in servers:
                results[name].append(one_lasso(pages[name], proc.pid, 0.2 - 0.01 * (rep % 5)))
        if args.profile:  # the drag and the rerun after it, each under its own profile
            for name, _, _ in servers:
                page = pages[name]
                cdp = page.context.new_cdp_session(page)
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 500})
                before = runs(page)
                cdp.send("Profiler.start")
                lasso(page, 0.22)
                profiles[f"{name}, the drag"] = cdp.send("Profiler.stop")["profile"]
                cdp.send("Profiler.start")
                settle(page, before)
                profiles[f"{name}, the rerun after it"] = cdp.send("Profiler.stop")["profile"]
                cdp.send("Profiler.disable")
                clear_selection(page)
        browser.close()
    return results, profiles


def render(results: dict[str, list[dict[str, float]]], profiles: dict[str, dict], command: str,
           load0: float, load1: float) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "One lasso over the middle of the first Embeddings map (demo runs, SynthVTT test, "
        "500 x 500, default point budget), each checkout served by its own `python -m app` "
        "and driven alternately in its own context of one headless chromium (`--disable-gpu`); "
        "after one warm-up lasso each. Wall: from the lasso's first mouse move to the idle script "
        "with every chart drawn; *the drag*: the mouse moves of the lasso themselves (plotly "
        "selecting points as the lasso grows, or the point map of app.components.point_map "
        "drawing its overlay only). CPU seconds per lasso from `/proc`: the app server, chromium's GPU process "
        "(SwiftShader rasterising WebGL), its renderers (JavaScript, style, layout, paint), "
        "its other processes. *charts kept*: plotly chart elements updated in place by the "
        f"rerun, of all on the page. On {time.strftime('%Y-%m-%d')}.",
        "",
        "| checkout | n | wall s p50 (min–max) | the drag s | mouse-up to drawn s | server CPU s | GPU-process CPU s | renderer CPU s "
        "| other CPU s | browser CPU s | of which in the drag: GPU / renderer s | charts kept "
        "| gallery images |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        walls = [r["wall"] for r in rows]
        browser = med["gpu"] + med["renderer"] + med["other"]
        lines.append(
            f"| {name} | {len(rows)} | {med['wall']:.2f} ({min(walls):.2f}–{max(walls):.2f}) | "
            f"{med['drag']:.2f} | {med['after']:.2f} | {med['server']:.2f} | {med['gpu']:.2f} | {med['renderer']:.2f} | "
            f"{med['other']:.2f} | {browser:.2f} | {med['drag_gpu']:.2f} / "
            f"{med['drag_renderer']:.2f} | {int(med['kept'])} of {int(med['charts'])} "
            f"| {int(med['images'])} |")
    for name, prof in profiles.items():
        by_fn, by_url, total = profile_summary(prof)
        lines += ["", f"Renderer JavaScript profile of one lasso, {name} ({total / 1000:.2f} s "
                  "sampled; self time):", "", "| function · script:line | ms | | script | ms |",
                  "|---|---:|---|---|---:|"]
        for i in range(max(len(by_fn), len(by_url))):
            f = by_fn[i] if i < len(by_fn) else ("", None)
            u = by_url[i] if i < len(by_url) else ("", None)
            lines.append(f"| {f[0]} | {'' if f[1] is None else f'{f[1]:.0f}'} | | {u[0]} | "
                         f"{'' if u[1] is None else f'{u[1]:.0f}'} |")
    lines += ["", load_note(load0, load1)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="measured lassos per checkout")
    p.add_argument("--base", default="demo-base")
    p.add_argument("--drgi", default="demo-drgi")
    p.add_argument("--data", type=Path, default=REPO / "data",
                   help="datasets root the app serves (DRGI_LAB_DATA)")
    p.add_argument("--baseline", metavar="REF",
                   help="also serve the app of this git ref (a temporary worktree sharing this "
                   "checkout's .venv and demo bundles) and lasso on both alternately")
    p.add_argument("--profile", action="store_true",
                   help="one more lasso per checkout under a DevTools CPU profile")
    add_results_args(p)
    args = p.parse_args(argv)
    if not (REPO / "checkpoints" / args.base / "analysis").is_dir():
        p.error("export the demo bundles first (make app)")
    load0 = os.getloadavg()[0]
    with ExitStack() as stack:
        trees = [("now", REPO)]
        if args.baseline:
            from benchmarks.app_startup import baseline_checkout

            trees.insert(0, (args.baseline, stack.enter_context(baseline_checkout(args.baseline))))
        servers = []
        for name, tree in trees:
            proc, url = start_server(tree / "checkpoints", args.data.resolve(),
                                     log_name=f"drgi_embeddings_lasso_{len(servers)}.log",
                                     repo=tree)
            stack.callback(lambda proc=proc: (os.killpg(proc.pid, 15), proc.wait(timeout=30)))
            servers.append((name, proc, url))
        results, profiles = measure(servers, args)
    publish(args, SECTION, render(results, profiles, command_line(
        "benchmarks/embeddings_lasso.py", argv), load0, os.getloadavg()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
