"""Analysis bundles: the saved artefacts of one run on one dataset split, and how to load them.

A bundle is the folder ``<run>/analysis/<dataset>-<split>/`` written by
:mod:`analysis.export` (``python -m analysis.export``). The app reads bundles only through
:class:`Bundle`; it never runs the video tower.

Files (N_t captions, N_v videos, L words, T frames, D feature width; ``[..]`` are shapes)::

    meta.json               run, dataset, split, head, metrics, hashes, parameters, file list,
                            the videos the export skipped (``skipped``: id, path, reason,
                            number of captions dropped with it) and the split's full sizes
    captions.json           captions, their video, word labels, video ids/paths/windows,
                            frame timestamps (seconds, null on padding)
    sources.json            the dataset files the bundle was built from: sha256 of every
                            annotation file, size and mtime of every video of the split
    embeddings.safetensors  head-embedded features (what ``Retriever.encode_*`` return):
                            text_pooled [Nt,D], video_pooled [Nv,D], text_tokens [Nt,L,D],
                            text_mask [Nt,L] bool, text_ids [Nt,L] int64, video_tokens [Nv,T,D],
                            video_mask [Nv,T] bool, text_weights [Nt,L] / video_weights [Nv,T]
                            (only when the head attaches token weights, e.g. WTI)
    similarity.npy          [Nt,Nv] float32, cosine scale (the head's ``score``)
    ranks.npz               t2v [Nt], v2t [Nv], text_to_video [Nt], t2v_tied [Nt], v2t_tied [Nv]
                            (+ v2t_any, v2t_any_tied [Nv] when a video has several captions)
    text_frame.npy          [Nt,T] float32 text-to-frame weights over each caption's own video
    drgi.safetensors        runs with DRGI only: GAT attention and discriminator scores
    projections.npz         2-D maps: "<method>_<kind>" [N_kind,2] and word_ids / frame_ids
    thumbs/<v>.jpg          one horizontal JPEG strip of the sampled frames of video v

**Freshness.** ``meta.json`` records the sha256 of the run's ``model.safetensors``,
``config.json``, ``encoder.json`` and ``tokenizer/`` folder, the size of every bundle file (a
truncated file makes the bundle unusable, ``"missing"``), and a digest of the dataset files in
``sources.json``. :func:`bundle_status`
recomputes them: a changed checkpoint, a changed, added or removed annotation file, or a video
whose size or mtime changed makes the bundle ``"stale"``, and :meth:`Bundle.load` refuses a
stale bundle (:class:`StaleBundleError` naming what changed) unless ``allow_stale=True``. Any
annotation file under the dataset root counts (suffixes in :data:`ANNOTATION_SUFFIXES`), not
only the split's: conservative, never silently wrong. A dataset root that cannot be found
cannot be verified and also counts as stale (pass ``data_root=`` where the data moved).

**Writes** are atomic at the folder level: the export builds the bundle in a hidden sibling
folder and renames it into place, so a folder named ``<dataset>-<split>`` is always complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from analysis.tensor_file import TensorFileError, memmap_tensor

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 2  # bumped when the layout changes; other formats are stale (2: DRGI diagnostics in meta)
ANALYSIS_DIR = "analysis"  # bundles live in <run>/analysis/
META = "meta.json"
CAPTIONS = "captions.json"
SOURCES = "sources.json"
EMBEDDINGS = "embeddings.safetensors"
SIMILARITY = "similarity.npy"
RANKS = "ranks.npz"
TEXT_FRAME = "text_frame.npy"
DRGI_FILE = "drgi.safetensors"
PROJECTIONS = "projections.npz"
THUMBS = "thumbs"
CHECKPOINT_FILES: tuple[str, ...] = ("config.json", "model.safetensors")
# hashed too when the run has them: the backbone architecture and the run's own tokenizer
OPTIONAL_CHECKPOINT_FILES: tuple[str, ...] = ("encoder.json", "tokenizer")
ANNOTATION_SUFFIXES: tuple[str, ...] = (
    ".json", ".jsonl", ".csv", ".tsv", ".txt", ".pkl", ".pickle", ".yaml", ".yml",
)
PROJECTION_KINDS: tuple[str, ...] = ("words", "frames", "texts", "videos")

State = Literal["fresh", "stale", "missing"]


class BundleError(RuntimeError):
    """A bundle that cannot be used: missing, incomplete or malformed files."""


class StaleBundleError(BundleError):
    """A bundle whose checkpoint or dataset changed since it was exported.

    Attributes:
        path: the bundle folder.
        reasons: what changed, one sentence each.
    """

    def __init__(self, path: str | Path, reasons: Sequence[str]) -> None:
        self.path = Path(path)
        self.reasons = tuple(reasons)
        listed = "; ".join(self.reasons)
        super().__init__(
            f"bundle {self.path} is stale: {listed}. Re-export it with `python -m "
            f"analysis.export --run {self.path.parent.parent} --force`, or load it with "
            f"allow_stale=True"
        )


class BundleStatus(NamedTuple):
    """Whether a bundle can be used as it is.

    Attributes:
        state: ``"fresh"`` (matches its checkpoint and dataset), ``"stale"`` (something
            changed, see ``reasons``) or ``"missing"`` (no complete bundle at that path).
        reasons: why it is stale or missing, one sentence each (empty when fresh).
    """

    state: State
    reasons: tuple[str, ...] = ()

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"


@dataclass(frozen=True)
class BundleInfo:
    """One bundle found by :func:`find_bundles`.

    Attributes:
        run: the run's folder name.
        dataset: dataset (source) name.
        split: split name.
        path: the bundle folder.
        status: its :class:`BundleStatus` (``None`` when ``check=False``).
    """

    run: str
    dataset: str
    split: str
    path: Path
    status: BundleStatus | None


# --------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------

_HASH_CACHE: dict[tuple[str, int, int, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes.

    Memoised per process on (path, inode, size, mtime_ns, ctime_ns): any write to the file
    changes ctime, so a re-hash happens exactly when the file may have changed.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _HASH_LOCK:
        hit = _HASH_CACHE.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = digest
    return digest


def path_digest(path: str | Path) -> str | None:
    """sha256 of a file, or of a folder's files (relative POSIX path -> sha256, sorted);
    None when the path does not exist."""
    p = Path(path)
    if p.is_file():
        return file_sha256(p)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        return _digest({f.relative_to(p).as_posix(): file_sha256(f) for f in files})
    return None


def checkpoint_hash(run_dir: str | Path) -> dict[str, str | None]:
    """sha256 of what defines a run's outputs: ``config.json``, ``model.safetensors``, and
    ``encoder.json`` and the ``tokenizer/`` folder (None when the run has none).

    Raises:
        BundleError: ``config.json`` or ``model.safetensors`` is missing.
    """
    run_dir = Path(run_dir)
    out: dict[str, str | None] = {}
    for name in CHECKPOINT_FILES:
        path = run_dir / name
        if not path.is_file():
            raise BundleError(f"run folder {run_dir} has no {name}")
        out[name] = file_sha256(path)
    for name in OPTIONAL_CHECKPOINT_FILES:
        out[name] = path_digest(run_dir / name)
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def scan_annotation_files(root: str | Path) -> dict[str, str]:
    """sha256 of every annotation file under ``root``, keyed by POSIX path relative to it.

    Annotation files are regular files with a suffix in :data:`ANNOTATION_SUFFIXES`; hidden
    files and folders (``.name``) are skipped, symbolic links to folders are not followed.
    """
    root = Path(root)
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(ANNOTATION_SUFFIXES):
                continue
            path = Path(folder) / name
            if path.is_file():
                out[path.relative_to(root).as_posix()] = file_sha256(path)
    return out


def relative_video_path(path: str | Path, root: str | Path) -> str:
    """``path`` relative to ``root`` (POSIX) when it lies inside it, else absolute."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(p)


