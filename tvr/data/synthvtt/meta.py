"""SynthVTT's files and the typed content of its ground-truth file ``synthvtt_meta.json``.

The dataclasses here are the one definition of the meta format: the generator builds them and
writes :meth:`SynthVTTMeta.to_json`, and :mod:`.reader` parses the file back into them. Each
class checks its own fields on construction and raises :class:`MetaFieldError` naming the
field (relative to the object) and what was expected; the reader prefixes the file and the
path of the object. :class:`SynthVTTMeta` also checks what ties videos and captions together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tvr.data.synthvtt.vocabulary import (
    ACTIONS,
    BACKGROUNDS,
    COLOURS,
    EDIT_TYPES,
    FAMILY_SIZE,
    FAMILY_SIZE_MAX,
    SHAPES,
    SPLITS,
    EventType,
)

__all__ = [
    "ANNOTATION_FILES",
    "DATA_FILE",
    "GENERATOR_VERSION",
    "META_FILE",
    "README_FILE",
    "TEST_CSV",
    "TRAIN_CSV",
    "VAL_CSV",
    "VIDEO_DIR",
    "Edit",
    "GenerationParams",
    "MetaCaption",
    "MetaEvent",
    "MetaFieldError",
    "MetaVideo",
    "SplitMeta",
    "SynthVTTMeta",
]

GENERATOR_VERSION = "1.0"

META_FILE = "synthvtt_meta.json"
DATA_FILE = "MSRVTT_data.json"
TRAIN_CSV = "MSRVTT_train.9k.csv"
TEST_CSV = "MSRVTT_JSFUSION_test.csv"
VAL_CSV = "val.csv"
README_FILE = "README.md"
VIDEO_DIR = "videos"
ANNOTATION_FILES: tuple[str, ...] = (
    DATA_FILE,
    TRAIN_CSV,
    TEST_CSV,
    VAL_CSV,
    META_FILE,
    README_FILE,
)

# Generation parameters: (lowest, highest) accepted value of each integer parameter.
TEST_CAPTIONS_MAX = 100  # captions per test video (MSR-VTT full has 20)
PARAM_RANGES: dict[str, tuple[int, int]] = {
    "seed": (0, 2**63 - 1),
    "n_train": (1, 10**6),
    "n_val": (1, 10**6),
    "n_test": (1, 10**6),
    "size": (16, 1024),
    "fps": (1, 120),
}


class MetaFieldError(ValueError):
    """A field of the meta format holds a bad value.

    Attributes:
        field: dotted path of the field (``"events[1].colour"``), relative to the object that
            raised; ``""`` for the object itself.
        problem: what was expected and what was found.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)

    def within(self, prefix: str) -> MetaFieldError:
        """The same error with ``prefix`` (the path of the containing object) in front."""
        if not self.field:
            return MetaFieldError(prefix, self.problem)
        sep = "" if self.field.startswith("[") else "."
        return MetaFieldError(f"{prefix}{sep}{self.field}" if prefix else self.field, self.problem)


def is_int(v: Any) -> bool:
    """Whether ``v`` is an integer and not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """Whether ``v`` is an int or float and not a bool."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _need(cond: bool, name: str, problem: str) -> None:
    if not cond:
        raise MetaFieldError(name, problem)


def family_bounds(value: Any) -> tuple[int, int]:
    """``family_size`` as ``(lo, hi)``, checked: ``2 <= lo <= hi <= FAMILY_SIZE_MAX``.

    Raises:
        ValueError: naming ``family_size`` and the valid range.
    """
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(is_int(v) for v in value)
        and 2 <= value[0] <= value[1] <= FAMILY_SIZE_MAX
    )
    if not ok:
        raise ValueError(
            f"SynthVTT family_size: expected two integers lo <= hi in [2, {FAMILY_SIZE_MAX}], "
            f"got {value!r}"
        )
    return int(value[0]), int(value[1])


# ============================================================================ parameters


