"""Overview: metrics of both runs with deltas and the paired test, GT-rank histograms, model
cards."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from analysis.cards import CardError
from analysis.coverage import skipped_note
from analysis.query_table import BROKEN, FIXED, query_status
from analysis.rankings import (
    LOWER_IS_BETTER,
    METRIC_KEYS,
    metrics_table,
    rank_histogram,
    tie_notes,
)
from analysis.verdict import verdict
from app import resources
from app.components.figures.overview import rank_histogram_figure
from app.components.palette import run_colour
from app.context import current

sel = current()
base, drgi = sel.base, sel.drgi

# Bundles covering different queries (videos skipped by one export) are compared on the
# captions and videos both hold, never metrics of one gallery against another's.
common = None
if drgi is not None and not sel.paired:
    try:
        common = resources.common_comparison(base, drgi)
    except ValueError as exc:
        st.error(f"{exc}. Re-export both bundles on the same split.")
        st.stop()
metrics = {id(base): base.metrics}
ranks = {id(base): {"t2v": base.ranks.t2v, "v2t": base.ranks.v2t}}
n_texts, n_videos = base.num_texts, base.num_videos
if drgi is not None:
    metrics[id(drgi)] = drgi.metrics
    ranks[id(drgi)] = {"t2v": drgi.ranks.t2v, "v2t": drgi.ranks.v2t}
if common is not None:
    metrics = {id(base): common.metrics_a, id(drgi): common.metrics_b}
    ranks = {id(base): common.ranks_a, id(drgi): common.ranks_b}
    n_texts, n_videos = common.common.num_texts, common.common.num_videos

st.title("Overview")
# ------------------------------------------------------------------ verdict
stats = None
if drgi is not None:
    stats = (resources.paired_stats(base, drgi) if common is None
             else resources.paired_stats_on_common(base, drgi, common))
    r1 = stats[(stats["direction"] == "t2v") & (stats["metric"] == "R@1")].iloc[0]
    status = query_status(ranks[id(base)]["t2v"], ranks[id(drgi)]["t2v"], k=1)
    n_fixed, n_broken = int((status == FIXED).sum()), int((status == BROKEN).sum())
    st.markdown("#### " + verdict(float(r1["diff"]), float(r1["p_value"]), n_fixed, n_broken))
    st.caption(
        f"Fixed: captions whose video {base.run_name} misses at rank 1 and {drgi.run_name} "
        f"finds; broken: the reverse ({len(status)} captions). Every query side by side on "
        "the Queries page."
    )
    if sel.paired:
        st.page_link("app_pages/queries.py", label="Open the per-query table",
                     icon=":material/table_rows:")

st.caption(
    f"{sel.dataset}-{sel.split}: {n_texts} captions, {n_videos} videos"
    f"{' (shared by both bundles)' if common is not None else ''}. "
    "t2v = text-to-video (a caption finds its video), v2t = video-to-text. R@K in %, "
    "MdR/MnR = median/mean rank of the ground truth (lower is better)."
)
for _label, _bundle in sel.bundles():
    for note in tie_notes(_bundle.metrics, _bundle.run_name):
        st.warning(f"Tied scores — {note}. Metrics below count ties against the model.",
                   icon=":material/warning:")
note = skipped_note(base, drgi, common.common if common is not None else None)
if note:
    st.warning(note, icon=":material/warning:")


def _fmt(key: str, value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.1f}" if key.startswith("R@") else f"{value:g}"


# ------------------------------------------------------------------ metrics
table = metrics_table(metrics[id(base)], metrics[id(drgi)] if drgi is not None else None)
for direction in ("t2v", "v2t"):
    st.subheader("Text → video" if direction == "t2v" else "Video → text")
    for label, bundle in sel.bundles():
        ref = None if label == "base" else base
        cols = st.columns([2] + [1] * len(METRIC_KEYS))
        cols[0].markdown(f"**{label}: {bundle.run_name}**")
        for col, key in zip(cols[1:], METRIC_KEYS, strict=True):
            name = f"{direction}/{key}"
            value = float(metrics[id(bundle)].get(name, float("nan")))
            delta, same = None, False
            if ref is not None:
                d = value - float(metrics[id(ref)].get(name, float("nan")))
                delta = None if math.isnan(d) else f"{d:+.2f}"
                same = not math.isnan(d) and d == 0
            col.metric(
                f"{direction} {key}", _fmt(key, value), delta=delta,
                delta_color="off" if same else ("inverse" if key in LOWER_IS_BETTER
                                                 else "normal"),
                delta_arrow="off" if same else "auto",
                delta_description="vs base" if delta is not None else None,
            )

with st.expander("All metrics as a table", expanded=False):
    shown = table.rename(columns={"a": f"base ({base.run_name})",
                                  "b": f"DRGI ({drgi.run_name})" if drgi else "DRGI (—)"})
    st.dataframe(shown, hide_index=True, key="overview_metrics")

# ------------------------------------------------------------------ paired test
st.subheader("Is the difference significant?")
if drgi is None:
    st.info("Pick a second run in the sidebar to test the difference per query.")
else:
    st.caption(
        "Paired sign-flip randomisation test (two-sided; exact for R@K, where it is the "
        "binomial sign test, else 10,000 random sign patterns) and a 95 % paired bootstrap "
        "interval (2,000 resamples) of DRGI − base, per query. R@K differences in percentage "
        "points; MnR in ranks (negative = DRGI better). wins/losses count queries where DRGI's "
        "value is better/worse."
    )
    st.dataframe(
        stats, hide_index=True, key="overview_paired",
        column_config={
            "diff": st.column_config.NumberColumn("DRGI − base", format="%+.2f"),
            "ci_low": st.column_config.NumberColumn("95 % CI low", format="%+.2f"),
            "ci_high": st.column_config.NumberColumn("95 % CI high", format="%+.2f"),
            "p_value": st.column_config.NumberColumn("p", format="%.4f"),
        },
    )
    r1 = stats[(stats["direction"] == "t2v") & (stats["metric"] == "R@1")].iloc[0]
    verdict = "significant" if r1["p_value"] < 0.05 else "not significant"
    st.markdown(
        f"t2v R@1: DRGI − base = **{r1['diff']:+.2f} pp** "
        f"(95 % CI {r1['ci_low']:+.2f} … {r1['ci_high']:+.2f}), p = {r1['p_value']:.4f} "
        f"({verdict} at 0.05, n = {int(r1['n'])})."
    )

# ------------------------------------------------------------------ rank histograms
st.subheader("Where does the ground truth land?")
hist_cols = st.columns(2)
for col, (direction, n_max) in zip(
    hist_cols, (("t2v", n_videos), ("v2t", n_texts)), strict=True
):
    fig = rank_histogram_figure(
        [(f"{label}: {bundle.run_name}",
          rank_histogram(ranks[id(bundle)][direction], max_rank=n_max), run_colour(label))
         for label, bundle in sel.bundles()], direction)
    col.plotly_chart(fig, key=f"overview_hist_{direction}", width="stretch")

# ------------------------------------------------------------------ model cards
st.subheader("Model cards")
card_cols = st.columns(len(sel.bundles()))
for col, (label, bundle) in zip(card_cols, sel.bundles(), strict=True):
    col.markdown(f"**{label}: {bundle.run_name}**")
    try:
        card = resources.model_card(sel.roots, bundle.run_dir)
    except CardError as exc:
        col.error(str(exc))
        continue
    col.dataframe(
        pd.DataFrame(card.rows(), columns=["field", "value"]), hide_index=True,
        key=f"overview_card_{label}", width="stretch",
    )
    if card.drgi is None:
        col.caption("No DRGI: attention graphs and discriminator scores need a DRGI run.")
    else:
        col.caption(
            f"DRGI adds {card.drgi_parameters:,} parameters ({100 * card.drgi_share:.2f} % of "
            "the checkpoint), all training-only: inference cost is unchanged."
        )
