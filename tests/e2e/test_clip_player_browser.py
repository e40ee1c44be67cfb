"""The frame-exact clip player in a real browser (Debian chromium driven by Playwright; the
server, browser and roots fixtures of :mod:`e2e.test_browser`, so the same tiny run pair or,
with ``DRGI_LAB_E2E_REPO_ROOTS=1``, the demo).

On Compare, Failures and Hard negatives: open a failing query, pick a frame column whose time
is not a whole second in the ground truth's "play from frame" control, and check that the
player's ``<video>`` stands at that time (``st.video`` would start at the whole second below
it), paused there with the frame decoded, that the file came from the app's own ``/media``
endpoint, and that no request left the app's host.

The player alone (a small script served by ``streamlit run``): a 12 fps clip whose frames are
painted with their own index shows, at the sampler's time of one frame, that very frame (read
back from a canvas), and a file that looks like an MP4 but does not decode says so in the
player.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from urllib.parse import urlsplit

import numpy as np
import pytest

from . import test_browser as shared
from .browser_env import outside_requests
from .serving import wait_healthy

# the browser tests' fixtures, found by pytest under these names (a server of this module's own)
server, roots, browser = shared.server, shared.roots, shared.browser
_browser_requirements = shared._browser_requirements  # CI fails rather than skips
ACTION, WHY, _wait_idle = shared.ACTION, shared.WHY, shared._wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(ACTION == "skip", reason=WHY)]

# (url path, the ground truth's "play from frame" control key, given the ground truth's index)
PLAYERS = [("compare", "compare_play_{gt}"),
           ("failures", "failures_play_ground_truth_{gt}"),
           ("hard-negatives", "hardneg_play_{gt}")]
TOLERANCE_S = 0.02  # well under one frame period of the SynthVTT clips (1/8 s)


def _failing_query(roots) -> tuple[int, int, float, str]:
    """A query the base run ranks below 1: its index, its ground-truth video, and the last
    of that video's sampled frames whose time is not a whole second (time, heatmap label)."""
    from analysis.bundle import Bundle
    from analysis.labels import frame_label

    checkpoints, data, base, _ = roots
    bundle = Bundle.load(checkpoints / base / "analysis" / "synthvtt-test", check=False,
                         data_root=data / "synthvtt")
    q = int(next(i for i in range(bundle.num_texts) if int(bundle.ranks.t2v[i]) > 1))
    gt = int(bundle.text_to_video[q])
    times = np.asarray(bundle.frame_timestamps[gt], dtype=np.float64)
    times = times[np.asarray(bundle.video_mask[gt], dtype=bool)[: len(times)]]
    j = max(i for i, t in enumerate(times) if math.isfinite(t) and t != int(t))
    return q, gt, float(times[j]), frame_label(j, times[j])


def test_the_player_stands_at_the_picked_frames_exact_time(server, roots, browser):
    _, _, base, drgi = roots
    q, gt, t, label = _failing_query(roots)
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url))
    page = context.new_page()
    page.on("websocket", lambda ws: urls.append(ws.url))
    for path, control in PLAYERS:
        key = control.format(gt=gt)
        page.goto(f"{server}/{path}?base={base}&drgi={drgi}&q={q}&failures_run=base")
        _wait_idle(page)
        page.locator(f".st-key-{key} button", has_text=label).first.click()
        page.wait_for_timeout(500)
        _wait_idle(page)
        video = page.locator(f".st-key-{key}_player_{gt} video").first
        video.wait_for(state="attached", timeout=60_000)
        # seeked and decoded: the frame at t is on screen (HAVE_CURRENT_DATA or more)
        page.wait_for_function(
            "([v, t]) => Math.abs(v.currentTime - t) < 0.02 && !v.seeking && v.readyState >= 2",
            arg=[video.element_handle(), t], timeout=60_000)
        state = video.evaluate("v => ({time: v.currentTime, paused: v.paused, src: v.src, "
                               "error: v.error && v.error.code})")
        assert abs(state["time"] - t) < TOLERANCE_S, (path, label, state)
        assert abs(state["time"] - int(t)) >= TOLERANCE_S, (path, label, state)  # not truncated
        assert state["paused"] and state["error"] is None, (path, state)
        src = urlsplit(state["src"])
        assert src.netloc == urlsplit(server).netloc and "/media/" in src.path, (path, state)
        assert label in page.inner_text("body")
    context.close()
    assert any("/media/" in u for u in urls), "no clip was fetched from the app"
    assert not outside_requests(urls, server), \
        f"the app requested outside hosts: {outside_requests(urls, server)}"


# ---------------------------------------------------------------- the player alone

FPS = 12  # frame times k/12 s: not exact in binary, unlike SynthVTT's 1/8 s
STEP = 10  # frame k is painted red = STEP * k, so the frame on screen names itself
WINDOW = (0.5, 0.9)  # a clip's window inside the file (seconds)

