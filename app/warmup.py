"""Background warm-up: the work of the first session starts when the app starts.

Two entry points, one thread per process:

- :func:`start_server_warm_up`, called by ``python -m app`` (:mod:`app.__main__`) before the
  Streamlit server starts. While the server starts and the first browser loads Streamlit's
  JavaScript, a daemon thread imports what the Overview page imports (pandas, scipy's
  statistics, the analysis modules: seconds on 2 cores), then, once Streamlit's runtime exists
  (so the app's caches are the server's), computes what the Overview reads
  (:func:`app.first_session.warm_overview`: the bundle scan, the default bundles, the paired
  tests, the model cards; none of it imports ``torch``), waits for the first script run to
  end (at most :data:`FIRST_RUN_WAIT_S`: a long step landing on its start would keep the first
  page waiting) and for the browser to draw it (:data:`FIRST_DRAW_S`), computes what the next
  pages share (the SynthVTT ground truth, each run's failure table, the Queries table:
  :func:`app.first_session.warm_next_pages`), imports every other page's modules and the live
  search's (``torch``, the model's parts, ``transformers``' CLIP), and loads the default runs'
  text towers (:func:`app.first_session.warm_live_search`). After every step it moves what
  it loaded out of the garbage collector's reach (``gc.freeze``), so the
  collection Streamlit runs after every script run (``runner.postScriptGC``) no longer walks
  all of torch and pandas each time (0.25–0.45 s a rerun on 2 cores before).
- :func:`start_warm_up`, called by ``app/main.py`` on every script run: returns that thread
  when the launcher started one, else (``streamlit run app/main.py``) starts one that imports
  only the live search's modules; the first live query used to wait ~10 s for them.

The thread and the script runs take turns (:func:`script_turn`): a script run waits for the
thread's current step (one import, or one cached computation) and the thread starts no step
while a script runs, nor within :data:`QUIET_S` of one, so a module is never imported in two
threads at once, a page never computes what the thread is computing, and someone clicking
through the pages is rarely kept waiting by the warm-up. The live search's steps (importing
torch and transformers, 1-3 s each on 2 cores, and loading the text towers) are the
exception: they come after every page's own imports, no page but the Live query imports or
computes any of it, so other pages' runs go on beside them (a click through the pages used
to wait for them), and the Live query page waits for the step in progress
(:func:`live_search_turn`).
While the thread runs, the interpreter switches threads every :data:`SWITCH_INTERVAL_S`
(:func:`_with_fast_switching`), so the server's event loop and the script runs are not held
up by its Python computation.
"""

from __future__ import annotations

import ast
import gc
import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from app.pages import PAGES

logger = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent

# what analysis.query.live_search_for_bundle imports on its first call: torch, the model's
# parts (the registry's built-in heads, objectives and backbone), transformers' CLIP in parts
# (each import is one step a click may have to wait for: ~1 s each instead of ~4 s)
LIVE_SEARCH_MODULES: tuple[str, ...] = (
    "torch",
    "analysis.query",
    "tvr.checkpoint",
    "tvr.models.temporal",
    "tvr.models.heads",
    "tvr.objectives",
    "tvr.models.backbone",
    "transformers.models.clip",
    "transformers.activations",
    "transformers.modeling_layers",
    "transformers.models.clip.modeling_clip",
)
# what the Overview imports on first use beyond its page's imports: the model cards check the
# run's config against the registry's built-in sections and traits (tvr.config.methods), which
# import no torch: torch waits for the live search's turn, after the first session's values
OVERVIEW_LAZY_MODULES: tuple[str, ...] = (
    "tvr.config",
    "tvr.config.methods",
    "analysis.cards",
)
RUNTIME_WAIT_S = 120.0  # how long the thread waits for Streamlit's runtime before giving up
# After the Overview's values the thread waits this long for the first script run to end before
# its long steps (the next pages' values, every page's imports, torch): one landing on the
# first run's start would keep the first page waiting (a step is never interrupted).
FIRST_RUN_WAIT_S = 20.0
# ...and this long after it: the browser fetches and compiles the charts' JavaScript and draws
# the first page for a second or two after its script run, and the thread's work would take
# CPU from it on 2 cores.
FIRST_DRAW_S = 2.5
# Streamlit logs this for every st.* call (a cached function's spinner) outside a session
_NO_CONTEXT = "missing ScriptRunContext"