@dataclass(frozen=True)
class GenerationParams:
    """The arguments a dataset was generated with (``params`` of the meta file).

    Attributes:
        seed: random seed.
        n_train, n_val, n_test: videos per split.
        size: frame side in pixels (even).
        fps: frames per second of the mp4 files.
        background_captions: whether captions may name the background.
        family_size: ``(lo, hi)`` videos per family when it differs from the default
            ``FAMILY_SIZE`` (recorded only then, so default datasets stay byte-identical);
            None for the default.
        test_captions: captions per test video when more than one (MSR-VTT full: 20;
            recorded only then); None for one.

    Raises:
        MetaFieldError: a value outside :data:`PARAM_RANGES`, an odd ``size``, a non-boolean
            ``background_captions``, a bad ``family_size`` or ``test_captions`` (the field
            names it).
    """

    seed: int
    n_train: int
    n_val: int
    n_test: int
    size: int
    fps: int
    background_captions: bool
    family_size: tuple[int, int] | None = None
    test_captions: int | None = None

    def __post_init__(self) -> None:
        for name, (lo, hi) in PARAM_RANGES.items():
            value = getattr(self, name)
            _need(
                is_int(value) and lo <= value <= hi,
                name,
                f"expected an integer in [{lo}, {hi}], got {value!r}",
            )
        _need(
            self.size % 2 == 0,
            "size",
            f"expected an even number of pixels (yuv420p), got {self.size}",
        )
        _need(
            isinstance(self.background_captions, bool),
            "background_captions",
            f"expected a boolean, got {self.background_captions!r}",
        )
        if self.family_size is not None:
            try:
                bounds = family_bounds(self.family_size)
            except ValueError as e:
                raise MetaFieldError("family_size", str(e)) from None
            object.__setattr__(self, "family_size", bounds)
        if self.test_captions is not None:
            _need(
                is_int(self.test_captions) and 2 <= self.test_captions <= TEST_CAPTIONS_MAX,
                "test_captions",
                f"expected an integer in [2, {TEST_CAPTIONS_MAX}] (None for one caption), "
                f"got {self.test_captions!r}",
            )

    @property
    def captions_per_test_video(self) -> int:
        """Captions of each test video (1 unless ``test_captions`` was recorded)."""
        return self.test_captions or 1

    @property
    def families(self) -> tuple[int, int]:
        """``(lo, hi)`` videos per family (the default when none was recorded)."""
        return self.family_size or FAMILY_SIZE

    def videos_in(self, split: str) -> int:
        """Number of videos of ``split`` (``n_train``, ``n_val`` or ``n_test``)."""
        return int(getattr(self, f"n_{split}"))

    def to_json(self) -> dict[str, Any]:
        """The ``params`` object of the meta file."""
        out: dict[str, Any] = {
            "seed": self.seed,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "size": self.size,
            "fps": self.fps,
            "background_captions": self.background_captions,
        }
        if self.family_size is not None:
            out["family_size"] = list(self.family_size)
        if self.test_captions is not None:
            out["test_captions"] = self.test_captions
        return out


# ============================================================================ videos


@dataclass(frozen=True)
class Edit:
    """How a family member differs from the family base (see the package docstring).

    Attributes:
        type: one of ``EDIT_TYPES`` (``"none"`` for the family base).
        events: the edited event indices (non-negative).
    """

    type: str = "none"
    events: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _need(self.type in EDIT_TYPES, "type", f"expected one of {EDIT_TYPES}, got {self.type!r}")
        _need(
            all(is_int(i) and i >= 0 for i in self.events),
            "events",
            f"expected non-negative event indices, got {list(self.events)!r}",
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "events": list(self.events)}


@dataclass(frozen=True)
class MetaEvent:
    """One event of a video: a coloured shape doing one action over a block of frames.

    Geometry is in frame units: ``x``, ``y`` the shape's centre as fractions of the frame side
    (x right, y down), ``r`` its half-extent, at the event's first frame; ``dx``, ``dy``,
    ``dr`` the per-frame increments.

    Attributes:
        colour, shape, action: from the vocabulary.
        start_frame: first frame (inclusive); end_frame: end (exclusive), ``start < end``.
        x, y, r, dx, dy, dr: geometry (numbers as written in the file).
    """

    colour: str
    shape: str
    action: str
    start_frame: int
    end_frame: int
    x: float
    y: float
    r: float
    dx: float
    dy: float
    dr: float

    def __post_init__(self) -> None:
        for name, allowed in (("colour", tuple(COLOURS)), ("shape", SHAPES), ("action", ACTIONS)):
            value = getattr(self, name)
            _need(value in allowed, name, f"expected one of {allowed}, got {value!r}")
        for name in ("x", "y", "r", "dx", "dy", "dr"):
            value = getattr(self, name)
            _need(is_num(value), name, f"expected a number, got {value!r}")
        s, e = self.start_frame, self.end_frame
        _need(
            is_int(s) and is_int(e) and 0 <= s < e,
            "start_frame",
            f"expected integers 0 <= start_frame < end_frame (end exclusive), got {s!r}, {e!r}",
        )

    @property
    def type(self) -> EventType:
        """``(colour, shape, action)``."""
        return (self.colour, self.shape, self.action)

    @property
    def label(self) -> str:
        """``"red circle moves left"``."""
        return f"{self.colour} {self.shape} {self.action}"

    def to_json(self) -> dict[str, Any]:
        return {
            "colour": self.colour,
            "shape": self.shape,
            "action": self.action,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "x": self.x,
            "y": self.y,
            "r": self.r,
            "dx": self.dx,
            "dy": self.dy,
            "dr": self.dr,
        }