PLAYER_SCRIPT = '''
import json
from pathlib import Path

import streamlit as st

from app.components.clip_player import frame_player

for key, (name, t, start, end) in json.loads(Path("clips.json").read_text()).items():
    st.markdown(f"**{key}**")
    frame_player(Path(name).resolve(), t, start=start, end=end, key=key, label=key)
'''


@pytest.fixture(scope="module")
def player_app(tmp_path_factory):
    """A Streamlit server (loopback) of a script that shows three players: a 12 fps clip whose
    frame k is painted red = 10 k, paused at the sampler's time of one of its frames; a file
    that looks like an MP4 but does not decode; the first clip's window :data:`WINDOW`.
    Yields ``(url, frame index, time)``."""
    from tvr.data.synthvtt.rendering import write_mp4
    from tvr.data.video.decode import read_frames

    folder = tmp_path_factory.mktemp("player_app")
    frames = np.full((2 * FPS, 32, 32, 3), 128, dtype=np.uint8)
    frames[..., 0] = (np.arange(2 * FPS) * STEP)[:, None, None]
    write_mp4(folder / "coloured.mp4", frames, FPS)
    sampled = read_frames(folder / "coloured.mp4", num_frames=8)  # the sampler's frame times
    j = 5
    t = float(sampled.timestamps[j])
    k = round(float(sampled.frames[j][..., 0].mean()) / STEP)  # the frame the sampler took
    assert t != int(t) and 0 < k < 2 * FPS - 1
    # an ftyp box (so it is taken for an MP4) and no decodable media after it
    (folder / "broken.mp4").write_bytes(bytes.fromhex("00000018 66747970 69736f6d 00000200")
                                        + b"isomiso2" + b"\x00\xff" * 256)
    (folder / "clips.json").write_text(json.dumps({
        "coloured": ["coloured.mp4", t, None, None],
        "broken": ["broken.mp4", 0.25, None, None],
        "windowed": ["coloured.mp4", WINDOW[0] + 0.1, *WINDOW],
    }))
    (folder / "player.py").write_text(PLAYER_SCRIPT)
    port = shared._free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(shared.REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "player.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url)
    yield url, k, t
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# the red channel of the frame on screen, drawn onto a canvas (same origin: readable)
RED_ON_SCREEN = """v => {
  const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0);
  const px = g.getImageData(v.videoWidth >> 1, v.videoHeight >> 1, 1, 1).data;
  return px[0];
}"""


def test_the_frame_on_screen_is_the_sampled_frame_and_a_broken_file_says_so(player_app,
                                                                              browser):
    url, k, t = player_app
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url))
    page = context.new_page()
    page.goto(url)
    _wait_idle(page)
    video = page.locator(".st-key-coloured video").first
    video.wait_for(state="attached", timeout=60_000)
    page.wait_for_function(
        "([v, t]) => Math.abs(v.currentTime - t) < 0.02 && !v.seeking && v.readyState >= 2",
        arg=[video.element_handle(), t], timeout=60_000)
    assert abs(video.evaluate("v => v.currentTime") - t) < TOLERANCE_S
    red = video.evaluate(RED_ON_SCREEN)
    assert round(red / STEP) == k, f"frame {red / STEP:.1f} on screen at {t} s, expected {k}"
    note = page.locator(".st-key-broken [role=alert]").first
    note.wait_for(state="visible", timeout=60_000)
    assert "This browser cannot play broken.mp4" in note.inner_text()
    context.close()
    assert not outside_requests(urls, url), outside_requests(urls, url)


def test_a_windowed_clip_loops_inside_its_window(player_app, browser):
    url, _, _ = player_app
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(url)
    _wait_idle(page)
    video = page.locator(".st-key-windowed video").first
    video.wait_for(state="attached", timeout=60_000)
    page.wait_for_function("v => v.readyState >= 2 && !v.seeking", arg=video.element_handle(),
                           timeout=60_000)
    # play 1.5 s (more than three times the window) and record the times seen on each frame
    seen = video.evaluate("""v => new Promise(done => {
      const times = [];
      const look = () => { times.push(v.currentTime);
        if (times.length < 2 || performance.now() - t0 < 1500) requestAnimationFrame(look);
        else { v.pause(); done(times); } };
      const t0 = performance.now();
      v.play().then(() => requestAnimationFrame(look));
    })""")
    page.close()
    assert len(seen) > 10, seen
    start, end = WINDOW
    frame = 1 / FPS
    assert min(seen) >= start - 0.01, seen  # never before the window
    assert max(seen) <= end + frame, seen  # back to the start within a frame of its end
    assert max(seen) - min(seen) > (end - start) / 2, seen  # it did play