_lock = threading.Lock()
_thread: threading.Thread | None = None
_report: dict[str, float | str] = {}
_t0 = time.perf_counter()  # when this module was imported (the launcher imports it first)
# Imports never run in the warm-up thread and a script run at once: two threads importing
# packages that import each other (pandas and pyarrow) can each be handed the other's
# half-initialised module ("partially initialized module 'pandas' has no attribute ...").
# A script run waits for the warm-up's current step; the warm-up waits for script runs.
_turns = threading.Condition()
_scripts = 0  # script runs in progress (or waiting for their turn)
_warming = False  # the warm-up thread is inside a step
# ...and that step is the live search's (its imports, the text towers): no page but the Live
# query imports or computes any of it (the others import no torch: tests/test_app_start_imports.py),
# so their script runs go on beside it, and the Live query waits (:func:`live_search_turn`)
_shared = False
_last_run = -float("inf")  # time.monotonic() when the last script run ended
# A step starts only after this many seconds without a script run: while someone clicks
# through the pages (reruns a second or two apart) the warm-up keeps out of their way, and
# a click rarely lands in a step it would have to wait for.
QUIET_S = 1.0
# the interpreter's thread switch interval while the warm-up thread runs (see
# _with_fast_switching; Python's default is 0.005)
SWITCH_INTERVAL_S = 0.0005


@contextmanager
def script_turn() -> Iterator[None]:
    """Around a script run (``app/main.py``): waits while the warm-up thread is inside a
    step (an import, or computing the first session's values), and keeps it from starting
    one until the run ends (and :data:`QUIET_S` after)."""
    global _scripts, _last_run
    with _turns:
        _scripts += 1
        _turns.wait_for(lambda: not _warming or _shared)
    try:
        yield
    finally:
        with _turns:
            _scripts -= 1
            _last_run = time.monotonic()
            _turns.notify_all()


def live_search_turn() -> None:
    """In a script run (inside :func:`script_turn`) that uses the live search: wait until the
    warm-up's live-search step in progress (an import of torch or transformers, a text tower)
    has ended; the warm-up starts no other while the run lasts."""
    with _turns:
        _turns.wait_for(lambda: not _warming)


@contextmanager
def _warm_step(shared: bool = False) -> Iterator[None]:
    """Around one step of the warm-up thread: starts when no script run is in progress and
    none ended in the last :data:`QUIET_S` seconds. When the step ends, what it loaded is
    moved out of the garbage collector's reach (``gc.freeze``; see :func:`_freeze`).

    A ``shared`` step (the live search's) lets script runs start beside it: only the Live
    query page needs what it loads, and it waits for it (:func:`live_search_turn`)."""
    global _warming, _shared
    with _turns:
        # one step at a time, should a second warm-up thread exist (tests start their own)
        _wait_quiet(QUIET_S, lambda: not _warming)
        _warming, _shared = True, shared
    try:
        yield
    finally:
        _freeze()
        with _turns:
            _warming = _shared = False
            _turns.notify_all()


def _wait_quiet(seconds: float, also: Callable[[], bool] = lambda: True) -> None:
    """With :data:`_turns` held: wait until no script run is in progress, none ended in the
    last ``seconds`` and ``also()`` holds."""
    while True:
        _turns.wait_for(lambda: _scripts == 0 and also())
        idle = time.monotonic() - _last_run
        if idle >= seconds:
            return
        _turns.wait(seconds - idle)


def _freeze() -> None:
    """Collect, then ``gc.freeze()``: every object alive after the step (what it imported or
    computed, most of it kept for the process's life) goes to the permanent generation, which
    the full collection Streamlit runs after every script run (``runner.postScriptGC``) no
    longer walks. Frozen after every step, not once at the end: the first visits of the
    pages, made while the warm-up still imports the live search's modules, each paid a
    collection over everything loaded so far (0.3–0.45 s on the demo, 2 cores), and so did
    the computations of the first session's later steps (a quarter of the failure tables'
    time at 59,800 captions). The collection first, so that no garbage of the step is frozen
    for good; it walks only what is not frozen yet (what this step and the script runs since
    the last one made), and the freeze itself splices lists."""
    gc.collect()
    gc.freeze()


