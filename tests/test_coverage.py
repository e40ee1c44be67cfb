"""Bundles that skipped videos: comparisons on the common query set, and the skip is shown."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from tvr.metrics import evaluate_retrieval


def _fake(name, video_ids, sim, skipped=(), split_videos=None):
    """A bundle-like object: one caption per video, caption i describes video i."""
    n = len(video_ids)
    return SimpleNamespace(
        run_name=name, video_ids=list(video_ids), captions=[f"caption of {v}" for v in video_ids],
        text_to_video=np.arange(n), caption_index=np.array([int(v[1:]) for v in video_ids]),
        sim=sim, metrics=evaluate_retrieval(sim, np.arange(n)).metrics, num_texts=n,
        num_videos=n, skipped=list(skipped), split_num_videos=split_videos or n,
    )


def test_both_bundles_are_evaluated_on_the_common_queries():
    from analysis.bundle import SkippedVideo
    from analysis.coverage import compare_on_common, skipped_note

    rng = np.random.default_rng(0)
    full_ids = [f"v{i}" for i in range(8)]
    sim_full = rng.normal(size=(8, 8)).astype(np.float32)
    kept = [0, 2, 3, 5, 7]
    skipped = [SkippedVideo(f"v{i}", f"videos/v{i}.mp4", "cannot open container", 1)
               for i in (1, 4, 6)]
    a = _fake("base", [full_ids[i] for i in kept],
              rng.normal(size=(5, 5)).astype(np.float32), skipped, split_videos=8)
    b = _fake("drgi", full_ids, sim_full)

    cmp = compare_on_common(a, b)
    assert not cmp.common.identical
    assert cmp.common.texts_b.tolist() == kept and cmp.common.videos_b.tolist() == kept
    assert cmp.metrics_a == pytest.approx(a.metrics)  # A holds exactly the common set
    expected_b = evaluate_retrieval(sim_full[np.ix_(kept, kept)], np.arange(5)).metrics
    assert cmp.metrics_b == pytest.approx(expected_b)
    assert cmp.metrics_b["t2v/N"] == 5 and b.metrics["t2v/N"] == 8
    assert cmp.ranks_b["t2v"].shape == (5,)

    note = skipped_note(a, b, cmp.common)
    assert "3 of 8 videos (3 captions) failed to decode" in note
    assert "v1 (cannot open container)" in note and "5 captions and 5 videos" in note
    same = compare_on_common(b, b)
    assert same.common.identical and skipped_note(b, b, same.common) is None


@pytest.fixture(scope="module")
def skipped_roots(tiny_run_pair, tmp_path_factory):
    """App roots where the base bundle skipped 3 of the 8 test videos (corrupt files) and the
    DRGI bundle holds all 8."""
    from analysis.export import ExportOptions, export_bundle
    from tvr.data.sources import load_split

    top = tmp_path_factory.mktemp("skipped_roots")
    ck, data = top / "checkpoints", top / "data"
    clean, broken = data / "synthvtt", data / "broken" / "synthvtt"
    shutil.copytree(tiny_run_pair.data / "synthvtt", clean)
    shutil.copytree(tiny_run_pair.data / "synthvtt", broken)
    records = load_split("synthvtt", broken, "test")
    bad = [records[i] for i in (1, 4, 6)]
    for r in bad:
        r.video_path.write_bytes(b"not a video")
    runs = {}
    for name, src in (("base", tiny_run_pair.base), ("drgi", tiny_run_pair.drgi)):
        runs[name] = ck / name
        shutil.copytree(src, runs[name], ignore=shutil.ignore_patterns("analysis"))
    cfg = json.loads((runs["base"] / "config.json").read_text())
    cfg["data"]["on_decode_error"] = "skip"
    (runs["base"] / "config.json").write_text(json.dumps(cfg, indent=2))
    opts = ExportOptions(projections=("pca",), device="cpu")
    export_bundle(runs["base"], dataset="synthvtt", root=broken, split="test", options=opts,
                  progress=False)
    export_bundle(runs["drgi"], dataset="synthvtt", root=clean, split="test", options=opts,
                  progress=False)
    return SimpleNamespace(checkpoints=ck, data=data, bad=[r.video_id for r in bad], **runs)


def test_export_records_which_videos_were_skipped_and_why(skipped_roots):
    from analysis.bundle import Bundle

    b = Bundle.load(skipped_roots.base / "analysis" / "synthvtt-test")
    assert b.num_videos == 5 and b.split_num_videos == 8
    assert [s.video_id for s in b.skipped] == skipped_roots.bad
    assert all("cannot open container" in s.reason and s.num_captions == 1 for s in b.skipped)


def test_overview_compares_runs_on_the_common_videos_and_says_why(skipped_roots, monkeypatch):
    import streamlit as st

    from analysis.bundle import Bundle
    from tests.helpers_app import app_test, assert_no_errors, tables_with

    monkeypatch.setenv("DRGI_LAB_CHECKPOINTS", str(skipped_roots.checkpoints))
    monkeypatch.setenv("DRGI_LAB_DATA", str(skipped_roots.data))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = app_test(base="base", drgi="drgi").run()
        assert_no_errors(at)
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
    base = Bundle.load(skipped_roots.base / "analysis" / "synthvtt-test")
    drgi = Bundle.load(skipped_roots.drgi / "analysis" / "synthvtt-test")
    # DRGI's metrics recomputed on the 5 videos (and their captions) the base bundle holds
    cols = [drgi.video_ids.index(v) for v in base.video_ids]
    rows = [int(np.flatnonzero(drgi.text_to_video == c)[0]) for c in cols]
    expected = evaluate_retrieval(np.asarray(drgi.sim)[np.ix_(rows, cols)], np.arange(5)).metrics
    (table,) = tables_with(at, "direction", "metric", "delta", "better")
    for _, row in table.iterrows():
        name = f"{row['direction']}/{row['metric']}"
        assert row.iloc[2] == pytest.approx(base.metrics[name]), name
        assert row.iloc[3] == pytest.approx(expected[name]), name
    warnings = " ".join(w.value for w in at.warning)
    assert "3 of 8 videos" in warnings and "cannot open container" in warnings
    assert all(v in warnings for v in skipped_roots.bad)
    (paired,) = tables_with(at, "p_value", "ci_low")
    assert set(paired["n"]) == {5}
