"""Compare rankings: per-query ground-truth rank of the base run vs the DRGI run.

Log-log scatter (one point per query, colour = win/tie/loss from DRGI's side, lasso-selectable),
counts, the largest wins and regressions, and the selected query's top-k lists of both runs
side by side (thumbnails, ground truth highlighted).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from analysis.rankings import largest_changes, top_k, win_tie_loss
from app import resources
from app.components.query import query_picker, selected_points, selected_rows, take_selection
from app.components.text import escape_md
from app.components.thumbs import frame_strip, ranked_list
from app.context import current

OUTCOME_COLOURS = {"win": "#2ca02c", "tie": "#9e9e9e", "loss": "#d62728"}
MAP_KEY = "compare_map"

sel = current()
base, drgi = sel.require_pair("the rank comparison")
roots = sel.roots

st.title("Compare rankings")
direction = st.radio(
    "Direction", ["t2v", "v2t"], horizontal=True, key="dir", bind="query-params",
    help="t2v: text → video, captions are the queries; v2t: video → text, videos are the "
    "queries.",
)
table = resources.comparison(base, drgi, direction)
n = len(table)
what = "caption" if direction == "t2v" else "video"

# ------------------------------------------------------------------ counts
counts = win_tie_loss(table)
c1, c2, c3, c4 = st.columns(4)
c1.metric("DRGI wins", counts["win"], help="queries whose ground truth DRGI ranks higher")
c2.metric("ties", counts["tie"])
c3.metric("DRGI losses", counts["loss"], help="queries whose ground truth DRGI ranks lower")
c4.metric("mean Δ rank (DRGI − base)", f"{table['delta'].mean():+.2f}")

# ------------------------------------------------------------------ scatter
ra = table["rank_a"].to_numpy()
rb = table["rank_b"].to_numpy()
top = int(max(ra.max(), rb.max(), 2))
fig = go.Figure()
fig.add_trace(go.Scattergl(
    x=ra, y=rb, mode="markers", name="queries",
    marker=dict(size=9, opacity=0.75, color=[OUTCOME_COLOURS[o] for o in table["outcome"]]),
    customdata=np.arange(n),
    hovertemplate=f"{what} %{{customdata}}<br>base rank %{{x}}<br>DRGI rank %{{y}}<extra></extra>",
))
fig.add_trace(go.Scatter(
    x=[1, top], y=[1, top], mode="lines", name="equal rank",
    line=dict(color="#555", dash="dot", width=1), hoverinfo="skip",
))
span = [np.log10(0.8), np.log10(top * 1.25)]  # axis range in log10 units (plotly log axes)
fig.update_layout(
    height=520, dragmode="lasso", showlegend=False, margin=dict(l=10, r=10, t=30, b=10),
    xaxis=dict(type="log", range=span, title=f"base rank ({base.run_name})"),
    yaxis=dict(type="log", range=span, title=f"DRGI rank ({drgi.run_name})"),
    title="Ground-truth rank per query: below the diagonal DRGI is better",
)
left, right = st.columns([3, 2])
with left:
    event = st.plotly_chart(fig, key=MAP_KEY, on_select="rerun",
                            selection_mode=("points", "box", "lasso"), width="stretch")
    st.caption("Green: DRGI better · grey: tie · red: DRGI worse. Lasso or click points to list "
               "them; double-click to clear.")
picked = [int(i) for i in selected_points(event) if 0 <= int(i) < n]
take_selection(MAP_KEY, picked)

with right:
    if picked:
        sub = table.iloc[picked]
        sc = win_tie_loss(sub)
        st.markdown(f"**Selection: {len(sub)} {what}s** — {sc['win']} wins, {sc['tie']} ties, "
                    f"{sc['loss']} losses")
        st.dataframe(sub[["caption", "rank_a", "rank_b", "delta", "outcome"]], height=420,
                     key="compare_selection_table")
    else:
        st.info("Lasso a group of points to list them here; click one to open it below.")

# ------------------------------------------------------------------ largest changes
st.subheader("Largest changes")
wins, losses = largest_changes(table, n=10)
cols = st.columns(2)
show = ["caption", "rank_a", "rank_b", "delta"]
for col, (label, frame, key) in zip(
    cols, (("Largest DRGI wins", wins, "compare_wins"),
           ("Largest regressions", losses, "compare_losses")), strict=True,
):
    col.markdown(f"**{label}** (by log rank ratio)")
    if frame.empty:
        col.caption("none")
        st.session_state.pop("_seen_selection_" + key, None)
        continue
    ev = col.dataframe(frame[show], on_select="rerun", selection_mode="single-row", key=key,
                       width="stretch")
    rows = [r for r in selected_rows(ev) if 0 <= r < len(frame)]
    take_selection(key, [frame.index[r] for r in rows])

# ------------------------------------------------------------------ detail
st.subheader(f"Query detail ({what})")
k_col, q_col = st.columns([1, 3])
q = query_picker(n, label=f"{what} index", container=q_col,
                 help="Click a point or a table row to pick one; the index is in the URL (?q=).")
k = int(k_col.slider("top-k", 1, int(min(20, base.num_videos if direction == "t2v"
                                             else base.num_texts)), 5, key="compare_k"))
row = table.iloc[q]
st.markdown(
    f"**{what} {q}**: {escape_md(row['caption'])}  \n"
    f"ground-truth rank: base **{int(row['rank_a'])}**, DRGI **{int(row['rank_b'])}** "
    f"({row['outcome']})"
)

panels = st.columns(2)
for panel, (label, bundle) in zip(panels, sel.bundles(), strict=True):
    panel.markdown(f"**{label}: {bundle.run_name}**")
    if direction == "t2v":
        gt = int(bundle.text_to_video[q])
        idx, scores = top_k(bundle.sim[q], k)
        ranked_list(roots, bundle, idx, scores, gt_video=gt, container=panel)
        if gt not in set(idx.tolist()):
            rank = int(bundle.ranks.t2v[q])
            frame_strip(roots, bundle, gt, gt=True, container=panel,
                        title=f"#{rank} · {bundle.video_ids[gt]} · score "
                              f"{float(bundle.sim[q, gt]):.3f}")
    else:
        if label == "base":
            frame_strip(roots, bundle, q, container=panel, title=f"query video {bundle.video_ids[q]}")
        else:
            panel.caption("(same query video)")
        idx, scores = top_k(np.asarray(bundle.sim[:, q]), k)
        gts = set(np.flatnonzero(bundle.text_to_video == q).tolist())
        lines = []
        for r, (t, s) in enumerate(zip(idx.tolist(), scores.tolist(), strict=True), start=1):
            mark = " **✓ ground truth**" if t in gts else ""
            lines.append(f"{r}. `{s:.3f}` {escape_md(bundle.captions[t])}{mark}")
        missing = sorted(gts - set(idx.tolist()))
        if missing:
            lines.append(f"… ground-truth rank {int(bundle.ranks.v2t[q])} (its best caption):")
            lines += [f"- `{float(bundle.sim[t, q]):.3f}` {escape_md(bundle.captions[t])} "
                      "**✓ ground truth**" for t in missing]
        panel.markdown("  \n".join(lines))
