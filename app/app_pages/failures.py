"""Failures: text queries whose ground truth ranks below k, filterable and sortable, with a
detail view (query, GT frames, top-k frames with scores, word-by-frame similarity of the GT
and the hardest negative)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from analysis.failures import FAILURE_TYPES
from analysis.hard_negatives import word_frame_matrix
from analysis.labels import frame_label
from analysis.rankings import top_k
from app import resources
from app.components.drill import drill_buttons, step_buttons
from app.components.figures.failures import failure_type_bars, word_frame_heatmap
from app.components.query import query_picker, select_query_row, take_row_click
from app.components.text import escape_md
from app.components.thumbs import clip_player, frame_strip, played_frame, ranked_list
from app.context import current
from app.urlstate import check_choice, check_choices, check_index, remember

TABLE_KEY = "failures_table"

sel = current()
roots = sel.roots
labels = [label for label, _ in sel.bundles()]
by_label = dict(sel.bundles())

st.title("Failures")
c_run, c_k, c_search = st.columns([2, 1, 3])
check_choice("failures_run", labels, labels[0], what="run of the sidebar")
run_label = remember("failures_run", c_run.radio(
    "Run", labels, horizontal=True, key="failures_run", bind="query-params",
    captions=[by_label[lb].run_name for lb in labels]))
bundle = by_label[run_label]
other = next((b for lb, b in sel.bundles() if lb != run_label), None) if sel.paired else None
check_index("failures_k", bundle.num_videos + 1, 1, lo=1, what="rank threshold")
k = remember("failures_k", int(c_k.number_input(
    "fails when rank >", min_value=1, max_value=bundle.num_videos, value=1, step=1,
    key="failures_k", bind="query-params")))
search = remember("failures_search", c_search.text_input(
    "Search captions", key="failures_search", bind="query-params",
    placeholder="words the caption must contain"))

table: pd.DataFrame = resources.failure_table(bundle, k=k, top=5).copy()
typed = "failure_type" in table.columns
if other is not None:
    table["other_rank"] = np.asarray(other.ranks.t2v)[table["query"].to_numpy()]
    table["rank_change"] = table["rank"] - table["other_rank"]

c_type, c_sort = st.columns([3, 2])
if typed:
    check_choices("failures_types", list(FAILURE_TYPES), what="failure type")
    types = remember("failures_types", c_type.multiselect(
        "Failure type", list(FAILURE_TYPES), key="failures_types", bind="query-params",
        placeholder="all types"))
    if types:
        table = table[table["failure_type"].isin(types)]
else:
    c_type.caption(f"No failure types: {table.attrs.get('note') or 'not a SynthVTT split'}.")
sort_options = {"rank (worst first)": ("rank", False), "margin (most negative first)":
                ("margin", True), "query index": ("query", True)}
if other is not None:
    # this run's rank minus the other's: the queries this run loses most against it first
    sort_options["rank change vs the other run (this run worse first)"] = ("rank_change", False)
check_choice("failures_sort", list(sort_options), next(iter(sort_options)),
             what="sort order of this table")
sort_by = remember("failures_sort", c_sort.selectbox(
    "Sort by", list(sort_options), key="failures_sort", bind="query-params"))
if search.strip():
    words = search.lower().split()
    low = table["caption"].str.lower()
    table = table[[all(w in c for w in words) for c in low]]
col, ascending = sort_options[sort_by]
table = table.sort_values([col, "query"], ascending=[ascending, True], kind="stable")

failed = resources.failure_table(bundle, k=k, top=5)
columns = ["query", "caption", "rank"] + (["other_rank", "rank_change"] if other is not None
                                          else []) + [
    "margin", "gt_video_id", "top1_video_id"] + (["failure_type", "false_negative"] if typed
                                                 else [])
shown = table[columns].reset_index(drop=True)
shown_ids = [int(i) for i in shown["query"]]

# The selection is a query id (?q=), never a row position: a click is read against the rows
# the user saw, and the highlighted row follows the query through re-sorting and filtering.
take_row_click(TABLE_KEY)
table_area = st.container()
st.subheader("Query detail")
p_col, s_col = st.columns([1, 3])
q = query_picker(bundle.num_texts, label="caption index", container=p_col,
                 help="Pick a row above, step with J / K, or type an index; it is kept in the "
                 "URL (?q=).")
step_buttons(shown_ids, q, key="failures_step", what="failed query", container=s_col)

with table_area:
    st.markdown(
        f"**{len(table)}** of {len(failed)} failed queries shown ({bundle.num_texts} captions; "
        f"rank > {k} for {bundle.run_name})."
    )
    if typed and len(table):
        counts = table["failure_type"].value_counts().reindex(list(FAILURE_TYPES),
                                                              fill_value=0)
        st.plotly_chart(failure_type_bars(counts), key="failures_types_chart",
                        width="stretch")
    select_query_row(TABLE_KEY, shown_ids, q)
    st.dataframe(
        shown, key=TABLE_KEY, on_select="rerun", selection_mode="single-row", hide_index=True,
        width="stretch", height=320,
        column_config={
            "rank": st.column_config.NumberColumn(f"rank ({run_label})"),
            "other_rank": st.column_config.NumberColumn("rank (other run)"),
            "rank_change": st.column_config.NumberColumn("rank − other run's", format="%+d"),
            "margin": st.column_config.NumberColumn("GT − top-1 score", format="%.3f"),
        },
    )

# ------------------------------------------------------------------ detail
if q not in shown_ids:
    why = (f"it is a failure (rank {int(bundle.ranks.t2v[q])}) hidden by the failure-type or "
           "caption filters" if q in set(failed["query"].tolist()) else
           f"its ground truth ranks {int(bundle.ranks.t2v[q])} (≤ {k}) for {bundle.run_name}, "
           "so it does not fail at this threshold")
    st.info(f"Caption {q} (the selected query) is not in the table above: {why}. Its detail "
            "is hidden; pick a row or change the filters.")
    st.stop()
gt = int(bundle.text_to_video[q])
rank = int(bundle.ranks.t2v[q])
st.markdown(f"**Caption {q}:** {escape_md(bundle.captions[q])}  \n"
            f"ground truth **{escape_md(bundle.video_ids[gt])}** at rank **{rank}** "
            f"({bundle.run_name})")
drill_buttons(q, key="failures_open", failing_run=run_label, k=k, exclude="failures.py")
row = table[table["query"] == q]
if typed and len(row):
    r0 = row.iloc[0]
    st.markdown(f"failure type: **{r0['failure_type']}**"
                + (" · the top-1 video also matches the caption (false negative)"
                   if r0["false_negative"] else ""))

left, right = st.columns([2, 3])
left.markdown("**Ground truth**")
frame_strip(roots, bundle, gt, gt=True, title=f"{bundle.video_ids[gt]} · rank {rank}",
            container=left)
idx, scores = top_k(bundle.sim[q], 5)
left.markdown("**Top-5**")
ranked_list(roots, bundle, idx, scores, gt_video=gt, container=left)

negatives = [int(v) for v in idx if int(v) != gt]
if not negatives:
    right.info("No negative video in the gallery.")
    st.stop()
neg = negatives[0]
right.markdown("**Word-by-frame cosine: ground truth vs hardest negative**")
words = bundle.words(q)
mats = {}
for name, v in (("ground truth", gt), ("hardest negative", neg)):
    m = word_frame_matrix(bundle.text_tokens[q], bundle.text_mask[q], bundle.video_tokens[v],
                          bundle.video_mask[v])
    times = bundle.frame_timestamps[v][np.asarray(bundle.video_mask[v], dtype=bool)]
    frames = [frame_label(j, t) for j, t in enumerate(times)]
    mats[name] = (m, frames, v)
lo = float(min(m.min() for m, _, _ in mats.values()))
hi = float(max(m.max() for m, _, _ in mats.values()))
for name, (m, frames, v) in mats.items():
    ylabels = [f"{i}:{w}" for i, w in enumerate(words)] if len(words) == m.shape[0] else None
    play_key = f"failures_play_{name.replace(' ', '_')}_{v}"
    fig = word_frame_heatmap(
        m, frames, ylabels, f"{name}: {bundle.video_ids[v]} (score {float(bundle.sim[q, v]):.3f})",
        zmin=lo, zmax=hi, marked_frame=played_frame(play_key))
    right.plotly_chart(fig, key=f"failures_wf_{name}", width="stretch")
    frame_strip(roots, bundle, v, container=right, gt=v == gt)
    clip_player(roots, bundle, v, sel.data_root, container=right, key=play_key)
right.caption("Cosine of each word token with each frame token of the head-embedded features "
              "(shared colour scale). A generic view: factorized heads score the pooled vectors "
              "only.")
