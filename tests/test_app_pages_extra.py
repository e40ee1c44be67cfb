"""The attention, embeddings and hard-negatives pages with AppTest on the tiny run pair.

Each test asserts that what a page draws is the analysis value of the bundles: heatmap cells
are the GAT attention rows, entropy bars are :func:`analysis.attention.normalised_entropy`,
the map is one WebGL trace with one id per point, margins are
:func:`analysis.hard_negatives.margin_distribution`, and so on.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analysis.attention import label_nodes, normalised_entropy
from analysis.attention_view import attention_view
from analysis.bundle import Bundle
from analysis.embedding_map import map_points
from analysis.events import event_runs, frame_event_ids
from analysis.geometry import modality_gap
from analysis.hard_negatives import hard_negatives, hubness, hubness_summary, margin_distribution
from analysis.scores import margin_summary
from tests.helpers_app import assert_no_errors, open_page, table_with

ATTENTION = "app_pages/attention.py"
EMBEDDINGS = "app_pages/embeddings.py"
HARD_NEGATIVES = "app_pages/hard_negatives.py"
OUTCOME_COLOURS = {"win": "#2ca02c", "tie": "#9e9e9e", "loss": "#d62728"}  # the page's legend


def _bundle(env, run) -> Bundle:
    return Bundle.load(run / "analysis" / "synthvtt-test", check=False,
                       data_root=env.data / "synthvtt")


def _chart(at: AppTest, key: str) -> dict:
    """The figure dict of the plotly chart with widget key ``key``."""
    for el in at.get("plotly_chart"):
        if str(el.proto.id).endswith(f"-{key}"):
            return json.loads(el.proto.spec)
    raise AssertionError(f"no plotly chart with key {key!r}")


def _array(value) -> np.ndarray:
    """A plotly data array: a list, or numpy's base64 form ``{dtype, bdata, shape}``."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
        return arr
    return np.asarray(value)


# ------------------------------------------------------------------ attention
def test_attention_caption_heatmap_entropy_and_weights_match_the_bundles(app_env):
    base, drgi = _bundle(app_env, app_env.base), _bundle(app_env, app_env.drgi)
    q = 2
    at = open_page(ATTENTION, q=str(q))
    d = drgi.drgi
    mask = np.asarray(d.text_node_mask[q], dtype=bool)
    heat = _chart(at, "attn_heatmap")["data"][0]
    assert heat["type"] == "heatmap"
    z = _array(heat["z"])
    raw = np.asarray(d.text_attention[q, 0], dtype=np.float64)[np.ix_(mask, mask)]
    np.testing.assert_allclose(z, attention_view(d.text_attention[q], mask), rtol=1e-12)
    np.testing.assert_allclose(z, raw, atol=2e-3)  # float16 rows renormalised over valid nodes
    labels = label_nodes("text", mask, tokens=drgi.words(q))
    assert heat["x"] == labels == heat["y"]
    assert labels[0] == "[SOT]" and labels[-1] == "[EOT]"

    bars = _chart(at, "attn_entropy")["data"]
    entropy = _array(bars[0]["y"])
    expected = normalised_entropy(d.text_attention[q, 0], mask)[mask]
    np.testing.assert_allclose(entropy, expected, atol=2e-3)
    assert any(abs(s.get("y0", -1) - 1.0) < 1e-9 for s in _chart(at, "attn_entropy")["layout"]
               ["shapes"])  # the uniform value is drawn

    weights = _chart(at, "attn_text_frame")
    gt = int(base.text_to_video[q])
    valid = np.asarray(base.video_mask[gt], dtype=bool)
    got = {t["name"].split(":")[0]: _array(t["y"]) for t in weights["data"]}
    np.testing.assert_allclose(got["base"], base.text_frame_weights[q][valid], rtol=1e-6)
    np.testing.assert_allclose(got["DRGI"], drgi.text_frame_weights[q][valid], rtol=1e-6)
    assert "GAT" in got  # token mode: the video graph's attention over the same frames
    # SynthVTT: the events of the video are shaded on the time axis
    n_events = len(base.synthvtt_meta().videos[gt]["events"])
    assert sum(1 for s in weights["layout"]["shapes"] if s.get("type") == "rect") == n_events
    align = table_with(at, "share on mentioned events", "chance (uniform)")
    assert len(align) == 3 and align["share on mentioned events"].between(0, 1).all()
    split = table_with(at, "mean share", "mean chance")
    assert set(split["weights"]) == {"text-to-frame", "GAT received"}