def video_stats(root: str | Path, paths: Iterable[str]) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` per video (``-1, -1`` for a missing file).

    ``paths`` are relative to ``root`` or absolute (as :func:`relative_video_path` writes).
    """
    out = []
    for rel in paths:
        p = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
        try:
            st = p.stat()
            out.append([rel, int(st.st_size), int(st.st_mtime_ns)])
        except FileNotFoundError:
            out.append([rel, -1, -1])
    return out


def dataset_sources(root: str | Path, video_paths: Iterable[str]) -> dict[str, Any]:
    """The content of ``sources.json``: annotation hashes and video stats under ``root``."""
    return {
        "annotations": scan_annotation_files(root),
        "videos": video_stats(root, video_paths),
    }


def sources_digest(sources: Mapping[str, Any]) -> dict[str, Any]:
    """Summary digests of :func:`dataset_sources` output (stored in ``meta.json``)."""
    annotations_digest = _digest(sources["annotations"])
    videos_digest = _digest(sources["videos"])
    return {
        "digest": _digest([annotations_digest, videos_digest]),
        "annotations_digest": annotations_digest,
        "videos_digest": videos_digest,
        "num_annotation_files": len(sources["annotations"]),
        "num_videos": len(sources["videos"]),
    }


def _diff_sources(recorded: Mapping[str, Any], current: Mapping[str, Any], root: Path) -> list[str]:
    reasons = []
    rec_ann, cur_ann = recorded["annotations"], current["annotations"]
    for name in sorted(set(rec_ann) | set(cur_ann)):
        if name not in cur_ann:
            reasons.append(f"dataset annotation file {root / name} was removed")
        elif name not in rec_ann:
            reasons.append(f"dataset annotation file {root / name} was added")
        elif rec_ann[name] != cur_ann[name]:
            reasons.append(
                f"dataset annotation file {root / name} changed (sha256 {cur_ann[name][:12]}, "
                f"recorded {rec_ann[name][:12]})"
            )
    changed = [
        rec[0]
        for rec, cur in zip(recorded["videos"], current["videos"], strict=True)
        if list(rec) != list(cur)
    ]
    if changed:
        missing = [c[0] for c in current["videos"] if c[1] == -1]
        what = f"{len(changed)} video file(s) changed size or mtime"
        if missing:
            what += f" ({len(missing)} missing)"
        reasons.append(f"{what}, e.g. {root / changed[0]}")
    return reasons


# --------------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------------


def bundle_dir_for(run_dir: str | Path, dataset: str, split: str) -> Path:
    """Where the bundle of ``run_dir`` on ``dataset``/``split`` lives."""
    return Path(run_dir) / ANALYSIS_DIR / f"{dataset}-{split}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None


def resolve_data_root(meta: Mapping[str, Any], data_root: str | Path | None = None) -> Path | None:
    """The dataset root of a bundle: ``data_root`` if given, else the recorded absolute path,
    else the recorded (possibly relative) path; None when none of them exists."""
    if data_root is not None:
        p = Path(data_root)
        return p if p.is_dir() else None
    for key in ("data_root_abs", "data_root"):
        value = meta.get(key)
        if value and Path(value).is_dir():
            return Path(value)
    return None


def _missing_reasons(bundle_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """Read meta.json and check that every listed file exists."""
    if not bundle_dir.is_dir():
        return None, [f"no bundle folder at {bundle_dir}"]
    meta_path = bundle_dir / META
    if not meta_path.is_file():
        return None, [f"{meta_path} is missing (incomplete bundle)"]
    try:
        meta = _read_json(meta_path)
    except BundleError as exc:
        return None, [str(exc)]
    if not isinstance(meta, dict) or not meta.get("complete"):
        return None, [f"{meta_path} does not mark the bundle complete"]
    reasons = []
    for name, recorded in meta.get("files", {}).items():
        path = bundle_dir / name
        if not path.exists():
            reasons.append(f"{path} is listed in {META} but missing")
        elif name == THUMBS:
            count = sum(1 for _ in path.glob("*.jpg"))
            if isinstance(recorded, int) and count != recorded:
                reasons.append(f"{path} holds {count} thumbnails, {META} records {recorded}")
        elif isinstance(recorded, int) and path.stat().st_size != recorded:
            reasons.append(
                f"{path} is {path.stat().st_size} bytes, {META} records {recorded} "
                "(truncated or rewritten)"
            )
    return meta, reasons


def _old_tie_rule_reason(metrics: Any) -> str | None:
    """A stale reason when ``meta.json``'s metrics show ties ranked by the old optimistic rule.

    Ranks now count ties against the model (``tvr.metrics``) and tied results carry
    ``*_optimistic`` keys; an export with tied queries but no such key ranked ties in the
    model's favour, so its ranks and metrics are out of date. Untied bundles are unaffected.
    """
    from tvr.metrics import OPTIMISTIC_SUFFIX, tied_directions

    if not isinstance(metrics, Mapping):
        return None
    tied = tied_directions(metrics)
    if not tied or any(str(k).endswith(OPTIMISTIC_SUFFIX) for k in metrics):
        return None
    listed = ", ".join(f"{d}: {n}" for d, n in tied.items())
    return (
        f"ranks were computed with the old tie rule (ties in the model's favour) and the "
        f"bundle has tied queries ({listed}); ranks now count ties against the model"
    )


def bundle_status(bundle_dir: str | Path, data_root: str | Path | None = None) -> BundleStatus:
    """Check a bundle against its run's checkpoint and its dataset.

    Args:
        bundle_dir: ``<run>/analysis/<dataset>-<split>``; the run is its grandparent folder.
        data_root: the dataset root, when it is not where the export found it.

    Returns:
        :class:`BundleStatus`: ``"missing"`` (no complete bundle), ``"stale"`` (format,
        checkpoint or dataset changed, the dataset cannot be found, or tied ranks from the old
        optimistic tie rule) or ``"fresh"``, with the reasons.
    """
    bundle_dir = Path(bundle_dir)
    meta, reasons = _missing_reasons(bundle_dir)
    if meta is None or reasons:
        return BundleStatus("missing", tuple(reasons))
    if meta.get("format") != BUNDLE_FORMAT:
        return BundleStatus(
            "stale",
            (f"bundle format {meta.get('format')!r}, this code reads format {BUNDLE_FORMAT}",),
        )
    stale: list[str] = []
    old_rule = _old_tie_rule_reason(meta.get("metrics"))
    if old_rule:
        stale.append(old_rule)
    run_dir = bundle_dir.parent.parent
    recorded = meta.get("checkpoint_hash", {})
    for name in CHECKPOINT_FILES + OPTIONAL_CHECKPOINT_FILES:
        path = run_dir / name
        current = path_digest(path)
        if name not in recorded:
            stale.append(f"the bundle records no hash of {path} (exported by older code)")
        elif current is None and name in CHECKPOINT_FILES:
            stale.append(f"checkpoint file {path} is missing")
        elif current != recorded[name]:
            what = "was removed" if current is None else "changed since the export (sha256 differs)"
            stale.append(f"checkpoint file {path} {what}")
    root = resolve_data_root(meta, data_root)
    if root is None:
        where = data_root if data_root is not None else meta.get("data_root")
        stale.append(
            f"dataset root {where} not found, so the dataset cannot be verified (pass data_root)"
        )
    else:
        try:
            sources = _read_json(bundle_dir / SOURCES)
            paths = [str(v[0]) for v in sources["videos"]]
            if not isinstance(sources.get("annotations"), dict):
                raise TypeError("'annotations' is not an object")
        except (BundleError, KeyError, TypeError, IndexError, AttributeError) as exc:
            return BundleStatus("missing", (f"{bundle_dir / SOURCES} is malformed ({exc})",))
        current = dataset_sources(root, paths)
        if sources_digest(current)["digest"] != meta.get("dataset_hash", {}).get("digest"):
            stale.extend(_diff_sources(sources, current, root) or ["dataset content changed"])
    return BundleStatus("stale" if stale else "fresh", tuple(stale))


def find_bundles(
    checkpoints_root: str | Path,
    *,
    check: bool = True,
    data_roots: Mapping[str, str | Path] | None = None,
) -> list[BundleInfo]:
    """Every bundle folder under ``checkpoints_root/<run>/analysis/``, sorted by run and name.

    Hidden folders (the export's work in progress) are skipped.

    Args:
        checkpoints_root: the folder holding run folders (``checkpoints``).
        check: compute each bundle's :func:`bundle_status` (hashes are memoised per process).
        data_roots: dataset name -> root, for datasets not where the export found them.
    """
    root = Path(checkpoints_root)
    if not root.is_dir():
        raise FileNotFoundError(f"checkpoints root {root} does not exist")
    out = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        analysis = run / ANALYSIS_DIR
        if not analysis.is_dir():
            continue
        for bdir in sorted(p for p in analysis.iterdir() if p.is_dir()):
            if bdir.name.startswith("."):
                continue
            dataset, _, split = bdir.name.rpartition("-")
            meta_path = bdir / META
            if meta_path.is_file():
                try:
                    meta = _read_json(meta_path)
                    dataset, split = str(meta["dataset"]), str(meta["split"])
                except (BundleError, KeyError, TypeError):
                    logger.warning("bundle %s: unreadable %s", bdir, META)
            status = None
            if check:
                status = bundle_status(bdir, (data_roots or {}).get(dataset))
            out.append(BundleInfo(run.name, dataset, split, bdir, status))
    return out


# --------------------------------------------------------------------------------------------
# Loaded arrays
# --------------------------------------------------------------------------------------------


def _unreadable(path: Path, exc: BaseException) -> BundleError:
    return BundleError(
        f"cannot read bundle file {path}: {exc} (truncated or corrupt; re-export the bundle "
        "with --force)"
    )


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Ranks:
    """Per-query ranks (1-based, ``1 + #{others scoring >= the ground truth}``; ``tvr.metrics``).

    Shapes:
        t2v ``[Nt]``, t2v_tied ``[Nt]`` bool, v2t ``[Nv]``, v2t_tied ``[Nv]`` bool,
        v2t_any / v2t_any_tied ``[Nv]`` (None when every video has one caption),
        text_to_video ``[Nt]``.
    """

    t2v: np.ndarray
    v2t: np.ndarray
    t2v_tied: np.ndarray
    v2t_tied: np.ndarray
    text_to_video: np.ndarray
    v2t_any: np.ndarray | None = None
    v2t_any_tied: np.ndarray | None = None


@dataclass(frozen=True)
class DRGIScores:
    """DRGI discriminator scores of one query direction (mean sigmoid over valid nodes).

    Each query ``q`` is an anchor pair (text ``anchor_text[q]``, video ``anchor_video[q]``);
    its hard negatives, mined on the split's similarity, are the video ``neg_video_index[q]``
    (hardest other video for the text) and the caption ``neg_text_index[q]`` (hardest caption
    of another video for the video). In DRGI's cross mode the video nodes are scored against
    the text summary and the text nodes against the video summary (intra mode: own summary).

    Attributes:
        anchor_text, anchor_video: ``[N]`` int64 the pair of each query.
        pos_video: ``[N]`` nodes of the anchor's video graph.
        neg_video: ``[N]`` nodes of the hard-negative video's graph (NaN without negative).
        pos_text: ``[N]`` nodes of the anchor's caption graph.
        neg_text: ``[N]`` nodes of the hard-negative caption's graph (NaN without negative).
        neg_video_index, neg_text_index: ``[N]`` int64 (the anchor's own where invalid).
        neg_valid: ``[N]`` bool, a negative exists (the split has at least two videos).
    """

    anchor_text: np.ndarray
    anchor_video: np.ndarray
    pos_video: np.ndarray
    neg_video: np.ndarray
    pos_text: np.ndarray
    neg_text: np.ndarray
    neg_video_index: np.ndarray
    neg_text_index: np.ndarray
    neg_valid: np.ndarray

    @property
    def pos(self) -> np.ndarray:
        """``[N]`` ½ (pos_video + pos_text), the objective's ``drgi_pos_score`` per query."""
        return 0.5 * (self.pos_video + self.pos_text)

    @property
    def neg(self) -> np.ndarray:
        """``[N]`` ½ (neg_video + neg_text), the objective's ``drgi_neg_score`` per query."""
        return 0.5 * (self.neg_video + self.neg_text)


@dataclass(frozen=True)
class DRGIArrays:
    """What the DRGI objective computes on the split (runs with DRGI only).

    Nodes are words / frames in token mode (``N = L``, ``M = T``) and K chunks of the pooled
    vector in factor mode (``N = M = K``); ``meta["drgi"]["nodes"]`` says which.

    Attributes:
        text_attention: ``[Nt, H, N, N]`` float16 GAT attention of every caption graph; rows
            of valid nodes sum to 1 over valid nodes, padded rows/columns are 0.
        video_attention: ``[Nv, H, M, M]`` float16, likewise for every video graph.
        text_node_mask: ``[Nt, N]`` bool; video_node_mask: ``[Nv, M]`` bool.
        text_queries: :class:`DRGIScores` with one entry per caption (pair = caption and its
            ground-truth video).
        video_queries: :class:`DRGIScores` with one entry per video (pair = video and its
            first caption).
    """

    text_attention: np.ndarray
    video_attention: np.ndarray
    text_node_mask: np.ndarray
    video_node_mask: np.ndarray
    text_queries: DRGIScores
    video_queries: DRGIScores


@dataclass(frozen=True)
class Projections:
    """2-D maps of the bundle's embeddings, one per method.

    All four kinds of points of one method come from **one joint map** (fitted on words,
    frames, pooled texts and pooled videos together), so they share axes and can be drawn
    together.

    Attributes:
        methods: e.g. ``("umap", "pca")``.
        coords: ``{(method, kind): [N_kind, 2] float32}`` for kind in ``words`` (valid text
            tokens), ``frames`` (valid video tokens), ``texts`` (pooled, ``[Nt, 2]``) and
            ``videos`` (pooled, ``[Nv, 2]``).
        word_ids: ``[Nw, 2]`` int64 (caption index, token position) of each word point.
        frame_ids: ``[Nf, 2]`` int64 (video index, frame position) of each frame point.
        params: ``{method: {"method", "params", "versions"}}`` as fitted.
    """

    methods: tuple[str, ...]
    coords: dict[tuple[str, str], np.ndarray]
    word_ids: np.ndarray
    frame_ids: np.ndarray
    params: dict[str, Any]

    def get(self, method: str, kind: str) -> np.ndarray:
        """Coordinates ``[N_kind, 2]`` of ``kind`` in the map of ``method``."""
        if (method, kind) not in self.coords:
            raise KeyError(
                f"no projection {method!r}/{kind!r}; methods {list(self.methods)}, kinds "
                f"{list(PROJECTION_KINDS)}"
            )
        return self.coords[(method, kind)]


@dataclass(frozen=True)
class SkippedVideo:
    """A video of the split the export left out (it failed to decode), with its captions.

    Attributes:
        video_id: the video's id.
        path: its file (relative to the data root, or absolute).
        reason: why it failed (the decoder's error; ``"not recorded"`` for older bundles).
        num_captions: captions that left the bundle with it (-1 when not recorded).
    """

    video_id: str
    path: str
    reason: str
    num_captions: int


def _skipped_from_meta(meta: Mapping[str, Any]) -> list[SkippedVideo]:
    """``meta["skipped"]``, or for bundles written before it, the ids of ``skipped_videos``."""
    if "skipped" in meta:
        return [SkippedVideo(str(x["video_id"]), str(x.get("path", "")), str(x["reason"]),
                             int(x.get("num_captions", -1))) for x in meta["skipped"]]
    return [SkippedVideo(str(v), "", "not recorded (bundle exported before reasons were kept)",
                         -1) for v in meta.get("skipped_videos", [])]


@dataclass(frozen=True)
class SynthVTTSplit:
    """SynthVTT ground truth for the bundle's split (``spec/synthvtt.md``).

    Attributes:
        params: generator parameters (seed, sizes, fps, ...).
        vocabulary: colours, shapes, actions, backgrounds.
        videos: per bundle video (aligned with ``Bundle.video_ids``), its meta entry
            (background, family, edit, n_frames, events with frame ranges).
        captions: per bundle caption (aligned with ``Bundle.captions``), its meta entry
            (``events`` it mentions, ``background``, ``relevant`` video ids, plus ``sen_id``),
            or None when the caption is not in the meta file.
    """

    params: dict[str, Any]
    vocabulary: dict[str, Any]
    videos: list[dict[str, Any]]
    captions: list[dict[str, Any] | None]


# --------------------------------------------------------------------------------------------
# The bundle
# --------------------------------------------------------------------------------------------


class Bundle:
    """A loaded analysis bundle. Read-only: every numpy array has ``writeable=False``.

    Small things are read by :meth:`load`; big arrays load on first access (cached).

    Attributes (loaded eagerly):
        path (Path): the bundle folder; run_dir (Path): the run folder (its grandparent).
        meta (dict): ``meta.json`` as written by the export.
        status (BundleStatus | None): the freshness check done by :meth:`load`.
        run_name, dataset, split, head (str); factorized, has_drgi (bool).
        num_texts (Nt), num_videos (Nv), num_frames (T), max_words (L), embed_dim (D) (int).
        metrics (dict[str, float]): ``tvr.metrics.retrieval_metrics`` of the split.
        skipped (list[SkippedVideo]): videos of the split the export left out (failed to
            decode), with why; split_num_videos (int): videos in the split, skipped included.
        captions (list[str]): ``[Nt]`` caption texts.
        text_to_video (ndarray): ``[Nt]`` int64 column of each caption's video.
        caption_index (ndarray): ``[Nt]`` int64 position of each caption in the source's split.
        word_labels (list[list[str]]): per caption, one readable label per valid token
            (``[SOT]``, words/BPE pieces, ``[EOT]``); ``len == text_mask[i].sum()``.
        video_ids (list[str]): ``[Nv]``; video_paths (list[str]): relative to the data root or
            absolute; video_windows (list[tuple[float | None, float | None]]): clip windows (s).
        frame_timestamps (ndarray): ``[Nv, T]`` float64 seconds of the sampled frames, NaN on
            padding.
        thumb_counts (ndarray): ``[Nv]`` frames in each thumbnail strip; thumb_size (int):
            the side of one thumbnail frame in pixels.

    Lazy attributes:
        sim: ``[Nt, Nv]`` float32 similarity (cosine scale), memory-mapped.
        ranks: :class:`Ranks`.
        text_pooled ``[Nt, D]``, video_pooled ``[Nv, D]``, text_tokens ``[Nt, L, D]``,
        video_tokens ``[Nv, T, D]`` (float32); text_mask ``[Nt, L]``, video_mask ``[Nv, T]``
        (bool); text_ids ``[Nt, L]`` int64; text_weights ``[Nt, L]`` / video_weights
        ``[Nv, T]`` float32 or None (heads with token weights, e.g. WTI).
        text_frame_weights: ``[Nt, T]`` float32, each caption's weights over its own video's
            frames (rows sum to 1 over valid frames; ``meta["text_frame"]`` says how).
        drgi: :class:`DRGIArrays` or None (run without DRGI).
        projections: :class:`Projections` (methods may be empty).

    Example:
        >>> b = Bundle.load("checkpoints/demo-drgi/analysis/synthvtt-test")
        >>> b.sim.shape, b.ranks.t2v[:5], b.words(0), b.thumbnail(3).size
    """

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        captions: dict[str, Any],
        status: BundleStatus | None = None,
        data_root: str | Path | None = None,
    ) -> None:
        self.path = path
        self.run_dir = path.parent.parent
        self.meta = meta
        self.status = status
        self._data_root = data_root
        try:
            self.run_name: str = meta["run"]["name"]
            self.dataset: str = meta["dataset"]
            self.split: str = meta["split"]
            self.head: str = meta["head"]
            self.factorized: bool = bool(meta["factorized"])
            self.has_drgi: bool = bool(meta["has_drgi"])
            self.num_texts: int = int(meta["num_texts"])
            self.num_videos: int = int(meta["num_videos"])
            self.num_frames: int = int(meta["num_frames"])
            self.max_words: int = int(meta["max_words"])
            self.embed_dim: int = int(meta["embed_dim"])
            self.metrics: dict[str, float] = dict(meta["metrics"])
            self.skipped: list[SkippedVideo] = _skipped_from_meta(meta)
            self.split_num_videos: int = int(
                meta.get("split_num_videos", self.num_videos + len(self.skipped))
            )
            self.thumb_size: int = int(meta["thumb_index"]["frame_width"])
            self.thumb_counts = _read_only(
                np.asarray(meta["thumb_index"]["counts"], dtype=np.int64)
            )
            self.captions: list[str] = list(captions["captions"])
            self.text_to_video = _read_only(
                np.asarray(captions["text_to_video"], dtype=np.int64)
            )
            self.caption_index = _read_only(
                np.asarray(captions["caption_index"], dtype=np.int64)
            )
            self.word_labels: list[list[str]] = [list(w) for w in captions["word_labels"]]
            self.video_ids: list[str] = list(captions["video_ids"])
            self.video_paths: list[str] = list(captions["video_paths"])
            self.video_windows: list[tuple[float | None, float | None]] = [
                (w[0], w[1]) for w in captions["video_windows"]
            ]
            times = np.asarray(
                [[np.nan if t is None else t for t in row] for row in captions["frame_timestamps"]],
                dtype=np.float64,
            ).reshape(self.num_videos, self.num_frames)
            self.frame_timestamps = _read_only(times)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"bundle {path}: malformed {META} or {CAPTIONS} ({type(exc).__name__}: {exc})"
            ) from None
        if len(self.captions) != self.num_texts or len(self.video_ids) != self.num_videos:
            raise BundleError(
                f"bundle {path}: {CAPTIONS} lists {len(self.captions)} captions and "
                f"{len(self.video_ids)} videos, {META} says {self.num_texts} and {self.num_videos}"
            )

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        bundle_dir: str | Path,
        *,
        check: bool = True,
        allow_stale: bool = False,
        data_root: str | Path | None = None,
    ) -> Bundle:
        """Open a bundle folder.

        Args:
            bundle_dir: ``<run>/analysis/<dataset>-<split>``.
            check: verify freshness with :func:`bundle_status` (hashes the checkpoint and the
                dataset's annotation files; memoised per process).
            allow_stale: return a stale bundle (its ``status`` names what changed) instead of
                raising.
            data_root: the dataset root, when it is not where the export found it.

        Raises:
            BundleError: no complete bundle there, or malformed files.
            StaleBundleError: the checkpoint or dataset changed (unless ``allow_stale``).
        """
        path = Path(bundle_dir)
        status = None
        if check:
            status = bundle_status(path, data_root)
            if status.state == "missing":
                raise BundleError(f"no usable bundle at {path}: {'; '.join(status.reasons)}")
            if status.state == "stale":
                if not allow_stale:
                    raise StaleBundleError(path, status.reasons)
                logger.warning("using stale bundle %s: %s", path, "; ".join(status.reasons))
        else:
            _, missing = _missing_reasons(path)
            if missing:
                raise BundleError(f"no usable bundle at {path}: {'; '.join(missing)}")
        meta = _read_json(path / META)
        captions = _read_json(path / CAPTIONS)
        return cls(path, meta, captions, status, data_root)

    def __repr__(self) -> str:
        state = self.status.state if self.status else "unchecked"
        return (
            f"Bundle({self.run_name!r}, {self.dataset}-{self.split}, head={self.head}, "
            f"Nt={self.num_texts}, Nv={self.num_videos}, drgi={self.has_drgi}, {state})"
        )

    def _file(self, name: str) -> Path:
        path = self.path / name
        if not path.is_file():
            raise BundleError(f"bundle {self.path}: {name} is missing")
        return path

    def _tensor(self, filename: str, key: str, optional: bool = False) -> np.ndarray | None:
        """A tensor of a safetensors file of the bundle as a read-only memory map: indexing
        rows reads only those rows (:mod:`analysis.tensor_file`)."""
        path = self._file(filename)
        try:
            arr = memmap_tensor(path, key)
        except (TensorFileError, OSError) as exc:
            raise _unreadable(path, exc) from None
        if arr is None:
            if optional:
                return None
            raise BundleError(f"bundle {self.path}: {filename} has no tensor {key!r}")
        return arr

    def _npz(self, filename: str) -> dict[str, np.ndarray]:
        path = self._file(filename)
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: _read_only(data[k]) for k in data.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise _unreadable(path, exc) from None

    # ------------------------------------------------------------------ similarity and ranks
    @cached_property
    def sim(self) -> np.ndarray:
        """``[Nt, Nv]`` float32 cosine-scale similarity (read-only memory map)."""
        path = self._file(SIMILARITY)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise _unreadable(path, exc) from None
        if arr.shape != (self.num_texts, self.num_videos):
            raise BundleError(
                f"bundle {self.path}: {SIMILARITY} has shape {arr.shape}, expected "
                f"({self.num_texts}, {self.num_videos})"
            )
        return arr

    @cached_property
    def ranks(self) -> Ranks:
        """Per-query ranks of both directions (:class:`Ranks`)."""
        d = self._npz(RANKS)
        return Ranks(
            t2v=d["t2v"], v2t=d["v2t"], t2v_tied=d["t2v_tied"], v2t_tied=d["v2t_tied"],
            text_to_video=d["text_to_video"], v2t_any=d.get("v2t_any"),
            v2t_any_tied=d.get("v2t_any_tied"),
        )

    # ------------------------------------------------------------------ embeddings
    @cached_property
    def text_pooled(self) -> np.ndarray:
        """``[Nt, D]`` float32 pooled text features."""
        return self._tensor(EMBEDDINGS, "text_pooled")  # type: ignore[return-value]

    @cached_property
    def video_pooled(self) -> np.ndarray:
        """``[Nv, D]`` float32 pooled video features."""
        return self._tensor(EMBEDDINGS, "video_pooled")  # type: ignore[return-value]

    @cached_property
    def text_tokens(self) -> np.ndarray:
        """``[Nt, L, D]`` float32 word features (padding included)."""
        return self._tensor(EMBEDDINGS, "text_tokens")  # type: ignore[return-value]

    @cached_property
    def text_mask(self) -> np.ndarray:
        """``[Nt, L]`` bool, True on SOT..EOT."""
        return self._tensor(EMBEDDINGS, "text_mask")  # type: ignore[return-value]

    @cached_property
    def text_ids(self) -> np.ndarray:
        """``[Nt, L]`` int64 token ids (pad id on padding)."""
        return self._tensor(EMBEDDINGS, "text_ids")  # type: ignore[return-value]

    @cached_property
    def video_tokens(self) -> np.ndarray:
        """``[Nv, T, D]`` float32 frame features (padding included)."""
        return self._tensor(EMBEDDINGS, "video_tokens")  # type: ignore[return-value]

    @cached_property
    def video_mask(self) -> np.ndarray:
        """``[Nv, T]`` bool, True on real frames."""
        return self._tensor(EMBEDDINGS, "video_mask")  # type: ignore[return-value]

    @cached_property
    def text_weights(self) -> np.ndarray | None:
        """``[Nt, L]`` float32 token weights of the head (WTI), or None."""
        return self._tensor(EMBEDDINGS, "text_weights", optional=True)

    @cached_property
    def video_weights(self) -> np.ndarray | None:
        """``[Nv, T]`` float32 frame weights of the head (WTI), or None."""
        return self._tensor(EMBEDDINGS, "video_weights", optional=True)

    def text_features(self, index: Sequence[int] | np.ndarray | slice | None = None):
        """Stored text features as ``tvr`` :class:`~tvr.models.features.TokenFeatures`
        (CPU float32 tensors), ready for the run's ``head.score`` against new queries.

        Shapes:
            -> tokens ``[n, L, D]``, mask ``[n, L]``, pooled ``[n, D]``, weights ``[n, L]``
        """
        return self._features("text", index)

    def video_features(self, index: Sequence[int] | np.ndarray | slice | None = None):
        """Stored video features as :class:`~tvr.models.features.TokenFeatures` (see
        :meth:`text_features`).

        Shapes:
            -> tokens ``[n, T, D]``, mask ``[n, T]``, pooled ``[n, D]``, weights ``[n, T]``
        """
        return self._features("video", index)

    def _features(self, side: str, index: Any):
        import torch

        from tvr.models.features import TokenFeatures

        sel = slice(None) if index is None else index

        def t(arr: np.ndarray | None) -> torch.Tensor | None:
            return None if arr is None else torch.tensor(np.asarray(arr)[sel])

        return TokenFeatures(
            tokens=t(getattr(self, f"{side}_tokens")),
            mask=t(getattr(self, f"{side}_mask")).long(),  # type: ignore[union-attr]
            pooled=t(getattr(self, f"{side}_pooled")),
            weights=t(getattr(self, f"{side}_weights")),
        )

    # ------------------------------------------------------------------ interactions
    @cached_property
    def text_frame_weights(self) -> np.ndarray:
        """``[Nt, T]`` float32 text-to-frame weights over each caption's ground-truth video."""
        path = self._file(TEXT_FRAME)
        try:
            return _read_only(np.load(path, allow_pickle=False))
        except (ValueError, OSError, EOFError) as exc:
            raise _unreadable(path, exc) from None

    @cached_property
    def drgi(self) -> DRGIArrays | None:
        """DRGI attention and discriminator scores (:class:`DRGIArrays`), None without DRGI."""
        if not self.has_drgi:
            return None
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = self._file(DRGI_FILE)
        try:
            d = {k: _read_only(v) for k, v in load_file(str(path)).items()}
        except (SafetensorError, OSError) as exc:
            raise _unreadable(path, exc) from None

        def scores(prefix: str) -> DRGIScores:
            return DRGIScores(**{f: d[f"{prefix}_{f}"] for f in DRGIScores.__dataclass_fields__})

        return DRGIArrays(
            text_attention=d["text_attention"],
            video_attention=d["video_attention"],
            text_node_mask=d["text_node_mask"],
            video_node_mask=d["video_node_mask"],
            text_queries=scores("text_queries"),
            video_queries=scores("video_queries"),
        )

    @cached_property
    def projections(self) -> Projections:
        """The 2-D maps (:class:`Projections`)."""
        info = self.meta.get("projections", {})
        methods = tuple(info.get("methods", {}))
        if not methods:
            empty = np.zeros((0, 2), dtype=np.int64)
            return Projections((), {}, _read_only(empty), _read_only(empty.copy()), {})
        d = self._npz(PROJECTIONS)
        coords = {(m, k): d[f"{m}_{k}"] for m in methods for k in PROJECTION_KINDS}
        return Projections(methods, coords, d["word_ids"], d["frame_ids"], dict(info["methods"]))

    # ------------------------------------------------------------------ words and thumbnails
    def words(self, caption: int) -> list[str]:
        """Readable labels of the valid tokens of caption ``caption`` (``[SOT] ... [EOT]``)."""
        return list(self.word_labels[self._check_index(caption, self.num_texts, "caption")])

    @staticmethod
    def _check_index(i: int, n: int, what: str) -> int:
        if not isinstance(i, int | np.integer) or not -n <= int(i) < n:
            raise IndexError(f"{what} index {i!r} out of range for {n} {what}s")
        return int(i) % n

    def thumbnail_path(self, video: int) -> Path:
        """The JPEG strip of video ``video``."""
        v = self._check_index(video, self.num_videos, "video")
        return self._file(f"{THUMBS}/{v}.jpg")

    def thumbnail(self, video: int, *, as_array: bool = False):
        """The frame strip of video ``video``: a PIL image, or a uint8 array
        ``[S, n * S, 3]`` with ``as_array`` (S = ``thumb_size``, n = ``thumb_counts[video]``)."""
        from PIL import Image

        with Image.open(self.thumbnail_path(video)) as im:
            image = im.convert("RGB")
            image.load()
        if as_array:
            return _read_only(np.asarray(image))
        return image

    def thumbnail_frames(self, video: int) -> np.ndarray:
        """The sampled frames of video ``video`` as uint8 ``[n, S, S, 3]``."""
        strip = np.asarray(self.thumbnail(video, as_array=True))
        s = self.thumb_size
        n = strip.shape[1] // s
        return _read_only(np.stack([strip[:, i * s : (i + 1) * s] for i in range(n)]))

    # ------------------------------------------------------------------ SynthVTT
    @property
    def data_root(self) -> Path | None:
        """The dataset root (as passed to :meth:`load` or recorded), None when not found."""
        return resolve_data_root(self.meta, self._data_root)

    def synthvtt_meta(self) -> SynthVTTSplit | None:
        """SynthVTT ground truth aligned with this bundle's captions and videos.

        Returns None when the dataset is not SynthVTT.

        Raises:
            FileNotFoundError: the dataset root or its meta file is not found.
        """
        if self.dataset != "synthvtt":
            return None
        root = self.data_root
        if root is None:
            raise FileNotFoundError(
                f"SynthVTT root {self.meta.get('data_root')} not found; pass data_root to "
                f"Bundle.load"
            )
        return _synthvtt_split(self, root)


def _synthvtt_split(bundle: Bundle, root: Path) -> SynthVTTSplit:
    from tvr.data.synthvtt import load_meta

    meta = load_meta(root)
    data = json.loads((root / "MSRVTT_data.json").read_text(encoding="utf-8"))
    by_text: dict[tuple[str, str], list[int]] = {}
    for s in data.get("sentences", []):
        by_text.setdefault((str(s["video_id"]), str(s["caption"])), []).append(int(s["sen_id"]))
    captions: list[dict[str, Any] | None] = []
    for text, v in zip(bundle.captions, bundle.text_to_video, strict=True):
        ids = by_text.get((bundle.video_ids[int(v)], text))
        entry = None
        while ids:
            sid = ids.pop(0)
            c = meta["captions"].get(str(sid))
            if c is not None and c["split"] == bundle.split:
                entry = dict(c, sen_id=sid)
                break
        captions.append(entry)
    missing = [vid for vid in bundle.video_ids if vid not in meta["videos"]]
    if missing:
        raise BundleError(
            f"{root}: synthvtt_meta.json has no entry for bundle videos {missing[:5]}; the "
            f"bundle was exported from another dataset"
        )
    return SynthVTTSplit(
        params=dict(meta["params"]),
        vocabulary=dict(meta.get("vocabulary", {})),
        videos=[dict(meta["videos"][vid]) for vid in bundle.video_ids],
        captions=captions,
    )


def encode_jpeg(strip: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a uint8 ``[H, W, 3]`` image (used for thumbnail strips)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(strip)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()
