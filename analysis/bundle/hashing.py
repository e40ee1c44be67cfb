"""Content hashes of what a bundle was built from: the run's checkpoint files and the
dataset's annotation files and videos (``sources.json``).

Hashes are memoised per process on (path, inode, size, mtime, ctime), so checking many bundles
against the same checkpoint or dataset hashes each file once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from analysis.bundle.errors import BundleError

CHECKPOINT_FILES: tuple[str, ...] = ("config.json", "model.safetensors")
# hashed too when the run has them: the backbone architecture and the run's own tokenizer
OPTIONAL_CHECKPOINT_FILES: tuple[str, ...] = ("encoder.json", "tokenizer")
ANNOTATION_SUFFIXES: tuple[str, ...] = (
    ".json", ".jsonl", ".csv", ".tsv", ".txt", ".pkl", ".pickle", ".yaml", ".yml",
)

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
        return digest_json({f.relative_to(p).as_posix(): file_sha256(f) for f in files})
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


def digest_json(obj: Any) -> str:
    """sha256 of the canonical JSON (sorted keys) of ``obj``."""
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
    annotations_digest = digest_json(sources["annotations"])
    videos_digest = digest_json(sources["videos"])
    return {
        "digest": digest_json([annotations_digest, videos_digest]),
        "annotations_digest": annotations_digest,
        "videos_digest": videos_digest,
        "num_annotation_files": len(sources["annotations"]),
        "num_videos": len(sources["videos"]),
    }


def diff_sources(
    recorded: Mapping[str, Any], current: Mapping[str, Any], root: Path
) -> list[str]:
    """What differs between recorded and current :func:`dataset_sources`, one sentence each."""
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

