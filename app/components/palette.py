"""The app's colours, defined once: one colour per run on every page, and the colours of
outcomes and SynthVTT events.

Plotly (and Streamlit's plotly theme) colour traces by their order, so a figure that does not
name its colours paints the second run light blue on one page and orange on another; every
figure that shows a run uses :func:`run_colour` instead.
"""

from __future__ import annotations

from app.selection import BASE_LABEL, DRGI_LABEL

RUN_COLOURS: dict[str, str] = {BASE_LABEL: "#1f77b4", DRGI_LABEL: "#ff7f0e"}
"""base: blue, DRGI: orange (the labels of :meth:`app.selection.Selection.bundles`)."""

OTHER_COLOUR = "#7f7f7f"
"""A series that is neither run (e.g. a reference)."""

OUTCOME_COLOURS: dict[str, str] = {"win": "#2ca02c", "tie": "#9e9e9e", "loss": "#d62728"}
"""A query's outcome from DRGI's side: better, same, worse ground-truth rank."""

EVENT_COLOURS: tuple[str, ...] = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                                  "#e6ab02")
"""SynthVTT events, by their index in the video (repeating)."""


def run_colour(label: str) -> str:
    """The colour of run ``label`` (``"base"`` or ``"DRGI"``); :data:`OTHER_COLOUR` for any
    other label."""
    return RUN_COLOURS.get(label, OTHER_COLOUR)


def event_colour(index: int) -> str:
    """The colour of the SynthVTT event ``index`` (0-based) of a video."""
    return EVENT_COLOURS[int(index) % len(EVENT_COLOURS)]