@dataclass(frozen=True)
class MetaVideo:
    """One video: its split, family, edit, background and events in temporal order.

    Attributes:
        video_id: ``"video<N>"`` (the key of the meta file's ``videos`` object).
        split: one of ``SPLITS``.
        family: family number (videos one edit apart share it).
        edit: how the video differs from its family base.
        background: one of ``BACKGROUNDS``.
        n_frames: number of frames.
        events: non-empty, non-overlapping, in frame order, within ``n_frames``.
    """

    video_id: str
    split: str
    family: int
    edit: Edit
    background: str
    n_frames: int
    events: tuple[MetaEvent, ...]

    def __post_init__(self) -> None:
        _need(self.split in SPLITS, "split", f"expected one of {SPLITS}, got {self.split!r}")
        _need(is_int(self.family), "family", f"expected an integer, got {self.family!r}")
        _need(
            isinstance(self.background, str) and self.background in BACKGROUNDS,
            "background",
            f"expected one of {tuple(BACKGROUNDS)}, got {self.background!r}",
        )
        n = self.n_frames
        _need(is_int(n) and n > 0, "n_frames", f"expected a positive integer, got {n!r}")
        _need(len(self.events) > 0, "events", "expected a non-empty list")
        prev_end = 0
        for i, ev in enumerate(self.events):
            s, e = ev.start_frame, ev.end_frame
            _need(
                prev_end <= s < e <= n,
                f"events[{i}].start_frame",
                f"expected {prev_end} <= start_frame < end_frame <= n_frames={n} "
                f"(end exclusive), got {s!r}, {e!r}",
            )
            prev_end = e

    @cached_property  # frozen: the events never change (the failure types read it per query)
    def event_types(self) -> tuple[EventType, ...]:
        """``(colour, shape, action)`` of each event, in order."""
        return tuple(ev.type for ev in self.events)

    def to_json(self) -> dict[str, Any]:
        """The video's entry of the meta file (without its id, which is the key)."""
        return {
            "split": self.split,
            "family": self.family,
            "edit": self.edit.to_json(),
            "background": self.background,
            "n_frames": self.n_frames,
            "events": [ev.to_json() for ev in self.events],
        }


# ============================================================================ captions


@dataclass(frozen=True)
class MetaCaption:
    """The ground truth of one caption.

    Attributes:
        sen_id: the caption's id (as in ``MSRVTT_data.json``; the key of the meta file's
            ``captions`` object).
        video_id: the video it was written for.
        split: that video's split.
        events: the indices of the video's events it mentions, increasing, non-empty.
        background: whether it names the video's background.
        relevant: every video of its split it matches (its own video included).
    """

    sen_id: int
    video_id: str
    split: str
    events: tuple[int, ...]
    background: bool
    relevant: tuple[str, ...]

    def __post_init__(self) -> None:
        _need(
            is_int(self.sen_id) and self.sen_id >= 0,
            "sen_id",
            f"expected a non-negative integer, got {self.sen_id!r}",
        )
        _need(
            isinstance(self.video_id, str),
            "video_id",
            f"expected a video id, got {self.video_id!r}",
        )
        _need(self.split in SPLITS, "split", f"expected one of {SPLITS}, got {self.split!r}")
        ev = self.events
        _need(
            len(ev) > 0 and all(is_int(i) for i in ev),
            "events",
            f"expected a non-empty list of event indices, got {list(ev)!r}",
        )
        _need(
            all(0 <= a < b for a, b in zip(ev, ev[1:])) and ev[0] >= 0,
            "events",
            f"expected increasing indices >= 0, got {list(ev)!r}",
        )
        _need(isinstance(self.background, bool), "background", "expected a boolean")
        _need(
            all(isinstance(r, str) for r in self.relevant) and self.video_id in self.relevant,
            "relevant",
            f"expected a list of video ids containing {self.video_id!r}",
        )

    def to_json(self) -> dict[str, Any]:
        """The caption's entry of the meta file (without its sen_id, which is the key)."""
        return {
            "video_id": self.video_id,
            "split": self.split,
            "events": list(self.events),
            "background": self.background,
            "relevant": list(self.relevant),
        }


