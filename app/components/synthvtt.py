"""SynthVTT ground truth of a bundle (events, families, mentioned events), loaded once.

:func:`synthvtt_split` returns the dataset's meta aligned with the bundle's rows
(:class:`tvr.data.synthvtt.SplitMeta`, read by :meth:`analysis.bundle.Bundle.synthvtt_meta`; None
on other datasets) with a note saying why it is missing when the dataset root cannot be read.
The dataset root is checked against the app's roots before anything is opened.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import streamlit as st

from analysis.attention_view import received_attention_stack
from analysis.bundle import Bundle
from analysis.events import alignment_table, frame_event_table
from app import resources
from app.state import AppRoots, PathOutsideRootsError
from tvr.data.synthvtt import SplitMeta

logger = logging.getLogger(__name__)


@st.cache_resource(max_entries=8, show_spinner=False)
def _split(path: str, stamp: tuple, root: str, _bundle: Bundle) -> SplitMeta:
    return _bundle.synthvtt_meta()


def synthvtt_split(roots: AppRoots, bundle: Bundle) -> tuple[SplitMeta | None, str | None]:
    """``(split ground truth, note)``: the SynthVTT meta aligned with the bundle, or None with
    a note saying why (None, None on datasets other than SynthVTT)."""
    if bundle.dataset != "synthvtt":
        return None, None
    try:
        root = bundle.data_root
        if root is None:
            raise FileNotFoundError(
                f"dataset root {bundle.meta.get('data_root')} not found under {roots.data}")
        checked = roots.check(root)
        return _split(str(bundle.path), resources.bundle_stamp(bundle.path), str(checked),
                      bundle), None
    except (FileNotFoundError, PathOutsideRootsError, ValueError) as exc:
        logger.warning("SynthVTT meta of %s unavailable: %s", bundle.path, exc)
        return None, f"SynthVTT ground truth unavailable: {exc}"


@st.cache_data(max_entries=16, show_spinner=False)
def _frame_events(path: str, stamp: tuple, _bundle: Bundle, _meta: SplitMeta) -> np.ndarray:
    return frame_event_table(_bundle.frame_timestamps, _meta.videos, float(_meta.params.fps))


def frame_events(bundle: Bundle, meta: SplitMeta) -> np.ndarray:
    """:func:`analysis.events.frame_event_table` of the bundle's videos (``[Nv, T]``, cached)."""
    return _frame_events(str(bundle.path), resources.bundle_stamp(bundle.path), bundle, meta)


def gat_tokens(bundle: Bundle) -> bool:
    """Whether the bundle's GAT nodes are words/frames (token mode), not factor chunks."""
    return str((bundle.meta.get("drgi") or {}).get("nodes", "tokens")) == "tokens"


def alignment_sources(bundle: Bundle) -> list[tuple[str, str]]:
    """``(name, source)`` of the frame weights whose event alignment the Attention page
    summarises over the split: every run's text-to-frame weights, and the GAT's received
    attention of a DRGI run whose video graph has one node per frame."""
    sources = [("text-to-frame", "text_frame")]
    if bundle.has_drgi and gat_tokens(bundle) and bundle.drgi is not None and \
            bundle.drgi.video_attention.shape[-1] == bundle.num_frames:
        sources.append(("GAT received", "gat"))
    return sources


@st.cache_data(max_entries=16, show_spinner="Computing the attention-event alignment…")
def _split_alignment(path: str, stamp: tuple, source: str, _bundle: Bundle,
                     _meta: SplitMeta) -> pd.DataFrame:
    events = frame_events(_bundle, _meta)
    if source == "gat":
        d = _bundle.drgi
        assert d is not None
        per_video = received_attention_stack(d.video_attention, d.video_node_mask)
        weights = per_video[np.asarray(_bundle.text_to_video)]
    else:
        weights = _bundle.text_frame_weights
    return alignment_table(weights, events, _bundle.video_mask, _bundle.text_to_video,
                           _meta.captions)


def split_alignment(bundle: Bundle, meta: SplitMeta, source: str) -> pd.DataFrame:
    """:func:`analysis.events.alignment_table` of a bundle's captions (``source``
    ``"text_frame"`` or ``"gat"``, see :func:`alignment_sources`), cached per bundle version
    (the app's warm-up fills it: a pass over every caption, ~2 s at 59,800 captions)."""
    return _split_alignment(str(bundle.path), resources.bundle_stamp(bundle.path), source,
                            bundle, meta)
