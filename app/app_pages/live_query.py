"""Live query: type a description, get the top-k videos of both runs side by side.

Only the text tower runs (the gallery's video features come from the bundle). Per run: the
ranked table with thumbnails, a playable clip of the selected hit, per-token scores, the
latency, and the query as a star on the run's embeddings map. The hits and figures of a query
are computed once per run, text and top-k (:func:`app.resources.live_results`): a click on a
hit or a later visit of the page redraws them without searching again.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import resources
from app.components.query import selected_rows
from app.components.text import escape_md
from app.components.thumbs import frame_strip, video_file
from app.components.word_scores import AXIS_NOTE
from app.context import current
from app.state import PathOutsideRootsError
from app.urlstate import check_index, remember
from app.warmup import live_search_turn

TEXT_KEY = "text"
VIDEO_WIDTH = 320  # px

sel = current()
roots = sel.roots

st.title("Live query")
c_text, c_k = st.columns([5, 1])
text = remember(TEXT_KEY, c_text.text_input(
    "Describe the video", key=TEXT_KEY, bind="query-params",
    placeholder="e.g. a red circle moves left then a blue square grows",
))
k_max, k_default = min(50, sel.base.num_videos), min(5, sel.base.num_videos)
check_index("live_k", k_max + 1, k_default, lo=1, what="top-k")
k = remember("live_k", int(c_k.number_input("top-k", min_value=1, max_value=k_max,
                                            value=k_default, key="live_k",
                                            bind="query-params")))
if not text.strip():
    st.info("Type a query above. Both runs search their bundle's gallery "
            f"({sel.base.num_videos} videos of {sel.dataset}-{sel.split}); only the text "
            "tower runs.")
    st.stop()

live_search_turn()  # the warm-up may still be importing torch / transformers or a text tower
panels = st.columns(len(sel.bundles()))
for panel, (label, bundle) in zip(panels, sel.bundles(), strict=True):
    with panel:
        st.markdown(f"### {label}: {bundle.run_name}")
        try:
            found = resources.live_results(roots, bundle, text, k)
        except (ValueError, OSError, RuntimeError) as exc:
            st.error(f"Cannot search with {bundle.run_name}: {exc}")
            continue
        result = found.result
        if not result.ok:
            st.warning(result.error)
            continue
        if result.unknown_warning:
            st.warning(result.unknown_warning, icon=":material/warning:")
        for msg in result.messages:
            st.caption(f"ℹ️ {msg}")
        m1, m2, m3 = st.columns(3)
        m1.metric("latency", f"{result.total_ms:.1f} ms")
        m2.metric("text tower", f"{result.encode_ms:.1f} ms")
        m3.metric("scoring", f"{result.score_ms:.1f} ms")
        st.caption(escape_md(result.path_detail))

        hits = [
            {"rank": r, "video": vid, "score": float(s), "index": int(i)}
            for r, (vid, s, i) in enumerate(
                zip(result.video_ids, result.scores, result.indices, strict=True), start=1)
        ]
        event = st.dataframe(
            hits, key=f"live_table_{label}", on_select="rerun", selection_mode="single-row",
            hide_index=True, width="stretch",
            column_config={"score": st.column_config.NumberColumn(format="%.4f")},
        )
        rows = [r for r in selected_rows(event) if 0 <= r < len(hits)]
        pick = rows[0] if rows else 0
        chosen = int(result.indices[pick])
        st.markdown(f"**Selected: #{pick + 1} {escape_md(bundle.video_ids[chosen])}**")
        frame_strip(roots, bundle, chosen, title=f"#{pick + 1} · {bundle.video_ids[chosen]}")
        try:
            clip = video_file(roots, bundle, chosen, sel.data_root)
        except PathOutsideRootsError as exc:
            clip = None
            st.caption(str(exc))
        if clip is not None:
            start, end = bundle.video_windows[chosen]
            st.video(str(clip), start_time=int(start or 0),
                     end_time=None if end is None else int(np.ceil(end)), loop=True, muted=True,
                     width=VIDEO_WIDTH)
        else:
            st.caption("Video file not found under the data root; thumbnails only.")

        if found.words is not None:
            st.plotly_chart(found.words, key=f"live_words_{label}", width="stretch")
            st.caption(f"{result.word_score_note}. {AXIS_NOTE}")
        if found.map is not None:
            st.plotly_chart(found.map, key=f"live_map_{label}", width="stretch")
        elif found.map_note:
            st.caption(found.map_note)