def _import_all(modules: Iterable[str], shared: bool = False) -> None:
    for name in modules:
        if name in _report:
            continue
        with _warm_step(shared):
            t0 = time.perf_counter()
            try:
                importlib.import_module(name)
            except Exception as exc:  # a missing optional module must not break the app
                _report[name] = f"failed: {exc}"
                logger.warning("warm-up import of %s failed: %s", name, exc)
            else:
                _report[name] = time.perf_counter() - t0


def page_imports(page: str | Path) -> list[str]:
    """The modules a page script imports at its top level, in order (``import a.b`` gives
    ``a.b``; ``from a.b import c`` gives ``a.b``; relative imports are left out).

    Raises:
        OSError: the page cannot be read.
        SyntaxError: the page is not valid Python (naming the file).
    """
    tree = ast.parse(Path(page).read_text(encoding="utf-8"), filename=str(page))
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out += [n for n in names if n != "__future__" and n not in out]
    return out


def _pages_imports() -> list[list[str]]:
    """Every page's top-level imports, page by page (the first page, the Overview, first)."""
    out: list[list[str]] = []
    for file, *_ in PAGES:
        try:
            out.append(page_imports(APP_DIR / file))
        except (OSError, SyntaxError) as exc:
            logger.warning("warm-up: cannot read the imports of %s: %s", file, exc)
            out.append([])
    return out


class _QuietNoContext(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warning when the warm-up thread is the one
    calling a cached function (it has no session, by design)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (threading.current_thread() is _thread and _NO_CONTEXT in record.getMessage())


def _runtime_ready(timeout: float) -> bool:
    """Wait until Streamlit's runtime exists (the server's caches are then the app's)."""
    from streamlit import runtime

    deadline = time.monotonic() + timeout
    while not runtime.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _warm_session(warm: Callable[[], Iterable[tuple[str, float]]],
                  prefix: str = "first session", shared: bool = False) -> None:
    """Run ``warm``'s steps, each one a :func:`_warm_step` (``shared``: see there)."""
    no_context = _QuietNoContext()
    target = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    target.addFilter(no_context)
    try:
        with _warm_step(shared):
            steps = iter(warm())
        while True:
            with _warm_step(shared):  # a session may run between two steps
                step = next(steps, None)
            if step is None:
                break
            _report[f"{prefix}: {step[0]}"] = step[1]
    except Exception as exc:  # the session computes it then, and says what is wrong
        _report[prefix] = f"failed: {exc}"
        logger.warning("warm-up of the %s failed: %s", prefix, exc)
    finally:
        target.removeFilter(no_context)


def _first_run_ended(timeout: float, draw: float = FIRST_DRAW_S) -> bool:
    """Wait until a script run has ended (at most ``timeout`` seconds) and ``draw`` seconds
    passed without one since; whether one has ended."""
    with _turns:
        if not _turns.wait_for(lambda: _last_run > -float("inf"), timeout):
            return False
        _wait_quiet(draw)
        return True


def _server_warm_up(warm: Callable[[], Iterable[tuple[str, float]]],
                    warm_live: Callable[[], Iterable[tuple[str, float]]],
                    runtime_wait: float,
                    warm_next: Callable[[], Iterable[tuple[str, float]]] | None = None,
                    first_run_wait: float = FIRST_RUN_WAIT_S) -> None:
    pages = _pages_imports()
    # the app's own modules declare st caches, which bind to the runtime: import them after
    _import_all(m for m in pages[0] if m.split(".")[0] != "app")
    _import_all(OVERVIEW_LAZY_MODULES)
    ready = _runtime_ready(runtime_wait)
    if ready:
        _warm_session(warm)
    else:
        logger.warning("warm-up: Streamlit's runtime did not start within %.0f s; the first "
                       "session computes its own Overview", runtime_wait)
    if not _first_run_ended(first_run_wait):
        logger.info("warm-up: no page was opened within %.0f s; warming the rest", first_run_wait)
    if ready and warm_next is not None:
        _warm_session(warm_next)
    for modules in pages:
        _import_all(modules)
    _import_all(LIVE_SEARCH_MODULES, shared=True)
    if ready:
        _warm_session(warm_live, "live search", shared=True)
    _freeze()
    steps = {k: v for k, v in _report.items() if k.startswith(("first session", "live search"))
             or k in LIVE_SEARCH_MODULES}
    logger.info("warm-up done %.1f s after the app started: %s", time.perf_counter() - _t0,
                ", ".join(f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}"
                          for k, v in steps.items()))