def test_attention_video_from_the_url_shades_events(app_env):
    drgi = _bundle(app_env, app_env.drgi)
    v = 3
    at = open_page(ATTENTION, attn_kind="video", v=str(v))
    assert at.number_input(key="v").value == v
    d = drgi.drgi
    mask = np.asarray(d.video_node_mask[v], dtype=bool)
    heat = _chart(at, "attn_heatmap")
    np.testing.assert_allclose(_array(heat["data"][0]["z"]),
                               attention_view(d.video_attention[v], mask), rtol=1e-12)
    assert heat["data"][0]["x"][0].startswith("f0 @ ")
    meta = drgi.synthvtt_meta()
    runs = event_runs(frame_event_ids(drgi.frame_timestamps[v], meta.videos[v]["events"],
                                      meta.params["fps"])[mask])
    assert len(heat["layout"].get("shapes", [])) == len(runs)
    images = heat["layout"].get("images", [])  # the sampled frames under the x axis
    assert len(images) == int(mask.sum()) == len(drgi.thumbnail_frames(v))
    assert all(im["source"].startswith("data:image/jpeg;base64,") for im in images)
    uniform = any("Attention is uniform here" in w.value for w in at.warning)
    if uniform:  # a network of equal weights would suggest structure: not drawn, and said so
        assert not [c for c in at.get("plotly_chart") if str(c.proto.id).endswith("-attn_network")]
        assert any("No network diagram" in c.value for c in at.caption)
    else:
        net = _chart(at, "attn_network")
        assert _array(net["data"][-1]["customdata"]).tolist() == list(range(int(mask.sum())))


def test_attention_without_drgi_explains_and_keeps_the_weights(app_env):
    at = open_page(ATTENTION, drgi="(none)")
    assert any("needs a run trained with DRGI" in i.value for i in at.info)
    names = [t["name"] for t in _chart(at, "attn_text_frame")["data"]]
    assert len(names) == 1 and names[0].startswith("base")


# ------------------------------------------------------------------ embeddings
def test_embeddings_map_is_one_webgl_trace_with_ids(app_env):
    base = _bundle(app_env, app_env.base)
    at = open_page(EMBEDDINGS)
    points = map_points(base.projections, "pca", base.text_to_video)
    for key in ("emb_map_base", "emb_map_DRGI"):
        fig = _chart(at, key)
        marks = {"caption 0", "its ground truth", "top negatives"}  # the current query (q=0)
        assert {t["name"] for t in fig["data"]} >= marks
        gl = [t for t in fig["data"] if t["type"] == "scattergl" and t["name"] not in marks]
        assert len(gl) == 1 and fig["data"][0]["type"] == "scattergl"
        # legend entries, no points
        assert all(t["x"] == [None] for t in fig["data"][1:] if t["name"] not in marks)
        x = _array(gl[0]["x"])
        ids = _array(gl[0]["customdata"])
        assert len(x) == len(points) == len(ids)
        assert ids.ndim == 1 and sorted(ids.tolist()) == list(range(len(points)))
    base_trace = _chart(at, "emb_map_base")["data"][0]
    ids = _array(base_trace["customdata"])
    np.testing.assert_allclose(_array(base_trace["x"]), points.coords[ids, 0], rtol=1e-6)
    gap = modality_gap(base.text_pooled, base.video_pooled, base.text_to_video)
    shown = {(m.label, m.value) for m in at.metric}
    assert ("centroid distance", f"{gap.centroid_distance:.3f}") in shown
    hist = _chart(at, "emb_gap_base")["data"]
    np.testing.assert_allclose(_array(hist[0]["x"]), gap.matched_cos, rtol=1e-6)


