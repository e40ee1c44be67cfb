"""App start-up: demo bundle export time, and `make app` to the first rendered page.

Measures, on the demo runs (after `make app` or `make demo`):

1. ``analysis.export`` of each demo run, forced (UMAP + PCA, thumbnails, DRGI attention), and the
   freshness check that a later ``make app`` does instead (``--no-export`` leaves both out);
2. ``make app`` with everything in place until the Overview page has drawn its charts in
   headless chromium (the issue's "second make app"), split into phases read from the browser:
   server up, page requested, the first script run started and ended (Streamlit's
   ``data-test-script-state``), charts drawn. The browser is started before ``make app``, as a
   user's browser is already open; the install step is not remade (``make -o .venv/.installed``:
   the warm case has nothing to install, and a checkout newer than the shared environment's stamp
   must not reinstall it);
3. with ``--baseline REF``: the same ``make app`` from a git worktree of ``REF`` (sharing this
   checkout's ``.venv``, ``data`` and demo bundles), alternated with this checkout ``--reps``
   times, so both are timed under the same load;
4. with ``--fresh-clone``: the same from a ``git clone`` of this repository into a temporary
   folder, install included (the "first make app"; pip's download cache is whatever this
   machine has).

    python benchmarks/app_startup.py [--no-export] [--reps 3] [--baseline REF] [--data DIR]
                                     [--fresh-clone]

(``--data``: the datasets root the app serves, ``DRGI_LAB_DATA``, when this checkout's ``data/``
links elsewhere, which the app's roots check refuses.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.results import add_results_args, command_line, load_note, publish  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTION = "## App start-up and demo export"
DEMO_RUNS = ("demo-base", "demo-drgi")
# the app element's script state changes, with the time each was seen (epoch ms)
WATCH_STATE = """() => { window.__drgiStates = [];
  new MutationObserver(ms => { for (const m of ms) window.__drgiStates.push(
    [m.target.getAttribute('data-test-script-state'), performance.timeOrigin + performance.now()]);
  }).observe(document, {attributes: true, subtree: true,
                        attributeFilter: ['data-test-script-state']}); }"""
PHASES = (
    ("healthy", "server up"),
    ("requested", "page requested"),
    ("script_start", "first script run starts"),
    ("script_end", "first script run ends"),
    ("drawn", "Overview drawn with its charts"),
)


def _env(data: Path | None = None, port: int | None = None) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    if data is not None:
        env["DRGI_LAB_DATA"] = str(data)
    if port is not None:  # Streamlit reads its options from STREAMLIT_* variables too
        env["STREAMLIT_SERVER_PORT"] = str(port)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop ``make`` and everything it started (its process group), and wait for all of it."""
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(proc.pid, 9)


def time_export(repo: Path, force: bool) -> float:
    """Wall seconds of ``python -m analysis.export --demo`` (``--force``: rebuild both)."""
    cmd = [str(repo / ".venv" / "bin" / "python"), "-m", "analysis.export", "--demo", "--quiet"]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *(["--force"] if force else [])], cwd=repo, env=_env(), check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _wait_healthy(proc: subprocess.Popen, log: Path, port: int) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"make app exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                        timeout=1) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.1)


def time_make_app(repo: Path, log: Path, browser=None, *, install: bool = True,
                  data: Path | None = None) -> dict[str, float]:
    """Seconds from ``make app`` to each of :data:`PHASES` (``healthy``: the server answers;
    ``drawn``: the Overview shows its plotly charts and the script is idle).

    Args:
        browser: a started Playwright browser to open the page in (None: start chromium after
            the server is up, as the first measurements did).
        install: let make remake the install step (False: ``-o .venv/.installed``).
        data: ``DRGI_LAB_DATA`` for the app.
    """
    from playwright.sync_api import sync_playwright

    cmd = ["make", *([] if install else ["-o", ".venv/.installed"]), "app"]
    port = _free_port()  # not make app's 8501, which another app on this machine may hold
    t0 = time.time()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=repo, env=_env(data, port), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    out: dict[str, float] = {}
    try:
        _wait_healthy(proc, log, port)
        out["healthy"] = time.time() - t0
        with (sync_playwright() if browser is None else _nothing()) as p:
            own = None
            if browser is None:
                own = browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                                  args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.add_init_script(f"({WATCH_STATE})()")
            out["requested"] = time.time() - t0
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("[data-testid=stPlotlyChart] .main-svg", timeout=600_000)
            page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]",
                                   timeout=600_000)
            out["drawn"] = time.time() - t0
            states = page.evaluate("window.__drgiStates")
            starts = [t for s, t in states if s == "running"]
            ends = [t for s, t in states if s == "notRunning" and starts and t > starts[0]]
            if starts:
                out["script_start"] = starts[0] / 1e3 - t0
            if ends:
                out["script_end"] = ends[0] / 1e3 - t0
            page.close()
            if own is not None:
                own.close()
    finally:
        _stop(proc)
    return out


