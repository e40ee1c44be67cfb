"""The Failures page keeps its selection on query ids; the Live query heatmap has one column
per token position. AppTest on the tiny run pair (tests/conftest.py ``app_env``)."""

from __future__ import annotations

import json
import re

import numpy as np
import plotly.colors
import pytest
from streamlit.testing.v1 import AppTest

from analysis.bundle import Bundle
from app.state import KEY_QUERY
from tests.helpers_app import app_test, assert_no_errors, open_page

TABLE_KEY = "failures_table"
PAGE = "app_pages/failures.py"


def _bundle(run) -> Bundle:
    return Bundle.load(run / "analysis" / "synthvtt-test", check=False)


def _table(at: AppTest):
    found = [d for d in at.dataframe if getattr(d, "key", None) == TABLE_KEY]
    assert found, "no failures table"
    return found[0].value


def _click(at: AppTest, row: int) -> None:
    """What the browser sends when the user clicks row ``row`` of the table it shows."""
    at.session_state[TABLE_KEY] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert_no_errors(at)


def _details(at: AppTest) -> list[int]:
    """The captions whose detail the page shows."""
    return [int(m) for md in at.markdown for m in re.findall(r"^\*\*Caption (\d+):\*\*", md.value)]


def _selected_rows(at: AppTest) -> list[int]:
    state = at.session_state[TABLE_KEY]
    return [int(r) for r in state["selection"]["rows"]]


def _assert_shows(at: AppTest, q: int) -> None:
    """The detail, the picker, the URL and the table's highlighted row all name query ``q``."""
    assert at.number_input(key=KEY_QUERY).value == q
    url = at.query_params.get(KEY_QUERY)  # the bound widget leaves its default (0) out
    assert (url[0] if isinstance(url, list) else url) == (str(q) if q else None), url
    assert _details(at) == [q]
    ids = [int(i) for i in _table(at)["query"]]
    assert _selected_rows(at) == [ids.index(q)]


def test_failures_detail_follows_the_query_through_resorting(app_env):
    at = open_page(PAGE)
    by_rank = [int(i) for i in _table(at)["query"]]
    at.selectbox(key="failures_sort").select("query index").run()
    by_index = [int(i) for i in _table(at)["query"]]
    assert sorted(by_rank) == by_index
    moved = [r for r in range(len(by_rank)) if by_rank[r] != by_index[r]]
    assert moved, f"the tiny run's failures {by_rank} do not move when re-sorted"
    row = moved[0]
    q = by_rank[row]

    at.selectbox(key="failures_sort").select("rank (worst first)").run()
    _click(at, row)
    _assert_shows(at, q)
    # re-sort: the row position of q changes, the selected query does not
    at.selectbox(key="failures_sort").select("query index").run()
    assert_no_errors(at)
    _assert_shows(at, q)
    assert _selected_rows(at) != [row]
    # a click on the re-sorted table means the query shown in that row now
    other = by_index[0] if by_index[0] != q else by_index[1]
    _click(at, by_index.index(other))
    _assert_shows(at, other)
    at.selectbox(key="failures_sort").select("rank (worst first)").run()
    _assert_shows(at, other)


def _select_last_failure(at: AppTest) -> int:
    ids = [int(i) for i in _table(at)["query"]]
    assert ids, "the tiny base run has no failure at k=1"
    _click(at, len(ids) - 1)
    _assert_shows(at, ids[-1])
    return ids[-1]


def test_failures_query_hidden_by_a_filter_says_so_and_shows_nothing_else(app_env):
    at = open_page(PAGE)
    q = _select_last_failure(at)
    # the caption filter hides it (and everything else): say so, show no detail, keep ?q=
    at.text_input(key="failures_search").input("zzzz-no-caption-has-this").run()
    assert_no_errors(at)
    assert len(_table(at)) == 0
    assert at.number_input(key=KEY_QUERY).value == q
    assert _details(at) == []
    notes = [i.value for i in at.info if f"Caption {q}" in i.value]
    assert notes and "not in the table" in notes[0] and "filters" in notes[0]
    assert _selected_rows(at) == []
    at.text_input(key="failures_search").input("").run()
    _assert_shows(at, q)


