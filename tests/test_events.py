"""Tests for analysis.events: SynthVTT events on sampled frames and attention-event alignment."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.events import (
    NO_EVENT,
    alignment_table,
    caption_alignment,
    event_runs,
    event_spans,
    frame_event_ids,
    frame_event_table,
)
from tvr.data.synthvtt import Edit, MetaCaption, MetaEvent, MetaVideo

FPS = 8
# frames 2..11 red circle, gap 12..14, 15..25 blue square (end exclusive)
EVENTS = (
    MetaEvent("red", "circle", "moves left", 2, 12, 0.5, 0.5, 0.1, -0.01, 0.0, 0.0),
    MetaEvent("blue", "square", "grows", 15, 26, 0.5, 0.5, 0.1, 0.0, 0.0, 0.01),
)
VIDEO = MetaVideo("video0", "test", 0, Edit(), "black", 28, EVENTS)


def caption(*events: int) -> MetaCaption:
    return MetaCaption(0, "video0", "test", events, False, ("video0",))


def test_spans_are_frame_ranges_in_seconds():
    spans = event_spans(EVENTS, FPS)
    assert [(s.index, s.label) for s in spans] == [(0, "red circle moves left"),
                                                   (1, "blue square grows")]
    assert spans[0].start == pytest.approx(0.25) and spans[0].end == pytest.approx(1.5)
    assert spans[1].start == pytest.approx(15 / 8) and spans[1].end == pytest.approx(26 / 8)


def test_frame_event_ids_round_timestamps_to_source_frames():
    # source frames 0 (before), 2 (first of e0), 11 (last of e0), 12 (gap), 15, 25, 26, padding;
    # the float error of pts * time_base is absorbed by rounding
    times = np.array([0.0, 2 / 8 - 1e-9, 11 / 8 + 1e-9, 12 / 8, 15 / 8, 25 / 8, 26 / 8, np.nan])
    ids = frame_event_ids(times, EVENTS, FPS)
    assert ids.dtype == np.int64
    assert ids.tolist() == [NO_EVENT, 0, 0, NO_EVENT, 1, 1, NO_EVENT, NO_EVENT]
    table = frame_event_table(np.stack([times, times]), [VIDEO] * 2, FPS)
    assert table.shape == (2, 8) and (table == ids).all()


def test_event_runs_are_maximal_and_skip_gaps():
    assert event_runs([-1, 0, 0, -1, 1, 1, 1, 0]) == [(0, 1, 2), (1, 4, 6), (0, 7, 7)]
    assert event_runs([]) == []
    assert event_runs([-1, -1]) == []


def test_caption_alignment_known_values():
    ev = np.array([0, 0, -1, 1])
    a = caption_alignment([0.5, 0.25, 0.0, 0.25], ev, [0])
    assert a.share == pytest.approx(0.75) and a.chance == pytest.approx(0.5)
    assert a.lift == pytest.approx(0.25) and a.mentioned == (0,)
    both = caption_alignment([1, 1, 1, 1], ev, [1, 0, 1])
    assert both.share == pytest.approx(0.75) == both.chance and both.mentioned == (0, 1)


def test_alignment_table_uses_valid_frames_and_skips_captions_without_meta():
    weights = np.array([[0.6, 0.4, 0.0], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]])
    events = np.array([[0, 1, -1], [0, 0, 1]])
    mask = np.array([[True, True, False], [True, True, True]])
    t2v = np.array([0, 1, 1])
    table = alignment_table(weights, events, mask, t2v, [caption(0), caption(1), None])
    assert list(table.columns) == ["caption", "video", "share", "chance", "lift", "n_mentioned"]
    assert table.loc[0, "share"] == pytest.approx(0.6)
    assert table.loc[0, "chance"] == pytest.approx(0.5)  # 2 valid frames, padding left out
    assert table.loc[1, "share"] == pytest.approx(0.6)
    assert table.loc[1, "chance"] == pytest.approx(1 / 3)
    assert np.isnan(table.loc[2, "share"]) and table.loc[2, "n_mentioned"] == 0


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="fps"):
        event_spans(EVENTS, 0)
    with pytest.raises(ValueError, match="timestamps"):
        frame_event_ids(np.zeros((2, 2)), EVENTS, FPS)
    with pytest.raises(ValueError, match="one per row"):
        frame_event_table(np.zeros((2, 3)), [VIDEO], FPS)
    with pytest.raises(ValueError, match="captions"):
        alignment_table(np.ones((2, 2)), np.zeros((1, 2), int), np.ones((1, 2), bool),
                        np.zeros(2, int), [None])
