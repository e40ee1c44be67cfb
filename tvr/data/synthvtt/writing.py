"""Planning the whole dataset and writing it atomically in the MSR-VTT layout."""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tvr.data.records import SourceError
from tvr.data.synthvtt.captions import PlannedCaption, make_captions
from tvr.data.synthvtt.meta import (
    ANNOTATION_FILES,
    DATA_FILE,
    GENERATOR_VERSION,
    META_FILE,
    README_FILE,
    TEST_CSV,
    TRAIN_CSV,
    VAL_CSV,
    VIDEO_DIR,
    GenerationParams,
    MetaFieldError,
    MetaVideo,
    SynthVTTMeta,
    family_bounds,
    is_int,
)
from tvr.data.synthvtt.planning import plan_split
from tvr.data.synthvtt.reader import parse_params
from tvr.data.synthvtt.rendering import (
    CODEC,
    CRF,
    PRESET,
    X264_PARAMS,
    render_video,
    write_mp4,
)
from tvr.data.synthvtt.vocabulary import (
    ACTIONS,
    BACKGROUNDS,
    COLOURS,
    FAMILY_SIZE,
    MSRVTT_SPLIT,
    SHAPES,
    SPLITS,
)

__all__ = ["GenerationSummary", "generate", "plan"]

logger = logging.getLogger("tvr.data.synthvtt")


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` produced (or found already in place).

    Attributes:
        out: the dataset folder.
        params: the generation parameters (as in ``synthvtt_meta.json``).
        videos: number of videos per split.
        captions: number of captions per split.
        frames: total number of frames over all videos.
        seconds: wall-clock time of the call.
        skipped: True when a complete dataset with the same parameters was already there.
    """

    out: Path
    params: dict[str, Any]
    videos: dict[str, int]
    captions: dict[str, int]
    frames: int
    seconds: float
    skipped: bool


def _params(
    seed: int,
    n_train: int,
    n_val: int,
    n_test: int,
    size: int,
    fps: int,
    background_captions: bool,
    family_size: Sequence[int] = FAMILY_SIZE,
    test_captions: int = 1,
) -> GenerationParams:
    fam = family_bounds(family_size)
    try:
        return GenerationParams(
            seed,
            n_train,
            n_val,
            n_test,
            size,
            fps,
            background_captions,
            # recorded only when it differs: default datasets stay byte-identical
            family_size=fam if fam != FAMILY_SIZE else None,
            test_captions=None if test_captions == 1 else test_captions,
        )
    except MetaFieldError as e:
        raise ValueError(f"SynthVTT {e}") from None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _annotation_texts(meta: SynthVTTMeta, captions: Sequence[PlannedCaption]) -> dict[str, str]:
    params = meta.params
    videos = list(meta.videos.values())
    fps = params.fps
    data = {
        "info": {
            "contributor": "SynthVTT generator (tvr.data.synthvtt)",
            "description": "procedurally generated text-video retrieval benchmark in the MSR-VTT layout",
            "version": GENERATOR_VERSION,
            "seed": params.seed,
        },
        "videos": [
            {
                "id": int(v.video_id[len("video") :]),
                "video_id": v.video_id,
                "category": list(BACKGROUNDS).index(v.background),
                "url": f"synthvtt://seed{params.seed}/{v.video_id}",
                "start time": 0.0,
                "end time": round(v.n_frames / fps, 4),
                "split": MSRVTT_SPLIT[v.split],
            }
            for v in videos
        ],
        "sentences": [
            {"sen_id": c.caption.sen_id, "video_id": c.caption.video_id, "caption": c.text}
            for c in captions
        ],
    }
    train_csv = _csv_text(["video_id"], ([v.video_id] for v in videos if v.split == "train"))

    def retrieval_csv(split: str) -> str:
        rows = [c for c in captions if c.caption.split == split]
        return _csv_text(
            ["key", "vid_key", "video_id", "sentence"],
            (
                [
                    f"ret{i}",
                    "msr" + c.caption.video_id[len("video") :],
                    c.caption.video_id,
                    c.text,
                ]
                for i, c in enumerate(rows)
            ),
        )

    return {
        DATA_FILE: _dumps(data),
        TRAIN_CSV: train_csv,
        TEST_CSV: retrieval_csv("test"),
        VAL_CSV: retrieval_csv("val"),
        META_FILE: _dumps(meta.to_json()),
        README_FILE: _readme(meta),
    }


def _readme(meta: SynthVTTMeta) -> str:
    params = meta.params
    nv = {s: sum(v.split == s for v in meta.videos.values()) for s in SPLITS}
    nc = {s: sum(c.split == s for c in meta.captions.values()) for s in SPLITS}
    rows = "\n".join(f"| {s} | {nv[s]} | {nc[s]} |" for s in SPLITS)
    bg = " --background-captions" if params.background_captions else ""
    fam = params.families
    if params.family_size is not None:
        bg += f" --family-size {fam[0]} {fam[1]}"
    if params.test_captions is not None:
        bg += f" --test-captions {params.test_captions}"
    return f"""# SynthVTT

A procedurally generated text-video retrieval benchmark, written by `tvr.data.synthvtt`
(generator version {GENERATOR_VERSION}). Each video shows 2-4 events, one coloured shape doing one
action each, on a plain background; captions describe an ordered subset of the events. Videos
come in families of {fam[0]}-{fam[1]} (one edit apart), never split across splits;
each test and val caption matches exactly one video of its split.

Seed {params.seed}, {params.size}x{params.size} px, {params.fps} fps, H.264 yuv420p mp4.

| split | videos | captions |
|---|---|---|
{rows}

Regenerate (byte-identical annotations, identical frames):

    python -m tvr.data.synthvtt --out <dir> --seed {params.seed} --train {params.n_train} \\
        --val {params.n_val} --test {params.n_test} --size {params.size} --fps {params.fps}{bg}

Files (MSR-VTT layout):

- `videos/video{{N}}.mp4`
- `{DATA_FILE}`: `videos[]` (split train / validate / test) and `sentences[]`
- `{TRAIN_CSV}`: train video ids; `{TEST_CSV}` and `{VAL_CSV}`: one caption per video
  (`key,vid_key,video_id,sentence`)
- `{META_FILE}`: ground truth. Per video: split, family, edit relative to the family base,
  background, `n_frames`, events with `start_frame` (inclusive) / `end_frame` (exclusive) and
  geometry (centre `x`, `y` and half-extent `r` in fractions of the frame side at the event's
  first frame, plus per-frame increments `dx`, `dy`, `dr`). Per caption (keyed by `sen_id`):
  the indices of the events it mentions, whether it names the background, and `relevant`, every
  video of its split it matches. `tvr.data.synthvtt.load_meta`, `frame_states` and
  `render_video` read it.
"""


def _encode_job(job: tuple[dict[str, Any], int, int, str]) -> int:
    video, size, fps, path = job
    frames = render_video(video, size)
    write_mp4(path, frames, fps)
    return int(frames.shape[0])


def _complete_summary(out: Path, params: GenerationParams, t0: float) -> GenerationSummary | None:
    """The summary of the complete dataset with ``params`` in ``out``, None when there is none.

    Complete: the meta names this generator, its version and ``params``, and every annotation
    file and every video it lists is there. Only the meta's header is checked (its parameters
    parsed); its videos and captions are counted, not parsed: that parse is most of the time a
    present dataset costs (~1 s at 17,000 captions on 2 cores, before ``make app`` can serve),
    and whoever reads them (:func:`tvr.data.synthvtt.read_meta`) checks them and names a bad
    field.
    """
    path = out / META_FILE
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        if obj["generator"] != "synthvtt" or obj["version"] != GENERATOR_VERSION:
            return None
        if parse_params(obj["params"], path) != params:
            return None
        videos, captions = dict(obj["videos"]), dict(obj["captions"])
        splits = {s: sum(v["split"] == s for v in videos.values()) for s in SPLITS}
        caption_splits = {s: sum(c["split"] == s for c in captions.values()) for s in SPLITS}
        frames = sum(int(v["n_frames"]) for v in videos.values())
    except (OSError, ValueError, SourceError, KeyError, TypeError):  # JSONDecodeError: ValueError
        return None
    if not all((out / name).is_file() for name in ANNOTATION_FILES):
        return None
    if not all((out / VIDEO_DIR / f"{vid}.mp4").is_file() for vid in videos):
        return None
    return GenerationSummary(out=out, params=params.to_json(), videos=splits,
                             captions=caption_splits, frames=frames,
                             seconds=time.perf_counter() - t0, skipped=True)


def _replace_folder(out: Path, force: bool, tmp: Path | None = None) -> None:
    """Check that ``out`` may be replaced, then (given ``tmp``) replace it by ``tmp``.

    ``out`` may be replaced when it is absent, an empty folder, or (with ``force``) a SynthVTT
    dataset. An old dataset is renamed aside before ``tmp`` takes its name and deleted after,
    so ``out`` never holds a mix of the two.

    Raises:
        FileExistsError: ``out`` is a file, a folder that is not a SynthVTT dataset, or a
            SynthVTT dataset while ``force`` is False.
    """
    occupied = out.exists() and (not out.is_dir() or any(out.iterdir()))
    if occupied:
        if not out.is_dir():
            raise FileExistsError(
                f"{out}: exists and is not a folder; expected a SynthVTT dataset folder"
            )
        if not (out / META_FILE).is_file():
            raise FileExistsError(
                f"{out}: not empty and holds no {META_FILE}, so it is not a SynthVTT dataset; "
                "refusing to replace it (choose another --out)"
            )
        if not force:
            raise FileExistsError(
                f"{out}: holds a SynthVTT dataset with other parameters (or an incomplete one); "
                "pass force=True (--force) to replace it"
            )
    if tmp is None:
        return
    if occupied:
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "dataset")
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)


def _summary(out: Path, meta: SynthVTTMeta, seconds: float, skipped: bool) -> GenerationSummary:
    return GenerationSummary(
        out=out,
        params=meta.params.to_json(),
        videos={s: sum(v.split == s for v in meta.videos.values()) for s in SPLITS},
        captions={s: sum(c.split == s for c in meta.captions.values()) for s in SPLITS},
        frames=sum(v.n_frames for v in meta.videos.values()),
        seconds=seconds,
        skipped=skipped,
    )


def _plan(params: GenerationParams) -> tuple[SynthVTTMeta, dict[str, str]]:
    """The dataset's meta and every annotation text (``{file name: text}``)."""
    videos: list[MetaVideo] = []
    captions: list[PlannedCaption] = []
    for k, split in enumerate(SPLITS):
        first_family = videos[-1].family + 1 if videos else 0
        split_videos = plan_split(
            np.random.default_rng([params.seed, k]),
            split,
            params.videos_in(split),
            len(videos),
            first_family,
            params.families,
        )
        captions += make_captions(
            np.random.default_rng([params.seed, 100 + k]),
            split_videos,
            len(captions),
            params.background_captions,
            params.captions_per_test_video,
        )
        videos += split_videos
    meta = SynthVTTMeta(
        version=GENERATOR_VERSION,
        params=params,
        videos={v.video_id: v for v in videos},
        captions={c.caption.sen_id: c.caption for c in captions},
        codec={
            "name": CODEC,
            "pix_fmt": "yuv420p",
            "preset": PRESET,
            "crf": CRF,
            "x264_params": X264_PARAMS,
        },
        conventions={
            "frames": "start_frame inclusive, end_frame exclusive; frame f of an event is t = f - start_frame",
            "geometry": "x, y: shape centre as fractions of the frame side (x right, y down); r: half-extent; "
            "value at frame t is x + dx * t, y + dy * t, r + dr * t",
            "edit": "event indices: colour/shape/action/swap in both lists; drop: index in the base; "
            "add: index in this video",
            "match": "a caption matches a video when its events occur in the video in order "
            "(and the background, when the caption names it)",
        },
        vocabulary={
            "colours": {k: list(v) for k, v in COLOURS.items()},
            "shapes": list(SHAPES),
            "actions": list(ACTIONS),
            "backgrounds": {k: list(v) for k, v in BACKGROUNDS.items()},
        },
    )
    return meta, _annotation_texts(meta, captions)


def plan(
    *,
    seed: int = 0,
    n_train: int = 1500,
    n_val: int = 500,
    n_test: int = 500,
    size: int = 64,
    fps: int = 8,
    background_captions: bool = False,
    family_size: Sequence[int] = FAMILY_SIZE,
    test_captions: int = 1,
) -> dict[str, str]:
    """Draw the whole dataset except the video files; returns ``{file name: text}``.

    Pure and deterministic: the same arguments give byte-identical texts. The videos are
    rendered from the returned ``synthvtt_meta.json`` (see :func:`render_video`).
    """
    params = _params(seed, n_train, n_val, n_test, size, fps, background_captions, family_size,
                     test_captions)
    return _plan(params)[1]


def generate(
    out: str | Path,
    *,
    seed: int = 0,
    n_train: int = 1500,
    n_val: int = 500,
    n_test: int = 500,
    size: int = 64,
    fps: int = 8,
    background_captions: bool = False,
    family_size: Sequence[int] = FAMILY_SIZE,
    test_captions: int = 1,
    workers: int = 2,
    force: bool = False,
    progress: bool = True,
) -> GenerationSummary:
    """Generate a SynthVTT dataset into ``out`` (atomically).

    Everything is written into a temporary sibling folder that is renamed to ``out`` at the end,
    so an interrupted run never leaves a folder that looks complete. When ``out`` already holds a
    complete dataset with the same parameters and generator version, nothing is done.

    Args:
        out: dataset folder (created; its parent too).
        seed: random seed; the output is a deterministic function of all arguments but
            ``workers``, ``force`` and ``progress``.
        n_train, n_val, n_test: videos per split (at least 1 each).
        size: frame side in pixels (even, 16-1024).
        fps: frames per second of the mp4 files.
        background_captions: let captions name the background (half of them).
        family_size: ``(lo, hi)`` videos per family (one edit apart), default ``(3, 5)``;
            larger families put more one-edit siblings beside each true video (harder).
        test_captions: captions per test video (default 1, MSR-VTT 1k-A style; 20 gives the
            MSR-VTT full shape), each identifying its video uniquely within the split.
        workers: encoding processes (1 = in this process).
        force: replace an existing SynthVTT dataset with other parameters.
        progress: show a tqdm bar over videos.

    Raises:
        ValueError: for a bad parameter (names it and the valid range).
        FileExistsError: when ``out`` holds something else, or another SynthVTT dataset and
            ``force`` is False.
    """
    t0 = time.perf_counter()
    out = Path(out)
    params = _params(seed, n_train, n_val, n_test, size, fps, background_captions, family_size,
                     test_captions)
    if not is_int(workers) or workers < 1:
        raise ValueError(f"SynthVTT workers: expected a positive integer, got {workers!r}")
    present = _complete_summary(out, params, t0)
    if present is not None:
        logger.info(
            "%s already holds a complete SynthVTT dataset with these parameters; nothing to do", out
        )
        return present
    _replace_folder(out, force)

    meta, texts = _plan(params)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / VIDEO_DIR).mkdir()
        jobs = [
            (v.to_json(), size, fps, str(tmp / VIDEO_DIR / f"{vid}.mp4"))
            for vid, v in meta.videos.items()
        ]
        _encode_all(jobs, workers, progress)
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        _replace_folder(out, force, tmp)  # checks again: something may have appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary = _summary(out, meta, time.perf_counter() - t0, skipped=False)
    logger.info(
        "wrote SynthVTT to %s: videos %s, captions %s, %d frames in %.1f s",
        out,
        summary.videos,
        summary.captions,
        summary.frames,
        summary.seconds,
    )
    return summary


def _encode_all(
    jobs: list[tuple[dict[str, Any], int, int, str]], workers: int, progress: bool
) -> None:
    bar = tqdm(total=len(jobs), desc="SynthVTT videos", unit="video", disable=not progress)
    try:
        if workers == 1 or len(jobs) < 2 * workers:
            for job in jobs:
                _encode_job(job)
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers) as pool:
                for _ in pool.imap(_encode_job, jobs, chunksize=16):
                    bar.update()
    finally:
        bar.close()
