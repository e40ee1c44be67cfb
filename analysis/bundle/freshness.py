"""Is a bundle still what its run and dataset would export? :func:`bundle_status`, and the
bundles of a checkpoints folder (:func:`find_bundles`).

``meta.json`` records the sha256 of the run's ``model.safetensors``, ``config.json``,
``encoder.json`` and ``tokenizer/`` folder, the size of every bundle file (a truncated file
makes the bundle unusable, ``"missing"``), and a digest of the dataset files in
``sources.json``. :func:`bundle_status` recomputes them: a changed checkpoint, a changed, added
or removed annotation file, or a video whose size or mtime changed makes the bundle
``"stale"``. Any annotation file under the dataset root counts (suffixes in
:data:`~analysis.bundle.hashing.ANNOTATION_SUFFIXES`), not only the split's: conservative,
never silently wrong. A dataset root that cannot be found cannot be verified and also counts
as stale (pass ``data_root=`` where the data moved).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from analysis.bundle.errors import BundleError
from analysis.bundle.files import ANALYSIS_DIR, BUNDLE_FORMAT, META, SOURCES, THUMBS
from analysis.bundle.hashing import (
    CHECKPOINT_FILES,
    OPTIONAL_CHECKPOINT_FILES,
    dataset_sources,
    diff_sources,
    path_digest,
    sources_digest,
)
from analysis.bundle.meta import BundleMeta, read_json

logger = logging.getLogger(__name__)

State = Literal["fresh", "stale", "missing"]


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


def resolve_data_root(
    meta: BundleMeta | Mapping[str, Any], data_root: str | Path | None = None
) -> Path | None:
    """The dataset root of a bundle: ``data_root`` if given, else the recorded absolute path,
    else the recorded (possibly relative) path; None when none of them exists."""
    if data_root is not None:
        p = Path(data_root)
        return p if p.is_dir() else None
    if isinstance(meta, BundleMeta):
        recorded = (meta.data_root_abs, meta.data_root)
    else:
        recorded = (meta.get("data_root_abs"), meta.get("data_root"))
    for value in recorded:
        if value and Path(value).is_dir():
            return Path(value)
    return None


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (-1, -1)
    return (int(st.st_mtime_ns), int(st.st_size))


def bundle_stamp(bundle_dir: str | Path) -> tuple[tuple[int, int], ...]:
    """A cheap change stamp of a bundle: ``(st_mtime_ns, st_size)`` (``(-1, -1)`` when absent)
    of its ``meta.json`` (rewritten by every export) and of its run's checkpoint files. A cache
    key part, not a freshness check (:func:`bundle_status` hashes)."""
    b = Path(bundle_dir)
    run = b.parent.parent
    return (
        _stamp(b / META),
        _stamp(run / "model.safetensors"),
        _stamp(run / "config.json"),
        _stamp(run / "encoder.json"),
        _stamp(run / "tokenizer" / "tokenizer.json"),
    )


def missing_reasons(bundle_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """Read ``meta.json`` (as JSON, any format) and check that every listed file exists with
    its recorded size; returns (the JSON or None, what is missing)."""
    if not bundle_dir.is_dir():
        return None, [f"no bundle folder at {bundle_dir}"]
    meta_path = bundle_dir / META
    if not meta_path.is_file():
        return None, [f"{meta_path} is missing (incomplete bundle)"]
    try:
        meta = read_json(meta_path)
    except BundleError as exc:
        return None, [str(exc)]
    if not isinstance(meta, dict) or not meta.get("complete"):
        return None, [f"{meta_path} does not mark the bundle complete"]
    reasons = []
    files = meta.get("files", {})
    for name, recorded in (files.items() if isinstance(files, dict) else ()):
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
    from tvr.metric_ties import OPTIMISTIC_SUFFIX, tied_directions

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


def read_sources(bundle_dir: str | Path) -> dict[str, Any]:
    """``sources.json`` of a bundle (annotation hashes, video stats), shape-checked.

    Raises:
        BundleError: missing, not JSON, or not the expected shape (naming the file).
    """
    path = Path(bundle_dir) / SOURCES
    try:
        sources = read_json(path)
        [str(v[0]) for v in sources["videos"]]  # noqa: B018  (shape check)
        if not isinstance(sources.get("annotations"), dict):
            raise TypeError("'annotations' is not an object")
    except (KeyError, TypeError, IndexError, AttributeError, OSError) as exc:
        raise BundleError(f"{path} is malformed ({exc})") from None
    return sources


def bundle_status(bundle_dir: str | Path, data_root: str | Path | None = None) -> BundleStatus:
    """Check a bundle against its run's checkpoint and its dataset.

    Args:
        bundle_dir: ``<run>/analysis/<dataset>-<split>``; the run is its grandparent folder.
        data_root: the dataset root, when it is not where the export found it.

    Returns:
        :class:`BundleStatus`: ``"missing"`` (no complete bundle, or a malformed
        ``meta.json``), ``"stale"`` (format, checkpoint or dataset changed, the dataset
        cannot be found, or tied ranks from the old optimistic tie rule) or ``"fresh"``, with
        the reasons.
    """
    bundle_dir = Path(bundle_dir)
    raw, reasons = missing_reasons(bundle_dir)
    if raw is None or reasons:
        return BundleStatus("missing", tuple(reasons))
    if raw.get("format") != BUNDLE_FORMAT:
        return BundleStatus(
            "stale",
            (f"bundle format {raw.get('format')!r}, this code reads format {BUNDLE_FORMAT}",),
        )
    try:
        meta = BundleMeta.from_json(raw, bundle_dir / META)
    except BundleError as exc:
        return BundleStatus("missing", (str(exc),))
    stale: list[str] = []
    old_rule = _old_tie_rule_reason(meta.metrics)
    if old_rule:
        stale.append(old_rule)
    run_dir = bundle_dir.parent.parent
    recorded = meta.checkpoint_hash or {}
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
        where = data_root if data_root is not None else meta.data_root
        stale.append(
            f"dataset root {where} not found, so the dataset cannot be verified (pass data_root)"
        )
    else:
        try:
            sources = read_sources(bundle_dir)
        except BundleError as exc:
            return BundleStatus("missing", (str(exc),))
        current = dataset_sources(root, [str(v[0]) for v in sources["videos"]])
        recorded_digest = meta.dataset_hash.digest if meta.dataset_hash else None
        if sources_digest(current)["digest"] != recorded_digest:
            stale.extend(diff_sources(sources, current, root) or ["dataset content changed"])
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
                try:  # any format: an old bundle is listed (as stale) under its own name
                    meta = read_json(meta_path)
                    dataset, split = str(meta["dataset"]), str(meta["split"])
                except (BundleError, KeyError, TypeError):
                    logger.warning("bundle %s: unreadable %s", bdir, META)
            status = None
            if check:
                status = bundle_status(bdir, (data_roots or {}).get(dataset))
            out.append(BundleInfo(run.name, dataset, split, bdir, status))
    return out
