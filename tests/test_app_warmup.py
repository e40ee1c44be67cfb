"""app.warmup: the live search's heavy imports run once, in the background."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
