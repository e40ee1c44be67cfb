"""The embeddings page (app/app_pages/embeddings.py) with AppTest on the tiny run pair:
the map is one WebGL trace with one id per point, the lasso fills the gallery, colours
follow the chosen mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.embedding_map import map_points
from analysis.geometry import modality_gap
from tests.helpers_app import (
    assert_histogram_of,
    assert_no_errors,
    chart,
    marker_colours,
    open_page,
    page_bundle,
    plotly_array,
)

EMBEDDINGS = "app_pages/embeddings.py"
_SEQ = iter(range(1, 10**6))


def _lasso(*ids: int) -> dict:
    """The state a lasso around the points ``ids`` sends from the browser's point map
    (app/components/point_map.js): each drawing has its own ``seq``."""
    return {"selection": {"ids": list(ids), "mode": "lasso", "seq": f"t{next(_SEQ)}"}}
OUTCOME_COLOURS = {"win": "#2ca02c", "tie": "#9e9e9e", "loss": "#d62728"}  # the page's legend


def test_embeddings_map_is_one_webgl_trace_with_ids(app_env):
    base = page_bundle(app_env, app_env.base)
    at = open_page(EMBEDDINGS)
    points = map_points(base.projections, "pca", base.text_to_video)
    for key in ("emb_map_base", "emb_map_DRGI"):
        fig = chart(at, key)
        marks = {"caption 0", "its ground truth", "top negatives"}  # the current query (q=0)
        assert {t["name"] for t in fig["data"]} >= marks
        gl = [t for t in fig["data"] if t["type"] == "scattergl" and t["name"] not in marks]
        assert len(gl) == 1 and fig["data"][0]["type"] == "scattergl"
        # legend entries, no points
        assert all(t["x"] == [None] for t in fig["data"][1:] if t["name"] not in marks)
        x = plotly_array(gl[0]["x"])
        ids = plotly_array(gl[0]["customdata"])
        assert len(x) == len(points) == len(ids)
        assert ids.ndim == 1 and sorted(ids.tolist()) == list(range(len(points)))
    base_trace = chart(at, "emb_map_base")["data"][0]
    ids = plotly_array(base_trace["customdata"])
    np.testing.assert_allclose(plotly_array(base_trace["x"]), points.coords[ids, 0], rtol=1e-6)
    gap = modality_gap(base.text_pooled, base.video_pooled, base.text_to_video)
    shown = {(m.label, m.value) for m in at.metric}
    assert ("centroid distance", f"{gap.centroid_distance:.3f}") in shown
    hist = chart(at, "emb_gap_base")["data"]
    assert_histogram_of(hist[0], gap.matched_cos)


def test_embeddings_lasso_fills_the_gallery_and_greys_the_rest(app_env):
    base = page_bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    caption, video = 3, 5
    text_id = int(points.block("texts")[caption])
    video_id = int(points.block("videos")[video])
    at = open_page(EMBEDDINGS)
    at.session_state["emb_map_base"] = _lasso(text_id, video_id)
    at.run()
    assert_no_errors(at)
    gallery = [m.value for m in at.markdown if m.value.startswith(f"`{caption}`")]
    assert gallery and base.captions[caption].split()[1] in gallery[0]
    captions = [str(im.proto.imgs[0].caption) for im in at.image]
    assert any(base.video_ids[video] in c for c in captions)
    # the selection is linked: the DRGI map lights up the same caption and video
    for key in ("emb_map_base", "emb_map_DRGI"):
        trace = chart(at, key)["data"][0]
        ids = plotly_array(trace["customdata"])
        colours = marker_colours(trace)
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
    trace = chart(at, "emb_map_base")["data"][0]
    assert not any(c.startswith("rgba(190") for c in marker_colours(trace))


@pytest.mark.parametrize("mode", ["video", "node position", "event"])
def test_embeddings_colour_modes(app_env, mode):
    at = open_page(EMBEDDINGS, emb_colour=mode)
    assert at.selectbox(key="emb_colour").value == mode
    trace = chart(at, "emb_map_base")["data"][0]
    assert len(set(marker_colours(trace))) > 1


def test_embeddings_win_loss_colours_follow_the_rank_comparison(app_env):
    from analysis.rankings import compare_rankings

    base, drgi = page_bundle(app_env, app_env.base), page_bundle(app_env, app_env.drgi)
    points = map_points(base.projections, "pca", base.text_to_video)
    outcome = compare_rankings(base.ranks.t2v, drgi.ranks.t2v)["outcome"].to_numpy()
    at = open_page(EMBEDDINGS, emb_colour="win / loss")
    trace = chart(at, "emb_map_base")["data"][0]
    ids = plotly_array(trace["customdata"])
    colour = dict(zip(ids.tolist(), marker_colours(trace), strict=True))
    for caption, point in enumerate(points.block("texts")):
        assert colour[int(point)] == OUTCOME_COLOURS[outcome[caption]]
    assert set(marker_colours(trace)) <= set(OUTCOME_COLOURS.values())


def test_find_rings_and_centres_the_match_and_lists_full_space_neighbours(app_env):
    from analysis.projector import VIDEO, Item, nearest_neighbours
    from app.components.projector import item_name

    base = page_bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    v = 4
    at = open_page(EMBEDDINGS, emb_find=base.video_ids[v])
    fig = chart(at, "emb_map_base")
    found = [t for t in fig["data"] if t["name"] == "found"]
    assert len(found) == 1
    point = points.coords[int(points.block("videos")[v])]
    np.testing.assert_allclose([plotly_array(found[0]["x"])[0], plotly_array(found[0]["y"])[0]],
                               point, rtol=1e-6)
    x0, x1 = fig["layout"]["xaxis"]["range"]
    assert x0 < point[0] < x1 and abs((x0 + x1) / 2 - point[0]) < 1e-4  # centred on it
    table = next(d.value for d in at.dataframe if "neighbour" in d.value.columns)
    expected = nearest_neighbours(base.text_pooled, base.video_pooled, Item(VIDEO, v), 10)
    assert table["neighbour"].tolist() == [item_name(base, it) for it, _ in expected]
    np.testing.assert_allclose(table["cosine"], [c for _, c in expected], rtol=1e-6)


def test_colour_by_delta_rank_follows_the_query_table(app_env):
    from analysis.query_table import bundle_query_table
    from app.components.figures.map_colours import value_colours

    base, drgi = page_bundle(app_env, app_env.base), page_bundle(app_env, app_env.drgi)
    at = open_page(EMBEDDINGS, emb_colour="Δ log2 rank (DRGI − base)")
    assert not at.warning or all("emb_colour" not in w.value for w in at.warning)
    points = map_points(base.projections, "pca", base.text_to_video)
    delta = bundle_query_table(base, drgi)["delta_log2"].reindex(range(base.num_texts))
    trace = chart(at, "emb_map_base")["data"][0]
    ids = plotly_array(trace["customdata"])
    texts = points.block("texts")
    colours, _ = value_colours(delta.to_numpy(np.float64), "RdYlGn_r",
                               low_name="", high_name="")
    got = dict(zip(ids.tolist(), marker_colours(trace), strict=True))
    assert [got[int(t)] for t in texts] == colours.colours().tolist()


def test_selection_is_kept_in_the_url_and_reopened_from_a_link(app_env):
    base = page_bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    text_id = int(points.block("texts")[2])
    at = open_page(EMBEDDINGS)
    at.session_state["emb_map_base"] = _lasso(text_id)
    at.run()
    assert at.query_params["emb_sel"] in ("c2", ["c2"])
    at = open_page(EMBEDDINGS, emb_sel="c2~v1")
    assert any(m.value.startswith("**1 caption(s) and 1 video(s) selected") for m in at.markdown)
    at = open_page(EMBEDDINGS, emb_sel="c99999")
    assert any("emb_sel=c99999" in w.value for w in at.warning)


def test_named_selections_are_saved_in_the_url_and_shown_again(app_env):
    base = page_bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    text_id = int(points.block("texts")[2])
    at = open_page(EMBEDDINGS)
    at.session_state["emb_map_base"] = _lasso(text_id)
    at.run()
    at.text_input(key="emb_save_name").set_value("two").run()
    at.button(key="emb_save").click().run()
    assert_no_errors(at)
    assert at.query_params["emb_saved"] in ("two:c2", ["two:c2"])
    # a link with two saved selections (one bad): pick one, show it
    at = open_page(EMBEDDINGS, emb_saved=["two:c2", "vids:v1.3", "oops:c99999"])
    assert any("emb_saved=oops:c99999" in w.value for w in at.warning)
    assert at.selectbox(key="emb_saved_pick").options == ["two", "vids"]
    at.selectbox(key="emb_saved_pick").select("vids").run()
    at.button(key="emb_saved_show").click().run()
    assert_no_errors(at)
    assert any(m.value.startswith("**0 caption(s) and 2 video(s) selected") for m in at.markdown)
    assert at.query_params["emb_sel"] in ("v1.3", ["v1.3"])


def test_point_budget_draws_a_stratified_sample_keeping_the_marked_points(app_env):
    from analysis.embedding_map import highlight
    from analysis.rankings import top_k

    base = page_bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    budget = 20
    assert len(points) > 2 * budget
    at = open_page(EMBEDDINGS, emb_budget=str(budget), q="2")
    assert at.number_input(key="emb_budget").value == budget
    q, gt = 2, int(base.text_to_video[2])
    idx, _ = top_k(base.sim[q], min(4, base.num_videos))
    negatives = [int(v) for v in idx if int(v) != gt][:3]
    drgi = page_bundle(app_env, app_env.drgi)
    idx_d, _ = top_k(drgi.sim[q], min(4, drgi.num_videos))
    negatives += [int(v) for v in idx_d if int(v) != gt][:3]
    forced = set(np.flatnonzero(highlight(points, [q], [gt, *negatives])).tolist())
    drawn = {}
    for key in ("emb_map_base", "emb_map_DRGI"):
        ids = plotly_array(chart(at, key)["data"][0]["customdata"]).tolist()
        assert forced <= set(ids)
        assert len(ids) == max(budget, len(forced))
        drawn[key] = sorted(ids)
    assert drawn["emb_map_base"] == drawn["emb_map_DRGI"]  # same layout: the same sample
    notes = [c.value for c in at.caption if c.value.startswith("Showing")]
    assert notes and f"of {len(points):,} points (budget {budget:,}" in notes[0]
    at.run()  # deterministic: the same points on a rerun
    assert sorted(plotly_array(chart(at, "emb_map_base")["data"][0]["customdata"]).tolist()) \
        == drawn["emb_map_base"]
    assert at.query_params["emb_budget"] in (str(budget), [str(budget)])


def test_point_budget_keeps_the_selection_and_warns_on_a_bad_link(app_env):
    base = page_bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    at = open_page(EMBEDDINGS, emb_budget="10", emb_sel="v1")
    ids = set(plotly_array(chart(at, "emb_map_base")["data"][0]["customdata"]).tolist())
    video_side = np.isin(points.kind, [1, 3])
    assert set(np.flatnonzero(video_side & (points.item == 1)).tolist()) <= ids
    at = open_page(EMBEDDINGS, emb_budget="3")
    assert any("emb_budget=3" in w.value for w in at.warning)
    assert at.number_input(key="emb_budget").value == 20_000
    assert any(c.value.startswith(f"Showing all {len(points):,} points") for c in at.caption)


def _chart_path(at, key: str) -> list[int]:
    """The position (child indices from the page's main block) of the chart with key ``key``:
    the browser keeps a chart mounted only while its position and spec stay the same."""
    def walk(node, path):
        for i, child in getattr(node, "children", {}).items():
            if getattr(child, "type", None) in ("plotly_chart", "bidi_component") and str(
                    child.proto.id).endswith(f"-{key}"):
                return [*path, i]
            found = walk(child, [*path, i])
            if found is not None:
                return found
        return None

    path = walk(at.main, [])
    assert path is not None, f"no chart with key {key!r}"
    return path


def test_a_selection_leaves_the_modality_gap_charts_where_they_were(app_env):
    base = page_bundle(app_env, app_env.base)
    points = map_points(base.projections, "pca", base.text_to_video)
    at = open_page(EMBEDDINGS)
    before = {k: (_chart_path(at, k), chart(at, k)) for k in ("emb_gap_base", "emb_gap_DRGI")}
    text_id, video_id = int(points.block("texts")[1]), int(points.block("videos")[4])
    at.session_state["emb_map_base"] = _lasso(text_id, video_id)
    at.run()
    assert_no_errors(at)
    assert any(m.value.startswith("**1 caption(s) and 1 video(s) selected") for m in at.markdown)
    after = {k: (_chart_path(at, k), chart(at, k)) for k in before}
    assert after == before  # same place, same spec: not mounted anew by the selection