@contextmanager
def _nothing():
    yield None


@contextmanager
def baseline_checkout(ref: str):
    """A git worktree of ``ref`` in a temporary folder, sharing this checkout's ``.venv`` and
    ``data`` and a copy of its demo bundles; removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="drgi-baseline-"))
    tree = tmp / "repo"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), ref], cwd=REPO,
                   check=True)
    try:
        (tree / ".venv").symlink_to((REPO / ".venv").resolve())
        for entry in (REPO / "data").iterdir():
            if not (tree / "data" / entry.name).exists():
                (tree / "data" / entry.name).symlink_to(entry.resolve())
        for run in DEMO_RUNS:
            shutil.copytree(REPO / "checkpoints" / run / "analysis",
                            tree / "checkpoints" / run / "analysis", dirs_exist_ok=True)
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                       check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def _median_rows(label: str, runs: list[dict[str, float]]) -> list[tuple[str, str]]:
    rows = []
    for key, what in PHASES:
        values = [r[key] for r in runs if key in r]
        if values:
            target = " (target <= 5 s, issue 14)" if key == "drawn" else ""
            spread = f" ({min(values):.1f}–{max(values):.1f})" if len(values) > 1 else ""
            rows.append((f"{label}: {what}{target}",
                         f"{statistics.median(values):.1f}{spread}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fresh-clone", action="store_true",
                   help="also time `make app` on a fresh clone (install included)")
    p.add_argument("--no-export", action="store_true",
                   help="leave out the forced and the fresh-bundle export timings")
    p.add_argument("--reps", type=int, default=1, help="warm `make app` runs (each variant)")
    p.add_argument("--baseline", metavar="REF",
                   help="also time `make app` of this git ref, alternated with this checkout")
    p.add_argument("--data", type=Path, default=None,
                   help="datasets root the app serves (DRGI_LAB_DATA)")
    add_results_args(p)
    args = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows: list[tuple[str, str]] = []
    data = args.data.resolve() if args.data else None
    if args.fresh_clone:
        with tempfile.TemporaryDirectory(prefix="drgi-fresh-") as tmp:
            clone = Path(tmp) / "repo"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            first = time_make_app(clone, Path(tmp) / "make_app.log")
            rows += [("first `make app` on a fresh clone: server up (install, SynthVTT, both "
                      "exports incl. UMAP's first compile)", f"{first['healthy']:.0f}"),
                     ("first `make app` on a fresh clone: Overview drawn (target <= 600 s)",
                      f"{first['drawn']:.0f}")]
    if not (REPO / "checkpoints" / "demo-base" / "analysis").is_dir():
        p.error("export the demo bundles first (make app)")
    if not args.no_export:
        forced = time_export(REPO, force=True)
        fresh = time_export(REPO, force=False)
        rows += [
            ("`python -m analysis.export --demo --force`: both demo bundles (500 x 500, UMAP + "
             "PCA, thumbnails, DRGI attention)", f"{forced:.1f}"),
            ("`python -m analysis.export --demo` with fresh bundles (hash check only)",
             f"{fresh:.1f}"),
        ]
    from playwright.sync_api import sync_playwright

    log = Path(tempfile.gettempdir()) / "drgi_make_app.log"
    variants: list[tuple[str, Path]] = [("this checkout", REPO)]
    results: dict[str, list[dict[str, float]]] = {}
    with (baseline_checkout(args.baseline) if args.baseline else _nothing()) as base_tree:
        if base_tree is not None:
            variants.insert(0, (f"baseline {args.baseline}", base_tree))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for _ in range(max(args.reps, 1)):
                for label, tree in variants:
                    results.setdefault(label, []).append(
                        time_make_app(tree, log, browser, install=False, data=data))
            browser.close()
    for label, _ in variants:
        rows += _median_rows(f"second `make app`, {label}", results[label])
    if args.baseline:
        before = statistics.median(r["drawn"] for r in results[variants[0][0]])
        after = statistics.median(r["drawn"] for r in results["this checkout"])
        rows.append(("Overview drawn, baseline / this checkout", f"{before / after:.2f}x"))
    n = max(args.reps, 1)
    body = "\n".join([
        f"Command: `{command_line('benchmarks/app_startup.py', argv)}`",
        "",
        "Wall time in seconds from `make app` (median of "
        f"{n} run{'s' if n > 1 else ''}, range in brackets); the Overview counts as drawn when "
        "headless chromium, started beforehand, shows its plotly charts and the script is idle; "
        "the script-run phases are when the browser saw Streamlit's script state change. On "
        f"{time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}.",
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {label} | {value} |" for label, value in rows),
        "",
        load_note(load0, os.getloadavg()[0]),
    ])
    publish(args, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
