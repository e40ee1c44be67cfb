"""The frame-exact clip player (app/components/clip_player.py): the seek time reaches the browser
exactly as given (not truncated to whole seconds as ``st.video``'s ``start_time`` is), the file
is served from the app's own media storage, and bad times and files get errors that name them.
The browser side (``video.currentTime``) is checked in tests/e2e/test_clip_player_browser.py."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.components.clip_player import (
    COMPONENT_NAME,
    ClipPlayerError,
    seek_time,
    video_mimetype,
)
from tvr.data.synthvtt.rendering import write_mp4

FPS = 8


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    """A 2 s, 8 fps H.264 mp4 (16 frames of 16x16)."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    frames = np.zeros((2 * FPS, 16, 16, 3), dtype=np.uint8)
    frames[:, :, :, 0] = np.arange(2 * FPS, dtype=np.uint8)[:, None, None] * 15
    write_mp4(path, frames, FPS)
    return path


def _players(at: AppTest) -> list[dict]:
    """The data each clip player of the last run sent to the browser."""
    return [json.loads(el.proto.json) for el in at.get("bidi_component")
            if el.proto.component_name == COMPONENT_NAME]


def _player_script(path: str, time: float, start=None, end=None) -> None:
    from pathlib import Path

    import streamlit as st

    from app.components.clip_player import ClipPlayerError, frame_player

    try:
        frame_player(Path(path), time, start=start, end=end, label="clip", key="player")
    except ClipPlayerError as exc:
        st.error(str(exc))


def _run(path: Path | str, time, **window) -> AppTest:
    return AppTest.from_function(_player_script, args=(str(path), time),
                                 kwargs=window, default_timeout=30).run()


# ---------------------------------------------------------------- seek times


@pytest.mark.parametrize("t", [0.0, 0.125, 2.625, 1 / 3, np.float64(2.875), np.float32(0.375)])
def test_seek_time_is_the_given_time_exactly(t):
    assert seek_time(t) == float(t)
    assert isinstance(seek_time(t), float)


def test_seek_time_inside_a_window_is_kept_and_outside_named():
    assert seek_time(12.375, 12.0, 14.5) == 12.375
    assert seek_time(12.0, 12.0, 14.5) == 12.0
    with pytest.raises(ClipPlayerError, match=r"11\.5 s is outside the clip's window \[12\.0 s, "
                                              r"14\.5 s\]"):
        seek_time(11.5, 12.0, 14.5)
    with pytest.raises(ClipPlayerError, match=r"outside .*\[12\.0 s, the file's end\]"):
        seek_time(3.0, 12.0, None)


@pytest.mark.parametrize("bad,what", [(float("nan"), "nan"), (float("inf"), "inf"),
                                      (-0.5, "-0.5"), ("soon", "'soon'"), (None, "None")])
def test_bad_seek_times_are_named(bad, what):
    with pytest.raises(ClipPlayerError, match=re.escape(what)):
        seek_time(bad)


@pytest.mark.parametrize("start,end,what", [(-1.0, None, "window start -1.0"),
                                            (2.0, 2.0, "window end 2.0"),
                                            (2.0, float("nan"), "window end nan")])
def test_bad_windows_are_named(start, end, what):
    with pytest.raises(ClipPlayerError, match=re.escape(what)):
        seek_time(2.0, start, end)


# ---------------------------------------------------------------- files


def test_mimetype_from_the_files_first_bytes(mp4, tmp_path):
    assert video_mimetype(mp4) == "video/mp4"
    odd_name = tmp_path / "clip.bin"  # the bytes decide, not the name
    shutil.copy(mp4, odd_name)
    assert video_mimetype(odd_name) == "video/mp4"
    webm = tmp_path / "clip.webm"  # an EBML header with doctype webm
    webm.write_bytes(bytes.fromhex("1a45dfa3 9f 4286 81 01 42f7 81 01 42f2 81 04 42f3 81 08")
                     + bytes.fromhex("4282 84") + b"webm" + bytes(16))
    assert video_mimetype(webm) == "video/webm"


