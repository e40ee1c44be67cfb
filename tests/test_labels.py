"""The one spelling of frames, events and videos (analysis/labels.py)."""

from __future__ import annotations

import numpy as np

from analysis.attention import label_nodes
from analysis.labels import event_label, frame_label, video_label


def test_frame_label_has_the_time_when_known():
    assert frame_label(3, 1.254) == "f3 @ 1.25s"
    assert frame_label(0, None) == "f0"
    assert frame_label(2, float("nan")) == "f2"


def test_event_label_is_one_based():
    assert event_label(0) == "event 1"
    assert event_label(2, "red circle grows") == "event 3: red circle grows"


def test_video_label_does_not_double_the_word():
    assert video_label("video1750") == "video1750"
    assert video_label("Video_7") == "Video_7"
    assert video_label("12") == "video 12"
    assert video_label("clip3") == "video clip3"


def test_graph_frame_labels_use_the_same_format():
    mask = np.array([True, True, False])
    assert label_nodes("video", mask, timestamps=[0.0, 0.5, 1.0]) == [
        frame_label(0, 0.0), frame_label(1, 0.5)]
