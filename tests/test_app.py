"""The Streamlit app end to end with AppTest, on a tiny trained run pair (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from analysis.bundle import Bundle
from app.main import APP_DIR, PAGES
from app.state import KEY_QUERY, AppRoots, PathOutsideRootsError
from tests.helpers_app import TIMEOUT, app_test, assert_no_errors, open_page, tables_with


def _bundle(run) -> Bundle:
    return Bundle.load(run / "analysis" / "synthvtt-test", check=False)


def _dataframe(at: AppTest, key: str):
    """A selectable dataframe (a widget) by its key."""
    found = [d for d in at.dataframe if getattr(d, "key", None) == key]
    assert found, f"no dataframe with key {key!r}"
    return found[0].value


def test_pages_list_has_all_eight_files():
    files = [f for f, _, _, _ in PAGES]
    assert files == [f"app_pages/{n}.py" for n in (
        "overview", "queries", "compare", "failures", "attention", "embeddings", "hard_negatives",
        "live_query")]
    assert len({p for _, _, _, p in PAGES}) == len(PAGES)  # url paths unique


@pytest.mark.parametrize("page", [f for f, _, _, _ in PAGES])
def test_every_page_runs_without_exception(app_env, page):
    if not (APP_DIR / page).is_file():
        pytest.fail(f"page file app/{page} is missing")
    at = open_page(page)
    assert len(at.main.children) > 0


@pytest.mark.parametrize("page", [f for f, _, _, _ in PAGES])
def test_every_page_runs_with_a_single_run_without_drgi(app_env, page):
    at = open_page(page, drgi="(none)")
    assert len(at.main.children) > 0


def test_no_page_ranks_the_similarity_when_the_bundle_stores_the_negatives(app_env, monkeypatch):
    """The pages read each caption's ranked negatives from the bundle: ranking them again from
    the [Nt, Nv] similarity (715 MB per run at MSR-VTT's full test split) happens only for a
    bundle exported before the negatives were stored."""
    import analysis.failures
    import analysis.hard_negatives
    import analysis.query_table
    import analysis.ranked_negatives

    def refuse(*args, **kwargs):
        raise AssertionError("a page ranked the similarity instead of reading the bundle")

    for module in (analysis.ranked_negatives, analysis.failures, analysis.hard_negatives,
                   analysis.query_table):
        monkeypatch.setattr(module, "ranked_negatives", refuse)
    st.cache_resource.clear()
    st.cache_data.clear()
    for page, _, _, _ in PAGES:
        open_page(page, q="2")  # raises on any exception the page showed
    open_page("app_pages/embeddings.py", emb_colour="margin (GT − hardest other)")
    st.cache_resource.clear()  # nothing computed under the patch is kept for later tests
    st.cache_data.clear()


def test_sidebar_pickers_and_url_binding(app_env):
    at = app_test().run()
    assert_no_errors(at)
    assert at.selectbox(key="base").value == "base"
    assert at.selectbox(key="drgi").value == "drgi"
    assert at.selectbox(key="split").value == "synthvtt-test"
    # the URL picks the runs: swap them
    at = app_test(base="drgi", drgi="base").run()
    assert at.selectbox(key="base").value == "drgi"
    assert at.selectbox(key="drgi").value == "base"


def test_overview_metrics_match_the_bundles(app_env):
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    meta_base = json.loads((base.path / "meta.json").read_text())["metrics"]
    at = app_test().run()
    assert_no_errors(at)
    (table,) = tables_with(at, "direction", "metric", "delta", "better")
    for _, row in table.iterrows():
        name = f"{row['direction']}/{row['metric']}"
        assert row.iloc[2] == pytest.approx(meta_base[name])
        assert row.iloc[3] == pytest.approx(drgi.metrics[name])
    shown = {(m.label, m.value) for m in at.metric}
    assert ("t2v R@1", f"{meta_base['t2v/R@1']:.1f}") in shown
    assert ("v2t MnR", f"{meta_base['v2t/MnR']:g}") in shown
    (paired,) = tables_with(at, "p_value", "ci_low")
    assert set(paired["direction"]) == {"t2v", "v2t"}
    assert paired["p_value"].between(0, 1).all()
    cards = tables_with(at, "field", "value")
    assert len(cards) == 2 and all("DRGI parameters" in set(c["field"]) for c in cards)


def test_compare_selecting_a_point_shows_its_detail(app_env):
    base = _bundle(app_env.base)
    at = open_page("app_pages/compare.py")
    chart = [el for el in at.get("plotly_chart") if json.loads(el.proto.spec)["data"][0].get(
        "customdata") is not None]
    assert chart, "no scatter with per-query ids"
    spec = json.loads(chart[0].proto.spec)
    assert len(spec["data"][0]["x"]["bdata"] if isinstance(spec["data"][0]["x"], dict)
               else spec["data"][0]["x"]) > 0
    at.session_state["compare_map"] = {
        "selection": {"points": [{"customdata": 3}], "point_indices": [3], "box": [],
                      "lasso": []}
    }
    at.run()
    assert_no_errors(at)
    assert at.number_input(key=KEY_QUERY).value == 3
    words = base.captions[3].split()
    detail = [m.value for m in at.markdown if m.value.startswith("**caption 3**")]
    assert detail and all(w.strip(".") in detail[0] for w in words)
    assert any("ground truth" in str(im.proto.imgs[0].caption) for im in at.image)


def test_compare_query_comes_from_the_url(app_env):
    base = _bundle(app_env.base)
    at = open_page("app_pages/compare.py", q="5")
    assert at.number_input(key=KEY_QUERY).value == 5
    # video -> text: the query is video 5, its captions are listed with the GT marked
    at = open_page("app_pages/compare.py", q="5", dir="v2t")
    assert at.radio(key="dir").value == "v2t"
    assert any(m.value.startswith("**video 5**") for m in at.markdown)
    listed = [m.value for m in at.markdown if "✓ ground truth" in m.value]
    gt_caption = base.captions[int(np.flatnonzero(base.text_to_video == 5)[0])]
    assert listed and all(w.strip(".") in listed[0] for w in gt_caption.split())


def test_failures_table_matches_analysis(app_env):
    from analysis.failures import bundle_failures

    base = _bundle(app_env.base)
    base._data_root = app_env.data / "synthvtt"
    expected = bundle_failures(base, k=1)
    at = open_page("app_pages/failures.py")
    table = _dataframe(at, "failures_table")
    assert sorted(table["query"]) == sorted(expected["query"])
    ranks = dict(zip(expected["query"], expected["rank"], strict=True))
    assert all(ranks[q] == r for q, r in zip(table["query"], table["rank"], strict=True))
    assert "failure_type" in table.columns  # SynthVTT: typed
    if len(table):
        at.session_state["failures_table"] = {"selection": {"rows": [0], "columns": [],
                                                            "cells": []}}
        at.run()
        assert_no_errors(at)
        assert at.number_input(key=KEY_QUERY).value == int(table["query"].iloc[0])


def test_live_query_top1_is_the_argmax(app_env):
    from analysis.query import live_search_for_bundle, query_vector

    text = "a red circle moves left"
    at = app_test(text=text).run()
    at.switch_page("app_pages/live_query.py").run()
    if at.text_input(key="text").value != text:  # the URL binding did not carry it
        at.text_input(key="text").input(text).run()
    assert_no_errors(at)
    for run, label in ((app_env.base, "base"), (app_env.drgi, "DRGI")):
        bundle = _bundle(run)
        hits = _dataframe(at, f"live_table_{label}")
        assert list(hits["rank"]) == list(range(1, len(hits) + 1))
        assert hits["score"].is_monotonic_decreasing
        search = live_search_for_bundle(run, bundle)
        scores = np.asarray(bundle.video_pooled) @ query_vector(search, text)
        assert hits["video"].iloc[0] == bundle.video_ids[int(np.argmax(scores))]
        assert hits["score"].iloc[0] == pytest.approx(float(scores.max()), abs=1e-4)
    assert any(m.label == "latency" for m in at.metric)


def test_single_run_without_drgi_explains(app_env):
    at = app_test(drgi="(none)").run()
    assert_no_errors(at)
    at.switch_page("app_pages/compare.py").run()
    assert_no_errors(at)
    assert any("pick a second run" in i.value for i in at.info)


def test_paths_outside_the_roots_are_refused(app_env, tmp_path):
    from app import resources

    roots = AppRoots.from_env()
    outside = tmp_path / "elsewhere" / "analysis" / "synthvtt-test"
    outside.mkdir(parents=True)
    with pytest.raises(PathOutsideRootsError, match="outside the app's roots"):
        resources.load_bundle(roots, outside)
    with pytest.raises(PathOutsideRootsError):
        resources.load_bundle(roots, app_env.checkpoints / ".." / "elsewhere")
    # a run whose tokenizer would come from a folder outside the roots is refused
    run = tmp_path / "ck" / "run"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": {"tokenizer": str(tmp_path)}}))
    with pytest.raises(PathOutsideRootsError):
        resources._check_tokenizer_source(AppRoots(tmp_path / "ck", tmp_path / "d"), run)


def test_no_runs_gives_guidance(tmp_path, monkeypatch):
    monkeypatch.setenv("DRGI_LAB_CHECKPOINTS", str(tmp_path / "ck"))
    monkeypatch.setenv("DRGI_LAB_DATA", str(tmp_path / "data"))
    at = app_test().run()
    assert not at.exception
    assert any("No run folders" in i.value for i in at.info)


def test_missing_bundle_offers_an_export_that_writes_it(app_env):
    run = app_env.checkpoints / "zz-fresh"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    for name in ("config.json", "encoder.json", "model.safetensors"):
        shutil.copy(app_env.base / name, run / name)
    shutil.copytree(app_env.base / "tokenizer", run / "tokenizer")
    try:
        at = app_test(drgi="zz-fresh").run()
        assert_no_errors(at)
        assert any("no bundle of **zz-fresh**" in w.value for w in at.warning)
        button = at.button(key="export_DRGI")
        button.click().run(timeout=TIMEOUT)
        assert_no_errors(at)
        bundle = Bundle.load(run / "analysis" / "synthvtt-test", data_root=app_env.data /
                             "synthvtt")
        assert bundle.num_texts == _bundle(app_env.base).num_texts
        assert not any("no bundle of **zz-fresh**" in w.value for w in at.warning)
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_progress_lines_are_parsed():
    from app.components.export import parse_progress

    assert parse_progress("export base:  44%|####      | 4/9 [00:01<00:02, x]") == (
        "export base", pytest.approx(4 / 9))
    assert parse_progress("2026 INFO analysis.export: wrote x") is None


def test_captions_render_literally():
    from app.components.text import escape_md

    assert escape_md("a *red* [x](y) $1") == r"a \*red\* \[x\]\(y\) \$1"


def test_live_search_refuses_a_bundle_of_another_checkpoint(app_env):
    from analysis.query import live_search_for_bundle

    with pytest.raises(ValueError, match="another checkpoint"):
        live_search_for_bundle(app_env.drgi, _bundle(app_env.base))


def test_a_caption_lands_on_its_own_map_point(app_env):
    from analysis.projection import PointPlacer
    from analysis.query import pooled_map_points

    bundle = _bundle(app_env.base)
    x, coords = pooled_map_points(bundle, "pca")
    assert x.shape == (bundle.num_texts + bundle.num_videos, bundle.embed_dim)
    assert coords.shape == (len(x), 2)
    placed = PointPlacer(x, coords).place(np.asarray(bundle.text_pooled[2]))
    assert placed[0] == pytest.approx(bundle.projections.get("pca", "texts")[2], abs=1e-5)
    with pytest.raises(KeyError, match="umap"):
        pooled_map_points(bundle, "umap")


def test_bundle_failures_without_the_dataset_are_untyped(app_env, tmp_path):
    from analysis.failures import bundle_failures, failures

    bundle = _bundle(app_env.base)
    bundle._data_root = tmp_path / "moved"  # the dataset is not found
    table = bundle_failures(bundle, k=1)
    assert not table.attrs["typed"] and "not found" in table.attrs["note"]
    assert "failure_type" not in table.columns
    plain = failures(bundle.sim, bundle.text_to_video, 1)
    assert list(table["query"]) == list(plain["query"])
    assert list(table["caption"]) == [bundle.captions[q] for q in plain["query"]]


def test_stale_bundle_is_flagged_and_still_shown(app_env):
    run = app_env.checkpoints / "zz-stale"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(app_env.drgi, run)
    try:
        with open(run / "config.json", "a") as fh:
            fh.write("\n")  # same config, different bytes: the checkpoint hash changes
        st.cache_data.clear()  # forget the bundle scan
        at = app_test(drgi="zz-stale").run()
        assert_no_errors(at)
        stale = [e for e in at.expander if "stale" in e.label]
        assert stale, "no stale-bundle notice"
        assert at.button(key="export_DRGI").label.startswith("Re-export")
        assert any(m.label == "t2v R@1" for m in at.metric)  # the page still renders
    finally:
        shutil.rmtree(run, ignore_errors=True)
        st.cache_data.clear()


def test_overview_warns_about_tied_queries(app_env):
    run = app_env.checkpoints / "zz-tied"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(app_env.drgi, run)
    try:
        meta_path = run / "analysis" / "synthvtt-test" / "meta.json"
        meta = json.loads(meta_path.read_text())
        n = int(meta["metrics"]["t2v/N"])
        meta["metrics"].update({"t2v/ties": 3.0, "t2v/R@1": 0.0, "t2v/R@1_optimistic": 37.5})
        meta["run"]["name"] = "zz-tied"
        meta_path.write_text(json.dumps(meta))
        st.cache_data.clear()
        at = app_test(drgi="zz-tied").run()
        assert_no_errors(at)
        notes = [w.value for w in at.warning if "tie" in w.value]
        assert len(notes) == 1, notes  # the base run has no ties
        assert "zz-tied" in notes[0] and f"t2v: 3 of {n} queries tie" in notes[0]
        assert "0.0 with ties against the model, 37.5 if ties favoured it" in notes[0]
    finally:
        shutil.rmtree(run, ignore_errors=True)
        st.cache_data.clear()


def test_live_query_warns_about_unknown_words(app_env):
    text = "a red 🐱 circle moves left zebra"
    at = app_test(text=text).run()
    at.switch_page("app_pages/live_query.py").run()
    if at.text_input(key="text").value != text:
        at.text_input(key="text").input(text).run()
    assert_no_errors(at)
    notes = [w.value for w in at.warning if "Unknown to this model" in w.value]
    assert len(notes) == 2, notes  # one per run
    for note in notes:
        assert "“🐱”" in note and "“zebra”" in note and "were left out of the query" in note


def test_run_folder_linked_outside_the_roots_is_an_error_message(tiny_run_pair, tmp_path,
                                                                 monkeypatch):
    ck, data = tmp_path / "checkpoints", tmp_path / "data"
    ck.mkdir()
    data.mkdir()
    outside = tmp_path / "elsewhere" / "linked"
    shutil.copytree(tiny_run_pair.base, outside, ignore=shutil.ignore_patterns("analysis"))
    (ck / "linked").symlink_to(outside, target_is_directory=True)
    shutil.copytree(tiny_run_pair.drgi, ck / "inside")
    monkeypatch.setenv("DRGI_LAB_CHECKPOINTS", str(ck))
    monkeypatch.setenv("DRGI_LAB_DATA", str(tiny_run_pair.data))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = app_test(base="linked", drgi="(none)").run()
        assert not at.exception, [e.value for e in at.exception]
        errors = " ".join(e.value for e in at.error)
        assert "linked" in errors and "outside the app's roots" in errors
        assert any("cannot be opened" in i.value for i in at.info)
        at = app_test(base="inside", drgi="linked").run()  # a linked second run: base still shown
        assert not at.exception, [e.value for e in at.exception]
        assert "outside the app's roots" in " ".join(e.value for e in at.error)
        assert at.title and at.title[0].value == "Overview"
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


def test_a_page_run_ends_by_unmapping_the_selected_bundles_pages(app_env, monkeypatch):
    """A first visit may scan a whole [Nt, Nv] similarity (715 MB at MSR-VTT full size): the
    run ends by releasing both bundles' mapped pages, also when the page stops early."""
    released: list[str] = []
    real = Bundle.release_mapped_pages

    def record(self):
        released.append(self.run_name)
        return real(self)

    monkeypatch.setattr(Bundle, "release_mapped_pages", record)
    open_page("app_pages/hard_negatives.py")
    assert sorted(released[-2:]) == sorted([app_env.base.name, app_env.drgi.name])
