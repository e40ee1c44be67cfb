"""The Queries page (the joined per-query table), drill-down to the other pages, J / K
stepping, the Overview verdict and the Compare Δ log-rank chart. AppTest on the tiny run pair
(tests/conftest.py ``app_env``)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from analysis.bundle import Bundle
from analysis.query_table import SORTS, bundle_query_table
from app.state import KEY_QUERY
from tests.helpers_app import assert_no_errors, open_page, split_meta, tables_with

PAGE = "app_pages/queries.py"
TABLE_KEY = "queries_table"


def _bundle(run) -> Bundle:
    return Bundle.load(run / "analysis" / "synthvtt-test", check=False)


def _table(at: AppTest) -> pd.DataFrame:
    found = [d for d in at.dataframe if getattr(d, "key", None) == TABLE_KEY]
    assert found, "no queries table"
    return found[0].value


def _click(at: AppTest, row: int) -> None:
    """What the browser sends when the user clicks row ``row`` of the table it shows."""
    at.session_state[TABLE_KEY] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert_no_errors(at)


def _caption_shown(at: AppTest) -> list[int]:
    return [int(m) for md in at.markdown for m in re.findall(r"\*\*Caption (\d+):\*\*", md.value)]


def _button(at: AppTest, key: str):
    found = [b for b in at.button if b.key == key]
    assert found, f"no button {key!r}: {[b.key for b in at.button]}"
    return found[0]


def test_queries_table_is_the_joined_table_sorted_by_the_change(app_env):
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    expected = bundle_query_table(base, drgi, k=1, synthvtt=split_meta(base))
    at = open_page(PAGE)
    shown = _table(at)
    assert len(shown) == base.num_texts
    assert {"query", "rank_base", "rank_drgi", "delta_log2", "status", "failure_type",
            "margin_base", "margin_drgi", "family", "edit", "disc_pos_drgi"} <= set(shown.columns)
    # default sort: Δ log2 rank, DRGI better first, ties by query id
    order = sorted(expected.index, key=lambda q: (expected.loc[q, "delta_log2"],
                                                  expected.loc[q, "delta_rank"], q))
    assert shown["query"].tolist() == order
    joined = shown.set_index("query").loc[expected.index]
    np.testing.assert_array_equal(joined["rank_base"], base.ranks.t2v)
    np.testing.assert_array_equal(joined["rank_drgi"], drgi.ranks.t2v)
    assert joined["status"].tolist() == expected["status"].tolist()
    np.testing.assert_allclose(joined["disc_pos_drgi"], drgi.drgi.text_queries.pos, rtol=1e-6)
    # the status line counts what is shown
    counts = expected["status"].value_counts()
    line = next(m.value for m in at.markdown if "queries shown" in m.value)
    for status in ("fixed", "broken", "both fail", "both fine"):
        assert f"{int(counts.get(status, 0))} {status}" in line
    # the group-by table: failure type x status, totals
    (groups,) = tables_with(at, "fixed", "broken", "both fail", "both fine", "all")
    assert groups.loc["all", "all"] == base.num_texts


def test_queries_filters_sort_and_export(app_env):
    at = open_page(PAGE)
    full = _table(at)
    status = full["status"].value_counts().index[0]
    at.multiselect(key="qt_status").select(status).run()
    assert_no_errors(at)
    shown = _table(at)
    assert len(shown) == int((full["status"] == status).sum()) and set(shown["status"]) == {
        status}
    at.selectbox(key="qt_sort").select("base rank (worst first)").run()
    shown = _table(at)
    ranks = shown["rank_base"].tolist()
    assert ranks == sorted(ranks, reverse=True)
    assert "base rank (worst first)" in SORTS
    # the export holds the filtered rows, in the order shown
    csv = next(b for b in at.get("download_button") if b.proto.label == "CSV")
    assert csv is not None
    from analysis.query_table import table_bytes  # the bytes the button serves
    data = table_bytes(shown.set_index("query"), "csv")
    back = pd.read_csv(io.BytesIO(data))
    assert back["query"].tolist() == shown["query"].tolist()


def test_queries_row_click_selects_the_query_and_j_k_step_through_the_list(app_env):
    at = open_page(PAGE)
    ids = [int(i) for i in _table(at)["query"]]
    _click(at, 2)
    assert at.number_input(key=KEY_QUERY).value == ids[2]
    assert _caption_shown(at) == [ids[2]]
    _button(at, "qt_step_next").click().run()
    assert_no_errors(at)
    assert at.number_input(key=KEY_QUERY).value == ids[3]
    _button(at, "qt_step_prev").click().run()
    _button(at, "qt_step_prev").click().run()
    assert at.number_input(key=KEY_QUERY).value == ids[1]
    # the highlighted row follows the stepped query
    assert at.session_state[TABLE_KEY]["selection"]["rows"] == [1]


def _open_on(at: AppTest, page: str) -> None:
    _button(at, f"qt_open_{page.removesuffix('.py')}").click().run()
    assert_no_errors(at)


def test_drill_down_opens_the_same_query_on_every_page(app_env):
    base = _bundle(app_env.base)
    at = open_page(PAGE)
    table = _table(at)
    # a query some run fails on, so the Failures page lists it
    failing = table[table["status"] != "both fine"]
    assert len(failing), "the tiny runs fail no query"
    q = int(failing["query"].iloc[-1])
    status = str(failing["status"].iloc[-1])
    _click(at, table["query"].tolist().index(q))
    assert at.number_input(key=KEY_QUERY).value == q

    _open_on(at, "failures.py")
    assert at.title[0].value == "Failures"
    assert at.number_input(key=KEY_QUERY).value == q
    assert at.radio(key="failures_run").value == ("base" if status == "fixed" else "DRGI")
    assert [int(m) for md in at.markdown
            for m in re.findall(r"^\*\*Caption (\d+):\*\*", md.value)] == [q]

    for page, title in (("hard_negatives.py", "Hard negatives"),
                        ("attention.py", "Attention graphs"), ("embeddings.py", "Embeddings"),
                        ("compare.py", "Compare rankings")):
        at.switch_page(PAGE).run()
        assert_no_errors(at)
        assert at.number_input(key=KEY_QUERY).value == q  # the query came back too
        _open_on(at, page)
        assert at.title[0].value == title
        assert at.number_input(key=KEY_QUERY).value == q, page
        assert any(base.captions[q] in md.value for md in at.markdown), page


def test_embeddings_highlights_the_query_its_ground_truth_and_top_negatives(app_env):
    base = _bundle(app_env.base)
    q = 3
    at = open_page("app_pages/embeddings.py", q=str(q))
    assert at.number_input(key=KEY_QUERY).value == q
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")
             if "emb_map_" in el.proto.id]
    assert specs
    for spec in specs:
        names = [t.get("name") for t in spec["data"]]
        assert f"caption {q}" in names and "its ground truth" in names
        assert "top negatives" in names
    gt = base.video_ids[int(base.text_to_video[q])]
    assert any(f"caption {q}" in md.value and gt in md.value for md in at.markdown)
    # on the base map the marks sit on the query's, the ground truth's and the negatives' points
    from analysis.embedding_map import map_points
    from analysis.rankings import top_k

    points = map_points(base.projections, "pca", base.text_to_video)
    texts, videos = points.block("texts"), points.block("videos")
    spec = next(json.loads(el.proto.spec) for el in at.get("plotly_chart")
                if "emb_map_base" in el.proto.id)
    marks = {t["name"]: (_array(t["x"]), _array(t["y"])) for t in spec["data"]}
    q_pt = texts[points.item[texts] == q]
    np.testing.assert_allclose(marks[f"caption {q}"][0], points.coords[q_pt, 0], rtol=1e-5)
    g = int(base.text_to_video[q])
    idx, _ = top_k(base.sim[q], 4)
    negs = [int(v) for v in idx if int(v) != g][:3]
    for name, vids in (("its ground truth", [g]), ("top negatives", negs)):
        pts = [int(videos[points.item[videos] == v][0]) for v in vids]
        np.testing.assert_allclose(marks[name][1], points.coords[pts, 1], rtol=1e-5)


def test_overview_opens_with_the_verdict(app_env):
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    at = open_page("app_pages/overview.py")
    verdicts = [m.value for m in at.markdown if "than base:" in m.value]
    assert len(verdicts) == 1, [m.value for m in at.markdown]
    assert at.main.markdown[0].value == verdicts[0]  # the page opens with it
    fixed = int(((base.ranks.t2v > 1) & (drgi.ranks.t2v == 1)).sum())
    broken = int(((base.ranks.t2v == 1) & (drgi.ranks.t2v > 1)).sum())
    assert f"fixed, {broken} broken" in verdicts[0]
    assert f"{fixed} quer" in verdicts[0]
    assert "paired sign-flip" in verdicts[0]


def _array(data) -> np.ndarray:
    """A plotly array as sent to the browser: a list, or typed ``{"dtype", "bdata"}``."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
    return np.asarray(data)


