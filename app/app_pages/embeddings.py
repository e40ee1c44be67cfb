"""Embeddings: the 2-D map of each run's frame nodes, word nodes, captions and videos.

One WebGL scatter per run (side by side, one trace each, point ids in ``customdata``), coloured
by modality, video, node position, SynthVTT event or DRGI's win/loss against the base run.
The maps (and the modality gap charts) are app.components.point_map charts: mounted once and
updated in place on a rerun, with their own lasso and box. Lasso or box selections are linked:
the selected captions and videos light up on every map (the rest is greyed, not hidden) and
fill a gallery of captions and frame strips. Below, the modality gap of each run:
text-video centroid distance and matched vs random pair cosines.
Maps are computed by the export (``analysis.export --projection``); nothing is fitted here.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import streamlit as st

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
from analysis.geometry import modality_gap
from analysis.labels import video_label
from analysis.point_budget import BudgetSample, budget_sample
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
from app.components.figures.distributions import overlay_histogram
from app.components.figures.map_colours import (
    KIND_NAMES,
    MapColours,
    event_colours,
    kind_colours,
    outcome_colours,
    position_colours,
    value_colours,
    video_colours,
)
from app.components.figures.projection_map import map_figure, mark_query
from app.components.point_map import point_map, take_selection
from app.components.projector import (
    SAVED_PARAM,
    SELECTION_PARAM,
    delete_saved,
    item_name,
    item_points,
    mark_found,
    neighbour_table,
    save_selection,
    saved_from_link,
    selection_from_link,
)
from app.components.query import query_picker
from app.components.synthvtt import frame_events as split_frame_events
from app.components.synthvtt import synthvtt_split
from app.components.text import escape_md
from app.components.thumbs import frame_strip
from app.context import BASE_LABEL, current
from app.state import AppRoots
from app.urlstate import check_choice, check_choices, check_index, remember

logger = logging.getLogger(__name__)

DELTA_MODE, MARGIN_MODE = "Δ log2 rank (DRGI − base)", "margin (GT − hardest other)"
COLOUR_MODES = ("modality", "video", "node position", "event", "win / loss", DELTA_MODE,
                MARGIN_MODE)
PAIRED_MODES = ("win / loss", DELTA_MODE)  # need both runs on the same captions
DEFAULT_BUDGET = 20_000  # points drawn per map (see analysis.point_budget)
MIN_BUDGET, MAX_BUDGET = 10, 5_000_000
NEIGHBOURS = 10
SELECTION_KEY = "emb_selection"  # {"scope", "source", "captions", "videos"} or None
MAX_GALLERY_CAPTIONS = 40
MAX_GALLERY_VIDEOS = 12
HOVER_TEXT_MAX_POINTS = 60_000  # above this the hover shows ids only (payload)
QUERY_NEGATIVES = 3  # top negatives marked with the current query
MATCHED_COLOUR, RANDOM_COLOUR = "#2ca02c", "#7f7f7f"  # modality gap histograms


def map_key(label: str) -> str:
    return f"emb_map_{label}"


# ------------------------------------------------------------------ cached computations
# resources, not data: st.cache_data would unpickle a new copy on every rerun (two maps of
# 1.08 M points at MSR-VTT's full shape: ~100 MB and ~1 s per rerun); the arrays are made
# read-only since every session shares them
@st.cache_resource(max_entries=16, show_spinner=False)
def _points(path: str, stamp: tuple, method: str, _bundle: Bundle) -> MapPoints:
    points = map_points(_bundle.projections, method, _bundle.text_to_video)
    for arr in vars(points).values():
        arr.setflags(write=False)
    return points


def points_of(bundle: Bundle, method: str) -> MapPoints:
    return _points(str(bundle.path), resources.bundle_stamp(bundle.path), method, bundle)


def hover_text(bundle: Bundle, points: MapPoints, ids: np.ndarray) -> np.ndarray | None:
    """The hover text of the points ``ids`` (``[S]`` str, in their order), or None above
    :data:`HOVER_TEXT_MAX_POINTS` points (the hover then shows ids only)."""
    if len(ids) > HOVER_TEXT_MAX_POINTS:
        return None
    out = []
    for k, item, pos in zip(points.kind[ids].tolist(), points.item[ids].tolist(),
                            points.position[ids].tolist(), strict=True):
        if k == WORDS:
            labels = bundle.word_labels[item]
            word = labels[pos] if 0 <= pos < len(labels) else f"token {pos}"
            out.append(f"word “{word}” · caption {item}")
        elif k == FRAMES:
            out.append(f"frame {pos} · {video_label(bundle.video_ids[item])}")
        elif k == TEXTS:
            text = bundle.captions[item]
            out.append(f"caption {item}: {text[:80]}{'…' if len(text) > 80 else ''}")
        else:
            out.append(video_label(bundle.video_ids[item]))
    return np.asarray(out, dtype=str)


def point_colours(points: MapPoints, mode: str, *, frame_events: np.ndarray | None,
                  outcomes: dict[str, np.ndarray] | None) -> MapColours:
    """The colour codes of a categorical ``mode`` (modality when the mode's data is missing)."""
    if mode == "video":
        return video_colours(points)
    if mode == "node position":
        return position_colours(points)
    if mode == "event" and frame_events is not None:
        return event_colours(points, frame_events)
    if mode == "win / loss" and outcomes is not None:
        return outcome_colours(points, outcomes["t2v"], outcomes["v2t"])
    return kind_colours(points)


def budget_note(sample: BudgetSample, budget: int) -> str:
    """``showing N of M points`` with the counts per kind and what was always kept."""
    kinds = ", ".join(f"{kept:,} of {total:,} {KIND_NAMES[k].split(' (')[0]}"
                      for k, (kept, total) in sample.per_kind.items() if total)
    if sample.complete:
        return f"Showing all {sample.candidates:,} points ({kinds})."
    return (f"Showing {len(sample.ids):,} of {sample.candidates:,} points (budget {budget:,}: "
            f"{kinds}); a stratified sample, the same on every rerun. Always shown: the marked "
            f"caption, its ground truth and top negatives, the selection and the found items "
            f"({sample.forced:,} points).")


@st.cache_resource(max_entries=16, show_spinner="Measuring the modality gap…")
def _gap(path: str, stamp: tuple, _bundle: Bundle) -> Any:
    return modality_gap(_bundle.text_pooled, _bundle.video_pooled, _bundle.text_to_video)


def gap_of(bundle: Bundle) -> Any:
    return _gap(str(bundle.path), resources.bundle_stamp(bundle.path), bundle)


def top_negatives(bundle: Bundle, q: int, n: int = QUERY_NEGATIVES) -> list[int]:
    """The ``n`` best-scoring videos of caption ``q`` other than its ground truth."""
    gt = int(bundle.text_to_video[q])
    idx, _ = top_k(bundle.sim[q], min(n + 1, bundle.num_videos))
    return [int(v) for v in idx if int(v) != gt][:n]


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
c1, c2, c4, c3 = st.columns([1, 1, 1, 2])
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
check_index("emb_budget", MAX_BUDGET + 1, DEFAULT_BUDGET, what="point budget",
            lo=MIN_BUDGET, container=c4)
budget = int(remember("emb_budget", c4.number_input(
    "Points per map", min_value=MIN_BUDGET, max_value=MAX_BUDGET, value=DEFAULT_BUDGET,
    step=5_000, key="emb_budget", bind="query-params",
    help="At most this many points are drawn per map: a stratified sample of each kind "
    "(the same on every rerun), plus the marked caption, its ground truth and top negatives, "
    "the selection and the found items, which are always drawn. Fewer points: faster "
    "reruns and lassos.")))
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

# The current selection lives in our own key: a new non-empty lasso / box selection (each
# drawing is reported once, see app.components.point_map) replaces the stored one, an empty one
# leaves it alone, and a button clears it.
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
    ids = take_selection(map_key(label))  # a lasso / box drawn on that map since the last run
    if ids:
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
    caption_values = {label: resources.ranked_negatives(b).margins() for label, b in bundles}

cols = st.columns(len(bundles))
note = None
marked = highlight(layouts[BASE_LABEL], [q], [q_gt, *{v for n in negs_of.values() for v in n}])
for col, (label, bundle) in zip(cols, bundles, strict=True):
    points = layouts[label]
    coords = points.coords
    if align and label != BASE_LABEL:
        coords = align_to(layouts[BASE_LABEL].coords, coords)
    frame_events = None
    if mode == "event":
        b_meta, _ = synthvtt_split(roots, bundle)
        if b_meta is not None:
            frame_events = split_frame_events(bundle, b_meta)
    if label in caption_values:
        values = point_values(points, caption_values[label])
        if mode == DELTA_MODE:
            note = ("colour = Δ log2 rank of the caption (DRGI − base); frames and videos: the "
                    "mean over the video's captions")
            colours, _ = value_colours(values, "RdYlGn_r", low_name="DRGI better",
                                       high_name="DRGI worse", note=note)
        else:
            note = ("colour = the caption's margin on this run (GT score − hardest other "
                    "video); frames and videos: the mean over the video's captions")
            colours, _ = value_colours(values, "RdYlGn", low_name="a negative wins",
                                       high_name="GT wins", note=note)
    else:
        colours = point_colours(points, mode, frame_events=frame_events, outcomes=outcomes)
        note = colours.note
    caps, vids = lit_items(label)
    lit = highlight(points, caps, vids) if (caps or vids) else None
    forced = (marked if points is layouts[BASE_LABEL] or same_layout
              else highlight(points, [q], [q_gt, *negs_of[label]]))
    forced = forced | (lit if lit is not None else False)
    forced[item_points(points, found)] = True
    sample = budget_sample(points, budget, forced=forced,
                           candidates=np.isin(points.kind, [KINDS.index(k) for k in kinds]))
    fig = map_figure(points, coords, sample.ids, colours, lit,
                     hover_text(bundle, points, sample.ids),
                     f"{sel.label(bundle)} · {method.upper()}")
    mark_query(fig, points, coords, q, int(bundle.text_to_video[q]), negs_of[label])
    mark_found(fig, points, coords, found)
    with col:
        # one chart per map, updated in place; the zoom is kept until the map, the alignment
        # or the first found item changes
        point_map(fig, key=map_key(label), view=f"{method}|{align}|{found[:1]}")
        st.caption(budget_note(sample, budget) + f" One joint {method.upper()} map per run.")
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
# One block whatever it holds: the elements after it (the modality gap charts) keep their
# place in the page, so a selection rerun does not mount them anew in the browser.
with st.container():
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
        fig = overlay_histogram([("matched pairs", gap.matched_cos, MATCHED_COLOUR),
                                 ("random pairs", gap.random_cos, RANDOM_COLOUR)], "cosine",
                                y_title="% of pairs", opacity=0.6, height=300)
        # kept across reruns like the maps (st.plotly_chart would react it again on each)
        point_map(fig, key=f"emb_gap_{label}", ids_trace=None)
st.caption("Cosine of each caption with its own video vs with a random other video (pooled, "
           "head-embedded features). For cross heads (not factorized) the pooled cosine is not "
           "the retrieval score.")
