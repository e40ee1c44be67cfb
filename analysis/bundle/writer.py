"""Writing a bundle: :class:`BundleWriter`, the one writer of a bundle's files.

Writes are atomic at the folder level: the writer builds the bundle in a hidden sibling folder
(``.tmp-<bundle>-p<pid>@<host>-*``) and :meth:`BundleWriter.publish` renames it into place,
so a folder named ``<dataset>-<split>`` is always complete. An exception leaves no bundle
behind (:meth:`BundleWriter.discard`) and an older bundle untouched. A kill cannot clean up, so
:func:`clean_stale_work_dirs` removes the work folders of writers that no longer run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.bundle.files import (
    BUNDLE_FORMAT,
    CAPTIONS,
    DRGI_FILE,
    EMBEDDINGS,
    META,
    NEGATIVES,
    PROJECTIONS,
    RANKS,
    SIMILARITY,
    SOURCES,
    TEXT_FRAME,
    THUMBS,
    thumb_name,
)
from analysis.bundle.meta import BundleMeta

logger = logging.getLogger(__name__)

STALE_WORK_AGE_S = 3600.0  # an ownerless .tmp-*/.old-* work folder older than this is removed

# .tmp-<bundle>-p<pid>@<host>-<mkdtemp suffix>; older exports wrote no owner
_WORK_OWNER = re.compile(r"-p(\d+)@(.+)-[A-Za-z0-9_]+$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def _work_prefix(kind: str, name: str) -> str:
    """``.tmp-<bundle>-p<pid>@<host>-``: the owner of a work folder, for the stale check."""
    return f".{kind}-{name}-p{os.getpid()}@{_host()}-"


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_work_dirs(
    analysis_dir: str | Path, *, max_age_s: float = STALE_WORK_AGE_S, now: float | None = None
) -> list[Path]:
    """Remove the ``.tmp-*`` / ``.old-*`` folders interrupted exports left in a run's
    ``analysis/`` folder; returns what was removed.

    A folder whose name carries its owner (``-p<pid>@<host>-``, this module's writers) is
    stale when that process no longer runs on this host; a folder of another host, or without
    an owner (older exports), when it was last modified more than ``max_age_s`` ago.
    """
    folder = Path(analysis_dir)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for path in sorted(folder.iterdir()):
        if not path.is_dir() or not path.name.startswith((".tmp-", ".old-")):
            continue
        owner = _WORK_OWNER.search(path.name)
        if owner is not None and owner.group(2) == _host():
            stale = not _pid_running(int(owner.group(1)))
        else:
            try:
                stale = now - path.stat().st_mtime > max_age_s
            except FileNotFoundError:
                continue
        if stale:
            logger.warning("removing %s, left by an interrupted export", path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _make_readable(folder: Path) -> None:
    """mkdtemp and safetensors create owner-only modes; give the bundle the umask's modes."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _json_text(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, default=float) + "\n"


class BundleWriter:
    """Writes one bundle's files into a hidden work folder next to ``final``.

    Each ``write_*`` method writes one file (array layouts in :mod:`analysis.bundle`'s
    docstring); :meth:`write_meta` comes last, then :meth:`publish` (or :meth:`discard` on
    failure).

    Example:
        >>> w = BundleWriter(bundle_dir_for(run, "synthvtt", "test"))
        >>> w.write_similarity(sim); ...; w.write_meta(meta); w.publish()
    """

    def __init__(self, final: str | Path) -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=_work_prefix("tmp", self.final.name),
                                          dir=self.final.parent))

    # ------------------------------------------------------------------ files
    def write_captions(self, captions: Mapping[str, Any]) -> None:
        """``captions.json``: captions, their videos, word labels, video ids/paths/windows,
        frame timestamps."""
        (self.path / CAPTIONS).write_text(_json_text(captions), encoding="utf-8")

    def write_sources(self, sources: Mapping[str, Any]) -> None:
        """``sources.json``: ``data_root``, annotation hashes and video stats."""
        (self.path / SOURCES).write_text(_json_text(sources), encoding="utf-8")

    def write_similarity(self, sim: np.ndarray) -> None:
        """``similarity.npy``: ``[Nt, Nv]`` float32."""
        np.save(self.path / SIMILARITY, sim)

    def write_ranks(self, ranks: Mapping[str, np.ndarray]) -> None:
        """``ranks.npz``: ``t2v``, ``t2v_tied`` ``[Nt]``, ``v2t``, ``v2t_tied`` ``[Nv]``,
        ``text_to_video`` ``[Nt]`` (+ ``v2t_any``, ``v2t_any_tied``)."""
        with open(self.path / RANKS, "wb") as fh:
            np.savez(fh, **ranks)

    def write_embeddings(self, tensors: Mapping[str, np.ndarray | None]) -> None:
        """``embeddings.safetensors``; None entries (absent token weights) are left out."""
        from safetensors.numpy import save_file

        save_file({k: v for k, v in tensors.items() if v is not None},
                  str(self.path / EMBEDDINGS),
                  metadata={"format": f"drgi-lab-bundle-{BUNDLE_FORMAT}"})

    def write_text_frame(self, weights: np.ndarray) -> None:
        """``text_frame.npy``: ``[Nt, T]`` float32."""
        np.save(self.path / TEXT_FRAME, weights)

    def write_drgi(self, arrays: Mapping[str, np.ndarray]) -> None:
        """``drgi.safetensors``: attention, node masks and per-query scores."""
        from safetensors.numpy import save_file

        save_file(dict(arrays), str(self.path / DRGI_FILE))

    def write_negatives(self, arrays: Mapping[str, np.ndarray]) -> None:
        """``negatives.safetensors``: each caption's hardest negatives
        (:meth:`analysis.ranked_negatives.RankedNegatives.arrays`)."""
        from safetensors.numpy import save_file

        save_file(dict(arrays), str(self.path / NEGATIVES))

    def write_projections(self, arrays: Mapping[str, np.ndarray]) -> None:
        """``projections.npz``: ``"<method>_<kind>"`` ``[N_kind, 2]``, word_ids, frame_ids, and
        ``fit_<kind>`` (rows fitted) when the maps were fitted on a sample."""
        with open(self.path / PROJECTIONS, "wb") as fh:
            np.savez(fh, **arrays)

    def write_thumbnails(self, jpegs: Sequence[bytes]) -> None:
        """``thumbs/<v>.jpg``, one JPEG strip per video."""
        (self.path / THUMBS).mkdir()
        for v, jpeg in enumerate(jpegs):
            (self.path / thumb_name(v)).write_bytes(jpeg)

    def file_sizes(self) -> dict[str, int]:
        """``meta.json``'s ``files``: the size of every file written so far, and the number of
        thumbnail strips under ``thumbs``."""
        files = {p.relative_to(self.path).as_posix(): p.stat().st_size
                 for p in sorted(self.path.iterdir()) if p.is_file()}
        thumbs = self.path / THUMBS
        if thumbs.is_dir():
            files[THUMBS] = sum(1 for _ in thumbs.glob("*.jpg"))
        return files

    def write_meta(self, meta: BundleMeta) -> None:
        """``meta.json`` (last: it marks the bundle complete)."""
        (self.path / META).write_text(_json_text(meta.to_json(), indent=2), encoding="utf-8")

    # ------------------------------------------------------------------ publishing
    def publish(self) -> Path:
        """Move the finished work folder to ``final``, replacing an older bundle."""
        _make_readable(self.path)
        old = None
        if self.final.exists():
            old = Path(tempfile.mkdtemp(prefix=_work_prefix("old", self.final.name),
                                        dir=self.final.parent))
            os.replace(self.final, old / self.final.name)
        os.replace(self.path, self.final)
        if old is not None:
            shutil.rmtree(old)
        return self.final

    def discard(self) -> None:
        """Remove the work folder (after a failure)."""
        shutil.rmtree(self.path, ignore_errors=True)