def test_compare_counts_tied_queries_on_the_delta_log_rank_chart(app_env):
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    at = open_page("app_pages/compare.py")
    charts = [json.loads(el.proto.spec) for el in at.get("plotly_chart")
              if "compare_map" in el.proto.id]
    assert len(charts) == 1
    trace = charts[0]["data"][0]
    x = _array(trace["x"])
    custom = _array(trace["customdata"]).reshape(len(x), 3)  # [query, count, DRGI rank]
    # one point per distinct (base rank, DRGI rank), sized by the queries it holds
    pairs = {}
    for a, b in zip(base.ranks.t2v.tolist(), drgi.ranks.t2v.tolist(), strict=True):
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
    shown = {(int(a), int(c[2])): int(c[1]) for a, c in zip(x, custom, strict=True)}
    assert shown == pairs
    assert int(custom[:, 1].sum()) == base.num_texts
    np.testing.assert_allclose(_array(trace["y"]), np.log2(custom[:, 2] / x))


def test_step_moves_through_the_list_and_clamps_at_the_ends():
    from app.components.drill import step

    ids = [7, 3, 9]
    assert step(ids, 3, 1) == 9 and step(ids, 3, -1) == 7
    assert step(ids, 9, 1) == 9 and step(ids, 7, -1) == 7  # clamped
    assert step(ids, 42, 1) == 7 and step(ids, 42, -1) == 9  # into the list from outside
    assert step(ids, None, 1) == 7
    assert step([], 3, 1) is None


