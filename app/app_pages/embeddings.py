"""Embeddings: the 2-D map of each run's frame nodes, word nodes, captions and videos.

One WebGL scatter per run (side by side, one trace each, point ids in ``customdata``), coloured
by modality, video, node position, SynthVTT event or DRGI's win/loss against the base run.
Lasso or box selections are linked: the selected captions and videos light up on every map
(the rest is greyed, not hidden) and fill a gallery of captions and frame strips. Below, the
modality gap of each run: text-video centroid distance and matched vs random pair cosines.
Maps are computed by the export (``analysis.export --projection``); nothing is fitted here.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import sample_colorscale

from analysis.bundle import Bundle
from analysis.embedding_map import (
    FRAMES,
    KINDS,
    TEXTS,
    WORDS,
    MapPoints,
    highlight,
    map_points,
    selected_items,
)
from analysis.events import NO_EVENT
from analysis.geometry import modality_gap
from analysis.hard_negatives import margin_distribution
from analysis.labels import event_label, video_label
from analysis.projection import align_to
from analysis.projector import (
    CAPTION,
    Item,
    find_items,
    point_values,
    saved_to_url,
    selection_to_url,
)
from analysis.rankings import top_k
from app import resources
from app.components.palette import EVENT_COLOURS, OUTCOME_COLOURS, event_colour
from app.components.projector import (
    SAVED_PARAM,
    SELECTION_PARAM,
    delete_saved,
    item_name,
    mark_found,
    neighbour_table,
    save_selection,
    saved_from_link,
    selection_from_link,
    value_colours,
)
from app.components.query import query_picker, selected_points
from app.components.synthvtt import frame_events as split_frame_events
from app.components.synthvtt import synthvtt_split
from app.components.text import escape_md
from app.components.thumbs import frame_strip
from app.context import BASE_LABEL, current
from app.state import AppRoots
from app.urlstate import check_choice, check_choices, remember

logger = logging.getLogger(__name__)

KIND_NAMES = {"words": "word tokens", "frames": "frame tokens", "texts": "captions (pooled)",
              "videos": "videos (pooled)"}
KIND_COLOURS = ("#9ecae1", "#fdae6b", "#08519c", "#a63603")  # in KINDS order
KIND_SIZES = (4, 4, 9, 9)
CATEGORICAL = px.colors.qualitative.Alphabet
GAP_COLOUR = "#555555"  # frames between events
NOT_A_FRAME = "#d9cbb0"  # words, captions and videos under the event colouring
POOLED_COLOUR = "#222222"  # pooled points under the position colouring
UNSELECTED = "rgba(190,190,190,0.3)"
DELTA_MODE, MARGIN_MODE = "Δ log2 rank (DRGI − base)", "margin (GT − hardest other)"
COLOUR_MODES = ("modality", "video", "node position", "event", "win / loss", DELTA_MODE,
                MARGIN_MODE)
PAIRED_MODES = ("win / loss", DELTA_MODE)  # need both runs on the same captions
NEIGHBOURS = 10
SELECTION_KEY = "emb_selection"  # {"scope", "source", "captions", "videos"} or None
SEEN_KEY = "_emb_seen_"  # + map label: the ids that map reported last
MAX_GALLERY_CAPTIONS = 40
MAX_GALLERY_VIDEOS = 12
HOVER_TEXT_MAX_POINTS = 60_000  # above this the hover shows ids only (payload)
QUERY_NEGATIVES = 3  # top negatives marked with the current query
QUERY_COLOUR, GT_COLOUR, NEGATIVE_COLOUR = "#000000", "#2ca02c", "#d62728"


def map_key(label: str) -> str:
    return f"emb_map_{label}"


# ------------------------------------------------------------------ cached computations
@st.cache_data(max_entries=16, show_spinner=False)
def _points(path: str, stamp: tuple, method: str, _bundle: Bundle) -> MapPoints:
    return map_points(_bundle.projections, method, _bundle.text_to_video)


def points_of(bundle: Bundle, method: str) -> MapPoints:
    return _points(str(bundle.path), resources.bundle_stamp(bundle.path), method, bundle)


@st.cache_data(max_entries=16, show_spinner=False)
def _hover(path: str, stamp: tuple, method: str, _bundle: Bundle,
           _points_: MapPoints) -> list[str]:
    out = []
    for k, item, pos in zip(_points_.kind.tolist(), _points_.item.tolist(),
                            _points_.position.tolist(), strict=True):
        if k == WORDS:
            labels = _bundle.word_labels[item]
            word = labels[pos] if 0 <= pos < len(labels) else f"token {pos}"
            out.append(f"word “{word}” · caption {item}")
        elif k == FRAMES:
            out.append(f"frame {pos} · {video_label(_bundle.video_ids[item])}")
        elif k == TEXTS:
            text = _bundle.captions[item]
            out.append(f"caption {item}: {text[:80]}{'…' if len(text) > 80 else ''}")
        else:
            out.append(video_label(_bundle.video_ids[item]))
    return out


def hover_text(bundle: Bundle, method: str, points: MapPoints) -> list[str] | None:
    if len(points) > HOVER_TEXT_MAX_POINTS:
        return None
    return _hover(str(bundle.path), resources.bundle_stamp(bundle.path), method, bundle, points)


@st.cache_data(max_entries=16, show_spinner="Measuring the modality gap…")
def _gap(path: str, stamp: tuple, _bundle: Bundle) -> Any:
    return modality_gap(_bundle.text_pooled, _bundle.video_pooled, _bundle.text_to_video)


def gap_of(bundle: Bundle) -> Any:
    return _gap(str(bundle.path), resources.bundle_stamp(bundle.path), bundle)


# ------------------------------------------------------------------ colours
def point_colours(points: MapPoints, mode: str, bundle: Bundle, *,
                  frame_events: np.ndarray | None, outcomes: dict[str, np.ndarray] | None
                  ) -> tuple[np.ndarray, list[tuple[str, str]], str | None]:
    """Per-point colours, legend entries ``(name, colour)`` and a colour-scale note."""
    kind = points.kind
    if mode == "video":
        palette = np.asarray(CATEGORICAL, dtype=object)
        return palette[points.video % len(palette)], [], (
            "colour = the point's video (a caption's ground-truth video); colours repeat "
            f"every {len(palette)} videos")
    if mode == "node position":
        tokens = points.position >= 0
        top = int(points.position.max()) if tokens.any() else 0
        palette = np.asarray(sample_colorscale("Viridis", np.linspace(0.0, 1.0, top + 1)),
                             dtype=object)
        colours = np.full(len(points), POOLED_COLOUR, dtype=object)
        colours[tokens] = palette[points.position[tokens]]
        return colours, [("first position", palette[0]), (f"position {top}", palette[-1]),
                         ("pooled (no position)", POOLED_COLOUR)], (
            "colour = token / frame position (Viridis, dark = first)")
    if mode == "event" and frame_events is not None:
        colours = np.full(len(points), NOT_A_FRAME, dtype=object)
        frames = kind == FRAMES
        ev = frame_events[points.item[frames], points.position[frames]]
        palette = np.asarray(EVENT_COLOURS, dtype=object)
        fc = np.where(ev == NO_EVENT, GAP_COLOUR, palette[np.maximum(ev, 0) % len(palette)])
        colours[frames] = fc
        n_events = int(frame_events.max()) + 1 if frame_events.size else 0
        legend = [(event_label(e), event_colour(e))
                  for e in range(n_events)]
        legend += [("between events", GAP_COLOUR), ("not a frame", NOT_A_FRAME)]
        return colours, legend, "frames coloured by the SynthVTT event they show (in order)"
    if mode == "win / loss" and outcomes is not None:
        text_side = points.caption >= 0
        colours = np.empty(len(points), dtype=object)
        colours[text_side] = [OUTCOME_COLOURS[o] for o in outcomes["t2v"][
            points.caption[text_side]]]
        colours[~text_side] = [OUTCOME_COLOURS[o] for o in outcomes["v2t"][
            points.item[~text_side]]]
        return colours, [(f"DRGI {o}", c) for o, c in OUTCOME_COLOURS.items()], (
            "words and captions: the caption's t2v outcome; frames and videos: the video's "
            "v2t outcome (DRGI vs base)")
    palette = np.asarray(KIND_COLOURS, dtype=object)
    return palette[kind], [(KIND_NAMES[k], c) for k, c in zip(KINDS, KIND_COLOURS,
                                                               strict=True)], None


def map_figure(points: MapPoints, coords: np.ndarray, shown: np.ndarray, colours: np.ndarray,
               lit: np.ndarray | None, hover: list[str] | None,
               legend: list[tuple[str, str]], title: str) -> go.Figure:
    """One Scattergl trace of the ``shown`` points (ids in customdata); unselected greyed."""
    colours = colours.copy()
    sizes = np.asarray(KIND_SIZES)[points.kind]
    order = shown
    if lit is not None:
        colours[~lit] = UNSELECTED
        order = shown[np.argsort(lit[shown], kind="stable")]  # highlighted drawn last (on top)
    trace: dict[str, Any] = dict(
        x=coords[order, 0], y=coords[order, 1], mode="markers", name="points",
        marker=dict(size=sizes[order], color=colours[order].tolist(), line=dict(width=0)),
        # 1-D ids: a 2-D typed customdata comes back from the browser as a dict per point
        customdata=order, showlegend=False,
    )
    if hover is not None:
        trace["hovertext"] = [hover[i] for i in order.tolist()]
        trace["hovertemplate"] = "%{hovertext}<extra></extra>"
    else:
        trace["hovertemplate"] = "point %{customdata}<extra></extra>"
    fig = go.Figure(go.Scattergl(**trace))
    for name, colour in legend:  # legend entries only: empty SVG traces, no points
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(size=9, color=colour), hoverinfo="skip"))
    fig.update_layout(
        title=title, height=560, dragmode="lasso", margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.08), xaxis=dict(showticklabels=False),
        yaxis=dict(showticklabels=False, scaleanchor="x"),
    )
    return fig


def top_negatives(bundle: Bundle, q: int, n: int = QUERY_NEGATIVES) -> list[int]:
    """The ``n`` best-scoring videos of caption ``q`` other than its ground truth."""
    gt = int(bundle.text_to_video[q])
    idx, _ = top_k(bundle.sim[q], min(n + 1, bundle.num_videos))
    return [int(v) for v in idx if int(v) != gt][:n]


def mark_query(fig: go.Figure, points: MapPoints, coords: np.ndarray, q: int, gt: int,
               negatives: list[int]) -> None:
    """Mark caption ``q`` (star), its ground-truth video (ringed diamond) and its top negative
    videos (crosses) on top of a map, one legend entry each (three small WebGL traces after
    the map's own, so drawn over it)."""
    texts, videos = points.block("texts"), points.block("videos")
    text_pt = texts[points.item[texts] == q]
    vid_of = {int(points.item[i]): int(i) for i in videos}
    marks = (
        (f"caption {q}", text_pt, "star", 18, QUERY_COLOUR),
        ("its ground truth", np.asarray([vid_of[gt]] if gt in vid_of else [], dtype=np.int64),
         "diamond-open", 18, GT_COLOUR),
        ("top negatives", np.asarray([vid_of[v] for v in negatives if v in vid_of],
                                     dtype=np.int64), "x", 13, NEGATIVE_COLOUR),
    )
    for name, ids, symbol, size, colour in marks:
        # WebGL too: plotly draws WebGL points above every SVG trace, which would hide these
        fig.add_trace(go.Scattergl(
            x=coords[ids, 0], y=coords[ids, 1], mode="markers", name=name,
            marker=dict(symbol=symbol, size=size, color=colour,
                        line=dict(width=2, color=colour)),
            hovertemplate=f"{name}<extra></extra>"))


def gallery(roots: AppRoots, bundle: Bundle, captions: list[int], videos: list[int],
            where: str) -> None:
    """The selected captions (text, ground-truth video) and videos (frame strips)."""
    st.markdown(f"**{len(captions)} caption(s) and {len(videos)} video(s) selected** on {where}")
    if captions:
        shown = captions[:MAX_GALLERY_CAPTIONS]
        st.markdown("  \n".join(
            f"`{c}` {escape_md(bundle.captions[c])} — *{escape_md(bundle.video_ids[int(bundle.text_to_video[c])])}*"
            for c in shown))
        if len(captions) > len(shown):
            st.caption(f"… and {len(captions) - len(shown)} more captions")
    if videos:
        shown_v = videos[:MAX_GALLERY_VIDEOS]
        cols = st.columns(3)
        for i, v in enumerate(shown_v):
            frame_strip(roots, bundle, v, container=cols[i % 3],
                        title=video_label(bundle.video_ids[v]))
        if len(videos) > len(shown_v):
            st.caption(f"… and {len(videos) - len(shown_v)} more videos")


# ------------------------------------------------------------------ the page
sel = current()
roots = sel.roots
st.title("Embeddings")

bundles = sel.bundles()
methods = [m for m in sel.base.projections.methods
           if all(m in b.projections.methods for _, b in bundles)]
if not methods:
    have = {label: list(b.projections.methods) for label, b in bundles}
    st.info(
        "No 2-D map common to the selected bundles " + str(have) + ". Export with "
        f"`python -m analysis.export --run RUN --split {sel.split} --projection pca` (or "
        "`umap,pca`); maps are computed offline, never on a page load."
    )
    st.stop()

meta, meta_note = synthvtt_split(roots, sel.base)
modes = [m for m in COLOUR_MODES if (m != "event" or meta is not None)
         and (m not in PAIRED_MODES or sel.paired)
         and (m != MARGIN_MODE or sel.base.num_videos > 1)]
c1, c2, c3 = st.columns([1, 1, 2])
check_choice("emb_method", methods, methods[0], what="2-D map of these bundles", fmt=str.upper)
method = remember("emb_method", c1.selectbox("Map", methods, key="emb_method",
                                             bind="query-params", format_func=str.upper),
                  str.upper)
check_choice("emb_colour", modes, modes[0], what="colour mode here")
mode = remember("emb_colour", c2.selectbox("Colour by", modes, key="emb_colour",
                                           bind="query-params"))
check_choices("emb_kinds", list(KINDS), what="kind of point", fmt=lambda k: KIND_NAMES[k])
kinds = remember("emb_kinds", c3.multiselect(
    "Points", list(KINDS), default=list(KINDS), key="emb_kinds", bind="query-params",
    format_func=lambda k: KIND_NAMES[k]), lambda k: KIND_NAMES[k])
q_col, q_text = st.columns([1, 3])
q = query_picker(sel.base.num_texts, label="caption marked on the maps", container=q_col,
                 help="Marked with its ground truth and top negatives; shared with the other "
                 "pages and kept in the URL (?q=).")
q_gt = int(sel.base.text_to_video[q])
negs_of = {label: top_negatives(b, q) for label, b in bundles}
q_text.markdown(
    f"**Marked: caption {q}** {escape_md(sel.base.captions[q])} — ground truth "
    f"*{escape_md(sel.base.video_ids[q_gt])}*; top negatives "
    + "; ".join(f"{label}: " + ", ".join(escape_md(b.video_ids[v]) for v in negs_of[label])
                for label, b in bundles)
)
if meta_note:
    st.caption(meta_note)
find = remember("emb_find", st.text_input(
    "Find a caption or video", key="emb_find", bind="query-params",
    placeholder="words of a caption, a video id (video12), or an index (caption 3, v7)",
    help="Rings the matches on every map and centres the maps on the first; its nearest "
    "neighbours in the full embedding space are listed below the maps."))
found = find_items(find, sel.base.captions, sel.base.video_ids) if find.strip() else []
if find.strip():
    st.caption(f"{len(found)} match(es)" + (": " + "; ".join(
        escape_md(item_name(sel.base, it, 40)) for it in found[:5])
        + (" …" if len(found) > 5 else "") if found else " — nothing on this split"))

layouts = {label: points_of(b, method) for label, b in bundles}
same_layout = sel.paired and len(layouts) == 2 and all(
    np.array_equal(layouts[BASE_LABEL].kind, p.kind) and np.array_equal(
        layouts[BASE_LABEL].item, p.item) and np.array_equal(layouts[BASE_LABEL].position,
                                                             p.position)
    for p in layouts.values())
align = False
if same_layout:
    align = remember("emb_align", st.toggle(
        "Align the DRGI map to the base map (Procrustes rotation, reflection and scale on all "
        "points)", value=True, key="emb_align", bind="query-params"))

# The current selection lives in our own key: a chart's selection state is tied to its spec
# (Streamlit derives the element id from it), and greying the unselected points changes the
# spec, which resets the chart's own state. So a new non-empty lasso/box selection replaces the
# stored one, a reset chart (empty state) leaves it alone, and a button clears it.
scope = [sel.split_name, *(b.run_name for _, b in bundles)]
stored = st.session_state.get(SELECTION_KEY)
if not isinstance(stored, dict) or stored.get("scope") != scope:
    stored = None
if stored is None and SELECTION_KEY not in st.session_state:  # a fresh page: the link's
    linked = selection_from_link(sel.base.num_texts, sel.base.num_videos)
    if linked is not None:
        stored = {"scope": scope, "source": bundles[0][0], "captions": linked[0],
                  "videos": linked[1]}
for label, _ in bundles:
    ids = sorted({int(i) for i in selected_points(st.session_state.get(map_key(label)))})
    seen = st.session_state.get(SEEN_KEY + label)
    st.session_state[SEEN_KEY + label] = ids
    if ids and ids != seen:
        caps, vids = selected_items(layouts[label], ids)
        stored = {"scope": scope, "source": label, "captions": caps, "videos": vids}
st.session_state[SELECTION_KEY] = stored
sel_url = selection_to_url(stored["captions"], stored["videos"]) if stored else ""
if st.query_params.get(SELECTION_PARAM, "") != sel_url:  # the selection is kept in the URL
    if sel_url:
        st.query_params[SELECTION_PARAM] = sel_url
    else:
        del st.query_params[SELECTION_PARAM]
if sel_url:
    remember(SELECTION_PARAM, sel_url)


def lit_items(label: str) -> tuple[list[int], list[int]]:
    """The captions and videos to light up on ``label``'s map (all maps when paired)."""
    if stored is None or (not sel.paired and stored["source"] != label):
        return [], []
    return stored["captions"], stored["videos"]


outcomes = None
if mode == "win / loss" and sel.paired:
    base_b, drgi_b = sel.require_pair("the win/loss colouring")
    outcomes = {d: resources.comparison(base_b, drgi_b, d)["outcome"].to_numpy()
                for d in ("t2v", "v2t")}
caption_values: dict[str, np.ndarray] = {}  # run label -> [Nt] value of each caption
if mode == DELTA_MODE and sel.drgi is not None and sel.paired:
    delta = resources.query_table(sel.base, sel.drgi, k=1, synthvtt=meta)["delta_log2"]
    caption_values = {label: delta.reindex(range(sel.base.num_texts)).to_numpy(np.float64)
                      for label, _ in bundles}
elif mode == MARGIN_MODE:  # each run its own margins
    caption_values = {label: margin_distribution(b.sim, b.text_to_video) for label, b in bundles}

cols = st.columns(len(bundles))
note = None
for col, (label, bundle) in zip(cols, bundles, strict=True):
    points = layouts[label]
    coords = points.coords
    if align and label != BASE_LABEL:
        coords = align_to(layouts[BASE_LABEL].coords, coords)
    shown = np.flatnonzero(np.isin(points.kind, [KINDS.index(k) for k in kinds]))
    frame_events = None
    if mode == "event":
        b_meta, _ = synthvtt_split(roots, bundle)
        if b_meta is not None:
            frame_events = split_frame_events(bundle, b_meta)
    if label in caption_values:
        values = point_values(points, caption_values[label])
        if mode == DELTA_MODE:
            colours, legend, _ = value_colours(values, "RdYlGn_r", low_name="DRGI better",
                                               high_name="DRGI worse")
            note = ("colour = Δ log2 rank of the caption (DRGI − base); frames and videos: the "
                    "mean over the video's captions")
        else:
            colours, legend, _ = value_colours(values, "RdYlGn", low_name="a negative wins",
                                               high_name="GT wins")
            note = ("colour = the caption's margin on this run (GT score − hardest other "
                    "video); frames and videos: the mean over the video's captions")
    else:
        colours, legend, note = point_colours(points, mode, bundle, frame_events=frame_events,
                                              outcomes=outcomes)
    caps, vids = lit_items(label)
    lit = highlight(points, caps, vids) if (caps or vids) else None
    fig = map_figure(points, coords, shown, colours, lit, hover_text(bundle, method, points),
                     legend, f"{sel.label(bundle)} · {method.upper()}")
    mark_query(fig, points, coords, q, int(bundle.text_to_video[q]), negs_of[label])
    mark_found(fig, points, coords, found)
    with col:
        st.plotly_chart(fig, key=map_key(label), on_select="rerun",
                        selection_mode=("lasso", "box"), width="stretch")
        st.caption(f"{len(shown)} points: {len(points.block('words'))} words, "
                   f"{len(points.block('frames'))} frames, {bundle.num_texts} captions, "
                   f"{bundle.num_videos} videos (one joint {method.upper()} map per run).")
if note:
    st.caption(note)
st.caption("Lasso or box-select points: their captions and videos light up on "
           + ("every map" if sel.paired else "that map")
           + " and fill the gallery below (unselected points are greyed). A new selection "
           "replaces the last one; \"Clear selection\" below forgets it.")

# ------------------------------------------------------------------ nearest neighbours
anchor = found[0] if found else Item(CAPTION, q)
st.subheader(f"Nearest neighbours of {item_name(sel.base, anchor, 60)}")
st.caption("In the full embedding space (cosine of the pooled, head-embedded vectors), not "
           "on the 2-D map: points close on the map can be far apart here and the reverse. "
           + ("The first match of the search box." if found else
              "The marked caption; type in the search box to pick another point."))
cols = st.columns(len(bundles))
for col, (label, bundle) in zip(cols, bundles, strict=True):
    col.markdown(f"**{sel.label(bundle)}**")
    col.dataframe(neighbour_table(bundle, anchor, NEIGHBOURS), hide_index=True,
                  width="stretch", key=f"emb_nn_{label}",
                  column_config={"cosine": st.column_config.NumberColumn(format="%.4f")})

# ------------------------------------------------------------------ gallery
st.subheader("Selection")
saved = saved_from_link(sel.base.num_texts, sel.base.num_videos)
if saved:
    remember(SAVED_PARAM, [saved_to_url(*s) for s in saved])
    s1, s2, s3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    names = [s[0] for s in saved]
    pick = str(s1.selectbox("Saved selections (kept in the URL)", names, key="emb_saved_pick"))
    if s2.button("Show", key="emb_saved_show", icon=":material/visibility:", width="stretch"):
        _, caps, vids = saved[names.index(pick)]
        st.session_state[SELECTION_KEY] = {"scope": scope, "source": bundles[0][0],
                                           "captions": caps, "videos": vids}
        st.rerun()
    if s3.button("Delete", key="emb_saved_delete", icon=":material/delete:", width="stretch"):
        delete_saved(saved, pick)
        st.rerun()
if stored is None:
    st.info("Lasso or box-select points on a map to list their captions and videos here.")
else:
    source = dict(bundles)[stored["source"]]
    b1, n1, n2 = st.columns([1, 2, 1], vertical_alignment="bottom")
    if b1.button("Clear selection", key="emb_clear", icon=":material/close:"):
        st.session_state[SELECTION_KEY] = None
        del st.query_params[SELECTION_PARAM]
        st.rerun()
    name = n1.text_input("Name this selection to keep it", key="emb_save_name",
                         placeholder="e.g. red circles")
    if n2.button("Save", key="emb_save", icon=":material/bookmark_add:", width="stretch",
                 disabled=not name.strip()):
        save_selection(saved, name, stored["captions"], stored["videos"])
        st.rerun()
    st.caption(f"The selection is kept in the URL (`?{SELECTION_PARAM}=`), and saved ones "
               f"too (`?{SAVED_PARAM}=`), so a link reopens them.")
    gallery(roots, sel.base if sel.paired else source, stored["captions"], stored["videos"],
            f"the {sel.label(source)} map")

# ------------------------------------------------------------------ modality gap
st.subheader("Modality gap")
cols = st.columns(len(bundles))
for col, (label, bundle) in zip(cols, bundles, strict=True):
    gap = gap_of(bundle)
    with col:
        st.markdown(f"**{sel.label(bundle)}**")
        m1, m2, m3 = st.columns(3)
        m1.metric("centroid distance", f"{gap.centroid_distance:.3f}",
                  help="‖mean text − mean video‖ of the L2-normalised pooled embeddings")
        m2.metric("matched cos (mean)", f"{gap.matched_mean:.3f}")
        m3.metric("random cos (mean)", f"{gap.random_mean:.3f}")
        fig = go.Figure()
        fig.add_trace(go.Histogram(x=gap.matched_cos, name="matched pairs", opacity=0.6,
                                   histnorm="percent", marker_color="#2ca02c"))
        fig.add_trace(go.Histogram(x=gap.random_cos, name="random pairs", opacity=0.6,
                                   histnorm="percent", marker_color="#7f7f7f"))
        fig.update_layout(barmode="overlay", height=300, xaxis_title="cosine",
                          yaxis_title="% of pairs", margin=dict(l=10, r=10, t=20, b=10),
                          legend=dict(orientation="h", y=1.15))
        st.plotly_chart(fig, key=f"emb_gap_{label}", width="stretch")
st.caption("Cosine of each caption with its own video vs with a random other video (pooled, "
           "head-embedded features). For cross heads (not factorized) the pooled cosine is not "
           "the retrieval score.")
