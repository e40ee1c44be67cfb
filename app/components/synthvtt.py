"""SynthVTT ground truth of a bundle (events, families, mentioned events), loaded once.

:func:`synthvtt_split` returns the dataset's meta aligned with the bundle's rows
(:class:`tvr.data.synthvtt.SplitMeta`, read by :meth:`analysis.bundle.Bundle.synthvtt_meta`; None
on other datasets) with a note saying why it is missing when the dataset root cannot be read.
The dataset root is checked against the app's roots before anything is opened.
"""

from __future__ import annotations

import logging

import numpy as np
import streamlit as st

from analysis.bundle import Bundle
from analysis.events import frame_event_table
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
