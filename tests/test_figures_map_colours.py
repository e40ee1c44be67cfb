"""Tests for app.components.figures.map_colours: category codes into small palettes."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.embedding_map import MapPoints
from analysis.events import NO_EVENT
from app.components.figures.map_colours import (
    CATEGORICAL,
    GAP_COLOUR,
    KIND_COLOURS,
    LEVELS,
    MISSING_COLOUR,
    NOT_A_FRAME,
    POOLED_COLOUR,
    MapColours,
    event_colours,
    kind_colours,
    outcome_colours,
    position_colours,
    stepped_colorscale,
    value_colours,
    video_colours,
)
from app.components.palette import EVENT_COLOURS, OUTCOME_COLOURS


def _points() -> MapPoints:
    # caption 0 (2 words), caption 1 (1 word); video 0 (2 frames), video 1 (1 frame)
    kind = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    item = np.array([0, 0, 1, 0, 0, 1, 0, 1, 0, 1])
    position = np.array([0, 1, 0, 0, 1, 0, -1, -1, -1, -1])
    caption = np.array([0, 0, 1, -1, -1, -1, 0, 1, -1, -1])
    video = np.array([1, 1, 0, 0, 0, 1, 1, 0, 0, 1])
    return MapPoints(np.zeros((10, 2), np.float32), kind, item, position, caption, video)


def test_stepped_colorscale_puts_each_code_on_its_own_colour():
    scale = stepped_colorscale(["#000000", "#ffffff", "#ff0000"])
    assert scale[0] == [0.0, "#000000"] and scale[-1] == [1.0, "#ff0000"]
    positions = [s[0] for s in scale]
    assert positions == sorted(positions)
    for code in range(3):  # code -> (code + 0.5) / 3 lies inside step `code`
        x = (code + 0.5) / 3
        assert scale[2 * code][0] < x < scale[2 * code + 1][0]
    with pytest.raises(ValueError, match="empty palette"):
        stepped_colorscale([])


def test_kind_video_and_position_codes():
    p = _points()
    k = kind_colours(p)
    assert k.colours().tolist() == [KIND_COLOURS[i] for i in p.kind]
    assert k.codes.dtype == np.uint8 and len(k.legend) == 4
    v = video_colours(p)
    assert v.colours().tolist() == [CATEGORICAL[i % len(CATEGORICAL)] for i in p.video]
    pos = position_colours(p)
    colours = pos.colours()
    assert colours[0] == colours[2] == colours[3] != colours[1]  # position 0 vs 1
    assert set(colours[6:].tolist()) == {POOLED_COLOUR}
    assert len(pos.palette) == 3  # positions 0, 1 and "pooled"


def test_event_codes_colour_frames_only():
    p = _points()
    events = np.array([[0, NO_EVENT], [1, 1]])  # [Nv, T]
    c = event_colours(p, events).colours()
    assert c[3] == EVENT_COLOURS[0] and c[4] == GAP_COLOUR and c[5] == EVENT_COLOURS[1]
    assert set(c[[0, 1, 2, 6, 7, 8, 9]].tolist()) == {NOT_A_FRAME}


def test_outcome_codes_follow_each_side_and_reject_unknown_outcomes():
    p = _points()
    t2v = np.array(["win", "loss"], dtype=object)
    v2t = np.array(["tie", "win"], dtype=object)
    c = outcome_colours(p, t2v, v2t).colours()
    assert c[[0, 1, 6]].tolist() == [OUTCOME_COLOURS["win"]] * 3  # caption 0
    assert c[[2, 7]].tolist() == [OUTCOME_COLOURS["loss"]] * 2  # caption 1
    assert c[[3, 4, 8]].tolist() == [OUTCOME_COLOURS["tie"]] * 3  # video 0
    assert c[[5, 9]].tolist() == [OUTCOME_COLOURS["win"]] * 2  # video 1
    with pytest.raises(ValueError, match="draw"):
        outcome_colours(p, np.array(["draw", "win"], dtype=object), v2t)


def test_value_codes_are_symmetric_around_zero_and_grey_for_nan():
    values = np.array([-2.0, 0.0, 1.0, 2.0, np.nan])
    c, bound = value_colours(values, "RdYlGn", low_name="low", high_name="high")
    assert bound == 2.0
    assert c.codes.tolist() == [0, (LEVELS - 1) // 2, round(0.75 * (LEVELS - 1)), LEVELS - 1,
                                LEVELS]
    assert c.palette[-1] == MISSING_COLOUR and len(c.palette) == LEVELS + 1
    assert c.legend[0][0].startswith("-2") and c.legend[2][0].startswith("+2")
    flat, bound = value_colours(np.zeros(3), "RdYlGn", low_name="", high_name="")
    assert bound == 1.0 and len(set(flat.codes.tolist())) == 1


def test_codes_outside_the_palette_are_refused():
    with pytest.raises(ValueError, match="colour code 2"):
        MapColours(np.array([0, 2], np.uint8), ("#000000", "#ffffff"), [])