# ============================================================================ the whole file


@dataclass(frozen=True)
class SynthVTTMeta:
    """The content of ``synthvtt_meta.json``.

    Attributes:
        version: generator version.
        params: generation parameters.
        videos: by video id, in file order.
        captions: by ``sen_id``, in file order.
        codec, conventions, vocabulary: descriptive objects the generator writes (codec
            settings, the conventions in words, the vocabulary with RGB values); None when
            absent.

    Raises:
        MetaFieldError: a video under another id than its own, per-split video counts that
            differ from ``params``, or a caption whose video, split, event indices or
            relevant videos do not fit the videos.
    """

    version: str
    params: GenerationParams
    videos: Mapping[str, MetaVideo]
    captions: Mapping[int, MetaCaption]
    codec: Mapping[str, Any] | None = None
    conventions: Mapping[str, Any] | None = None
    vocabulary: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        videos = self.videos
        for vid, v in videos.items():
            _need(v.video_id == vid, f"videos.{vid}", f"holds the entry of video {v.video_id!r}")
        for s in SPLITS:
            count = sum(1 for v in videos.values() if v.split == s)
            n = self.params.videos_in(s)
            _need(count == n, "videos", f"params.n_{s} is {n} but {count} videos have split {s!r}")
        for sid, c in self.captions.items():
            where = f"captions.{sid}"
            _need(c.sen_id == sid, where, f"holds the entry of caption {c.sen_id!r}")
            _need(c.video_id in videos, f"{where}.video_id", f"unknown video {c.video_id!r}")
            v = videos[c.video_id]
            _need(
                c.split == v.split,
                f"{where}.split",
                f"expected {v.split!r} (the video's split), got {c.split!r}",
            )
            _need(
                c.events[-1] < len(v.events),
                f"{where}.events",
                f"expected increasing indices in [0, {len(v.events)}), got {list(c.events)!r}",
            )
            for r in c.relevant:
                _need(
                    r in videos and videos[r].split == c.split,
                    f"{where}.relevant",
                    f"{r!r} is not a video of split {c.split!r}",
                )

    def mentioned(self, caption: MetaCaption) -> list[MetaEvent]:
        """The events of its video that ``caption`` mentions, in order."""
        video = self.videos[caption.video_id]
        return [video.events[i] for i in caption.events]

    def to_json(self) -> dict[str, Any]:
        """The meta file's object, keys in the generator's order."""
        out: dict[str, Any] = {
            "generator": "synthvtt",
            "version": self.version,
            "params": self.params.to_json(),
        }
        for key in ("codec", "conventions", "vocabulary"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _plain(value)
        out["videos"] = {vid: v.to_json() for vid, v in self.videos.items()}
        out["captions"] = {str(sid): c.to_json() for sid, c in self.captions.items()}
        return out


def _plain(value: Any) -> Any:
    """A JSON-ready copy (mappings to dicts, sequences other than strings to lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


# ============================================================================ a split's rows


@dataclass(frozen=True)
class SplitMeta:
    """SynthVTT ground truth aligned with the rows of one split (e.g. an analysis bundle's).

    Attributes:
        params: generation parameters (``params.fps`` converts frames to seconds).
        vocabulary: the vocabulary object of the meta file (empty when absent).
        videos: ``[Nv]`` the meta entry of each video column.
        captions: ``[Nt]`` the meta entry of each caption row, None for a caption the meta
            file does not hold.
    """

    params: GenerationParams
    vocabulary: Mapping[str, Any]
    videos: list[MetaVideo]
    captions: list[MetaCaption | None]
