"""The clip players follow the heatmaps' frame columns: a "play from frame" control under each
player lists the sampled frames with the heatmap's labels; picking one seeks the player to that
frame's exact time (the float timestamp, not its whole second), shows the sampled frame itself
and (on Failures) outlines that column of the word-by-frame heatmap. AppTest on the tiny run
pair (tests/conftest.py ``app_env``); the browser side is tests/e2e/test_clip_player_browser.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.labels import frame_label
from app.components.clip_player import COMPONENT_NAME
from app.components.thumbs import video_file
from app.state import AppRoots
from tests.helpers_app import assert_no_errors, open_page, page_bundle


def _failing_query(base) -> tuple[int, int]:
    q = int(next(i for i in range(base.num_texts) if int(base.ranks.t2v[i]) > 1))
    return q, int(base.text_to_video[q])


def _frames(bundle, v: int) -> tuple[np.ndarray, list[str]]:
    times = np.asarray(bundle.frame_timestamps[v], dtype=np.float64)
    times = times[np.asarray(bundle.video_mask[v], dtype=bool)[: len(times)]]
    return times, [frame_label(j, t) for j, t in enumerate(times)]


def _seek_times(at) -> list[float]:
    """The seek time each clip player of the last run sent to the browser."""
    return [json.loads(el.proto.json)["time"] for el in at.get("bidi_component")
            if el.proto.component_name == COMPONENT_NAME]


def _between_seconds(times: np.ndarray) -> int:
    """The last frame whose time is not a whole second (where truncation would show)."""
    j = max((i for i, t in enumerate(times) if t != int(t)), default=None)
    assert j is not None, f"every frame time is a whole second: {times}"
    return j


@pytest.fixture()
def failing(app_env):
    base = page_bundle(app_env, app_env.base)
    roots = AppRoots(checkpoints=app_env.checkpoints.resolve(), data=app_env.data.resolve())
    q, gt = _failing_query(base)
    if video_file(roots, base, gt, app_env.data / "synthvtt") is None:
        pytest.fail("the tiny run pair's data root has no clip files: the players cannot be "
                    "tested")
    return base, q, gt


def test_failures_player_plays_from_the_picked_frame_and_marks_its_column(failing):
    base, q, gt = failing
    at = open_page("app_pages/failures.py", q=str(q), failures_run="base")
    key = f"failures_play_ground_truth_{gt}"
    control = at.button_group(key=key)
    times, labels = _frames(base, gt)
    assert control.options == labels  # the heatmap's column labels, in order
    heat = [c for c in at.get("plotly_chart") if "ground truth" in c.proto.spec]
    assert heat and '"shapes"' not in heat[0].proto.spec  # nothing outlined before a pick
    assert not at.get("video")  # the frame-exact player, not st.video (whole seconds)
    assert len(_seek_times(at)) == 2  # ground truth and hardest negative

    j = _between_seconds(times)
    control.set_value(j).run()
    assert_no_errors(at)
    assert float(times[j]) in _seek_times(at)  # exactly, not truncated
    assert any(labels[j] in c.value and "Paused at" in c.value for c in at.caption)
    assert any(im.proto.imgs[0].caption == labels[j] for im in at.image)
    spec = json.loads(next(c for c in at.get("plotly_chart")
                           if "ground truth" in c.proto.spec).proto.spec)
    rects = [s for s in spec["layout"].get("shapes", []) if s["type"] == "rect"]
    assert [(r["x0"], r["x1"]) for r in rects] == [(j - 0.5, j + 0.5)]


@pytest.mark.parametrize("page,key", [("app_pages/compare.py", "compare_play"),
                                      ("app_pages/hard_negatives.py", "hardneg_play")])
def test_compare_and_hard_negatives_players_play_from_a_picked_frame(failing, page, key):
    base, q, gt = failing
    at = open_page(page, q=str(q))
    control = at.button_group(key=f"{key}_{gt}")
    times, labels = _frames(base, gt)
    assert control.options == labels
    j = _between_seconds(times)
    control.set_value(j).run()
    assert_no_errors(at)
    assert float(times[j]) in _seek_times(at)
