"""Video decoding and uniform frame sampling with PyAV.

Modules, one role each: :mod:`.container` (open a file, :func:`probe_video`,
:class:`VideoDecodeError`), :mod:`.picker` (pick frames by presentation time from an open
stream), :mod:`.decode` (:func:`read_frames`: window, mode and threads), :mod:`.pixels` (CLIP's
pixel pipeline), :mod:`.frame_cache` (the on-disk cache of sampled frames) and :mod:`.sampler`
(:class:`FrameSampler`, the model-ready tensors). This package re-exports their public names.

A clip (the whole file, or the window ``[start, end]`` seconds) is split into ``T`` equal
segments and the frame *on screen* at the centre of each segment is taken: the last frame whose
presentation time is at or before the centre (the first frame of the stream when the centre lies
before it). Frames are chosen by presentation timestamp, never by index, so variable-frame-rate
files are sampled correctly. Times are in seconds from the video stream's first timestamp.

Two decoders give identical frames:

* ``"seek"``: per target, ``container.seek(pts, stream=s, backward=True)`` to the keyframe at
  or before it, then decode forward to the target. Fast on indexed containers (mp4/mov).
* ``"decode"``: decode the stream once from the start. Works on anything, including webm/mkv
  whose stream carries no frame count or duration, and it notices files that end early.

``"auto"`` seeks on indexed mp4/mov files whose window holds many more frames than ``T`` and
decodes otherwise.

One more mode trades exact times for speed, and is only used when asked for:

* ``"keyframe"`` (keyframe-snapped): the clip is still split into ``T`` segments, but in each
  segment the *keyframe* nearest its centre is taken (seek to it, keep the first decoded
  frame), so a frame costs one seek and one intra-frame decode. A segment that holds no
  keyframe is sampled exactly as ``"seek"`` would. Every frame still comes from its own
  segment (so frames are distinct and in order), but its time is the keyframe's, up to half a
  segment away from the centre; :class:`DecodedFrames` records the actual timestamps. It
  needs the container's keyframe index (mp4/mov); without one, or when no segment holds a
  keyframe, it samples exactly by seeking and reports ``method="seek"``.

Threads: ``thread_type`` (``"AUTO"``, ``"FRAME"``, ``"SLICE"``, ``"NONE"``; PyAV's
``stream.thread_type``) chooses FFmpeg's decoder threading. ``None`` keeps each mode's own
choice: ``"AUTO"`` (frame and slice threads) for ``"decode"``, the codec's default for the
seeking modes, where frame threads decode ahead of a target only to be flushed by the next
seek. Threading never changes which frames are returned.

Frames then go through CLIP's pixel pipeline (resize the short side with bicubic, centre-crop,
scale to [0, 1], normalise with the CLIP mean/std), in PIL/numpy/torch only.

Short clips: when fewer than ``T`` *distinct* frames are picked (a clip with fewer frames than
``T``, or a variable-frame-rate window where two centres fall on one frame), each distinct frame
appears once, in time order, and the remaining slots are **zero padding** (zeros after
normalisation) with ``mask = 0`` and timestamp ``NaN``. A clip always has at least one real frame
or :class:`VideoDecodeError` is raised; the library never returns a silent all-zero video.

Corrupt files: besides FFmpeg errors, a stream that stops well before the end its container
claims, and a hole in the timestamps (consecutive decoded frames more than
``max(0.5 s, 3 frame intervals)`` apart, which is what a VP9 webm corrupted mid-stream decodes
to, silently), raise :class:`VideoDecodeError`, so the dataset's ``on_decode_error`` policy
applies to them like to any other undecodable file.
"""

from __future__ import annotations

from tvr.data.video.container import VideoDecodeError, VideoInfo, probe_video
from tvr.data.video.decode import (
    AUTO_SEEK_MIN_FRAMES_PER_SAMPLE,
    METHODS,
    THREAD_TYPES,
    DecodedFrames,
    Method,
    ThreadType,
    read_frames,
)
from tvr.data.video.picker import segment_centres
from tvr.data.video.pixels import CLIP_MEAN, CLIP_STD, normalize_frames, resize_center_crop
from tvr.data.video.sampler import FrameSampler, SampledClip, sampling_options

__all__ = [
    "AUTO_SEEK_MIN_FRAMES_PER_SAMPLE",
    "CLIP_MEAN",
    "CLIP_STD",
    "METHODS",
    "THREAD_TYPES",
    "DecodedFrames",
    "FrameSampler",
    "Method",
    "SampledClip",
    "ThreadType",
    "VideoDecodeError",
    "VideoInfo",
    "normalize_frames",
    "probe_video",
    "read_frames",
    "resize_center_crop",
    "sampling_options",
    "segment_centres",
]
