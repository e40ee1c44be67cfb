"""Attention graphs: DRGI's GAT attention over a caption's words or a video's frames.

Pick a caption (``?q=``) or a video (``?v=``). For a run trained with DRGI the page draws the
graph's attention as an annotated heatmap (word or frame labels, the video's frame strip), as a
network (edge width by weight, edges above uniform attention), and per-node normalised entropy
and self-loop share against the uniform baseline. For every run it draws the token-interaction
weights (each caption's text-to-frame weights over its own video), and on SynthVTT the event
spans on the frame axis and the attention-event alignment, base vs DRGI. All statistics come
from :mod:`analysis.attention`, :mod:`analysis.attention_view` and :mod:`analysis.events`.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.attention import label_nodes, normalised_entropy, self_loop_share
from analysis.attention_view import (
    attention_view,
    received_attention,
)
from analysis.bundle import Bundle, BundleError
from analysis.drgi_report import attention_verdict, diagnostics_of, max_uniform_deviation
from analysis.events import (
    NO_EVENT,
    caption_alignment,
    event_runs,
    event_spans,
    frame_event_ids,
)
from analysis.jpeg import encode_jpeg
from analysis.labels import event_label, video_label
from app.components.figures.attention import (
    attention_heatmap,
    attention_network,
    node_stats_chart,
    shade_events,
    text_frame_bars,
)
from app.components.palette import run_colour
from app.components.query import query_picker
from app.components.synthvtt import alignment_sources, gat_tokens, split_alignment, synthvtt_split
from app.components.text import escape_md
from app.components.thumbs import frame_images, frame_strip
from app.context import BASE_LABEL, DRGI_LABEL, current
from app.state import KEY_VIDEO, AppRoots, PathOutsideRootsError
from app.urlstate import check_choice, check_index, remember

logger = logging.getLogger(__name__)

GAT_COLOUR = "#2ca02c"  # the GAT's received attention, next to the runs' weights
MEAN_HEADS = "mean over heads"
MAX_AXIS_FRAMES = 24  # frame thumbnails under the heatmap's x axis up to this many frames


# ------------------------------------------------------------------ drawing helpers
def node_labels(bundle: Bundle, kind: str, item: int, mask: np.ndarray) -> list[str]:
    """Axis labels of the valid nodes of caption/video ``item``'s graph."""
    n_valid = int(np.count_nonzero(mask))
    if not gat_tokens(bundle):
        return [f"chunk {i}" for i in range(n_valid)]
    if kind == "caption":
        words = bundle.words(item)
        if len(words) == n_valid:
            return label_nodes("text", mask, tokens=words)
        return label_nodes("text", mask)
    times = bundle.frame_timestamps[item]
    if len(mask) == len(times):
        return label_nodes("video", mask, timestamps=times)
    return label_nodes("video", mask)


def frames_on_axis(fig: go.Figure, roots: AppRoots, bundle: Bundle, video: int,
                   n_nodes: int) -> bool:
    """Put the video's sampled frames under the heatmap's x axis (one per frame node).

    Returns False (and draws nothing) when the thumbnails are missing or do not match the
    nodes one to one.
    """
    if n_nodes > MAX_AXIS_FRAMES:
        return False
    try:
        frames = frame_images(roots, bundle, video)
    except (BundleError, PathOutsideRootsError, OSError, IndexError) as exc:
        logger.warning("no thumbnails for video %s: %s", video, exc)
        return False
    if len(frames) != n_nodes:
        return False
    top, bottom, thumb = 110, 120, 100  # pixels: title + tick labels, thumbnails
    height = int(fig.layout.height or 400) + thumb
    plot = max(height - top - bottom, 50)
    for i, frame in enumerate(frames):
        uri = "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(frame)).decode("ascii")
        fig.add_layout_image(source=uri, xref="x", yref="paper", x=i, y=-0.03, sizex=0.95,
                             sizey=thumb / plot, xanchor="center", yanchor="top",
                             layer="above")
    fig.update_xaxes(side="top", title=None)
    fig.update_layout(height=height, margin=dict(t=top, b=bottom))
    return True


# ------------------------------------------------------------------ the page
sel = current()
roots = sel.roots
base = sel.base
st.title("Attention graphs")

