"""Every app page on a run pair of each seed method (base vs + DRGI), with AppTest.

tests/test_app.py covers the pages in depth on a seqTransf pair; here each other head (cross
heads scored in blocks, live search through a shortlist) trains a tiny pair, exports its
bundles, and must pass through every page with the overview matching the bundles and a live
query ranking like the exported similarity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st

from analysis.bundle import Bundle
from app.main import PAGES
from tests.conftest import tiny_overrides
from tests.helpers_app import app_test, assert_no_errors, tables_with

METHODS = {  # head -> the method's own objectives
    "meanp": (),
    "wti": ("cdcr.enable=true",),
    "xclip": (),
    "tcmgc": ("tcmgc.sdr=true",),
    "gare": ("gare.regularize=true",),
    "dmae": ("negnce.enable=true", "tpmcl.enable=true"),
}


@pytest.fixture(scope="module")
def method_roots(tmp_path_factory) -> tuple[Path, Path]:
    """App roots holding, for every method, ``<m>-base`` and ``<m>-drgi`` with bundles."""
    from analysis.export import ExportOptions, export_bundle
    from tvr.config import load_config
    from tvr.data.synthvtt import generate
    from tvr.train import train

    top = tmp_path_factory.mktemp("method_roots")
    data, checkpoints = top / "data", top / "checkpoints"
    root = data / "synthvtt"
    generate(root, seed=5, n_train=16, n_val=6, n_test=8, size=32, workers=1, progress=False)
    for head, extra in METHODS.items():
        for arm, drgi in (("base", "false"), ("drgi", "true")):
            cfg = load_config(None, tiny_overrides(
                root, checkpoints, f"{head}-{arm}", f"model.head={head}", "train.epochs=1",
                "train.eval_after=false", f"drgi.enable={drgi}", *extra))
            run = train(cfg, progress=False)
            export_bundle(run, dataset="synthvtt", root=root, split="test",
                          options=ExportOptions(projections=("pca",), device="cpu"),
                          progress=False)
    return checkpoints, data


@pytest.fixture
def roots_env(method_roots, monkeypatch):
    checkpoints, data = method_roots
    monkeypatch.setenv("DRGI_LAB_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("DRGI_LAB_DATA", str(data))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield checkpoints
    st.cache_resource.clear()
    st.cache_data.clear()


def _bundle(run: Path) -> Bundle:
    return Bundle.load(run / "analysis" / "synthvtt-test", check=False)


@pytest.mark.slow
@pytest.mark.parametrize("head", list(METHODS))
def test_every_page_on_a_method_pair(roots_env, head):
    checkpoints = roots_env
    base, drgi = checkpoints / f"{head}-base", checkpoints / f"{head}-drgi"
    params = {"base": base.name, "drgi": drgi.name, "split": "synthvtt-test"}
    assert json.loads((base / "config.json").read_text())["head"]["name"] == head

    at = app_test(**params).run()
    assert_no_errors(at)
    assert at.selectbox(key="base").value == base.name
    # overview: the metrics table is the bundles' metrics
    (table,) = tables_with(at, "direction", "metric", "delta", "better")
    bundle_base, bundle_drgi = _bundle(base), _bundle(drgi)
    for _, row in table.iterrows():
        name = f"{row['direction']}/{row['metric']}"
        assert row.iloc[2] == pytest.approx(bundle_base.metrics[name])
        assert row.iloc[3] == pytest.approx(bundle_drgi.metrics[name])

    for page, *_ in PAGES[1:]:
        at.switch_page(page).run()
        assert_no_errors(at)
        assert len(at.main.children) > 0, page

    # live query: a test caption, searched with each run's own head, ranks the videos as the
    # exported similarity row does (8 videos: the shortlist holds them all)
    caption = bundle_base.captions[0]
    at = app_test(**params, text=caption).run()
    at.switch_page("app_pages/live_query.py").run()
    if at.text_input(key="text").value != caption:
        at.text_input(key="text").input(caption).run()
    assert_no_errors(at)
    for run, bundle, label in ((base, bundle_base, "base"), (drgi, bundle_drgi, "DRGI")):
        (hits,) = [d.value for d in at.dataframe if getattr(d, "key", None) ==
                   f"live_table_{label}"]
        assert hits["score"].is_monotonic_decreasing
        row = np.asarray(bundle.sim[0])
        assert hits["video"].iloc[0] == bundle.video_ids[int(np.argmax(row))], run.name
        assert hits["score"].iloc[0] == pytest.approx(float(row.max()), abs=1e-3)
