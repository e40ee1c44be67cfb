"""app.warmup and app.first_session: the first session's work and the live search's heavy
imports run once, in the background, from the app's start."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from app import warmup
from tests.helpers_app import tables_with

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _unfreeze():
    """Warm-up steps freeze the garbage collector's objects (app.warmup._freeze); give them
    back to it after each test, so later tests in this process collect as usual."""
    yield
    import gc

    gc.unfreeze()


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    return proc.stdout


def test_warm_up_imports_in_a_daemon_thread_once() -> None:
    out = _run("""
        import sys, threading
        from app import warmup
        t = warmup.start_warm_up(("colorsys", "no_such_module_xyz"))
        assert t.daemon and t is not threading.main_thread()
        assert warmup.start_warm_up(("wave",)) is t  # once per process
        t.join(60)
        r = warmup.warm_up_report()
        print("colorsys" in sys.modules, isinstance(r["colorsys"], float),
              r["no_such_module_xyz"].startswith("failed"), "wave" in r)
    """)
    assert out.split() == ["True", "True", "True", "False"]


def test_app_start_warms_the_live_search_modules() -> None:
    out = _run("""
        import sys
        from streamlit.testing.v1 import AppTest
        from app import warmup
        assert not warmup.warm_up_started()
        at = AppTest.from_file("app/main.py", default_timeout=120).run()
        print(warmup.warm_up_started())
        warmup.start_warm_up().join(240)
        print(all(m in sys.modules for m in warmup.LIVE_SEARCH_MODULES),
              sorted(warmup.warm_up_report()) == sorted(warmup.LIVE_SEARCH_MODULES))
    """)
    assert out.split()[-3:] == ["True", "True", "True"]


def test_page_imports_lists_a_pages_top_level_imports(tmp_path) -> None:
    page = tmp_path / "page.py"
    page.write_text("from __future__ import annotations\nimport math, json as j\n"
                    "from analysis.rankings import top_k\nfrom . import sibling\n"
                    "import math\n\ndef f():\n    import wave\n")
    assert warmup.page_imports(page) == ["math", "json", "analysis.rankings"]
    page.write_text("import (\n")
    with pytest.raises(SyntaxError):
        warmup.page_imports(page)


def test_server_warm_up_imports_the_overview_then_warms_the_session_then_the_rest() -> None:
    out = _run("""
        import gc, sys
        from streamlit import runtime
        from app import warmup
        assert not warmup._runtime_ready(0.1)  # no server in this process
        seen = []
        def warm():
            seen.append(("analysis.rankings" in sys.modules,
                         "app.components.figures.projection_map" in sys.modules))
            yield "paired tests", 0.5
        runtime.exists = lambda: True  # as in the server, once Streamlit's runtime is up
        def warm_live():
            seen.append(all(m in sys.modules for m in warmup.LIVE_SEARCH_MODULES))
            yield "text tower", 0.25
        def warm_next():
            seen.append(("waited", warmup._last_run > -float("inf")))
            yield "query table", 0.75
        t = warmup.start_server_warm_up(warm, runtime_wait=5, warm_live=warm_live,
                                        warm_next=warm_next, first_run_wait=0.5)
        assert warmup.start_warm_up() is t  # app/main.py gets the launcher's thread
        t.join(240)
        r = warmup.warm_up_report()
        warmup._warm_session(lambda: 1 / 0)  # a failing warm-up is reported, not raised
        print(seen, r["first session: paired tests"], r["first session: query table"],
              r["live search: text tower"],
              all(m in sys.modules for m in warmup.LIVE_SEARCH_MODULES),
              "app.components.figures.projection_map" in sys.modules,
              gc.get_freeze_count() > 0, warmup.warm_up_report()["first session"])
    """)
    # the Overview's modules before the session's values; other pages' modules after; the next
    # pages' values after waiting for a first script run (none here: after first_run_wait)
    assert out.split() == ["[(True,", "False),", "('waited',", "False),", "True]", "0.5", "0.75",
                           "0.25", "True", "True", "True", "failed:", "division", "by", "zero"]


def test_server_warm_up_waits_for_the_first_run_before_its_long_steps() -> None:
    """torch, every page's imports and the next pages' values come after the first page's
    script run (a step under way when it starts would keep it waiting) and the browser's time
    to draw it, and not before."""
    out = _run("""
        import sys, time
        from streamlit import runtime
        from app import warmup
        runtime.exists = lambda: True
        seen = {}
        def warm():
            seen["overview"] = time.monotonic()
            yield "paired tests", 0.5
        def warm_next():
            seen["next"] = time.monotonic()
            yield "query table", 0.75
        t = warmup.start_server_warm_up(warm, runtime_wait=5, warm_live=lambda: iter(()),
                                        warm_next=warm_next, first_run_wait=60)
        while "overview" not in seen:
            time.sleep(0.05)
        time.sleep(1.0)
        torch_before = "torch" in sys.modules
        with warmup.script_turn():  # the first page's script run
            time.sleep(0.2)
        ended = time.monotonic()
        t.join(240)
        print("next" in seen, torch_before, seen["next"] - ended >= warmup.FIRST_DRAW_S - 0.05,
              "torch" in sys.modules)
    """)
    assert out.split() == ["True", "False", "True", "True"]


def test_first_session_is_computed_before_the_overview_asks(app_env, monkeypatch) -> None:
    import streamlit as st

    import analysis.cards
    import analysis.query_table
    import analysis.stats
    from analysis.bundle import Bundle
    from app.first_session import warm_first_session, warm_live_search
    from app.state import AppRoots
    from tests.helpers_app import app_test, assert_no_errors

    st.cache_data.clear()
    st.cache_resource.clear()
    calls: Counter[str] = Counter()

    def counted(name, fn):
        return lambda *a, **k: (calls.update([name]), fn(*a, **k))[1]

    monkeypatch.setattr(analysis.stats, "paired_summary",
                        counted("paired", analysis.stats.paired_summary))
    monkeypatch.setattr(analysis.cards, "model_card", counted("card", analysis.cards.model_card))
    monkeypatch.setattr(analysis.query_table, "bundle_query_table",
                        counted("query table", analysis.query_table.bundle_query_table))
    load = Bundle.__dict__["load"].__func__
    monkeypatch.setattr(Bundle, "load", classmethod(counted("load", load)))
    # the split's ground truth is aligned with the rows once: both runs' bundles hold the same
    # rows and share it (analysis.bundle.reader._shared_split_meta; the file itself is parsed
    # once too: tvr.data.synthvtt.read_meta)
    from collections import OrderedDict

    import tvr.data.synthvtt
    from analysis.bundle import reader

    monkeypatch.setattr(reader, "_shared_splits", OrderedDict())
    monkeypatch.setattr(tvr.data.synthvtt, "read_split_meta",
                        counted("meta", tvr.data.synthvtt.read_split_meta))
    import analysis.events
    import app.components.synthvtt

    monkeypatch.setattr(app.components.synthvtt, "alignment_table",
                        counted("alignment", analysis.events.alignment_table))

    done = dict(warm_first_session(AppRoots.from_env()))
    assert list(done) == ["scan", "bundle base", "bundle drgi", "paired tests", "card base",
                          "card drgi", "SynthVTT ground truth base",
                          "SynthVTT ground truth drgi", "failures base", "failures drgi",
                          "query table",
                          "attention-event alignment base text_frame",
                          "attention-event alignment drgi text_frame",
                          "attention-event alignment drgi gat"]
    # the SynthVTT ground truth aligned once for both runs (the failure tables behind the
    # Queries table reuse it); the Attention page's alignment over the split computed for each
    # source
    warmed = {"paired": 1, "card": 2, "load": 2, "meta": 1, "query table": 1, "alignment": 3}
    assert calls == warmed
    at = app_test().run()  # a new session on the Overview
    assert_no_errors(at)
    assert tables_with(at, "p_value", "ci_low") and len(tables_with(at, "field", "value")) == 2
    at.switch_page("app_pages/queries.py").run()  # then the per-query table
    assert_no_errors(at)
    assert tables_with(at, "rank_base", "rank_drgi")
    at.switch_page("app_pages/attention.py").run()  # reads both runs' SynthVTT ground truth
    assert_no_errors(at)
    at.switch_page("app_pages/failures.py").run()
    at.number_input(key="failures_k").set_value(3).run()  # a new threshold: a new table
    assert_no_errors(at)
    assert calls == warmed  # none computed again, the ground truth not parsed again

    from analysis import query

    monkeypatch.setattr(query, "live_search_for_bundle",
                        counted("tower", query.live_search_for_bundle))
    done = dict(warm_live_search(AppRoots.from_env()))
    assert list(done) == ["text tower base", "map placer base", "text tower drgi",
                          "map placer drgi"]
    at.switch_page("app_pages/live_query.py").run()
    at.text_input(key="text").input("a red circle moves left").run()
    assert_no_errors(at)
    assert len(at.get("plotly_chart")) >= 2  # both runs searched and drew their map
    assert calls["tower"] == 2  # the towers were loaded once, by the warm-up


def test_warm_up_steps_and_script_runs_take_turns() -> None:
    """Never an import in both threads at once: a step waits for script runs, a script run
    waits for the step in progress."""
    events: list[str] = []
    started: dict[str, float] = {}

    def step(name: str, inside: threading.Event | None = None,
             release: threading.Event | None = None) -> None:
        with warmup._warm_step():
            started[name] = time.monotonic()
            if inside is not None:
                inside.set()
                release.wait(30)
            events.append(name)

    def script(name: str) -> None:
        with warmup.script_turn():
            events.append(name)

    with warmup.script_turn():
        t = threading.Thread(target=step, args=("step",))
        t.start()
        t.join(0.3)
        assert t.is_alive()  # waiting for the script run to end
        events.append("script")
        ended = time.monotonic()  # just before the run ends
    t.join(30)
    # and for a quiet second after it (timed, not sampled: a loaded machine may keep this
    # thread off the CPU for longer than any join timeout)
    assert started["step"] - ended >= warmup.QUIET_S - 0.05
    inside, release = threading.Event(), threading.Event()
    t = threading.Thread(target=step, args=("long step", inside, release))
    t.start()
    assert inside.wait(30)
    s = threading.Thread(target=script, args=("next script",))
    s.start()
    s.join(0.3)
    assert s.is_alive()  # waiting for the step to end
    release.set()
    t.join(30)
    s.join(30)
    assert events == ["script", "step", "long step", "next script"]


def test_each_warm_up_step_freezes_what_it_loaded_and_leaves_no_garbage() -> None:
    """Objects a step keeps move out of the collector's reach when the step ends (a script run
    after it no longer walks them in Streamlit's post-run collection), and its cyclic garbage
    is collected first, not frozen for good."""
    import gc
    import weakref

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    kept: list[Node] = []
    garbage: list[weakref.ref] = []
    frozen: list[bool] = []

    def warm():
        kept.append(Node())
        dead = Node()
        garbage.append(weakref.ref(dead))
        del dead
        yield "first", 0.0
        frozen.append(gc.is_tracked(kept[0]) and not any(kept[0] is o
                                                           for o in gc.get_objects()))
        yield "second", 0.0

    gc.unfreeze()
    warmup._warm_session(warm, "test")
    assert frozen == [True]  # kept by the first step: frozen once it ended
    assert garbage[0]() is None  # its garbage collected, not frozen
    assert gc.get_freeze_count() > 0


def test_the_warm_up_thread_runs_with_a_short_switch_interval() -> None:
    """While the warm-up computes, other threads (the server's event loop, script runs) get
    the GIL back after :data:`app.warmup.SWITCH_INTERVAL_S`, not Python's 5 ms; restored after."""
    out = _run("""
        import sys
        from app import warmup
        seen = []
        warmup._import_all = lambda modules: seen.append(sys.getswitchinterval())
        before = sys.getswitchinterval()
        warmup.start_warm_up(("colorsys",)).join(60)
        print(before, seen == [warmup.SWITCH_INTERVAL_S], sys.getswitchinterval() == before)
    """)
    assert out.split() == ["0.005", "True", "True"]


def test_a_script_run_goes_on_beside_a_live_search_step() -> None:
    """A live-search step (torch, transformers, a text tower) does not hold up other pages'
    runs; the Live query page's run waits for it (live_search_turn), and another step waits
    for the run all the same."""
    inside, release = threading.Event(), threading.Event()
    events: list[str] = []

    def shared_step() -> None:
        with warmup._warm_step(shared=True):
            inside.set()
            release.wait(30)
            events.append("step")

    t = threading.Thread(target=shared_step)
    t.start()
    assert inside.wait(30)
    entered = threading.Event()

    def script() -> None:
        with warmup.script_turn():
            entered.set()
            events.append("page run")
            warmup.live_search_turn()
            events.append("live query")

    s = threading.Thread(target=script)
    s.start()
    assert entered.wait(5)  # beside the step, not after it
    s.join(0.3)
    assert s.is_alive() and events == ["page run"]  # the Live query part waits for the step
    release.set()
    t.join(30)
    s.join(30)
    assert events == ["page run", "step", "live query"]
