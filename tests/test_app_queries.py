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
from tests.helpers_app import assert_no_errors, chart, open_page, split_meta, tables_with

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
    specs = [chart(at, f"emb_map_{label}") for label in ("base", "DRGI")]
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
    spec = chart(at, "emb_map_base")
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


# ------------------------------------------------------------------ one page of the table
PAGE_KEY = "qt_page"
ROWS = 3  # rows per page in these tests: the tiny split's 8 queries make pages of 3, 3, 2


def _paged(monkeypatch) -> None:
    import app.components.paging as paging

    monkeypatch.setattr(paging, "PAGE_ROWS", ROWS)


def _order(app_env) -> list[int]:
    """Every query of the split in the page's default order (Δ log2 rank, Δ rank, id)."""
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    t = bundle_query_table(base, drgi, k=1, synthvtt=split_meta(base))
    return sorted(t.index, key=lambda q: (t.loc[q, "delta_log2"], t.loc[q, "delta_rank"], q))


def _page_control(at: AppTest):
    found = [n for n in at.number_input if n.key == PAGE_KEY]
    return found[0] if found else None


def _ticked(at: AppTest) -> list[int]:
    return at.session_state[TABLE_KEY]["selection"]["rows"]


def _memo_ids(at: AppTest) -> list[int]:
    """The whole filtered, sorted list the page control last paged."""
    return [int(i) for i in at.session_state["_page_memo_" + PAGE_KEY][1]]


def test_small_tables_have_one_page_and_no_page_control(app_env):
    at = open_page(PAGE)
    assert len(_table(at)) == _bundle(app_env.base).num_texts
    assert _page_control(at) is None
    assert not any(re.search(r"rows \d+–\d+ of", c.value) for c in at.caption)


def test_queries_table_shows_one_page_of_the_sorted_rows(app_env, monkeypatch):
    _paged(monkeypatch)
    order = _order(app_env)
    at = open_page(PAGE)
    # a fresh session opens on the top of the list
    assert _page_control(at).value == 1 and _page_control(at).max == 3
    assert _table(at)["query"].tolist() == order[:ROWS]
    assert any(f"rows 1–3 of {len(order)}" in c.value for c in at.caption)
    _page_control(at).set_value(3).run()
    assert_no_errors(at)
    assert _table(at)["query"].tolist() == order[6:]
    assert any(f"rows 7–8 of {len(order)}" in c.value for c in at.caption)
    # the page is in the link to this view (the URL: see the link and J / K tests)
    assert any(f"{PAGE_KEY}=3" in c.value for c in at.sidebar.code)


def test_a_fresh_session_opens_on_page_1_and_a_link_query_on_its_page(app_env, monkeypatch):
    import app.components.paging as paging

    monkeypatch.setattr(paging, "PAGE_ROWS", 2)
    worst = "base rank (worst first)"
    at = open_page(PAGE, qt_sort=worst)
    ids = _memo_ids(at)
    assert ids.index(0) >= 2, "query 0 (the picker's default) is on page 1 of this sort"
    assert at.number_input(key=KEY_QUERY).value == 0
    assert _page_control(at).value == 1 and _ticked(at) == []
    at = open_page(PAGE, qt_sort=worst, q="0")
    assert _page_control(at).value == ids.index(0) // 2 + 1
    assert _table(at)["query"].tolist()[_ticked(at)[0]] == 0


def test_row_click_on_a_later_page_selects_that_query(app_env, monkeypatch):
    _paged(monkeypatch)
    order = _order(app_env)
    at = open_page(PAGE)
    _page_control(at).set_value(2).run()
    _click(at, 1)
    assert at.number_input(key=KEY_QUERY).value == order[4]
    assert _caption_shown(at) == [order[4]]
    assert _page_control(at).value == 2 and _ticked(at) == [1]


def test_j_k_across_a_page_boundary_move_the_page(app_env, monkeypatch):
    _paged(monkeypatch)
    order = _order(app_env)
    at = open_page(PAGE)
    _click(at, 2)  # the last row of page 1
    assert at.number_input(key=KEY_QUERY).value == order[2]
    _button(at, "qt_step_next").click().run()
    assert_no_errors(at)
    assert at.number_input(key=KEY_QUERY).value == order[3]
    assert _page_control(at).value == 2 and _ticked(at) == [0]
    assert _table(at)["query"].tolist() == order[3:6]
    assert at.query_params[PAGE_KEY] in ("2", ["2"])  # the moved page is written to the URL
    _button(at, "qt_step_prev").click().run()
    assert _page_control(at).value == 1 and _ticked(at) == [2]
    # J / K step through the whole list: its length, not the page's
    assert any(f"query 3 of {len(order)} in the list" in c.value for c in at.caption)
    # a page picked by hand stays (nothing ticked on it) until the query moves
    _page_control(at).set_value(3).run()
    assert _page_control(at).value == 3 and _ticked(at) == []
    # typing an index moves the page to the query's
    at.number_input(key=KEY_QUERY).set_value(order[5]).run()
    assert _page_control(at).value == 2 and _ticked(at) == [2]


