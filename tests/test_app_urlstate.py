"""Full state in the URL: the sidebar's link to this view writes every setting (defaults
included), page widgets read theirs from a link, and values a widget cannot take are warned
about, naming the parameter, the bad value and what is shown instead. AppTest on the tiny run
pair (tests/conftest.py ``app_env``)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
from streamlit.testing.v1 import AppTest

from app.components.palette import RUN_COLOURS, run_colour
from app.urlstate import url_form, view_link
from tests.helpers_app import app_test, assert_no_errors, open_page, page_bundle


def _link(at: AppTest) -> tuple[str, dict[str, list[str]]]:
    """The page path and parameters of the sidebar's link to this view."""
    codes = [c.value for c in at.sidebar.code if "?" in c.value]
    assert codes, "no link to this view in the sidebar"
    parts = urlsplit(codes[-1])
    return parts.path, parse_qs(parts.query, keep_blank_values=True)


def _warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_view_link_writes_lists_and_keeps_the_host():
    url = view_link("failures", {"q": "0", "failures_types": ["a b", "c"]},
                    "http://localhost:8501/compare")
    assert url == "http://localhost:8501/failures?q=0&failures_types=a+b&failures_types=c"
    assert view_link("", {}, None) == "/"
    assert url_form(True) == "true" and url_form([1, 2], lambda v: f"#{v}") == ["#1", "#2"]


def test_link_writes_the_defaults(app_env):
    at = app_test().run()
    assert_no_errors(at)
    path, params = _link(at)
    assert params["base"] == [app_env.base.name]
    assert params["drgi"] == [app_env.drgi.name]
    assert params["split"] == ["synthvtt-test"]


def test_unknown_sidebar_values_are_warned_about(app_env):
    at = app_test(base="nope", split="msrvtt-test").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(_warnings(at))
    assert "base=nope" in shown and f"base={app_env.base.name}" in shown
    assert "split=msrvtt-test" in shown and "split=synthvtt-test" in shown
    assert at.sidebar.selectbox(key="base").value == app_env.base.name
    at.run()  # still shown on the next run while the fallback is kept
    assert "base=nope" in " ".join(_warnings(at))