k_col, p_col = st.columns([1, 3])
check_choice("attn_kind", ["caption", "video"], "caption", what="graph kind")
kind = remember("attn_kind", k_col.radio("Graph of a", ["caption", "video"], horizontal=True,
                                         key="attn_kind", bind="query-params"))
if kind == "caption":
    q = query_picker(base.num_texts, label="caption index", container=p_col,
                     help="The caption is kept in the URL (?q=); other pages share it.")
    video = int(base.text_to_video[q])
else:
    check_index(KEY_VIDEO, base.num_videos, 0, what="video index")
    value = st.session_state.get(KEY_VIDEO)
    if value is not None and not 0 <= int(value) < base.num_videos:
        st.session_state[KEY_VIDEO] = min(max(int(value), 0), base.num_videos - 1)
    video = remember(KEY_VIDEO, int(p_col.number_input(
        "video index", min_value=0, max_value=base.num_videos - 1, step=1, key=KEY_VIDEO,
        bind="query-params", help="The video is kept in the URL (?v=).")))
    own = np.flatnonzero(np.asarray(base.text_to_video) == video)
    if own.size == 0:
        st.warning(f"Video {base.video_ids[video]} has no caption in this split.")
        q = None
    elif own.size == 1:
        q = int(own[0])
    else:
        q = int(st.selectbox("caption of this video (for the text-to-frame weights)",
                             own.tolist(), key="attn_video_caption",
                             format_func=lambda i: f"{i}: {base.captions[i]}"))

if q is not None:
    st.markdown(f"**Caption {q}:** {escape_md(base.captions[q])}  \n"
                f"**{escape_md(video_label(base.video_ids[video]))}**")
else:
    st.markdown(f"**{escape_md(video_label(base.video_ids[video]))}**")
frame_strip(roots, base, video, title=f"{video_label(base.video_ids[video])}: sampled frames")

meta, meta_note = synthvtt_split(roots, base)
fps = float(meta.params.fps) if meta is not None else None
video_events = meta.videos[video].events if meta is not None else None
event_labels: list[str] = [s.label for s in event_spans(video_events, fps)] if meta else []
if meta_note:
    st.caption(meta_note)

# ------------------------------------------------------------------ GAT attention
st.header("GAT attention (DRGI)")
graph_bundles = sel.drgi_bundles()
if not graph_bundles:
    picked = ", ".join(f"{b.run_name}" for _, b in sel.bundles())
    st.info(
        f"The GAT attention needs a run trained with DRGI (config `objectives.drgi=true`); "
        f"{picked} has none. Pick a DRGI run in the sidebar. The token-interaction weights "
        "below are shown for every run."
    )
