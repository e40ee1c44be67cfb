"""An AppTest run in one test leaves no trace that breaks a multiprocessing spawn pool in a
later one (tests/conftest.py puts ``__main__`` back)."""

from __future__ import annotations

import multiprocessing

from streamlit.testing.v1 import AppTest


def _script() -> None:
    import streamlit as st

    st.write(undefined_in_a_worker)  # noqa: F821  (args of from_function, not module globals)


def test_an_apptest_run_from_a_function() -> None:
    at = AppTest.from_function(_script, default_timeout=60)
    at.run()  # the script's NameError is shown by the app, not raised here
    assert at.exception


def test_a_spawn_pool_after_it_starts_its_workers() -> None:
    # without the fixture each worker re-runs the AppTest script as its __main__, dies, and
    # is respawned: the task never runs
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply_async(abs, (-3,)).get(timeout=60) == 3
