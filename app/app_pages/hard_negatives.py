"""Hard negatives: score margins, per-query confusers, DRGI's discriminator and hubness.

- Margin distributions ``s(GT) - max s(negative)``, base vs DRGI, overlaid.
- Per query (``?q=``): the ground truth and the top negatives of both runs as bars, with frame
  strips (SynthVTT: negatives from the ground truth's family marked).
- DRGI's discriminator scores on the positive vs the hard-negative graphs (runs with DRGI).
- Hubness: the k-occurrence distribution of the videos, its skew, the top hubs.

Every number comes from :mod:`analysis.ranked_negatives` (each caption's ranked negatives, stored
by the export), :mod:`analysis.hard_negatives`, :mod:`analysis.scores` and
:mod:`analysis.geometry`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.bundle import Bundle
from analysis.drgi_report import (
    diagnostics_of,
    diagnostics_rows,
    discriminator_verdict,
    same_pairs,
    training_curves,
)
from analysis.geometry import top_hubs
from analysis.hard_negatives import hubness_summary
from analysis.labels import video_label
from analysis.ranked_negatives import HardNegatives
from analysis.scores import discriminator_summary, margin_summary
from app import resources
from app.components.drill import drill_buttons, failing_run
from app.components.figures.distributions import count_histogram, overlay_histogram
from app.components.figures.hard_negatives import (
    BEATS_GT,
    GT_COLOUR,
    query_bars,
    training_curves_figure,
)
from app.components.palette import run_colour
from app.components.query import query_picker, selected_rows, take_selection
from app.components.synthvtt import synthvtt_split
from app.components.text import escape_md
from app.components.thumbs import clip_row, frame_strip
from app.context import current
from app.urlstate import check_index, remember

logger = logging.getLogger(__name__)

HARDEST_KEY = "hn_hardest"
MAX_NEG = 10


# ------------------------------------------------------------------ per-caption views
# All three read each caption's ranked negatives (stored by the export; ranked once per process
# for an older bundle): milliseconds at 59,800 captions, no pass over the similarity.
def margins_of(bundle: Bundle) -> np.ndarray:
    return resources.ranked_negatives(bundle).margins()


def negatives_of(bundle: Bundle, k: int, family: tuple[int, ...] | None) -> HardNegatives:
    return resources.ranked_negatives(bundle).hard_negatives(
        int(k), video_to_family=None if family is None else np.asarray(family, dtype=np.int64))


def hubness_of(bundle: Bundle, k: int) -> np.ndarray:
    return resources.ranked_negatives(bundle).hubness(int(k))


# ------------------------------------------------------------------ drawing helpers
def negative_bars(bundle: Bundle, hn: HardNegatives, q: int, k: int) -> go.Figure:
    """GT and the top-k negatives of query ``q`` as bars (red: scores >= GT)."""
    gt = int(bundle.text_to_video[q])
    ids = [int(v) for v in hn.video_ids[q, :k] if v >= 0]
    names = [f"GT {bundle.video_ids[gt]}"] + [f"#{i + 1} {bundle.video_ids[v]}"
                                              for i, v in enumerate(ids)]
    scores = [float(hn.gt_scores[q])] + [float(s) for s in hn.scores[q, : len(ids)]]
    beats = [bool(hn.at_or_above_gt[q, i]) for i in range(len(ids))]
    family = ([bool(hn.same_family[q, i]) for i in range(len(ids))]
              if hn.same_family is not None else None)
    return query_bars(names, scores, beats, family, ids=[gt, *ids])


# ------------------------------------------------------------------ the page
sel = current()
roots = sel.roots
base = sel.base
bundles = sel.bundles()
st.title("Hard negatives")
if base.num_videos < 2:
    st.info(f"The split {sel.split_name} has {base.num_videos} video: hard negatives, margins "
            "and hubness need at least two videos.")
    st.stop()

meta, meta_note = synthvtt_split(roots, base)
family: tuple[int, ...] | None = None
if meta is not None:
    family = tuple(v.family for v in meta.videos)
elif meta_note:
    st.caption(meta_note)

# ------------------------------------------------------------------ margins
st.header("Score margins")
st.caption("Margin of a caption = score of its ground-truth video − score of the best other "
           "video; below 0 a negative beats the ground truth.")
margins = {label: margins_of(b) for label, b in bundles}
cols = st.columns(len(bundles))
rows = []
for col, (label, bundle) in zip(cols, bundles, strict=True):
    s = margin_summary(margins[label])
    rows.append({"run": sel.label(bundle), "queries": s.n, "mean": s.mean, "median": s.median,
                 "beaten (%)": 100.0 * s.negative_share, "tied (%)": 100.0 * s.tie_share})
    c1, c2 = col.columns(2)
    c1.metric(f"{label}: median margin", f"{s.median:+.4f}")
    c2.metric(f"{label}: beaten by a negative", f"{100.0 * s.negative_share:.1f} %")
st.plotly_chart(overlay_histogram(
    [(sel.label(b), margins[label], run_colour(label)) for label, b in bundles],
    "margin s(GT) − max s(negative)", vline=0.0), key="hn_margins", width="stretch")
st.dataframe(pd.DataFrame(rows), key="hn_margin_table", hide_index=True, width="stretch")

# ------------------------------------------------------------------ per query
st.header("Per query: ground truth vs the hardest negatives")
per_query = bundles if sel.paired else bundles[:1]
if not sel.paired and len(bundles) > 1:
    st.caption("The two bundles hold different captions or videos, so only the base run is "
               "shown per query.")
k = 1
if base.num_videos > 2:
    k_max, k_default = int(min(MAX_NEG, base.num_videos - 1)), int(min(5, base.num_videos - 1))
    check_index("hn_k", k_max + 1, k_default, lo=1, what="number of negatives")
    k = remember("hn_k", int(st.slider("negatives shown", 1, k_max, k_default, key="hn_k",
                                       bind="query-params")))
negs = {label: negatives_of(b, MAX_NEG, family) for label, b in per_query}

order = np.argsort(margins[per_query[-1][0]], kind="stable")[:20]
hardest = pd.DataFrame({
    "query": order,
    "caption": [base.captions[int(i)] for i in order],
    **{f"margin ({label})": margins[label][order] for label, _ in per_query},
})
st.markdown(f"**Hardest captions** (smallest margin for {per_query[-1][1].run_name}); pick a "
            "row to open it below")
event = st.dataframe(hardest, key=HARDEST_KEY, on_select="rerun", selection_mode="single-row",
                     hide_index=True, width="stretch", height=240)
picked = [r for r in selected_rows(event) if 0 <= r < len(hardest)]
take_selection(HARDEST_KEY, [int(hardest["query"].iloc[r]) for r in picked])

q = query_picker(base.num_texts, label="caption index",
                 help="Pick a row above or type an index; it is kept in the URL (?q=).")
gt = int(base.text_to_video[q])
st.markdown(f"**Caption {q}:** {escape_md(base.captions[q])}  \n"
            f"ground truth **{escape_md(base.video_ids[gt])}**")
drill_buttons(q, key="hn_open", exclude="hard_negatives.py", failing_run=failing_run(
    {label: int(b.ranks.t2v[q]) for label, b in per_query}))
cols = st.columns(len(per_query))
for col, (label, bundle) in zip(cols, per_query, strict=True):
    hn = negs[label]
    with col:
        st.markdown(f"**{sel.label(bundle)}** — margin {float(hn.margin[q]):+.4f}, rank "
                    f"{int(bundle.ranks.t2v[q])}")
        st.plotly_chart(negative_bars(bundle, hn, q, k), key=f"hn_query_{label}", width="stretch")
        if bundle.drgi is not None:
            tq = bundle.drgi.text_queries
            st.caption(f"DRGI discriminator on this caption: positive graphs "
                       f"{float(tq.pos[q]):.3f}, hard-negative graphs {float(tq.neg[q]):.3f} "
                       f"(negative {video_label(bundle.video_ids[int(tq.neg_video_index[q])])})")
        frame_strip(roots, bundle, gt, gt=True, title=f"GT {bundle.video_ids[gt]} · score "
                    f"{float(hn.gt_scores[q]):.4f}")
        for i, v in enumerate(hn.video_ids[q, :min(k, 3)]):
            if v < 0:
                break
            fam = " · same family" if hn.same_family is not None and hn.same_family[q, i] else ""
            frame_strip(roots, bundle, int(v), title=f"#{i + 1} {bundle.video_ids[int(v)]} · "
                        f"score {float(hn.scores[q, i]):.4f}{fam}")
clip_row(roots, base, [(f"ground truth {base.video_ids[gt]}", gt)] + [
    (f"{label}'s hardest negative {b.video_ids[int(negs[label].video_ids[q, 0])]}",
     int(negs[label].video_ids[q, 0])) for label, b in per_query
    if int(negs[label].video_ids[q, 0]) >= 0], sel.data_root, key="hardneg_play")
st.caption("Green: ground truth; red: a negative scoring at or above it; grey: below. "
           + ("Hatched: a sibling from the ground truth's SynthVTT family."
              if family is not None else ""))

# ------------------------------------------------------------------ discriminator
st.header("DRGI discriminator: positive vs hard-negative graphs")
disc_bundles = [b for _, b in bundles if b.drgi is not None]
if disc_bundles and all(same_pairs(b.drgi.text_queries, b.drgi.video_queries)
                        for b in disc_bundles):
    # one caption per video: both directions score the same pairs, so no switch
    direction = "text_queries"
    st.caption("Each video has one caption here, so caption queries and video queries are the "
               "same pairs: one set of scores.")
else:
    direction = st.radio("Queries", ["text_queries", "video_queries"], horizontal=True,
                         key="hn_disc_dir",
                         format_func=lambda d: "captions (paired with their video)"
                         if d == "text_queries" else "videos (paired with their first caption)")
cols = st.columns(len(bundles))
for col, (label, bundle) in zip(cols, bundles, strict=True):
    with col:
        st.markdown(f"**{sel.label(bundle)}**")
        if bundle.drgi is None:
            st.info(f"{bundle.run_name} was trained without DRGI, so it has no discriminator "
                    "scores. Pick a run trained with DRGI (`objectives.drgi=true`).")
            continue
        diag = diagnostics_of(bundle)
        if diag is not None:
            st.markdown(discriminator_verdict(diag))
            st.dataframe(pd.DataFrame(diagnostics_rows(diag)), key=f"hn_diag_{label}",
                         hide_index=True, width="stretch")
        scores: Any = getattr(bundle.drgi, direction)
        s = discriminator_summary(scores.pos, scores.neg, scores.neg_valid)
        c1, c2, c3 = st.columns(3)
        c1.metric("positive (mean)", f"{s.pos_mean:.3f}")
        c2.metric("hard negative (mean)", f"{s.neg_mean:.3f}")
        c3.metric("positive > negative", f"{100.0 * s.separated_share:.1f} %")
        st.plotly_chart(overlay_histogram(
            [("positive graphs", s.pos, GT_COLOUR), ("hard-negative graphs", s.neg, BEATS_GT)],
            "discriminator score (mean sigmoid over nodes)"), key=f"hn_disc_{label}",
            width="stretch")
st.caption("Scores are the mean sigmoid of the bilinear discriminator over the valid nodes of "
           "each graph against the summary (DRGI's cross mode: the other modality's summary).")
for label, bundle in bundles:
    if bundle.drgi is None:
        continue
    curves = training_curves(bundle.run_dir / "log.jsonl")
    if curves.empty:
        st.caption(f"{bundle.run_name}: its log.jsonl has no DRGI diagnostics (trained before "
                   "they were logged).")
        continue
    fig = training_curves_figure(curves, f"DRGI during training — {sel.label(bundle)}")
    st.plotly_chart(fig, key=f"hn_drgi_curves_{label}", width="stretch")

# ------------------------------------------------------------------ hubness
st.header("Hubness")
hub_max, hub_default = int(min(50, base.num_videos)), int(min(10, base.num_videos))
check_index("hn_hub_k", hub_max + 1, hub_default, lo=1, what="top-k of the hubness")
hub_k = remember("hn_hub_k", int(st.slider("k (top-k lists)", 1, hub_max, hub_default,
                                           key="hn_hub_k", bind="query-params")))
counts = {label: hubness_of(b, hub_k) for label, b in bundles}
summary_rows = []
for label, bundle in bundles:
    h = hubness_summary(counts[label], hub_k)
    summary_rows.append({"run": sel.label(bundle), "k": h.k, "skew": h.skew, "mean": h.mean,
                         "max": h.max, "anti-hubs (%)": 100.0 * h.antihub_share})
st.dataframe(pd.DataFrame(summary_rows), key="hn_hub_table", hide_index=True, width="stretch")
fig = count_histogram([(sel.label(b), counts[label], run_colour(label)) for label, b in bundles],
                      f"N_{hub_k}: top-{hub_k} lists a video appears in", "videos")
st.plotly_chart(fig, key="hn_hubness", width="stretch")
st.caption("k-occurrence of each video over the captions' top-k lists (Radovanović et al., "
           "2010); a long right tail (positive skew) means a few hub videos crowd many lists.")
cols = st.columns(len(bundles))
for col, (label, bundle) in zip(cols, bundles, strict=True):
    with col:
        st.markdown(f"**Top hubs — {sel.label(bundle)}**")
        for v in top_hubs(counts[label], 3):
            frame_strip(roots, bundle, int(v), title=f"{bundle.video_ids[int(v)]} · in "
                        f"{int(counts[label][v])} top-{hub_k} lists")
