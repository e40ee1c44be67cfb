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


def test_alignment_table_equals_caption_alignment_row_by_row():
    """The table is computed in one pass over the split (a loop over 59,800 captions took
    ~10 s per bundle); each row is what caption_alignment gives on that caption's frames."""
    rng = np.random.default_rng(0)
    n_video, n_frames, n_text = 7, 6, 40
    events = rng.integers(-1, 4, size=(n_video, n_frames))
    mask = rng.random((n_video, n_frames)) > 0.2
    mask[0] = False  # a video without a real frame
    t2v = rng.integers(0, n_video, size=n_text)
    weights = rng.random((n_text, n_frames))
    weights[3] = 0.0  # no attention mass
    captions = [None if i % 9 == 4 else caption(*sorted(set(rng.choice(4, size=3).tolist())))
                for i in range(n_text)]
    table = alignment_table(weights, events, mask, t2v, captions)
    for q in range(n_text):
        valid = mask[t2v[q]]
        row = table.loc[q]
        if captions[q] is None or not valid.any() or weights[q, valid].sum() <= 0:
            assert np.isnan(row["share"]) and row["n_mentioned"] == 0
            continue
        a = caption_alignment(weights[q, valid], events[t2v[q], valid], captions[q].events)
        assert row["share"] == pytest.approx(a.share) and row["chance"] == pytest.approx(a.chance)
        assert row["lift"] == pytest.approx(a.lift) and row["n_mentioned"] == len(a.mentioned)
    bad = weights.copy()
    bad[1, mask[t2v[1]].argmax()] = -1.0
    if captions[1] is not None and mask[t2v[1]].any():
        with pytest.raises(ValueError, match="non-negative"):
            alignment_table(bad, events, mask, t2v, captions)