def test_embeddings_lasso_fills_the_gallery_and_greys_the_rest(app_env):
    base = _bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    caption, video = 3, 5
    text_id = int(points.block("texts")[caption])
    video_id = int(points.block("videos")[video])
    at = open_page(EMBEDDINGS)
    at.session_state["emb_map_base"] = {"selection": {
        "points": [{"customdata": text_id}, {"customdata": video_id}],
        "point_indices": [text_id, video_id], "box": [], "lasso": []}}
    at.run()
    assert_no_errors(at)
    gallery = [m.value for m in at.markdown if m.value.startswith(f"`{caption}`")]
    assert gallery and base.captions[caption].split()[1] in gallery[0]
    captions = [str(im.proto.imgs[0].caption) for im in at.image]
    assert any(base.video_ids[video] in c for c in captions)
    # the selection is linked: the DRGI map lights up the same caption and video
    for key in ("emb_map_base", "emb_map_DRGI"):
        trace = _chart(at, key)["data"][0]
        ids = _array(trace["customdata"])
        colours = np.asarray(trace["marker"]["color"])
        lit = {int(i) for i, c in zip(ids, colours, strict=True) if not c.startswith("rgba(190")}
        video_side = np.isin(points.kind, [1, 3])  # frame and pooled video points
        expected = set(np.flatnonzero((points.caption == caption) | (
            video_side & (points.item == video))).tolist())
        assert lit == expected
        assert ids[-1] in expected  # highlighted points are drawn last, on top
    # the selection is kept in the page's own key: a rerun (the charts' specs changed, so
    # their own selection state may reset) still shows it, until it is cleared
    at.run()
    assert_no_errors(at)
    assert any(m.value.startswith(f"`{caption}`") for m in at.markdown)
    at.button(key="emb_clear").click().run()
    assert_no_errors(at)
    assert not any(m.value.startswith(f"`{caption}`") for m in at.markdown)
    trace = _chart(at, "emb_map_base")["data"][0]
    assert not any(c.startswith("rgba(190") for c in trace["marker"]["color"])


@pytest.mark.parametrize("mode", ["video", "node position", "event"])
def test_embeddings_colour_modes(app_env, mode):
    at = open_page(EMBEDDINGS, emb_colour=mode)
    assert at.selectbox(key="emb_colour").value == mode
    trace = _chart(at, "emb_map_base")["data"][0]
    assert len(set(trace["marker"]["color"])) > 1


def test_embeddings_win_loss_colours_follow_the_rank_comparison(app_env):
    from analysis.rankings import compare_rankings

    base, drgi = _bundle(app_env, app_env.base), _bundle(app_env, app_env.drgi)
    points = map_points(base.projections, "pca", base.text_to_video)
    outcome = compare_rankings(base.ranks.t2v, drgi.ranks.t2v)["outcome"].to_numpy()
    at = open_page(EMBEDDINGS, emb_colour="win / loss")
    trace = _chart(at, "emb_map_base")["data"][0]
    ids = _array(trace["customdata"])
    colour = dict(zip(ids.tolist(), trace["marker"]["color"], strict=True))
    for caption, point in enumerate(points.block("texts")):
        assert colour[int(point)] == OUTCOME_COLOURS[outcome[caption]]
    assert set(trace["marker"]["color"]) <= set(OUTCOME_COLOURS.values())