def test_failures_query_above_the_threshold_says_so_and_shows_nothing_else(app_env):
    base = _bundle(app_env.base)
    at = open_page(PAGE)
    q = _select_last_failure(at)
    # "fails when rank >" at its rank: q no longer fails; other failures may stay in the table
    rank = int(base.ranks.t2v[q])
    at.number_input(key="failures_k").set_value(rank).run()
    assert_no_errors(at)
    shown = [int(i) for i in _table(at)["query"]]
    assert q not in shown
    assert at.number_input(key=KEY_QUERY).value == q
    assert _details(at) == []
    notes = [i.value for i in at.info if f"Caption {q}" in i.value]
    assert notes and f"ranks {rank}" in notes[0] and "not in the table" in notes[0]
    assert _selected_rows(at) == []
    # back to k=1: the same query is selected again
    at.number_input(key="failures_k").set_value(1).run()
    _assert_shows(at, q)


def test_failures_query_from_the_url_is_highlighted(app_env):
    at = open_page(PAGE)
    ids = [int(i) for i in _table(at)["query"]]
    q = ids[-1]
    at = open_page(PAGE, q=str(q))
    _assert_shows(at, q)


def test_failures_sort_by_rank_change_sorts_by_the_change(app_env):
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    at = open_page(PAGE)
    at.selectbox(key="failures_sort").select(
        "rank change vs the other run (this run worse first)").run()
    assert_no_errors(at)
    table = _table(at)
    q = table["query"].to_numpy()
    change = base.ranks.t2v[q] - drgi.ranks.t2v[q]
    np.testing.assert_array_equal(table["rank_change"], change)
    assert list(change) == sorted(change, reverse=True)


def test_failures_j_k_step_through_the_shown_failures(app_env):
    at = open_page(PAGE)
    ids = [int(i) for i in _table(at)["query"]]
    assert len(ids) >= 2, "the tiny base run fails fewer than two queries"
    _click(at, 0)
    next_ = next(b for b in at.button if b.key == "failures_step_next")
    next_.click().run()
    assert_no_errors(at)
    _assert_shows(at, ids[1])
    next(b for b in at.button if b.key == "failures_step_prev").click().run()
    _assert_shows(at, ids[0])


# ---------------------------------------------------------------------------- live query


def _live_heatmap(at: AppTest, label: str) -> dict:
    charts = [el for el in at.get("plotly_chart") if f"live_words_{label}" in el.proto.id]
    assert len(charts) == 1, [el.proto.id for el in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def test_live_query_heatmap_one_column_per_token_position(app_env):
    from analysis.query import live_search_for_bundle

    text = "a red circle and a red zebra"  # "a", "red" repeat; "zebra" is unknown
    at = app_test(text=text).run()
    at.switch_page("app_pages/live_query.py").run()
    if at.text_input(key="text").value != text:
        at.text_input(key="text").input(text).run()
    assert_no_errors(at)
    for run, label in ((app_env.base, "base"), (app_env.drgi, "DRGI")):
        search = live_search_for_bundle(run, _bundle(run))
        assert "zebra" in search.tokenizer.unknown_words(text)
        _, mask = search.tokenizer.encode(text, search.max_words)
        n_valid = int(mask.sum())
        result = search.search(text, int(at.number_input(key="live_k").value))

        spec = _live_heatmap(at, label)
        x = list(spec["data"][0]["x"])
        assert len(x) == n_valid and len(set(x)) == n_valid  # repeats stay distinct
        assert [s.split(":", 1)[0] for s in x] == [str(i) for i in range(n_valid)]
        tokens = [s.split(":", 1)[1] for s in x]
        assert tokens[0] == "<sot>" and tokens[-1] == "<eot>"
        assert tokens.count("a") == 2 and tokens.count("red") == 2
        # the unknown word is not shown as its letters
        n_zebra = search.tokenizer.num_tokens("zebra")
        assert sum("zebra" in t for t in tokens) == n_zebra
        assert not [t for t in tokens if len(t) == 1 and t != "a"]

        axis = spec["layout"]["coloraxis"]
        assert axis.get("cmid") is None  # not diverging around 0
        assert [c for _, c in axis["colorscale"]] == plotly.colors.sequential.Viridis
        assert axis["cmin"] == pytest.approx(float(np.min(result.word_scores)), abs=1e-5)
        assert axis["cmax"] == pytest.approx(float(np.max(result.word_scores)), abs=1e-5)
        title = spec["layout"]["title"]["text"]
        assert title == "Word relevance of each query token, per hit"
