"""Projector basics drawn on the Embeddings page: the "found" marks centred on the map, the
nearest-neighbour table and the selection kept in the URL.

The computations live in :mod:`analysis.projector`; this module turns them into plotly traces,
tables and URL parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.bundle import Bundle
from analysis.embedding_map import TEXTS, VIDEOS, MapPoints
from analysis.labels import video_label
from analysis.projector import (
    CAPTION,
    Item,
    nearest_neighbours,
    saved_from_url,
    saved_to_url,
    selection_from_url,
)

FOUND_COLOUR = "#9467bd"
SELECTION_PARAM = "emb_sel"  # ?emb_sel=c1.2~v3: the lasso selection of the Embeddings page


def item_points(points: MapPoints, items: Sequence[Item]) -> np.ndarray:
    """The map's pooled points (caption or video) of ``items``, in their order."""
    out = []
    for it in items:
        kind = TEXTS if it.kind == CAPTION else VIDEOS
        hit = np.flatnonzero((points.kind == kind) & (points.item == it.index))
        out.extend(hit.tolist())
    return np.asarray(out, dtype=np.int64)


def mark_found(fig: go.Figure, points: MapPoints, coords: np.ndarray, items: Sequence[Item],
               *, zoom: float = 0.15) -> None:
    """Ring the points of ``items`` and centre the view on the first one (a window of
    ``zoom`` times the map's extent around it)."""
    ids = item_points(points, items)
    if ids.size == 0:
        return
    fig.add_trace(go.Scattergl(
        x=coords[ids, 0], y=coords[ids, 1], mode="markers", name="found",
        marker=dict(symbol="circle-open", size=22, color=FOUND_COLOUR,
                    line=dict(width=3, color=FOUND_COLOUR)),
        hovertemplate="found<extra></extra>"))
    span = np.ptp(coords, axis=0) if len(coords) else np.ones(2)
    half = float(max(span.max(), 1e-6)) * zoom
    cx, cy = (float(c) for c in coords[ids[0]])
    fig.update_layout(xaxis=dict(range=[cx - half, cx + half]),
                      yaxis=dict(range=[cy - half, cy + half]))


def item_name(bundle: Bundle, item: Item, width: int = 70) -> str:
    """``caption 12: a red…`` or ``video1750``."""
    if item.kind == CAPTION:
        text = bundle.captions[item.index]
        return f"caption {item.index}: {text[:width]}{'…' if len(text) > width else ''}"
    return f"{video_label(bundle.video_ids[item.index])} (#{item.index})"


def neighbour_table(bundle: Bundle, item: Item, k: int = 10) -> pd.DataFrame:
    """The ``k`` nearest captions and videos of ``item`` in ``bundle``'s pooled (full) space,
    with their cosine; the ground truth relation is flagged."""
    rows: list[dict[str, Any]] = []
    for rank, (nb, cos) in enumerate(nearest_neighbours(bundle.text_pooled, bundle.video_pooled,
                                                        item, k), start=1):
        if item.kind == CAPTION:
            match = nb.kind != CAPTION and nb.index == int(bundle.text_to_video[item.index])
        else:
            match = nb.kind == CAPTION and int(bundle.text_to_video[nb.index]) == item.index
        rows.append({"#": rank, "neighbour": item_name(bundle, nb), "cosine": cos,
                     "ground-truth pair": bool(match)})
    return pd.DataFrame(rows)


def selection_from_link(n_captions: int, n_videos: int) -> tuple[list[int], list[int]] | None:
    """The selection ``?emb_sel=`` carries, or None when there is none; a malformed or
    out-of-range value is named in an ``st.warning`` and ignored."""
    raw = st.query_params.get_all(SELECTION_PARAM)
    if not raw or not raw[-1].strip():
        return None
    try:
        caps, vids = selection_from_url(raw[-1], n_captions, n_videos)
    except ValueError as exc:
        st.warning(f"The link's `{SELECTION_PARAM}={raw[-1]}` is not a selection of this split "
                   f"({exc}); showing no selection instead.", icon=":material/link_off:")
        del st.query_params[SELECTION_PARAM]
        return None
    return (caps, vids) if caps or vids else None


SAVED_PARAM = "emb_saved"  # ?emb_saved=name:c1.2~v3 (repeated): named selections


def saved_from_link(n_captions: int, n_videos: int) -> list[tuple[str, list[int], list[int]]]:
    """The named selections ``?emb_saved=`` carries (in order, the last of a name wins); a
    malformed or out-of-range one is named in an ``st.warning`` and dropped from the URL."""
    good: dict[str, tuple[str, list[int], list[int]]] = {}
    bad = []
    for raw in st.query_params.get_all(SAVED_PARAM):
        try:
            name, caps, vids = saved_from_url(raw, n_captions, n_videos)
        except ValueError as exc:
            bad.append(raw)
            st.warning(f"The link's `{SAVED_PARAM}={raw}` is not a saved selection of this split "
                       f"({exc}); it is left out.", icon=":material/link_off:")
            continue
        good[name] = (name, caps, vids)
    if bad:
        _write_saved(list(good.values()))
    return list(good.values())


def _write_saved(saved: Sequence[tuple[str, list[int], list[int]]]) -> None:
    values = [saved_to_url(*s) for s in saved]
    if values:
        st.query_params[SAVED_PARAM] = values
    elif SAVED_PARAM in st.query_params:
        del st.query_params[SAVED_PARAM]


def save_selection(saved: Sequence[tuple[str, list[int], list[int]]], name: str,
                   captions: Sequence[int], videos: Sequence[int]) -> None:
    """Add (or replace) the selection ``name`` in the URL.

    Raises:
        ValueError: an empty name or selection (see :func:`analysis.projector.saved_to_url`).
    """
    saved_to_url(name, captions, videos)  # checks the name and the selection
    kept = [s for s in saved if s[0] != name.strip()]
    _write_saved([*kept, (name.strip(), list(captions), list(videos))])


def delete_saved(saved: Sequence[tuple[str, list[int], list[int]]], name: str) -> None:
    """Remove the selection ``name`` from the URL."""
    _write_saved([s for s in saved if s[0] != name])
