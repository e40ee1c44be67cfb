"""A clip player that seeks to a frame's exact time: a ``<video>`` element in a Streamlit
components-v2 component (inline HTML/JS, no asset files).

``st.video`` seeks in whole seconds (it truncates ``start_time``), so a heatmap column such as
``f3 @ 2.62s`` would start the clip at 2 s. :func:`frame_player` sets the element's
``currentTime`` to the float time instead and leaves the clip paused on that frame (press play
to play on from there, looping in the clip's window).

The file is served by the app itself, through the same runtime media storage ``st.video`` uses
(:func:`media_url`): the browser fetches it from the app's own ``/media`` endpoint, no outside
request. The caller checks the path against the app's roots first; this module reads the file
it is given and nothing else. :func:`video_mimetype` recognises the containers a browser plays
(MP4/QuickTime, WebM) from the file's first bytes and names what it found otherwise; a file the
browser still cannot decode (an unsupported codec) says so in the player itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit import runtime

__all__ = [
    "ClipPlayerError",
    "PlayerData",
    "frame_player",
    "media_url",
    "player_data",
    "seek_time",
    "video_mimetype",
]

COMPONENT_NAME = "drgi_lab_clip_player"
PLAYABLE = "MP4/QuickTime (ISO BMFF) or WebM"
SNIFF_BYTES = 64
# EBML header magic, and the doctype that says a Matroska file is WebM
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


class ClipPlayerError(ValueError):
    """A clip the player cannot show: a bad time, or a file that is not a playable video."""


@dataclass(frozen=True)
class PlayerData:
    """What the browser side of the player receives (JSON).

    Attributes:
        url: the app-relative URL of the clip (``/media/<id>.mp4``, under the server's base
            path when one is set).
        time: the seek target in seconds, exactly as given (a frame's timestamp).
        start: the clip's window start in seconds (0 for the whole file); looping goes back
            here.
        end: the window end in seconds, None for the file's end.
        name: the file's name, for the player's own error message.
        label: the player's accessible name.
        width: the player's width in px.
    """

    url: str
    time: float
    start: float
    end: float | None
    name: str
    label: str
    width: int


def seek_time(time: float, start: float | None = None, end: float | None = None) -> float:
    """``time`` as a float, checked against the window ``[start, end]`` (None: the file's
    start / end).

    Raises:
        ClipPlayerError: ``time`` is not a finite number, negative, or outside the window.
    """
    try:
        t = float(time)
    except (TypeError, ValueError):
        raise ClipPlayerError(f"seek time {time!r} is not a number of seconds") from None
    if not math.isfinite(t) or t < 0:
        raise ClipPlayerError(f"seek time {time!r} s: expected a finite time >= 0 s")
    lo = 0.0 if start is None else float(start)
    if not math.isfinite(lo) or lo < 0:
        raise ClipPlayerError(f"window start {start!r} s: expected a finite time >= 0 s")
    if end is not None and not (math.isfinite(float(end)) and float(end) > lo):
        raise ClipPlayerError(f"window end {end!r} s: expected a finite time after the "
                              f"start ({lo} s)")
    if t < lo or (end is not None and t > float(end)):
        hi = "the file's end" if end is None else f"{float(end)} s"
        raise ClipPlayerError(f"seek time {t} s is outside the clip's window [{lo} s, {hi}]")
    return t


def video_mimetype(path: Path) -> str:
    """The MIME type the browser gets for video file ``path``, from its first bytes:
    ``video/mp4`` for an ISO BMFF file (MP4, M4V, QuickTime: an ``ftyp`` box first),
    ``video/webm`` for a WebM file (EBML header with doctype ``webm``).

    Raises:
        ClipPlayerError: the file cannot be read, is empty, or is another kind of file.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise ClipPlayerError(f"cannot read video file {path}: {exc}") from exc
    if not head:
        raise ClipPlayerError(f"video file {path} is empty; expected {PLAYABLE}")
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(EBML_MAGIC) and b"webm" in head:
        return "video/webm"
    kind = "a Matroska file (not WebM)" if head.startswith(EBML_MAGIC) else (
        f"first bytes {head[:8].hex(' ')}")
    raise ClipPlayerError(f"video file {path} is not a video the browser plays: {kind}; "
                          f"expected {PLAYABLE}")


def media_url(path: Path, mimetype: str, coordinates: str) -> str:
    """Put ``path`` in the runtime's media storage (as ``st.video`` does) and return the URL
    the browser fetches it from, under the server's base path.

    ``coordinates`` names the player's place for this session (one string per player): the
    storage keeps the file while a run of this session still shows that player and drops it
    after. Outside a running app (a bare script) there is no storage: returns ``""``.
    """
    if not runtime.exists():
        return ""
    url = runtime.get_instance().media_file_mgr.add(str(path), mimetype, coordinates)
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{url}" if base and url.startswith("/") else url


def player_data(path: Path, time: float, *, start: float | None = None,
                end: float | None = None, label: str = "", width: int = 320,
                coordinates: str) -> PlayerData:
    """Check ``time`` and the file, store the file for serving, and return what the browser
    side gets (see :class:`PlayerData`).

    Raises:
        ClipPlayerError: a bad time or window (:func:`seek_time`), or a file that is not a
            playable video (:func:`video_mimetype`).
    """
    t = seek_time(time, start, end)
    mimetype = video_mimetype(path)
    return PlayerData(url=media_url(path, mimetype, coordinates), time=t,
                      start=0.0 if start is None else float(start),
                      end=None if end is None else float(end), name=path.name,
                      label=label or path.name, width=int(width))


_HTML = """<div class="clip"><video controls muted playsinline preload="auto"></video>
<div class="clip-error" role="alert" hidden></div></div>"""

_CSS = """
.clip video { display: block; max-width: 100%; background: #000; }
.clip-error { color: var(--st-red-color, #d62728); font-size: 0.875rem; padding: 0.25rem 0; }
"""

# The element is created once (the HTML above); each render only changes what changed: a new
# URL reloads the file, a new seek time (or URL) seeks and pauses there, so an unrelated rerun
# does not stop a clip that is playing.
_JS = """
const MEDIA_ERRORS = {1: "loading was aborted", 2: "a network error",
  3: "the file could not be decoded", 4: "the format or codec is not supported"};

export default function (component) {
  const { data, parentElement } = component;
  const video = parentElement.querySelector("video");
  const note = parentElement.querySelector(".clip-error");
  if (!video || !data) return;
  video.style.width = data.width + "px";
  video.setAttribute("aria-label", data.label);
  video.dataset.seekTime = String(data.time);
  const changed = video.dataset.url !== data.url || video.dataset.appliedTime !== String(data.time);
  const seek = () => {
    video.pause();
    video.currentTime = data.time;
    video.dataset.appliedTime = String(data.time);
  };
  // looping inside the window [start, end]: checked on every animation frame while playing
  // ("timeupdate" alone fires only every ~250 ms, well past a short window's end)
  let frame = 0;
  const onTime = () => {
    if (data.end !== null && !video.paused && video.currentTime >= data.end) {
      video.currentTime = data.start;
    }
  };
  const watch = () => {
    onTime();
    frame = video.paused ? 0 : requestAnimationFrame(watch);
  };
  const onPlay = () => { if (!frame && data.end !== null) frame = requestAnimationFrame(watch); };
  const onEnded = () => { video.currentTime = data.start; video.play(); };
  const onError = () => {
    const err = video.error;
    const why = err ? (MEDIA_ERRORS[err.code] || "error " + err.code) : "unknown error";
    note.textContent = "This browser cannot play " + data.name + ": " + why +
      (err && err.message ? " (" + err.message + ")" : "") + ". The frame strip shows its frames.";
    note.hidden = false;
  };
  video.addEventListener("timeupdate", onTime);
  video.addEventListener("play", onPlay);
  video.addEventListener("ended", onEnded);
  video.addEventListener("error", onError);
  if (!video.paused) onPlay();  // a rerun while playing: keep watching the window's end
  if (video.dataset.url !== data.url) {
    note.hidden = true;
    video.dataset.url = data.url;
    video.src = data.url;
  }
  if (changed) {
    if (video.readyState >= 1) seek();
    else video.addEventListener("loadedmetadata", seek, { once: true });
  }
  return () => {
    video.removeEventListener("timeupdate", onTime);
    video.removeEventListener("play", onPlay);
    if (frame) cancelAnimationFrame(frame);
    video.removeEventListener("ended", onEnded);
    video.removeEventListener("error", onError);
    video.removeEventListener("loadedmetadata", seek);
  };
}
"""

_COMPONENT = st.components.v2.component(COMPONENT_NAME, html=_HTML, css=_CSS, js=_JS)


def frame_player(path: Path, time: float, *, start: float | None = None,
                 end: float | None = None, label: str = "", width: int = 320,
                 key: str, container: Any = None) -> PlayerData:
    """Draw the player for video file ``path`` (already checked against the app's roots),
    paused at ``time`` seconds (exactly: a frame's timestamp, not rounded), looping in the
    window ``[start, end]`` when played. ``key`` identifies the player (its widget key and its
    place in the media storage). Returns what the browser got.

    Raises:
        ClipPlayerError: see :func:`player_data`; nothing is drawn then.
    """
    data = player_data(path, time, start=start, end=end, label=label, width=width,
                       coordinates=f"{COMPONENT_NAME}[{key}]")
    where = container if container is not None else st
    with where.container():
        _COMPONENT(key=key, data=asdict(data), width="content", height="content")
    return data