# ------------------------------------------------------------------ hard negatives
def test_hard_negatives_match_analysis(app_env):
    base, drgi = _bundle(app_env, app_env.base), _bundle(app_env, app_env.drgi)
    q = 4
    at = open_page(HARD_NEGATIVES, q=str(q))
    assert at.number_input(key="q").value == q
    table = table_with(at, "run", "queries", "median", "beaten (%)")
    hist = {t["name"].split(":")[0]: _array(t["x"]) for t in _chart(at, "hn_margins")["data"]}
    for row, bundle, label in ((0, base, "base"), (1, drgi, "DRGI")):
        m = margin_distribution(bundle.sim, bundle.text_to_video)
        s = margin_summary(m)
        assert table["median"].iloc[row] == pytest.approx(s.median)
        assert table["mean"].iloc[row] == pytest.approx(s.mean)
        assert table["beaten (%)"].iloc[row] == pytest.approx(100 * s.negative_share)
        np.testing.assert_allclose(hist[label], m, rtol=1e-6)

        family = [v["family"] for v in bundle.synthvtt_meta().videos]
        hn = hard_negatives(bundle.sim, bundle.text_to_video, video_to_family=family, k=10)
        bars = _chart(at, f"hn_query_{label}")["data"][0]
        custom = _array(bars["customdata"])
        k = len(bars["x"]) - 1
        assert custom[0, 0] == int(bundle.text_to_video[q])
        np.testing.assert_array_equal(custom[1:, 0], hn.video_ids[q, :k])
        np.testing.assert_allclose(custom[:, 1], [hn.gt_scores[q], *hn.scores[q, :k]],
                                   rtol=1e-6)

    hub = table_with(at, "run", "skew", "anti-hubs (%)")
    k_hub = int(at.slider(key="hn_hub_k").value)
    expected = hubness_summary(hubness(base.sim, k=k_hub), k_hub)
    assert hub["skew"].iloc[0] == pytest.approx(expected.skew)
    assert hub["max"].iloc[0] == expected.max
    disc = _chart(at, "hn_disc_DRGI")["data"]
    tq = drgi.drgi.text_queries
    keep = np.asarray(tq.neg_valid, dtype=bool) & np.isfinite(tq.neg)
    np.testing.assert_allclose(_array(disc[0]["x"]), tq.pos[keep], rtol=1e-6)
    np.testing.assert_allclose(_array(disc[1]["x"]), tq.neg[keep], rtol=1e-6)
    assert any("trained without DRGI" in i.value for i in at.info)  # the base run has none


def test_hard_negatives_row_pick_moves_the_query(app_env):
    at = open_page(HARD_NEGATIVES)
    table = [d for d in at.dataframe if getattr(d, "key", None) == "hn_hardest"][0].value
    at.session_state["hn_hardest"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert_no_errors(at)
    assert at.number_input(key="q").value == int(table["query"].iloc[1])


def test_hard_negatives_base_only(app_env):
    at = open_page(HARD_NEGATIVES, drgi="(none)")
    assert any("trained without DRGI" in i.value for i in at.info)
    names = [t["name"] for t in _chart(at, "hn_margins")["data"]]
    assert len(names) == 1


# ------------------------------------------------------------------ DRGI diagnostics
def test_attention_page_states_whether_attention_is_uniform(app_env):
    drgi = _bundle(app_env, app_env.drgi)
    q = 2
    at = open_page(ATTENTION, q=str(q))
    d = drgi.drgi
    mask = np.asarray(d.text_node_mask[q], dtype=bool)
    entropy = float(np.nanmean(normalised_entropy(attention_view(d.text_attention[q], mask),
                                                  np.ones(int(mask.sum()), dtype=bool))))
    notes = [m.value for m in (*at.warning, *at.info) if "ttention is" in m.value]
    assert len(notes) == 1, notes
    assert f"{entropy:.4f}" in notes[0]  # the shown graph's entropy, with 4 decimals
    split_entropy = drgi.meta["drgi"]["diagnostics"]["entropy_text"]
    assert f"{split_entropy:.4f}" in notes[0]  # and the split's, from the bundle


def test_hard_negatives_page_states_the_information_test(app_env):
    drgi = _bundle(app_env, app_env.drgi)
    diag = drgi.meta["drgi"]["diagnostics"]
    at = open_page(HARD_NEGATIVES)
    verdicts = [m.value for m in at.markdown if "chance is 50 %" in m.value]
    assert len(verdicts) == 1, verdicts  # the DRGI run only
    assert f"{100 * diag['video']['acc']:.1f} %" in verdicts[0]
    assert f"{100 * diag['text']['acc']:.1f} %" in verdicts[0]
    table = table_with(at, "quantity", "captions → videos", "videos → captions")
    assert len(table) == 6 and table["captions → videos"].iloc[0] == f"{100 * diag['video']['acc']:.1f} %"
    curves = _chart(at, "hn_drgi_curves_DRGI")["data"]  # training curves from log.jsonl
    assert {c["name"] for c in curves} >= {"disc. accuracy (training negatives)",
                                           "attention entropy, words"}
