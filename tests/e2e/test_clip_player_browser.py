"""The frame-exact clip player in a real browser (Debian chromium driven by Playwright; the
server, browser and roots fixtures of :mod:`e2e.test_browser`, so the same tiny run pair or,
with ``DRGI_LAB_E2E_REPO_ROOTS=1``, the demo).

On Compare, Failures and Hard negatives: open a failing query, pick a frame column whose time
is not a whole second in the ground truth's "play from frame" control, and check that the
player's ``<video>`` stands at that time (``st.video`` would start at the whole second below
it), paused there with the frame decoded, that the file came from the app's own ``/media``
endpoint, and that no request left the app's host.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import numpy as np
import pytest

from . import test_browser as shared
from .browser_env import outside_requests

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
