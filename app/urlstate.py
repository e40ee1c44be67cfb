"""The whole view in the URL: a link that writes every setting, and warnings for bad values.

Widgets bound to the URL (``bind="query-params"``) read their value from a link, but
Streamlit drops a parameter from the address bar while it equals the widget's default, so a
copied address bar depends on the defaults of the day (which runs are there, which split is
picked first). The sidebar therefore holds a **link to this view** (in a popover, with a copy
button): the page plus the URL form of every bound widget's current value, defaults included.
Pages call :func:`remember` after drawing a bound widget; ``app/main.py`` calls :func:`start_page` before the sidebar and
:func:`attach_link` after it.

A value in the URL that a widget cannot take (``?base=nope``, ``?split=msrvtt-test``,
``?q=99999``) is replaced by Streamlit with the widget's default without a word; pages call
:func:`check_choice` / :func:`check_choices` / :func:`check_index` before drawing the widget,
which shows an ``st.warning`` naming the parameter, the bad value and what is shown instead.
The warning stays while the widget keeps that fallback value.

URL forms: a selectbox or radio holds its *formatted* option (``format_func(option)``), a
multiselect one parameter per chosen option, a toggle ``true``/``false``, a number its digits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import streamlit as st

LINK = "_drgi_lab_link"  # session_state: {"page": url path, "params": {key: url form}}
WARNINGS = "_drgi_lab_url_warnings"  # session_state: {key: (bad value, fallback url form)}
_SLOT = "_drgi_lab_link_slot"  # session_state: the sidebar placeholder of this run, or None

UrlForm = str | list[str]


def url_form(value: Any, fmt: Callable[[Any], Any] | None = None) -> UrlForm:
    """The URL form of a widget value (see the module docstring); ``fmt`` is the widget's
    ``format_func`` (its labels are what the URL holds)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return [str(fmt(v) if fmt else v) for v in value]
    return str(fmt(value) if fmt else value)


def start_page(url_path: str) -> None:
    """Start recording the link of page ``url_path`` (call once per run, before the sidebar)."""
    st.session_state[LINK] = {"page": url_path, "params": {}}
    st.session_state[_SLOT] = None


def remember(key: str, value: Any, fmt: Callable[[Any], Any] | None = None) -> Any:
    """Record the value of the bound widget ``key`` for the view link; returns ``value``."""
    state = st.session_state.get(LINK)
    if isinstance(state, dict):
        state["params"][key] = url_form(value, fmt)
        _draw_link()
    return value


def link_params() -> dict[str, UrlForm]:
    """The parameters recorded in this run: every bound widget drawn so far."""
    state = st.session_state.get(LINK)
    return dict(state["params"]) if isinstance(state, dict) else {}


def view_link(page: str, params: dict[str, UrlForm], app_url: str | None) -> str:
    """The link to ``page`` (a url path, ``""`` for the default page) with ``params``.

    ``app_url`` is the browser's URL of the app (``st.context.url``: scheme, host and the
    current page's path); without it the link is relative to the server root.
    """
    query = urlencode(params, doseq=True)
    prefix = ""
    if app_url:
        parts = urlsplit(app_url)
        prefix = f"{parts.scheme}://{parts.netloc}"
    return f"{prefix}/{page}" + (f"?{query}" if query else "")


def attach_link(container: Any) -> None:
    """Draw the view link into ``container`` (an ``st.empty`` in the sidebar) and keep it up
    to date as the page records its widgets."""
    st.session_state[_SLOT] = container
    _draw_link()


def _draw_link() -> None:
    slot = st.session_state.get(_SLOT)
    state = st.session_state.get(LINK)
    if slot is None or not isinstance(state, dict):
        return
    url = view_link(state["page"], state["params"], st.context.url)
    # in a popover: the browser fetches the code block's syntax highlighter (1.5 MB of
    # JavaScript, ~0.5 s of the first page's main thread on 2 cores) only when it is opened
    with slot.container(), st.popover("Link to this view", icon=":material/link:"):
        st.caption("Every setting written out, defaults included (copy: the button at the "
                   "right):")
        st.code(url, language=None, wrap_lines=False)