def test_out_of_range_query_and_bad_page_values_are_warned_about(app_env):
    at = app_test(q="99999", failures_sort="nope", failures_types="made-up").run()
    at.switch_page("app_pages/failures.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(_warnings(at))
    assert "q=99999" in shown and "q=0" in shown
    assert "failures_sort=nope" in shown and "failures_sort=rank (worst first)" in shown
    assert "made-up" in shown
    assert at.number_input(key="q").value == 0
    assert at.selectbox(key="failures_sort").value == "rank (worst first)"


def test_bad_colour_mode_is_warned_about(app_env):
    at = app_test(emb_colour="rainbow").run()
    at.switch_page("app_pages/embeddings.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(_warnings(at))
    assert "emb_colour=rainbow" in shown
    assert f"emb_colour={at.selectbox(key='emb_colour').value}" in shown


def test_failures_state_round_trip(app_env):
    at = app_test(failures_run="DRGI", failures_k="2", failures_sort="query index",
                  failures_search="a", q="3").run()
    at.switch_page("app_pages/failures.py").run()
    assert_no_errors(at)
    assert not _warnings(at)
    assert at.radio(key="failures_run").value == "DRGI"
    assert at.number_input(key="failures_k").value == 2
    assert at.selectbox(key="failures_sort").value == "query index"
    assert at.text_input(key="failures_search").value == "a"
    path, params = _link(at)
    assert path == "/failures"
    assert params["failures_run"] == ["DRGI"] and params["failures_k"] == ["2"]
    assert params["failures_sort"] == ["query index"] and params["failures_search"] == ["a"]
    assert params["q"] == ["3"] and params["split"] == ["synthvtt-test"]
    # a widget changed by the user is written into the link, defaults too
    at.radio(key="failures_run").set_value("base").run()
    at.number_input(key="failures_k").set_value(1).run()
    _, params = _link(at)
    assert params["failures_run"] == ["base"] and params["failures_k"] == ["1"]


def test_attention_state_round_trip(app_env):
    at = app_test(attn_kind="video", v="2", attn_excess="false").run()
    at.switch_page("app_pages/attention.py").run()
    assert_no_errors(at)
    assert at.radio(key="attn_kind").value == "video"
    assert at.number_input(key="v").value == 2
    assert at.toggle(key="attn_excess").value is False
    _, params = _link(at)
    assert params["attn_kind"] == ["video"] and params["v"] == ["2"]
    assert params["attn_excess"] == ["false"]
    at.toggle(key="attn_excess").set_value(True).run()
    _, params = _link(at)
    assert params["attn_excess"] == ["true"]


def test_attention_opens_on_the_excess_view(app_env):
    at = open_page("app_pages/attention.py")
    assert at.toggle(key="attn_excess").value is True
    _, params = _link(at)
    assert params["attn_excess"] == ["true"] and params["attn_kind"] == ["caption"]


def test_embeddings_and_queries_state_round_trip(app_env):
    at = app_test(emb_kinds=["captions (pooled)", "videos (pooled)"]).run()
    at.switch_page("app_pages/embeddings.py").run()
    assert_no_errors(at)
    kinds = at.multiselect(key="emb_kinds")
    assert len(kinds.value) == 2
    _, params = _link(at)
    assert params["emb_kinds"] == ["captions (pooled)", "videos (pooled)"]
    assert params["emb_colour"] == [at.selectbox(key="emb_colour").value]

    at = app_test(qt_sort="query id", qt_outcomes=["win"], qt_k="2").run()
    at.switch_page("app_pages/queries.py").run()
    assert_no_errors(at)
    assert at.selectbox(key="qt_sort").value == "query id"
    assert at.multiselect(key="qt_outcomes").value == ["win"]
    assert at.number_input(key="qt_k").value == 2
    _, params = _link(at)
    assert params["qt_outcomes"] == ["win"] and params["qt_k"] == ["2"]


def test_hard_negatives_k_round_trip(app_env):
    at = app_test(hn_k="2").run()
    at.switch_page("app_pages/hard_negatives.py").run()
    assert_no_errors(at)
    assert at.slider(key="hn_k").value == 2
    at.slider(key="hn_k").set_value(3).run()
    _, params = _link(at)
    assert params["hn_k"] == ["3"]


def _run_traces(at: AppTest) -> list[tuple[str, str, str]]:
    """(chart key, trace name, colour) of every chart trace named after a run."""
    out = []
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        for trace in spec.get("data", []):
            name = str(trace.get("name", ""))
            label = name.split(":")[0]
            if label in RUN_COLOURS:
                colour = (trace.get("marker") or {}).get("color")
                out.append((str(el.proto.id), label, colour))
    return out


def test_every_page_paints_each_run_in_its_one_colour(app_env):
    seen = []
    for page in ("app_pages/overview.py", "app_pages/hard_negatives.py",
                 "app_pages/attention.py"):
        at = open_page(page)
        traces = _run_traces(at)
        assert traces, f"{page}: no chart trace named after a run"
        for chart_id, label, colour in traces:
            assert colour == run_colour(label), (page, chart_id, label, colour)
        seen += [label for _, label, _ in traces]
    assert {"base", "DRGI"} <= set(seen)


def test_head_selector_only_when_there_is_a_choice(app_env):
    at = open_page("app_pages/attention.py")
    heads = page_bundle(app_env, app_env.drgi).drgi.text_attention.shape[1]
    has_selector = any(s.key == "attn_head" for s in at.selectbox)
    assert has_selector == (heads > 1)
    assert not any("video video" in m.value.replace("*", "").lower()
                   for m in [*at.markdown, *at.caption])


def _videos(at: AppTest) -> list:
    """The clip players (app/components/clip_player.py) of the last run."""
    from app.components.clip_player import COMPONENT_NAME

    return [el for el in at.get("bidi_component") if el.proto.component_name == COMPONENT_NAME]


def test_clip_players_on_compare_failures_and_hard_negatives(app_env):
    from analysis.labels import frame_label
    from app.components.thumbs import video_file
    from app.state import AppRoots

    base = page_bundle(app_env, app_env.base)
    roots = AppRoots(checkpoints=app_env.checkpoints.resolve(), data=app_env.data.resolve())
    q = int(next(i for i in range(base.num_texts) if int(base.ranks.t2v[i]) > 1))
    gt = int(base.text_to_video[q])
    has_file = video_file(roots, base, gt, app_env.data / "synthvtt") is not None
    for page in ("app_pages/compare.py", "app_pages/failures.py",
                 "app_pages/hard_negatives.py"):
        at = open_page(page, q=str(q), failures_run="base")
        if has_file:
            assert _videos(at), page
            times = base.frame_timestamps[gt][np.asarray(base.video_mask[gt], dtype=bool)]
            last = frame_label(len(times) - 1, times[-1])  # a heatmap column's label
            assert any(last in c.value for c in at.caption) or any(
                last in g.options for g in at.button_group), page
        else:
            assert any("No clip" in c.value for c in at.caption), page