def test_a_link_with_a_query_opens_on_its_page_and_a_link_page_wins(app_env, monkeypatch):
    _paged(monkeypatch)
    order = _order(app_env)
    at = open_page(PAGE, q=str(order[7]))
    assert _page_control(at).value == 3 and _ticked(at) == [1]
    # the link to this view brings the same page back, even away from the query's
    at = open_page(PAGE, q=str(order[7]), qt_page="2")
    assert_no_errors(at)
    assert not at.warning
    assert _page_control(at).value == 2 and _ticked(at) == []
    assert _table(at)["query"].tolist() == order[3:6]


def test_a_bad_page_in_the_link_is_warned_about_and_clamped(app_env, monkeypatch):
    _paged(monkeypatch)
    order = _order(app_env)
    for raw, page in (("99", 3), ("0", 1), ("two", 1)):
        at = open_page(PAGE, qt_page=raw)
        warnings = [w.value for w in at.warning if f"{PAGE_KEY}={raw}" in w.value]
        assert len(warnings) == 1, [w.value for w in at.warning]
        assert "pages 1–3" in warnings[0] and f"showing `{PAGE_KEY}={page}`" in warnings[0]
        assert _page_control(at).value == page
        assert _table(at)["query"].tolist() == order[(page - 1) * ROWS:page * ROWS]


def test_new_filters_go_to_the_page_of_the_selected_query_or_the_first(app_env, monkeypatch):
    _paged(monkeypatch)
    at = open_page(PAGE)
    full = _table(at)  # page 1
    q = int(full["query"].iloc[2])
    _click(at, 2)
    # a sort that moves the query to another page: the page follows it
    at.selectbox(key="qt_sort").select("base rank (worst first)").run()
    assert_no_errors(at)
    ids = _memo_ids(at)
    assert ids.index(q) // ROWS + 1 != 1, "pick a query that the sort moves off page 1"
    assert _page_control(at).value == ids.index(q) // ROWS + 1
    assert _table(at)["query"].tolist()[_ticked(at)[0]] == q
    # a filter that drops the query but leaves several pages: back to page 1
    base = _bundle(app_env.base)
    table = bundle_query_table(base, _bundle(app_env.drgi), k=1, synthvtt=split_meta(base))
    types = sorted(set(table["failure_type"]) - {table.loc[q, "failure_type"]})
    kept = table[table["failure_type"].isin(types)]
    assert len(kept) > ROWS, "the other failure types fill one page only"
    at.multiselect(key="qt_types").set_value(types).run()
    assert_no_errors(at)
    assert q not in _memo_ids(at) and sorted(_memo_ids(at)) == sorted(kept.index)
    assert _page_control(at).value == 1 and _ticked(at) == []
    assert _table(at)["query"].tolist() == _memo_ids(at)[:ROWS]


def test_counts_groups_and_export_use_every_filtered_row_not_the_page(app_env, monkeypatch):
    from streamlit.runtime.media_file_manager import MediaFileManager

    _paged(monkeypatch)
    deferred: dict[str, object] = {}
    real = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        deferred[str(file_name).rsplit(".", 1)[-1]] = data_callable
        return real(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    order = _order(app_env)
    at = open_page(PAGE)
    _page_control(at).set_value(2).run()
    assert_no_errors(at)
    assert len(_table(at)) == ROWS
    line = next(m.value for m in at.markdown if "queries shown" in m.value)
    assert line.startswith(f"**{len(order)}** of {len(order)} queries shown")
    (groups,) = tables_with(at, "fixed", "broken", "both fail", "both fine", "all")
    assert groups.loc["all", "all"] == len(order)
    assert any(f"Export the {len(order)} rows" in c.value for c in at.caption)
    for fmt, read in (("csv", pd.read_csv), ("parquet", pd.read_parquet)):
        back = read(io.BytesIO(deferred[fmt]()))
        back = back if "query" in back.columns else back.reset_index()
        assert back["query"].tolist() == order, fmt
    # the histograms count every row too
    from tests.helpers_app import chart

    hist = chart(at, "qt_hist_delta_log2")
    assert sum(_array(t["y"]).sum() for t in hist["data"]) == len(order)


def test_the_page_follows_a_query_picked_on_another_page(app_env, monkeypatch):
    _paged(monkeypatch)
    order = _order(app_env)
    at = open_page(PAGE)
    _page_control(at).set_value(3).run()
    _click(at, 1)
    assert at.number_input(key=KEY_QUERY).value == order[7]
    _open_on(at, "failures.py")
    at.switch_page(PAGE).run()  # back: the same query, on its page
    assert_no_errors(at)
    assert _page_control(at).value == 3 and _ticked(at) == [1]
    # a query picked on another page brings its own page
    at.switch_page("app_pages/compare.py").run()
    at.number_input(key=KEY_QUERY).set_value(order[4]).run()
    assert_no_errors(at)
    at.switch_page(PAGE).run()
    assert_no_errors(at)
    assert at.number_input(key=KEY_QUERY).value == order[4]
    assert _page_control(at).value == 2 and _ticked(at) == [1]