# ------------------------------------------------------------------ bad values in the URL
def _warn(key: str, bad: str, used: UrlForm, message: str, container: Any) -> None:
    warnings = st.session_state.setdefault(WARNINGS, {})
    warnings[key] = (bad, used, message)
    (container if container is not None else st).warning(message, icon=":material/link_off:")


def _show_kept(key: str, fmt: Callable[[Any], Any] | None, container: Any) -> bool:
    """Show the warning recorded for ``key`` while its widget still holds the fallback;
    forget it once the user picked something else. Returns whether one was shown."""
    warnings = st.session_state.get(WARNINGS) or {}
    if key not in warnings:
        return False
    _, used, message = warnings[key]
    if key not in st.session_state or url_form(st.session_state[key], fmt) != used:
        del warnings[key]
        return False
    (container if container is not None else st).warning(message, icon=":material/link_off:")
    return True


def _raw(key: str) -> list[str]:
    try:
        return [str(v) for v in st.query_params.get_all(key)]
    except Exception:  # noqa: BLE001 - a proxy without the key reads as empty
        return []


def _first_load(key: str) -> bool:
    """Whether the URL can still seed widget ``key`` (it has no value in the session yet)."""
    return key not in st.session_state


def check_choice(key: str, options: Sequence[Any], used: Any, *, what: str,
                 fmt: Callable[[Any], Any] | None = None, container: Any = None) -> None:
    """Warn when ``?key=`` names none of ``options`` (call before drawing the widget).

    Args:
        key: the widget key (the URL parameter).
        options: the widget's options.
        used: the option the widget falls back to (its default).
        what: what the options are, for the message (e.g. "run under the checkpoints root").
        fmt: the widget's ``format_func``.
        container: where to show the warning (default: the page).
    """
    raw = _raw(key)
    if raw and _first_load(key):
        labels = [str(fmt(o) if fmt else o) for o in options]
        if raw[-1] not in labels:
            shown = ", ".join(labels[:8]) + (", …" if len(labels) > 8 else "")
            _warn(key, raw[-1], url_form(used, fmt),
                  f"The link's `{key}={raw[-1]}` is not a known {what} (choices: {shown}); "
                  f"showing `{key}={url_form(used, fmt)}` instead.", container)
            return
    _show_kept(key, fmt, container)


def check_choices(key: str, options: Sequence[Any], *, what: str,
                  fmt: Callable[[Any], Any] | None = None, container: Any = None) -> None:
    """Warn when ``?key=`` (a multiselect: one parameter per value) holds values that are not
    among ``options``; those are dropped (call before drawing the widget)."""
    raw = _raw(key)
    if raw and _first_load(key):
        labels = [str(fmt(o) if fmt else o) for o in options]
        bad = [v for v in raw if v not in labels]
        if bad:
            kept = [v for v in raw if v in labels]
            _warn(key, ", ".join(bad), kept,
                  f"The link's `{key}` holds {', '.join(f'`{b}`' for b in bad)}, not a known "
                  f"{what} (choices: {', '.join(labels)}); "
                  + (f"keeping {', '.join(kept)}." if kept else "the filter is left out."),
                  container)
            return
    _show_kept(key, fmt, container)


def check_index(key: str, n: int, used: int, *, what: str, lo: int = 0,
                span: str | None = None, container: Any = None) -> None:
    """Warn when ``?key=`` is not an integer in ``lo..n-1`` (call before drawing the number
    input, whose fallback is ``used``); ``span`` says what the range is (default "this split
    has lo–n-1")."""
    raw = _raw(key)
    if raw and _first_load(key):
        value = raw[-1]
        try:
            ok = lo <= int(value) < n
        except ValueError:
            ok = False
        if not ok:
            _warn(key, value, str(used),
                  f"The link's `{key}={value}` is not a {what} "
                  f"({span or f'this split has {lo}–{n - 1}'}); "
                  f"showing `{key}={used}` instead.", container)
            return
    _show_kept(key, None, container)