else:
    if len(graph_bundles) > 1:
        labels_ = [label for label, _ in graph_bundles]
        check_choice("attn_graph_run", labels_, DRGI_LABEL, what="run with DRGI graphs")
        which = remember("attn_graph_run", st.radio(
            "GAT of", labels_, index=labels_.index(DRGI_LABEL), horizontal=True,
            key="attn_graph_run", bind="query-params",
            captions=[dict(graph_bundles)[lb].run_name for lb in labels_]))
        gb = dict(graph_bundles)[which]
    else:
        gb = graph_bundles[0][1]
    d = gb.drgi
    assert d is not None
    if kind == "caption" and q is not None:
        attn, mask, item = d.text_attention[q], d.text_node_mask[q], q
        graph_name = f"caption {q}"
    else:
        attn, mask, item = d.video_attention[video], d.video_node_mask[video], video
        graph_name = video_label(gb.video_ids[video])
    mask = np.asarray(mask, dtype=bool)
    heads = int(attn.shape[0])
    whole = attention_view(attn, mask, None)
    graph_entropy = float(np.nanmean(normalised_entropy(whole, np.ones(len(whole), dtype=bool))))
    diag = diagnostics_of(gb) or {}
    uniform, verdict = attention_verdict(
        graph_entropy, max_uniform_deviation(attn, mask),
        diag.get("entropy_text" if kind == "caption" else "entropy_video"),
        "word" if kind == "caption" else "frame")
    (st.warning if uniform else st.info)(verdict)
    c1, c2 = st.columns(2)
    head = None
    if heads > 1:  # one head: nothing to pick, so no selector
        head_options: list[Any] = [MEAN_HEADS, *range(heads)]

        def head_name(h: Any) -> str:
            return h if isinstance(h, str) else f"head {h}"

        check_choice("attn_head", head_options, MEAN_HEADS, what="head", fmt=head_name)
        head_choice = remember("attn_head", c1.selectbox(
            "head", head_options, key="attn_head", bind="query-params", format_func=head_name),
            head_name)
        head = None if head_choice == MEAN_HEADS else int(head_choice)
    else:
        c1.caption("One attention head.")
    check_choice("attn_excess", [True, False], True, what="switch value (true or false)",
                 fmt=lambda b: "true" if b else "false")
    excess = remember("attn_excess", c2.toggle(
        "show attention − uniform baseline", value=True, key="attn_excess",
        bind="query-params",
        help="Subtract 1/N' (uniform attention over the valid nodes): what the graph adds "
        "beyond spreading its attention evenly. Off: the raw weights (rows sum to 1)."))
    view = attention_view(attn, mask, head)
    labels = node_labels(gb, kind, item, mask)
    nodes_word = "words" if kind == "caption" else "frames"
    if not gat_tokens(gb):
        nodes_word = "factor chunks"
    st.caption(f"{gb.run_name}: {graph_name}, {len(labels)} {nodes_word}, {heads} head(s), "
               f"DRGI nodes = {(gb.meta.get('drgi') or {}).get('nodes', '?')}. Row i is how "
               "node i spreads its attention (rows sum to 1).")

    fig = attention_heatmap(attention_view(attn, mask, head, minus_uniform=excess), labels,
                  f"GAT attention of {graph_name}", excess=excess)
    runs: list[tuple[int, int, int]] = []
    if kind == "video" and gat_tokens(gb) and meta is not None and fps is not None:
        ev = frame_event_ids(gb.frame_timestamps[video][: len(mask)], video_events, fps)
        runs = event_runs(ev[mask])
        shade_events(fig, runs, event_labels)
    if kind == "video" and gat_tokens(gb):
        frames_on_axis(fig, roots, gb, video, int(mask.sum()))
    st.plotly_chart(fig, key="attn_heatmap", width="stretch")
    if len(graph_bundles) > 1 and sel.paired:
        # both runs have a GAT: where do they differ on this graph (same nodes, same head)?
        gd, gbase = dict(graph_bundles)[DRGI_LABEL].drgi, dict(graph_bundles)[BASE_LABEL].drgi
        assert gd is not None and gbase is not None
        if kind == "caption" and q is not None:
            pair = ((gbase.text_attention[q], gbase.text_node_mask[q]),
                    (gd.text_attention[q], gd.text_node_mask[q]))
        else:
            pair = ((gbase.video_attention[video], gbase.video_node_mask[video]),
                    (gd.video_attention[video], gd.video_node_mask[video]))
        (a_base, m_base), (a_drgi, m_drgi) = pair
        same_nodes = np.array_equal(np.asarray(m_base, bool), np.asarray(m_drgi, bool)) and (
            a_base.shape == a_drgi.shape)
        if same_nodes and (head is None or head < a_base.shape[0]):
            diff = (attention_view(a_drgi, m_drgi, head)
                    - attention_view(a_base, m_base, head))
            st.plotly_chart(attention_heatmap(diff, labels, f"DRGI − base: GAT attention of {graph_name}",
                                    excess=True, colour_title="DRGI − base"),
                            key="attn_heatmap_diff", width="stretch")
            st.caption(f"Largest |DRGI − base| difference: {float(np.abs(diff).max()):.3g} "
                       f"(uniform weight 1/{len(labels)} = {1.0 / len(labels):.3g}).")
        else:
            st.caption("The two runs' graphs of this item have different nodes or heads, so no "
                       "cell-by-cell difference is drawn.")

    entropy = normalised_entropy(view, np.ones(len(labels), dtype=bool))
    self_share = self_loop_share(view, np.ones(len(labels), dtype=bool))
    received = received_attention(attn, mask, head)[mask]
    left, right = st.columns(2)
    with left:
        if uniform:  # a network of near-uniform weights would suggest structure that is not there
            st.caption("No network diagram: the attention is uniform, so every edge would carry "
                       "the same weight.")
        else:
            net, n_edges = attention_network(view, labels, received, self_share)
            st.plotly_chart(net, key="attn_network", width="stretch")
            st.caption(f"{n_edges} edges above uniform attention (1/{len(labels)}) shown; node "
                       "size = self-loop share, colour = attention received.")
    with right:
        st.plotly_chart(node_stats_chart(labels, entropy, self_share), key="attn_entropy",
                        width="stretch")
        st.dataframe(pd.DataFrame({"node": labels, "entropy": entropy,
                                   "self_loop": self_share, "received": received}),
                     key="attn_node_table", hide_index=True, height=240, width="stretch")
        st.caption("Normalised entropy: 1 = attends uniformly to all valid nodes (the uniform "
                   "baseline), 0 = attends to a single node.")

