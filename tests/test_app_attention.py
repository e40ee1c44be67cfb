"""The attention page (app/app_pages/attention.py) with AppTest on the tiny run pair:
heatmap cells are the GAT attention rows, entropy bars are
:func:`analysis.attention.normalised_entropy`, events shade the video graph.
"""

from __future__ import annotations

import numpy as np

from analysis.attention import label_nodes, normalised_entropy
from analysis.attention_view import attention_view
from analysis.events import event_runs, frame_event_ids
from tests.helpers_app import (
    chart,
    open_page,
    page_bundle,
    plotly_array,
    split_meta,
    table_with,
)

ATTENTION = "app_pages/attention.py"


def test_attention_caption_heatmap_entropy_and_weights_match_the_bundles(app_env):
    base, drgi = page_bundle(app_env, app_env.base), page_bundle(app_env, app_env.drgi)
    q = 2
    at = open_page(ATTENTION, q=str(q))
    d = drgi.drgi
    mask = np.asarray(d.text_node_mask[q], dtype=bool)
    heat = chart(at, "attn_heatmap")["data"][0]
    assert heat["type"] == "heatmap"
    z = plotly_array(heat["z"])
    raw = np.asarray(d.text_attention[q, 0], dtype=np.float64)[np.ix_(mask, mask)]
    # the page opens on attention − uniform (1/N'), the view in which structure shows
    np.testing.assert_allclose(z, attention_view(d.text_attention[q], mask, minus_uniform=True),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(z + 1.0 / mask.sum(), raw, atol=2e-3)  # float16, renormalised
    assert heat["texttemplate"] == "%{z:.3~g}"  # significant figures: excesses are ~1e-4
    labels = label_nodes("text", mask, tokens=drgi.words(q))
    assert heat["x"] == labels == heat["y"]
    assert labels[0] == "[SOT]" and labels[-1] == "[EOT]"

    bars = chart(at, "attn_entropy")["data"]
    entropy = plotly_array(bars[0]["y"])
    expected = normalised_entropy(d.text_attention[q, 0], mask)[mask]
    np.testing.assert_allclose(entropy, expected, atol=2e-3)
    assert any(abs(s.get("y0", -1) - 1.0) < 1e-9 for s in chart(at, "attn_entropy")["layout"]
               ["shapes"])  # the uniform value is drawn

    weights = chart(at, "attn_text_frame")
    gt = int(base.text_to_video[q])
    valid = np.asarray(base.video_mask[gt], dtype=bool)
    got = {t["name"].split(":")[0]: plotly_array(t["y"]) for t in weights["data"]}
    np.testing.assert_allclose(got["base"], base.text_frame_weights[q][valid], rtol=1e-6)
    np.testing.assert_allclose(got["DRGI"], drgi.text_frame_weights[q][valid], rtol=1e-6)
    assert "GAT" in got  # token mode: the video graph's attention over the same frames
    # SynthVTT: the events of the video are shaded on the time axis
    n_events = len(split_meta(base).videos[gt].events)
    assert sum(1 for s in weights["layout"]["shapes"] if s.get("type") == "rect") == n_events
    align = table_with(at, "share on mentioned events", "chance (uniform)")
    assert len(align) == 3 and align["share on mentioned events"].between(0, 1).all()
    split = table_with(at, "mean share", "mean chance")
    assert set(split["weights"]) == {"text-to-frame", "GAT received"}


def test_attention_video_from_the_url_shades_events(app_env):
    drgi = page_bundle(app_env, app_env.drgi)
    v = 3
    at = open_page(ATTENTION, attn_kind="video", v=str(v), attn_excess="false")
    assert at.number_input(key="v").value == v
    d = drgi.drgi
    mask = np.asarray(d.video_node_mask[v], dtype=bool)
    heat = chart(at, "attn_heatmap")
    np.testing.assert_allclose(plotly_array(heat["data"][0]["z"]),
                               attention_view(d.video_attention[v], mask), rtol=1e-12)
    assert heat["data"][0]["x"][0].startswith("f0 @ ")
    meta = split_meta(drgi)
    runs = event_runs(frame_event_ids(drgi.frame_timestamps[v], meta.videos[v].events,
                                      meta.params.fps)[mask])
    assert len(heat["layout"].get("shapes", [])) == len(runs)
    images = heat["layout"].get("images", [])  # the sampled frames under the x axis
    assert len(images) == int(mask.sum()) == len(drgi.thumbnail_frames(v))
    assert all(im["source"].startswith("data:image/jpeg;base64,") for im in images)
    uniform = any("Attention is uniform here" in w.value for w in at.warning)
    if uniform:  # a network of equal weights would suggest structure: not drawn, and said so
        assert not [c for c in at.get("plotly_chart") if str(c.proto.id).endswith("-attn_network")]
        assert any("No network diagram" in c.value for c in at.caption)
    else:
        net = chart(at, "attn_network")
        assert plotly_array(net["data"][-1]["customdata"]).tolist() == list(range(int(mask.sum())))


def test_attention_without_drgi_explains_and_keeps_the_weights(app_env):
    at = open_page(ATTENTION, drgi="(none)")
    assert any("needs a run trained with DRGI" in i.value for i in at.info)
    names = [t["name"] for t in chart(at, "attn_text_frame")["data"]]
    assert len(names) == 1 and names[0].startswith("base")


def test_attention_page_states_whether_attention_is_uniform(app_env):
    drgi = page_bundle(app_env, app_env.drgi)
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


def test_attention_shows_the_difference_when_both_runs_have_a_gat(app_env):
    # the DRGI run against itself: both sides have a GAT, and every difference is 0
    name = app_env.drgi.name
    at = open_page(ATTENTION, base=name, drgi=name, q="1")
    diff = chart(at, "attn_heatmap_diff")["data"][0]
    z = plotly_array(diff["z"])
    d = page_bundle(app_env, app_env.drgi).drgi
    assert z.shape == (int(d.text_node_mask[1].sum()),) * 2
    np.testing.assert_allclose(z, 0.0, atol=1e-12)
    assert any("Largest |DRGI − base| difference: 0" in c.value for c in at.caption)


def test_attention_draws_no_difference_with_one_gat(app_env):
    at = open_page(ATTENTION)
    assert not [c for c in at.get("plotly_chart") if str(c.proto.id).endswith("-attn_heatmap_diff")]
