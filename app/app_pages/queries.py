"""Queries: every caption query of the split in one table, base vs DRGI side by side.

Ranks of both runs, the rank change, margins, the SynthVTT failure type and family/edit, and
DRGI's discriminator scores (:mod:`analysis.query_table`); filters, sorts (by the change first),
failure type × fixed / broken / both fail / both fine counts, column histograms and CSV /
Parquet export of the filtered rows. The table shows one page of them (``?qt_page=``,
:mod:`app.components.paging`), the page of the selected query; everything else uses them all.
A row opens the same query on the other pages; J / K step through the filtered list.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.query_table import (
    NO_FAILURE,
    SORTS,
    STATUSES,
    failure_status_counts,
    filter_queries,
    sort_queries,
    table_bytes,
)
from analysis.rankings import OUTCOMES
from app import resources
from app.components.drill import drill_buttons, failing_run, step_buttons
from app.components.figures.queries import column_histogram
from app.components.paging import table_page
from app.components.query import query_picker, select_query_row, shared_query, take_row_click
from app.components.synthvtt import synthvtt_split
from app.components.text import escape_md
from app.context import current
from app.state import KEY_QUERY
from app.urlstate import check_choice, check_choices, check_index, remember

TABLE_KEY = "queries_table"
PAGE_KEY = "qt_page"
HIST_DEFAULT = ("delta_log2", "delta_margin")
LABELS = {
    "query": "query",
    "caption": "caption",
    "gt_video": "GT video",
    "rank_base": "rank (base)",
    "rank_drgi": "rank (DRGI)",
    "delta_rank": "Δ rank",
    "delta_log2": "Δ log2 rank",
    "outcome": "DRGI vs base",
    "status": "status",
    "failure_type": "failure type",
    "failure_base": "failure (base)",
    "failure_drgi": "failure (DRGI)",
    "margin_base": "margin (base)",
    "margin_drgi": "margin (DRGI)",
    "delta_margin": "Δ margin",
    "hardest_base": "hardest negative (base)",
    "hardest_drgi": "hardest negative (DRGI)",
    "family": "family",
    "edit": "GT edit",
    "sibling_base": "sibling beats (base)",
    "sibling_drgi": "sibling beats (DRGI)",
    "disc_pos_base": "disc. positive (base)",
    "disc_neg_base": "disc. hard neg. (base)",
    "disc_gap_base": "disc. gap (base)",
    "disc_pos_drgi": "disc. positive (DRGI)",
    "disc_neg_drgi": "disc. hard neg. (DRGI)",
    "disc_gap_drgi": "disc. gap (DRGI)",
}
FORMATS = {"delta_log2": "%+.2f", "margin_base": "%+.4f", "margin_drgi": "%+.4f",
           "delta_margin": "%+.4f", "delta_rank": "%+d"}

sel = current()
base, drgi = sel.require_pair("the per-query comparison")
st.title("Queries")
st.caption(
    "One row per caption query (text → video) with both runs side by side. Δ = DRGI − base: "
    "negative Δ rank / Δ log2 rank means DRGI ranks the ground truth higher; margin = score "
    "of the ground truth − score of the hardest other video. A query fails when its rank is "
    "above the threshold; fixed = the base fails and DRGI does not, broken = the reverse. "
    "The failure type is the failing run's (DRGI's when both fail)."
)

c_k, c_sort, c_text = st.columns([1, 2, 3])
check_index("qt_k", base.num_videos + 1, 1, lo=1, what="rank threshold")
k = remember("qt_k", int(c_k.number_input("fails when rank >", min_value=1,
                                          max_value=base.num_videos, value=1, step=1,
                                          key="qt_k", bind="query-params")))
check_choice("qt_sort", list(SORTS), next(iter(SORTS)), what="sort order of this table")
sort_by = remember("qt_sort", str(c_sort.selectbox("Sort by", list(SORTS), key="qt_sort",
                                                   bind="query-params")))
text = remember("qt_text", c_text.text_input("Search captions", key="qt_text",
                                             bind="query-params",
                                             placeholder="words the caption must contain"))

meta, meta_note = synthvtt_split(sel.roots, base)
table = resources.query_table(base, drgi, k=k, synthvtt=meta)
if meta_note:
    st.caption(meta_note)

f_status, f_type, f_outcome, f_edit = st.columns(4)
check_choices("qt_status", list(STATUSES), what="status")
statuses = remember("qt_status", f_status.multiselect(
    "Status", list(STATUSES), key="qt_status", bind="query-params", placeholder="all"))
types_present = sorted(set(table["failure_type"].astype(str)) - {NO_FAILURE}) + (
    [NO_FAILURE] if (table["failure_type"] == NO_FAILURE).any() else [])
check_choices("qt_types", types_present, what="failure type of this split")
types = remember("qt_types", f_type.multiselect(
    "Failure type", types_present, key="qt_types", bind="query-params", placeholder="all"))
check_choices("qt_outcomes", list(OUTCOMES), what="outcome")
outcomes = remember("qt_outcomes", f_outcome.multiselect(
    "DRGI vs base", list(OUTCOMES), key="qt_outcomes", bind="query-params",
    placeholder="win, tie and loss"))
edits: list[str] = []
if "edit" in table.columns:
    edit_options = sorted(set(table["edit"].astype(str)))
    check_choices("qt_edits", edit_options, what="SynthVTT edit of this split")
    edits = remember("qt_edits", f_edit.multiselect(
        "GT video's SynthVTT edit", edit_options, key="qt_edits", bind="query-params",
        placeholder="all"))
else:
    f_edit.caption("No SynthVTT family/edit columns on this split.")

shown = sort_queries(filter_queries(table, statuses=statuses, failure_types=types,
                                    outcomes=outcomes, edits=edits, text=text), sort_by)
shown_ids = [int(i) for i in shown.index]
counts = shown["status"].value_counts()
st.markdown(
    f"**{len(shown)}** of {len(table)} queries shown: "
    + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES)
    + f" (fails when rank > {k})."
)

# The selection is a query id, never a row position (see app.components.query).
picked = shared_query() is not None or KEY_QUERY in st.query_params  # else the default 0
take_row_click(TABLE_KEY)
table_area = st.container()

st.subheader("Selected query")
p_col, s_col = st.columns([1, 3])
q = query_picker(base.num_texts, label="caption index", container=p_col,
                 help="Pick a row, step with J / K, or type an index; kept in the URL (?q=).")
step_buttons(shown_ids, q, key="qt_step", what="query", container=s_col)
row = table.loc[q]
st.markdown(
    f"**Caption {q}:** {escape_md(str(row['caption']))}  \n"
    f"ground truth **{escape_md(str(row['gt_video']))}** · rank base **{int(row['rank_base'])}**"
    f", DRGI **{int(row['rank_drgi'])}** (Δ log2 {row['delta_log2']:+.2f}) · **{row['status']}**"
    + (f" · failure type: {escape_md(str(row['failure_type']))}"
       if row["failure_type"] != NO_FAILURE else "")
)
st.caption("Open this query on:")
drill_buttons(q, key="qt_open", k=k, failing_run=failing_run(
    {"base": int(row["rank_base"]), "DRGI": int(row["rank_drgi"])}, k=k))

with table_area:
    # one page of the rows: 59,800 of them cost seconds per rerun to serialise and lay out
    start, stop = table_page(PAGE_KEY, shown_ids, q, picked=picked, what="rows")
    select_query_row(TABLE_KEY, shown_ids[start:stop], q)
    st.dataframe(
        shown.iloc[start:stop].reset_index(), key=TABLE_KEY, on_select="rerun",
        selection_mode="single-row", hide_index=True, width="stretch", height=420,
        column_config={c: st.column_config.NumberColumn(LABELS[c], format=FORMATS[c])
                       if c in FORMATS else st.column_config.Column(LABELS.get(c, c))
                       for c in ["query", *shown.columns]},
    )
    e1, e2, e3 = st.columns([1, 1, 3])
    name = f"queries-{base.run_name}-vs-{drgi.run_name}-{sel.split_name}"
    # the bytes are made on click (deferred): CSV and Parquet of 59,800 rows take ~1.4 s,
    # which every rerun would pay otherwise
    e1.download_button("CSV", lambda t=shown: table_bytes(t, "csv"), file_name=f"{name}.csv",
                       mime="text/csv", key="qt_csv", icon=":material/download:",
                       width="stretch")
    e2.download_button("Parquet", lambda t=shown: table_bytes(t, "parquet"),
                       file_name=f"{name}.parquet",
                       mime="application/vnd.apache.parquet", key="qt_parquet",
                       icon=":material/download:", width="stretch")
    e3.caption(f"Export the {len(shown):,} rows that pass the filters (every page, in the "
               "order shown), every column.")

# ------------------------------------------------------------------ group-by and histograms
st.subheader("Failure type × fixed / broken / both fail / both fine")
st.caption("Queries shown, by failure type (the failing run's) and status.")
st.dataframe(failure_status_counts(shown) if len(shown) else pd.DataFrame(),
             key="qt_groups", width="stretch")

st.subheader("Column histograms")
columns = [c for c in shown.columns if c not in ("caption",)]

def column_name(c: str) -> str:
    return LABELS.get(c, c)


check_choices("qt_hist", columns, what="column of the table", fmt=column_name)
picked = remember("qt_hist", st.multiselect(
    "Columns", columns, default=[c for c in HIST_DEFAULT if c in columns], key="qt_hist",
    bind="query-params", format_func=column_name), column_name)
if picked and len(shown):
    cols = st.columns(min(len(picked), 3))
    for i, column in enumerate(picked):
        fig = column_histogram(shown, column, LABELS.get(column, column))
        cols[i % len(cols)].plotly_chart(fig, key=f"qt_hist_{column}", width="stretch")
elif not len(shown):
    st.info("No query passes the filters.")