def _default_warm() -> Iterator[tuple[str, float]]:
    from app.first_session import warm_overview
    from app.state import AppRoots

    return warm_overview(AppRoots.from_env())


def _default_warm_next() -> Iterator[tuple[str, float]]:
    from app.first_session import warm_next_pages
    from app.state import AppRoots

    return warm_next_pages(AppRoots.from_env())


def _default_warm_live() -> Iterator[tuple[str, float]]:
    from app.first_session import warm_live_search
    from app.state import AppRoots

    return warm_live_search(AppRoots.from_env())


def start_server_warm_up(
    warm: Callable[[], Iterable[tuple[str, float]]] = _default_warm,
    runtime_wait: float = RUNTIME_WAIT_S,
    warm_live: Callable[[], Iterable[tuple[str, float]]] = _default_warm_live,
    warm_next: Callable[[], Iterable[tuple[str, float]]] | None = _default_warm_next,
    first_run_wait: float = FIRST_RUN_WAIT_S,
) -> threading.Thread:
    """Start the server's warm-up thread (see the module docstring), once per process;
    returns it (calling again, or :func:`start_warm_up` after it, returns the same thread).

    Args:
        warm: computes the Overview's values once the runtime exists, one step per item it
            yields, ``(step, seconds)`` (default :func:`app.first_session.warm_overview` on
            the app's roots); a session may run between two steps.
        runtime_wait: seconds to wait for Streamlit's runtime before skipping ``warm``.
        warm_live: the same, after the live search's imports (default
            :func:`app.first_session.warm_live_search`: text towers and map placers).
        warm_next: the same, once the first script run has ended and :data:`FIRST_DRAW_S`
            passed without another (or ``first_run_wait`` seconds passed without a run):
            what the next pages share (default
            :func:`app.first_session.warm_next_pages`; None: nothing).
        first_run_wait: seconds to wait for the first script run to end after ``warm``.
    """
    return _start(_server_warm_up, (warm, warm_live, runtime_wait, warm_next, first_run_wait))


def start_warm_up(modules: Sequence[str] = LIVE_SEARCH_MODULES) -> threading.Thread:
    """Import ``modules`` in a daemon thread, started once per process; returns that thread
    (calling again returns the same one, started or finished, whichever warm-up it runs)."""
    return _start(_import_all, (tuple(modules),))


def _with_fast_switching(target: Callable[..., None], *args: object) -> None:
    """Run ``target(*args)`` with the interpreter's thread switch interval at
    :data:`SWITCH_INTERVAL_S` (restored after, unless someone else changed it meanwhile).

    The warm-up thread computes in Python for seconds (parsing the SynthVTT ground truth,
    typing failures, importing). Every time another thread waits (the server's event loop
    for the browser's messages, a script run for its turn or for I/O), it then needs the GIL
    back from the busy thread, which keeps it for up to the switch interval (5 ms by
    default): a click made during a step was read ~2 s late at 59,800 captions. A 1 ms sleep
    repeated 200 times took 3.1 s beside such a thread at 5 ms and 0.7 s at 0.5 ms (0.25 s
    alone), for ~5 % of the busy thread's throughput."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        target(*args)
    finally:
        if sys.getswitchinterval() == SWITCH_INTERVAL_S:
            sys.setswitchinterval(before)


def _start(target: Callable[..., None], args: tuple) -> threading.Thread:
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_with_fast_switching, args=(target, *args),
                                       name="drgi-lab-warm-up", daemon=True)
            _thread.start()
        return _thread


def warm_up_started() -> bool:
    """Whether :func:`start_warm_up` or :func:`start_server_warm_up` ran in this process."""
    return _thread is not None


def warm_up_report() -> dict[str, float | str]:
    """Seconds each warm-up import or first-session step took (or why it failed), for the
    ones done so far."""
    return dict(_report)