def test_failing_run_prefers_drgi_then_base():
    from app.components.drill import failing_run

    assert failing_run({"base": 3, "DRGI": 2}) == "DRGI"
    assert failing_run({"base": 3, "DRGI": 1}) == "base"
    assert failing_run({"base": 1, "DRGI": 1}) is None
    assert failing_run({"base": 3, "DRGI": 2}, k=2) == "base"
    assert failing_run({"base": 3}) == "base"  # a page with the base run only


def test_page_state_makes_the_target_page_show_the_query():
    from app.components.drill import DRILL_PAGES, page_state
    from app.main import APP_DIR, PAGES

    files = {f for f, _, _, _ in PAGES}
    assert all(f"app_pages/{page}" in files and (APP_DIR / "app_pages" / page).is_file()
               for page, _, _ in DRILL_PAGES)
    assert page_state("failures.py", failing_run="DRGI", k=3) == {
        "failures_k": 3, "failures_types": [], "failures_search": "", "failures_run": "DRGI"}
    assert "failures_run" not in page_state("failures.py")  # fails in neither run
    assert page_state("compare.py") == {"dir": "t2v"}
    assert page_state("attention.py") == {"attn_kind": "caption"}


def test_drill_down_from_hard_negatives_failures_and_compare(app_env):
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    failing = np.flatnonzero(drgi.ranks.t2v > 1)
    assert failing.size, "the tiny DRGI run fails no query"
    q = int(failing[-1])
    at = open_page("app_pages/hard_negatives.py", q=str(q))
    _button(at, "hn_open_failures").click().run()
    assert_no_errors(at)
    assert at.title[0].value == "Failures"
    assert at.radio(key="failures_run").value == "DRGI"  # the run in which it fails
    assert at.number_input(key=KEY_QUERY).value == q
    assert _caption_shown(at) == [q]
    # AppTest keeps running the page it last switched to itself: follow the app's switch
    at.switch_page("app_pages/failures.py").run()
    assert _caption_shown(at) == [q]
    _button(at, "failures_open_compare").click().run()
    assert_no_errors(at)
    assert at.title[0].value == "Compare rankings"
    assert at.number_input(key=KEY_QUERY).value == q
    at.switch_page("app_pages/compare.py").run()
    _button(at, "compare_open_embeddings").click().run()
    assert_no_errors(at)
    assert at.title[0].value == "Embeddings"
    assert any(f"Marked: caption {q}**" in m.value and base.captions[q] in m.value
               for m in at.markdown)


def test_a_rerun_makes_no_export_bytes_and_reads_the_shared_failure_tables(app_env,
                                                                            monkeypatch):
    """At 59,800 captions the CSV and Parquet bytes took ~1.4 s per rerun and each failure
    table ~1 s to unpickle from st.cache_data: the bytes are now made when a button is
    clicked, and the failure tables are one shared object per bundle, left unchanged by the
    pages that extend them (Failures adds the other run's rank to its own copy)."""
    import analysis.query_table as query_table
    from analysis.bundle import bundle_dir_for
    from app import resources
    from app.state import AppRoots

    made: list[str] = []
    real = query_table.table_bytes
    monkeypatch.setattr(query_table, "table_bytes",
                        lambda table, fmt: made.append(fmt) or real(table, fmt))
    at = open_page(PAGE)
    at.run()
    assert_no_errors(at)
    assert made == []
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert all(buttons[label].HasField("deferred_file_id") for label in ("CSV", "Parquet"))

    at.switch_page("app_pages/failures.py").run()  # paired: other_rank and rank_change
    assert_no_errors(at)
    roots = AppRoots(app_env.checkpoints.resolve(), app_env.data.resolve())
    bundle = resources.load_bundle(roots, bundle_dir_for(app_env.base, "synthvtt", "test"))
    table = resources.failure_table(bundle, k=1, top=5)
    assert resources.failure_table(bundle, k=1, top=5) is table
    assert "other_rank" not in table.columns and "rank_change" not in table.columns
