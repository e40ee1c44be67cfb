"""Compare rankings: per-query ground-truth rank of the base run vs the DRGI run.

The rank change per query (Δ log2 rank vs the base rank, one point per pair of ranks sized and
labelled by the queries sharing it, so ties are counted; colour = win/tie/loss from DRGI's side;
lasso-selectable), counts, the largest wins and regressions, and the selected query's top-k lists
of both runs side by side (thumbnails, ground truth highlighted).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.labels import video_label
from analysis.rankings import largest_changes, rank_pairs, top_k, win_tie_loss
from app import resources
from app.components.drill import drill_buttons, failing_run
from app.components.figures.compare import rank_change_figure
from app.components.query import query_picker, selected_points, selected_rows, take_selection
from app.components.text import escape_md
from app.components.thumbs import clip_row, frame_strip, ranked_list
from app.context import current
from app.urlstate import check_choice, check_index, remember

MAP_KEY = "compare_map"
RANK_COLUMNS = {
    "caption": st.column_config.TextColumn("caption", width="large"),
    "rank_a": st.column_config.NumberColumn("rank (base)"),
    "rank_b": st.column_config.NumberColumn("rank (DRGI)"),
    "delta": st.column_config.NumberColumn("Δ rank (DRGI − base)", format="%+d"),
    "log_ratio": st.column_config.NumberColumn("log rank ratio", format="%+.2f"),
}

sel = current()
base, drgi = sel.require_pair("the rank comparison")
roots = sel.roots

st.title("Compare rankings")
check_choice("dir", ["t2v", "v2t"], "t2v", what="direction")
direction = remember("dir", st.radio(
    "Direction", ["t2v", "v2t"], horizontal=True, key="dir", bind="query-params",
    help="t2v: text → video, captions are the queries; v2t: video → text, videos are the "
    "queries.",
))
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

# ------------------------------------------------------------------ Δ log-rank chart
# One point per distinct (base rank, DRGI rank), sized by how many queries share it: tied
# queries are counted, not drawn on top of each other.
pairs = rank_pairs(table["rank_a"].to_numpy(), table["rank_b"].to_numpy())
group_of = np.empty(n, dtype=np.int64)  # query -> its pair's row
for g, members in enumerate(pairs["queries"]):
    group_of[np.asarray(members, dtype=np.int64)] = g
fig = rank_change_figure(pairs, what=what, base_name=base.run_name, counts=counts, n=n)
left, right = st.columns([3, 2])
with left:
    event = st.plotly_chart(fig, key=MAP_KEY, on_select="rerun",
                            selection_mode=("points", "box", "lasso"), width="stretch")
    st.caption("One point per pair of ranks; its size and number: how many queries share it. "
               "Green: DRGI better · grey: tie · red: DRGI worse. Lasso or click points to "
               "list their queries; double-click to clear.")
picked = [int(i) for i in selected_points(event) if 0 <= int(i) < n]
take_selection(MAP_KEY, picked)
members = sorted({int(m) for g in sorted({int(group_of[i]) for i in picked})
                  for m in pairs["queries"][g]})

with right:
    if members:
        sub = table.iloc[members]
        sc = win_tie_loss(sub)
        st.markdown(f"**Selection: {len(sub)} {what}s** — {sc['win']} wins, {sc['tie']} ties, "
                    f"{sc['loss']} losses")
        st.dataframe(sub[["caption", "rank_a", "rank_b", "delta", "outcome"]], height=420,
                     key="compare_selection_table", column_config=RANK_COLUMNS)
    else:
        st.info("Lasso a group of points to list their queries here; click one to open it "
                "below.")

# ------------------------------------------------------------------ largest changes
st.subheader("Largest changes")
wins, losses = largest_changes(table, n=10)
cols = st.columns(2)
show = ["rank_a", "rank_b", "delta", "caption"]  # ranks first: long captions push them off
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
                       width="stretch", column_config=RANK_COLUMNS)
    rows = [r for r in selected_rows(ev) if 0 <= r < len(frame)]
    take_selection(key, [frame.index[r] for r in rows])

# ------------------------------------------------------------------ detail
st.subheader(f"Query detail ({what})")
k_col, q_col = st.columns([1, 3])
q = query_picker(n, label=f"{what} index", container=q_col,
                 help="Click a point or a table row to pick one; the index is in the URL (?q=).")
k_max = int(min(20, base.num_videos if direction == "t2v" else base.num_texts))
check_index("compare_k", k_max + 1, min(5, k_max), lo=1, what="top-k", container=k_col)
k = remember("compare_k", int(k_col.slider("top-k", 1, k_max, min(5, k_max), key="compare_k",
                                           bind="query-params")))
row = table.iloc[q]
st.markdown(
    f"**{what} {q}**: {escape_md(row['caption'])}  \n"
    f"ground-truth rank: base **{int(row['rank_a'])}**, DRGI **{int(row['rank_b'])}** "
    f"({row['outcome']})"
)

if direction == "t2v":
    drill_buttons(q, key="compare_open", exclude="compare.py", failing_run=failing_run(
        {"base": int(row["rank_a"]), "DRGI": int(row["rank_b"])}))
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
            frame_strip(roots, bundle, q, container=panel, title=f"query {video_label(bundle.video_ids[q])}")
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

st.markdown("**Clips** (\"play from frame\" under each player pauses it on one of its sampled "
            "frames, at that frame's exact time, labelled as the heatmaps' frame columns)")
if direction == "t2v":
    gt = int(base.text_to_video[q])
    clip_row(roots, base, [(f"ground truth {base.video_ids[gt]}", gt)] + [
        (f"{label}'s top-1 {b.video_ids[int(top_k(b.sim[q], 1)[0][0])]}",
         int(top_k(b.sim[q], 1)[0][0])) for label, b in sel.bundles()], sel.data_root,
        key="compare_play")
else:
    clip_row(roots, base, [(f"query {video_label(base.video_ids[q])}", q)], sel.data_root,
             key="compare_play")