# ------------------------------------------------------------------ token interaction
st.header("Token-interaction weights (text → frame)")
if q is None:
    st.info("This video has no caption, so it has no text-to-frame weights.")
    st.stop()
gt = int(base.text_to_video[q])
valid = np.asarray(base.video_mask[gt], dtype=bool)
times = np.asarray(base.frame_timestamps[gt])[valid]
series: list[tuple[str, str, np.ndarray]] = []  # (name, colour key, weights over valid frames)
for label, bundle in sel.bundles():
    series.append((f"{label}: {bundle.run_name} (text-to-frame)", label,
                   np.asarray(bundle.text_frame_weights[q], dtype=np.float64)[valid]))
gat_bundle = next((b for _, b in graph_bundles if gat_tokens(b)
                   and b.drgi is not None and b.drgi.video_attention.shape[-1] == len(valid)),
                  None)
if gat_bundle is not None:
    d = gat_bundle.drgi
    assert d is not None
    mass = received_attention(d.video_attention[gt], d.video_node_mask[gt])
    series.append((f"GAT: {gat_bundle.run_name} (video graph, attention received)", "GAT",
                   mass[valid]))

spans = (event_spans(meta.videos[gt].events, fps) if meta is not None and fps is not None
         else [])
fig = text_frame_bars([(name, GAT_COLOUR if key == "GAT" else run_colour(key), w)
                       for name, key, w in series], times, spans)
st.plotly_chart(fig, key="attn_text_frame", width="stretch")
rule = (base.meta.get("text_frame") or {}).get("definition", "")
st.caption(f"Each run's weights over the frames of the caption's own video ({rule}). "
           + ("Shaded: the SynthVTT events of the video." if meta is not None else ""))

if meta is not None and fps is not None:
    st.subheader("Attention-event alignment")
    caption_meta = meta.captions[q]
    mentioned = list(caption_meta.events) if caption_meta else []
    if not mentioned:
        st.caption("This caption has no SynthVTT entry, so its mentioned events are unknown.")
    else:
        ev = frame_event_ids(times, meta.videos[gt].events, fps)
        gt_spans = event_spans(meta.videos[gt].events, fps)
        st.markdown("Mentioned events: " + ", ".join(
            escape_md(event_label(e, gt_spans[e].label)) for e in mentioned))
        rows = []
        for name, _, w in series:
            if not (ev != NO_EVENT).any() or w.sum() <= 0:
                continue
            a = caption_alignment(w, ev, mentioned)
            rows.append({"weights": name, "share on mentioned events": a.share,
                         "chance (uniform)": a.chance, "lift": a.lift})
        st.dataframe(pd.DataFrame(rows), key="attn_alignment", hide_index=True, width="stretch")

    summary = []
    for label, bundle in sel.bundles():
        b_meta, _ = synthvtt_split(roots, bundle)
        if b_meta is None:
            continue
        for source_name, source in alignment_sources(bundle):
            table = split_alignment(bundle, b_meta, source)
            done = table.dropna(subset=["share"])
            summary.append({"run": f"{label}: {bundle.run_name}", "weights": source_name,
                            "captions": len(done), "mean share": done["share"].mean(),
                            "mean chance": done["chance"].mean(),
                            "mean lift": done["lift"].mean(),
                            "share > chance (%)": 100.0 * (done["lift"] > 0).mean()
                            if len(done) else float("nan")})
    if summary:
        st.markdown("**Over the whole split** (mean over captions)")
        st.dataframe(pd.DataFrame(summary), key="attn_alignment_split", hide_index=True,
                     width="stretch")
        st.caption("Share of each caption's attention mass on the frames of the events it "
                   "mentions (spec/synthvtt.md); chance = what uniform attention over the same "
                   "frames scores.")