@pytest.mark.parametrize("content,what", [
    (b"", "is empty"),
    (b"this is not a video, only text" * 4, "first bytes 74 68 69 73"),
    (bytes.fromhex("1a45dfa3 a3 4286 81 01 4282 88") + b"matroska" + bytes(16),
     "a Matroska file (not WebM)"),
])
def test_files_the_browser_cannot_play_are_named(tmp_path, content, what):
    bad = tmp_path / "video7.mp4"
    bad.write_bytes(content)
    with pytest.raises(ClipPlayerError, match=re.escape(what)) as err:
        video_mimetype(bad)
    assert str(bad) in str(err.value) and "expected MP4/QuickTime" in str(err.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ClipPlayerError, match=re.escape(str(tmp_path / "gone.mp4"))):
        video_mimetype(tmp_path / "gone.mp4")


# ---------------------------------------------------------------- the component in a run


def test_the_browser_gets_the_exact_time_and_a_url_of_the_apps_media_storage(mp4):
    at = _run(mp4, 0.875, start=None, end=None)
    assert not at.exception and not at.error
    (data,) = _players(at)
    assert data["time"] == 0.875  # not int(0.875) == 0, as st.video would send
    assert (data["start"], data["end"]) == (0.0, None)
    assert data["name"] == "clip.mp4"
    # st.video's storage (AppTest's runtime serves it under /mock/media): the app's own host
    assert re.fullmatch(r"/mock/media/[0-9a-f]+\.mp4", data["url"]), data["url"]


def test_a_new_time_reaches_the_same_player(mp4):
    at = _run(mp4, 0.125)
    first = _players(at)[0]
    at2 = _run(mp4, 1.375)
    second = _players(at2)[0]
    assert (first["time"], second["time"]) == (0.125, 1.375)
    assert first["url"] == second["url"]  # the same file: the browser does not reload it


def test_the_url_is_under_the_servers_base_path(mp4):
    from streamlit import config

    old = config.get_option("server.baseUrlPath")
    config.set_option("server.baseUrlPath", "lab/")
    try:
        at = _run(mp4, 0.5)
    finally:
        config.set_option("server.baseUrlPath", old)
    assert _players(at)[0]["url"].startswith("/lab/mock/media/")


@pytest.mark.parametrize("time,window,what", [
    (float("nan"), {}, "seek time nan"),
    (3.5, {"start": 0.0, "end": 2.0}, "outside the clip's window"),
])
def test_a_bad_time_draws_no_player_and_says_why(mp4, time, window, what):
    at = _run(mp4, time, **window)
    assert not _players(at)
    assert any(what in e.value for e in at.error)


def test_a_bad_file_draws_no_player_and_names_it(tmp_path):
    bad = tmp_path / "video3.mp4"
    bad.write_bytes(b"\x00" * 64)
    at = _run(bad, 0.5)
    assert not _players(at)
    assert any(str(bad) in e.value and "not a video the browser plays" in e.value
               for e in at.error)


# ---------------------------------------------------------------- a bundle's clip, bad file


def _clip_script(roots, bundle, video: int, data_root) -> None:
    from app.components.thumbs import clip_player

    clip_player(roots, bundle, video, data_root, key="play")


def test_a_bundle_video_that_is_not_playable_keeps_the_no_clip_caption(app_env, tmp_path):
    from app.state import AppRoots
    from tests.helpers_app import page_bundle

    base = page_bundle(app_env, app_env.base)
    rel = Path(base.video_paths[0])
    bad = tmp_path / "synthvtt" / rel
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a video" * 10)
    roots = AppRoots(checkpoints=app_env.checkpoints.resolve(), data=tmp_path.resolve())
    at = AppTest.from_function(_clip_script, args=(roots, base, 0, tmp_path / "synthvtt"),
                               default_timeout=30).run()
    assert not at.exception
    assert not _players(at)
    assert any(c.value.startswith("No clip of ") and str(bad.resolve()) in c.value
               and "not a video the browser plays" in c.value for c in at.caption)
