"""App start-up: demo bundle export time, and `make app` to the first rendered page.

Measures, on the demo runs (after `make app` or `make demo`):

1. ``analysis.export`` of each demo run, forced (UMAP + PCA, thumbnails, DRGI attention), and the
   freshness check that a later ``make app`` does instead;
2. ``make app`` with everything in place until the Overview page has drawn its charts in
   headless chromium (the issue's "second make app");
3. with ``--fresh-clone``: the same from a ``git clone`` of this repository into a temporary
   folder, install included (the "first make app"; pip's download cache is whatever this
   machine has).

    python benchmarks/app_startup.py [--fresh-clone]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.results import add_results_args, command_line, load_note, publish  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PORT = 8501  # make app serves the default port
SECTION = "## App start-up and demo export"


def _env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")


def time_export(repo: Path, force: bool) -> float:
    """Wall seconds of ``python -m analysis.export --demo`` (``--force``: rebuild both)."""
    cmd = [str(repo / ".venv" / "bin" / "python"), "-m", "analysis.export", "--demo", "--quiet"]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *(["--force"] if force else [])], cwd=repo, env=_env(), check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def time_make_app(repo: Path, log: Path) -> tuple[float, float]:
    """Seconds from ``make app`` to a healthy server, and to the Overview with its charts."""
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "app"], cwd=repo, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"make app exited with {proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/_stcore/health",
                                            timeout=1) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                time.sleep(0.2)
        healthy = time.perf_counter() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{PORT}/")
            page.wait_for_selector("[data-testid=stPlotlyChart] .main-svg", timeout=600_000)
            page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]",
                                   timeout=600_000)
            first_page = time.perf_counter() - t0
            browser.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    return healthy, first_page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fresh-clone", action="store_true",
                   help="also time `make app` on a fresh clone (install included)")
    add_results_args(p)
    args = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows: list[tuple[str, str]] = []
    if args.fresh_clone:
        with tempfile.TemporaryDirectory(prefix="drgi-fresh-") as tmp:
            clone = Path(tmp) / "repo"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            healthy, first = time_make_app(clone, Path(tmp) / "make_app.log")
            rows += [("first `make app` on a fresh clone: server up (install, SynthVTT, both "
                      "exports incl. UMAP's first compile)", f"{healthy:.0f}"),
                     ("first `make app` on a fresh clone: Overview drawn (target <= 600 s)",
                      f"{first:.0f}")]
    if not (REPO / "checkpoints" / "demo-base" / "analysis").is_dir():
        p.error("export the demo bundles first (make app)")
    forced = time_export(REPO, force=True)
    fresh = time_export(REPO, force=False)
    healthy, first = time_make_app(REPO, Path(tempfile.gettempdir()) / "drgi_make_app.log")
    rows += [
        ("`python -m analysis.export --demo --force`: both demo bundles (500 x 500, UMAP + PCA, "
         "thumbnails, DRGI attention)", f"{forced:.1f}"),
        ("`python -m analysis.export --demo` with fresh bundles (hash check only)", f"{fresh:.1f}"),
        ("second `make app`: server up", f"{healthy:.1f}"),
        ("second `make app`: Overview drawn with its charts (target <= 5 s, issue 14)", f"{first:.1f}"),
    ]
    body = "\n".join([
        f"Command: `{command_line('benchmarks/app_startup.py', argv)}`",
        "",
        "Wall time in seconds; the Overview counts as drawn when headless chromium shows its "
        f"plotly charts and the script is idle. On {time.strftime('%Y-%m-%d')}, Python "
        f"{sys.version.split()[0]}.",
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
