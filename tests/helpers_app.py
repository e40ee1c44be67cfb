"""Driving the Streamlit app with AppTest: shared by test_app and test_app_pages_extra.

The ``app_env`` fixture (tests/conftest.py) points the app at the tiny run pair; these
helpers start the app, open a page and read what it drew.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app.main import APP_DIR

MAIN = str(APP_DIR / "main.py")
TIMEOUT = 120


def app_test(**query_params: str) -> AppTest:
    """An AppTest of ``app/main.py`` (not run yet) with ``query_params`` in its URL."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for key, value in query_params.items():
        at.query_params[key] = value
    return at


def assert_no_errors(at: AppTest) -> None:
    """Fail listing the exceptions and ``st.error`` messages the last run showed."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def open_page(page: str, **query_params: str) -> AppTest:
    """Run the app with ``query_params``, switch to ``page`` (e.g. ``app_pages/compare.py``),
    run it and check it showed no error."""
    at = app_test(**query_params).run()
    at.switch_page(page).run()
    assert_no_errors(at)
    return at


def tables_with(at: AppTest, *columns: str) -> list:
    """The dataframes that have all of ``columns``, as pandas frames."""
    return [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]


def table_with(at: AppTest, *columns: str):
    """The first dataframe that has all of ``columns``; fails when there is none."""
    found = tables_with(at, *columns)
    assert found, f"no table with columns {columns}"
    return found[0]
