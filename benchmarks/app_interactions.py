"""App interactions in a real browser: how long a researcher waits after each action.

Serves the demo runs (after ``make app`` has exported their bundles) with ``python -m app`` on a
loopback port, drives headless Debian chromium with Playwright and times, from the action to
the moment the script is idle again and every plotly chart on the page is drawn:

- opening each page from the sidebar (first visit, then ``--reps`` later visits);
- widget changes on Compare (direction), Failures (rank threshold, run), Attention (graph
  kind), Embeddings (colour mode) and Hard negatives (top-k);
- a lasso on the Embeddings map;
- the first and the following live queries (the text tower's imports warm up in the
  background from app start, see ``app.warmup``).

With ``--baseline REF`` the app of that git ref is measured first (a temporary worktree sharing
this checkout's ``.venv`` and demo bundles), then this checkout's, and the table puts both p50
side by side.

Targets (issue "The app answers why"): every interaction <= 1 s p50, a lasso <= 2 s, on 2 cores.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/app_interactions.py [--reps 3] [--data DIR]
                                                                  [--baseline REF]

(``--data``: the datasets root to serve when this checkout's ``data/`` links elsewhere, which
the app's roots check refuses.)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.app_startup import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from benchmarks.results import add_results_args, command_line, load_note, publish  # noqa: E402

SECTION = "## App interactions"
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
RUNNING = "[data-testid=stApp][data-test-script-state=running]"
TARGET_S = 1.0
POINT_MAP = ".point-map"  # app.components.point_map's chart (data-drawn once its data is drawn)
# after two animation frames (the component's script gets a rerun's data asynchronously)
POINT_MAPS_DRAWN = """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
    () => done(document.querySelectorAll('.point-map:not([data-drawn])').length === 0))))"""
LASSO_TARGET_S = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoints: Path, data: Path, log_name: str = "drgi_app_interactions.log",
                 repo: Path = REPO) -> tuple[subprocess.Popen, str]:
    """``python -m app`` of the checkout ``repo`` on a free loopback port, serving
    ``checkpoints`` and ``data``; its output goes to ``log_name`` in the temporary folder."""
    port = _free_port()
    env = dict(os.environ, DRGI_LAB_CHECKPOINTS=str(checkpoints), DRGI_LAB_DATA=str(data),
               OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    log = open(Path(tempfile.gettempdir()) / log_name, "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "app", "--server.port", str(port)],
                            cwd=tempfile.gettempdir(), env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"the app did not become healthy on {url}; see {log.name}")
        time.sleep(0.3)


_FINISHED: dict[int, int] = {}  # id(page) -> script runs the server reported finished to it


def watch_runs(page) -> None:
    """Count the script runs the server reports finished to ``page``: Streamlit's
    ``script_finished`` messages on the page's websocket (a run cut short by a rerun is not
    counted; the rerun's own end is). Call before the page opens the app.

    The DOM cannot count them: the app element's ``data-test-script-state`` never reads
    "running" for a run whose start and end React applies in one render (a fast rerun), and a
    page switch may replace the element; a timing then included the full 3 s wait for a run
    that was never seen (the "open Live query (later visits)" rows read 3.1 s for ~0.2 s).
    """
    from google.protobuf.message import DecodeError
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    _FINISHED[id(page)] = 0
    early = ForwardMsg.FINISHED_EARLY_FOR_RERUN

    def frame(payload: bytes | str) -> None:
        if not isinstance(payload, bytes):
            return
        msg = ForwardMsg()
        try:
            msg.ParseFromString(payload)
        except DecodeError:
            return
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished != early:
            _FINISHED[id(page)] += 1

    page.on("websocket", lambda ws: ws.on("framereceived", frame))


def runs(page) -> int:
    """Script runs finished so far on ``page`` (see :func:`watch_runs`)."""
    if id(page) not in _FINISHED:
        raise RuntimeError("call watch_runs(page) before the page opens the app")
    return _FINISHED[id(page)]


def settle(page, before: int | None = None, timeout_ms: int = 120_000) -> bool:
    """Wait until one more script run than ``before`` has finished (when given; up to 3 s for
    it), then until the script is idle and every plotly chart on the page has drawn its SVG.
    Returns whether that run was seen (always True without ``before``)."""
    ran = True
    if before is not None:
        deadline = time.perf_counter() + 3.0
        hard = time.perf_counter() + timeout_ms / 1000
        # a run still going after 3 s (a loaded machine) is waited for while the app shows it
        while runs(page) <= before and (time.perf_counter() < deadline or (
                time.perf_counter() < hard and page.locator(RUNNING).count())):
            page.wait_for_timeout(10)  # lets Playwright deliver the websocket frames
        ran = runs(page) > before
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    n = page.locator("[data-testid=stPlotlyChart]").count()
    if n:
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=stPlotlyChart] .main-svg').length >= n",
            arg=n, timeout=timeout_ms)
    if page.locator(POINT_MAP).count():  # app.components.point_map: drawn its latest data
        page.wait_for_function(POINT_MAPS_DRAWN, timeout=timeout_ms, polling="raf")
    return ran


def timed(page, action: Callable[[], None], what: str = "", timeout_ms: int = 120_000) -> float:
    """Seconds from the start of ``action`` until :func:`settle` returns.

    ``what`` (a widget interaction) must start a script run: otherwise it changed nothing (a
    wrong selector would be timed as the 3 s wait) and RuntimeError is raised.
    """
    before = runs(page)
    t0 = time.perf_counter()
    action()
    if not settle(page, before, timeout_ms) and what:
        raise RuntimeError(f"{what} started no script run")
    return time.perf_counter() - t0


def open_page(page, title: str) -> None:
    page.locator("[data-testid=stSidebarNav] a").filter(has_text=title).first.click()


def choose(page, key: str, option: str) -> None:
    """Pick ``option`` of the radio or selectbox whose widget key is ``key``."""
    box = page.locator(f".st-key-{key}")
    if box.locator("[role=combobox]").count():  # a selectbox
        box.locator("button[aria-haspopup=listbox]").first.click()
        page.get_by_role("option", name=option, exact=True).first.click()
    else:
        box.get_by_text(option, exact=True).first.click()


def pick_radio(page, key: str, index: int) -> None:
    """Click option ``index`` of the radio whose widget key is ``key``."""
    page.locator(f".st-key-{key} [role=radiogroup] label").nth(index).click()


def nudge_slider(page, key: str, key_name: str) -> None:
    """Press ``key_name`` (e.g. ``ArrowLeft``) on the slider whose widget key is ``key``."""
    thumb = page.locator(f".st-key-{key} input[type=range]").first
    thumb.focus()
    thumb.press(key_name)


def set_number(page, key: str, value: int) -> None:
    field = page.locator(f".st-key-{key} input").first
    field.fill(str(value))
    field.press("Enter")


def lasso(page, half: float = 0.2) -> None:
    """A lasso over the middle of the first map on the page: a square of half-side ``half``
    of the plot's width and height. The map is the first point map
    (app.components.point_map, its own lasso button) or else the first plotly chart (plotly's
    lasso button): the same gesture on either."""
    from playwright.sync_api import Error as PlaywrightError

    plotly_lasso = "[data-testid=stPlotlyChart] [data-attr=dragmode][data-val=lasso]"
    page.wait_for_selector(f"{POINT_MAP}, {plotly_lasso}", state="attached")
    own = page.locator(POINT_MAP).count() > 0
    chart = page.locator(POINT_MAP if own else "[data-testid=stPlotlyChart]").first
    button = "[data-attr=pointmap][data-val=lasso]" if own else \
        "[data-attr=dragmode][data-val=lasso]"
    for attempt in range(3):  # a rerun still drawing may replace the chart under the locator
        try:
            chart.scroll_into_view_if_needed()  # a button below (Clear selection) may scroll
            chart.hover()
            chart.locator(button).first.click()
            break
        except PlaywrightError as exc:
            if "not attached" not in str(exc) or attempt == 2:
                raise
            page.wait_for_timeout(500)
    drag = chart.locator(".nsewdrag").first
    drag.wait_for(state="visible")
    box = drag.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    rx, ry = box["width"] * half, box["height"] * half
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in ((cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry)):
        page.mouse.move(x, y, steps=5)
    page.mouse.up()


def live_query(page, text: str) -> None:
    box = page.locator(".st-key-text input").first
    box.fill(text)
    box.press("Enter")


def measure(url: str, base: str, drgi: str, reps: int,
            only: set[str] | None = None) -> list[tuple[str, list[float], float]]:
    """Rows ``(interaction, seconds per repetition, target)``; with ``only`` (page titles)
    just the visits of those pages and the interactions on them (each later visit then comes
    from Overview)."""
    from playwright.sync_api import sync_playwright

    from app.pages import PAGES

    rows: list[tuple[str, list[float], float]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        watch_runs(page)
        t0 = time.perf_counter()
        page.goto(f"{url}/?base={base}&drgi={drgi}")
        settle(page)
        rows.append(("Overview, first load in a new tab", [time.perf_counter() - t0], TARGET_S))
        titles = [t for _, t, _, _ in PAGES]
        home = titles[0]
        if only:
            titles = [t for t in titles if t in only]
        order = [*titles[1:], titles[0]] if titles and titles[0] == home else titles
        first: dict[str, float] = {}
        later: dict[str, list[float]] = {t: [] for t in titles}
        at = home
        for visit in range(reps + 1):
            for t in order:
                if only and home not in (t, at):  # from Overview, not from the previous page
                    timed(page, lambda: open_page(page, home))
                took = timed(page, lambda t=t: open_page(page, t))
                at = t
                if visit:
                    later[t].append(took)
                else:
                    first[t] = took
        for t in titles:
            rows.append((f"open {t} (first visit)", [first[t]], TARGET_S))
            rows.append((f"open {t} (later visits)", later[t], TARGET_S))

        widget_steps = [
            ("Compare rankings", "Compare: direction t2v -> v2t -> t2v",
             lambda o: choose(page, "dir", o), ("v2t", "t2v")),
            ("Failures", "Failures: run base <-> DRGI",
             lambda i: pick_radio(page, "failures_run", i), (1, 0)),
            ("Attention graphs", "Attention: graph of a video <-> caption",
             lambda o: choose(page, "attn_kind", o), ("video", "caption")),
            ("Embeddings", "Embeddings: colour by video <-> modality",
             lambda o: choose(page, "emb_colour", o), ("video", "modality")),
            ("Failures", "Failures: rank threshold 1 -> 5 -> 1",
             lambda v: set_number(page, "failures_k", v), (5, 1)),
            ("Hard negatives", "Hard negatives: negatives shown -1 / +1 (slider)",
             lambda k: nudge_slider(page, "hn_k", k), ("ArrowLeft", "ArrowRight")),
        ]
        for title, label, act, options in widget_steps:
            if only and title not in only:
                continue
            if at == title:  # a sidebar click on the page shown starts no run
                timed(page, lambda: open_page(page, home))
            at = title
            timed(page, lambda title=title: open_page(page, title))
            rows.append((label, [timed(page, lambda o=o, act=act: act(o), label)
                                 for _ in range(reps) for o in options], TARGET_S))

        if not only or "Embeddings" in only:
            if at == "Embeddings":
                timed(page, lambda: open_page(page, home))
            timed(page, lambda: open_page(page, "Embeddings"))
            lassos = []
            for _ in range(reps):
                lassos.append(timed(page, lambda: lasso(page), "a lasso"))
                clear = page.get_by_role("button", name="Clear selection")
                if clear.count():  # back to no selection for the next lasso
                    timed(page, lambda clear=clear: clear.first.click(), "Clear selection")
            rows.append(("Embeddings: lasso on the map", lassos, LASSO_TARGET_S))
        if only and "Live query" not in only:
            browser.close()
            return rows
        timed(page, lambda: open_page(page, "Live query"))
        rows.append(("Live query: first query", [
            timed(page, lambda: live_query(page, "a red circle moves left"))], TARGET_S))
        rows.append(("Live query: later queries", [
            timed(page, lambda q=q: live_query(page, q)) for q in (
                "a blue square grows", "a green triangle spins then a red circle shrinks",
                "a yellow cross moves up")[:max(reps, 1)]], TARGET_S))
        browser.close()
    return rows


def render_pair(before: list[tuple[str, list[float], float]],
                after: list[tuple[str, list[float], float]], ref: str, command: str,
                load0: float, load1: float) -> str:
    """The table of ``--baseline``: p50 of the baseline and of this checkout per interaction."""
    lines = [
        f"Command: `{command}`",
        "",
        "Seconds from the action in headless chromium until the script is idle and every chart "
        "on the page is drawn; the demo runs (SynthVTT test, 500 x 500), each checkout served by "
        f"its own `python -m app`, the baseline ({ref}) first, then this checkout, in one run. "
        f"On {time.strftime('%Y-%m-%d')}.",
        "",
        f"| interaction | n | p50 s {ref} | p50 s now | max s now | target s | met now |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    old = {label: times for label, times, _ in before}
    for label, times, target in after:
        p50 = statistics.median(times)
        was = f"{statistics.median(old[label]):.2f}" if label in old else "—"
        lines.append(f"| {label} | {len(times)} | {was} | {p50:.2f} | {max(times):.2f} | "
                     f"{target:.0f} | {'yes' if p50 <= target else 'no'} |")
    lines += ["", load_note(load0, load1)]
    return "\n".join(lines)


def render(rows: list[tuple[str, list[float], float]], command: str, load0: float,
           load1: float, started: float) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "Seconds from the action in headless chromium until the script is idle and every chart "
        "on the page is drawn; the demo runs (SynthVTT test, 500 x 500), served by "
        f"`python -m app`. Server started {started:.1f} s before the first page was requested. "
        f"On {time.strftime('%Y-%m-%d')}.",
        "",
        "| interaction | n | p50 s | max s | target s | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, times, target in rows:
        p50 = statistics.median(times)
        lines.append(f"| {label} | {len(times)} | {p50:.2f} | {max(times):.2f} | "
                     f"{target:.0f} | {'yes' if p50 <= target else 'no'} |")
    lines += ["", load_note(load0, load1)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="repetitions of each interaction")
    p.add_argument("--base", default="demo-base")
    p.add_argument("--drgi", default="demo-drgi")
    p.add_argument("--data", type=Path, default=REPO / "data",
                   help="datasets root the app serves (DRGI_LAB_DATA), e.g. a checkout's own "
                   "data/ when this one links to it")
    p.add_argument("--baseline", metavar="REF",
                   help="first measure the app of this git ref (a temporary worktree sharing "
                   "this checkout's .venv and demo bundles), then this checkout's")
    p.add_argument("--only", nargs="+", metavar="PAGE",
                   help="measure only these pages (titles, e.g. Embeddings) and the "
                   "interactions on them; for iterating on one page, not for RESULTS.md")
    add_results_args(p)
    args = p.parse_args(argv)
    if not (REPO / "checkpoints" / args.base / "analysis").is_dir():
        p.error("export the demo bundles first (make app)")
    load0 = os.getloadavg()[0]
    if args.baseline:
        from benchmarks.app_startup import baseline_checkout

        with baseline_checkout(args.baseline) as tree:
            before = _measure_checkout(tree, args)
        after = _measure_checkout(REPO, args)
        publish(args, SECTION, render_pair(before, after, args.baseline, command_line(
            "benchmarks/app_interactions.py", argv), load0, os.getloadavg()[0]))
        return 0
    t0 = time.perf_counter()
    proc, url = start_server(REPO / "checkpoints", args.data.resolve())
    started = time.perf_counter() - t0
    try:
        rows = measure(url, args.base, args.drgi, args.reps, set(args.only or ()))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    body = render(rows, command_line("benchmarks/app_interactions.py", argv), load0,
                  os.getloadavg()[0], started)
    publish(args, SECTION, body)
    return 0


def _measure_checkout(repo: Path, args: argparse.Namespace) -> list[tuple[str, list[float], float]]:
    proc, url = start_server(repo / "checkpoints", args.data.resolve(), repo=repo)
    try:
        return measure(url, args.base, args.drgi, args.reps, set(args.only or ()))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
