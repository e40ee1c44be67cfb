"""The Live query page's per-query results (app.components.live_results) and their cache
(app.resources.live_results), on the tiny trained run pair (tests/conftest.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from analysis.bundle import Bundle
from app.components import live_results as live_results_module
from app.state import AppRoots

TEXT = "a red circle moves left"


def _bundle(run) -> Bundle:
    return Bundle.load(run / "analysis" / "synthvtt-test", check=False)


@pytest.fixture
def builds(app_env, monkeypatch):
    """The (run name, text, k) of every LiveResults built, through the app's cache."""
    import streamlit as st

    st.cache_resource.clear()
    calls: list[tuple[str, str, int]] = []
    build = live_results_module.live_results

    def counting(search, bundle, text, k, placer):
        calls.append((bundle.run_name, text, k))
        return build(search, bundle, text, k, placer)

    monkeypatch.setattr(live_results_module, "live_results", counting)
    return calls


def test_same_query_is_computed_once_and_a_changed_one_again(app_env, builds):
    from app import resources

    roots = AppRoots.from_env()
    base, drgi = _bundle(app_env.base), _bundle(app_env.drgi)
    first = resources.live_results(roots, base, TEXT, 3)
    assert resources.live_results(roots, base, TEXT, 3) is first  # a rerun: no new search
    assert builds == [("base", TEXT, 3)]
    resources.live_results(roots, base, "a blue square grows", 3)  # another text
    resources.live_results(roots, base, TEXT, 2)  # another top-k
    resources.live_results(roots, drgi, TEXT, 3)  # another run
    assert builds == [("base", TEXT, 3), ("base", "a blue square grows", 3), ("base", TEXT, 2),
                      ("drgi", TEXT, 3)]
    assert resources.live_results(roots, base, TEXT, 3) is first


def test_results_hold_the_search_and_both_figures(app_env):
    from analysis.projection import PointPlacer
    from analysis.query import live_search_for_bundle, pooled_map_points, query_vector

    bundle = _bundle(app_env.base)
    search = live_search_for_bundle(app_env.base, bundle)
    asked: list[str] = []

    def placer(method: str) -> PointPlacer:
        asked.append(method)
        return PointPlacer(*pooled_map_points(bundle, method))

    found = live_results_module.live_results(search, bundle, TEXT, 3, placer)
    expected = search.search(TEXT, 3)
    assert found.result.video_ids == expected.video_ids
    np.testing.assert_allclose(found.result.scores, expected.scores, atol=1e-6)
    assert found.words is not None and found.words.data[0].type == "heatmap"
    method = bundle.projections.methods[0]  # the tiny bundles have PCA only
    assert asked == [method] and found.map_note is None
    star = placer(method).place(query_vector(search, TEXT))[0]
    assert found.map.data[-1].x == (pytest.approx(float(star[0])),)
    assert found.map.layout.title.text.startswith(f"{method.upper()} map")


def test_no_map_without_projections_and_no_figures_for_an_empty_query(app_env):
    from analysis.query import live_search_for_bundle

    bundle = _bundle(app_env.base)
    search = live_search_for_bundle(app_env.base, bundle)
    bare = SimpleNamespace(projections=SimpleNamespace(methods=()), video_ids=bundle.video_ids)

    def no_placer(method: str):
        raise AssertionError(f"placer asked for {method!r}")

    found = live_results_module.live_results(search, bare, TEXT, 3, no_placer)
    assert found.map is None and found.map_note == live_results_module.NO_MAP
    assert found.words is not None
    empty = live_results_module.live_results(search, bundle, "   ", 3, no_placer)
    assert not empty.result.ok and empty.words is None and empty.map is None


def test_map_method_prefers_umap():
    assert live_results_module.map_method(("pca", "umap")) == "umap"
    assert live_results_module.map_method(("pca",)) == "pca"
    assert live_results_module.map_method(()) is None
