"""Cached loaders: every big object a page needs is loaded once per process and shared.

Keys are stable ids (path strings plus a file stamp: ``st_mtime_ns`` and size), never big
arrays, so a changed file is a new cache entry and an unchanged one is a hit.

- :func:`load_bundle` -> :class:`analysis.bundle.Bundle` (one process-wide
  :class:`app.bundle_cache.ByteBoundedCache`: at most :data:`BUNDLE_CACHE_ENTRIES` bundles
  holding :data:`BUNDLE_CACHE_BYTES` of memory together, least recently used dropped first;
  the tensors are read-only memory maps, shared by every session, and count nothing).
- :func:`live_search` -> :class:`analysis.query.LiveSearch` for a run and its bundle (the run's
  text tower and the bundle's gallery; ``st.cache_resource``).
- :func:`point_placer` -> :class:`analysis.projection.PointPlacer` for a bundle's pooled texts
  and videos on one map method (``st.cache_resource``).
- :func:`live_results` -> :class:`app.components.live_results.LiveResults`: one live query's
  hits and figures for a run, per text and top-k (``st.cache_resource``: figures are big to
  copy, and read-only once built).
- :func:`model_card` -> :class:`analysis.cards.ModelCard` of a run (``st.cache_data``: small).
- :func:`scan_bundles` -> the bundles under the checkpoints root with their freshness
  (``st.cache_data`` with a short ttl; :func:`clear_scan` forgets it after an export).

Every path goes through :meth:`app.state.AppRoots.check` before it is opened.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from analysis.bundle import Bundle, BundleInfo, bundle_status, find_bundles, meta_dict
from analysis.bundle import bundle_stamp as _bundle_stamp
from app.bundle_cache import ByteBoundedCache
from app.state import AppRoots

logger = logging.getLogger(__name__)

SCAN_TTL_S = 30  # seconds a bundle scan (with its freshness checks) is reused
BUNDLE_CACHE_ENTRIES = 8  # bundles kept loaded at most
# bytes the loaded bundles may hold in memory together (memory-mapped tensors count nothing);
# DRGI_LAB_BUNDLE_CACHE_MB overrides it
BUNDLE_CACHE_BYTES = int(float(os.environ.get("DRGI_LAB_BUNDLE_CACHE_MB", "1024")) * 1e6)


def file_stamp(path: str | Path) -> tuple[int, int]:
    """``(st_mtime_ns, st_size)`` of a file, ``(-1, -1)`` when it does not exist."""
    try:
        st_ = Path(path).stat()
    except FileNotFoundError:
        return (-1, -1)
    return (int(st_.st_mtime_ns), int(st_.st_size))


def bundle_stamp(bundle_dir: str | Path) -> tuple[tuple[int, int], ...]:
    """A cache key part that changes when a bundle or its run's checkpoint is rewritten
    (:func:`analysis.bundle.bundle_stamp`)."""
    return _bundle_stamp(bundle_dir)


@st.cache_resource(show_spinner=False)
def bundle_cache() -> ByteBoundedCache:
    """The process-wide bundle cache (one per server, shared by every session)."""
    return ByteBoundedCache(BUNDLE_CACHE_BYTES, BUNDLE_CACHE_ENTRIES,
                            lambda b: b.resident_bytes())


def _bundle(path: str, stamp: tuple, allow_stale: bool, data_root: str | None) -> Bundle:
    def load() -> Bundle:
        with st.spinner("Loading the analysis bundle…"):
            return Bundle.load(path, check=True, allow_stale=allow_stale, data_root=data_root)

    return bundle_cache().get((path, stamp, allow_stale, data_root), load)


def load_bundle(
    roots: AppRoots,
    bundle_dir: str | Path,
    *,
    allow_stale: bool = True,
    data_root: str | Path | None = None,
) -> Bundle:
    """Load (once per process and file version) the bundle at ``bundle_dir``.

    Raises:
        app.state.PathOutsideRootsError: the bundle (or ``data_root``) lies outside the roots.
        analysis.bundle.BundleError: no usable bundle there (or a stale one when
            ``allow_stale`` is False).
    """
    path = roots.check(bundle_dir)
    # always a dataset root inside the roots, so the freshness check never reads elsewhere
    root = roots.check(data_root) if data_root is not None else dataset_root(
        roots, read_meta(path))
    return _bundle(str(path), bundle_stamp(path), bool(allow_stale), str(root))


@st.cache_resource(max_entries=4, show_spinner="Loading the text tower for live search…")
def _live_search(run_dir: str, bundle_dir: str, stamp: tuple, _bundle_obj: Bundle) -> Any:
    from analysis.query import live_search_for_bundle

    return live_search_for_bundle(run_dir, _bundle_obj)


def live_search(roots: AppRoots, bundle: Bundle) -> Any:
    """The :class:`analysis.query.LiveSearch` of ``bundle``'s run over ``bundle``'s gallery.

    Loads the run's checkpoint (text tower and head) once per process and checkpoint version.

    Raises:
        ValueError: the bundle was exported from another checkpoint than the run's current one.
        app.state.PathOutsideRootsError: the run's tokenizer lies in a folder outside the roots.
    """
    run = roots.check(bundle.run_dir)
    path = roots.check(bundle.path)
    _check_tokenizer_source(roots, run)
    return _live_search(str(run), str(path), bundle_stamp(path), bundle)


def _check_tokenizer_source(roots: AppRoots, run: Path) -> None:
    """Refuse a run whose tokenizer would be read from a local folder outside the roots (a
    run without its own ``tokenizer/`` falls back to ``model.tokenizer`` or
    ``model.pretrained``)."""
    if (run / "tokenizer").is_dir():
        return
    try:
        model = json.loads((run / "config.json").read_text(encoding="utf-8")).get("model", {})
    except (OSError, ValueError, AttributeError):
        return  # load_pretrained reports a broken config with the file's name
    source = (model.get("tokenizer") or model.get("pretrained") or "") if isinstance(
        model, dict) else ""
    if source and Path(source).expanduser().exists():
        roots.check(source)


@st.cache_resource(max_entries=8, show_spinner=False)
def _placer(bundle_dir: str, stamp: tuple, method: str, _bundle_obj: Bundle) -> Any:
    from analysis.projection import PointPlacer
    from analysis.query import pooled_map_points

    x, coords = pooled_map_points(_bundle_obj, method)
    return PointPlacer(x, coords)


def point_placer(bundle: Bundle, method: str) -> Any:
    """A :class:`analysis.projection.PointPlacer` on ``bundle``'s pooled texts and videos in
    the map of ``method`` (to drop a new query onto the embeddings map)."""
    return _placer(str(bundle.path), bundle_stamp(bundle.path), method, bundle)


@st.cache_resource(max_entries=16, show_spinner=False)
def _live_results(run_dir: str, bundle_dir: str, stamp: tuple, text: str, k: int,
                  _search: Any, _bundle_obj: Bundle) -> Any:
    from app.components.live_results import live_results as build

    return build(_search, _bundle_obj, text, k, lambda method: point_placer(_bundle_obj, method))


def live_results(roots: AppRoots, bundle: Bundle, text: str, k: int) -> Any:
    """The :class:`app.components.live_results.LiveResults` of query ``text`` (top ``k``) in
    ``bundle``'s run: searched, and its figures built, once per process, bundle version, text
    and k (shared by sessions: read-only).

    Raises:
        as :func:`live_search`.
    """
    search = live_search(roots, bundle)
    path = roots.check(bundle.path)
    return _live_results(str(bundle.run_dir), str(path), bundle_stamp(path), str(text), int(k),
                         search, bundle)


@st.cache_data(max_entries=32, show_spinner=False)
def _model_card(run_dir: str, stamp: tuple) -> Any:
    from analysis.cards import model_card as build

    return build(run_dir)


def model_card(roots: AppRoots, run_dir: str | Path) -> Any:
    """The :class:`analysis.cards.ModelCard` of a run (config summary and parameter counts)."""
    run = roots.check(run_dir)
    return _model_card(str(run), (file_stamp(run / "config.json"),
                                  file_stamp(run / "model.safetensors")))


def dataset_root(roots: AppRoots, meta: dict[str, Any]) -> Path:
    """The dataset root of a bundle, always inside the app's roots.

    Candidates in order: the recorded absolute root, the recorded root, ``<data>/<dataset>``;
    the first existing folder inside the roots wins. When none does, the result is
    ``<data>/<dataset>`` (absent), so a freshness check reports the dataset as not found
    instead of reading outside the roots.
    """
    dataset = str(meta.get("dataset", ""))
    candidates = [meta.get("data_root_abs"), meta.get("data_root")]
    candidates.append(roots.data / dataset if dataset else None)
    for c in candidates:
        if not c:
            continue
        try:
            path = roots.check(c)
        except PermissionError:
            continue
        if path.is_dir():
            return path
    return roots.data / (dataset or "dataset")


@st.cache_data(ttl=SCAN_TTL_S, show_spinner="Scanning the checkpoints for bundles…")
def _scan(checkpoints: str, data: str) -> list[BundleInfo]:
    roots = AppRoots(Path(checkpoints), Path(data))
    out = []
    for info in find_bundles(checkpoints, check=False):
        meta = read_meta(info.path)
        root = dataset_root(roots, meta)
        out.append(replace(info, status=bundle_status(info.path, root)))
    return out


def read_meta(bundle_dir: str | Path) -> dict[str, Any]:
    """``meta.json`` of a bundle as a dict (empty when missing or unreadable;
    :func:`analysis.bundle.meta_dict`)."""
    return meta_dict(bundle_dir)


def scan_bundles(roots: AppRoots) -> list[BundleInfo]:
    """Every bundle under the checkpoints root with its freshness (reused for 30 s)."""
    return _scan(str(roots.checkpoints), str(roots.data))


def clear_scan() -> None:
    """Forget the bundle scan (after an export wrote a bundle)."""
    _scan.clear()


def _bundle_key(bundle: Bundle) -> tuple[str, tuple[tuple[int, int], ...]]:
    return (str(bundle.path), bundle_stamp(bundle.path))


@st.cache_data(max_entries=16, show_spinner="Running the paired significance tests…")
def _paired(key: tuple, _pairs: dict[str, tuple[Any, Any]]) -> Any:
    from analysis.stats import paired_summary

    return paired_summary(_pairs)


def paired_stats(base: Bundle, drgi: Bundle) -> Any:
    """:func:`analysis.stats.paired_summary` of DRGI vs base on t2v and v2t (cached per
    bundle pair and version)."""
    pairs = {"t2v": (base.ranks.t2v, drgi.ranks.t2v), "v2t": (base.ranks.v2t, drgi.ranks.v2t)}
    return _paired((_bundle_key(base), _bundle_key(drgi)), pairs)


def paired_stats_on_common(base: Bundle, drgi: Bundle, common: Any) -> Any:
    """:func:`paired_stats` on the queries both bundles share (``common``: the
    :class:`analysis.coverage.CommonComparison` of :func:`common_comparison`)."""
    pairs = {d: (common.ranks_a[d], common.ranks_b[d]) for d in ("t2v", "v2t")}
    return _paired((_bundle_key(base), _bundle_key(drgi), "common"), pairs)


@st.cache_data(max_entries=16, show_spinner=False)
def _common(key: tuple, _a: Bundle, _b: Bundle) -> Any:
    from analysis.coverage import compare_on_common

    return compare_on_common(_a, _b)


def common_comparison(base: Bundle, drgi: Bundle) -> Any:
    """:func:`analysis.coverage.compare_on_common` of the two bundles (cached per pair).

    Raises:
        ValueError: the bundles share no caption.
    """
    return _common((_bundle_key(base), _bundle_key(drgi)), base, drgi)


@st.cache_data(max_entries=16, show_spinner=False)
def _comparison(key: tuple, direction: str, _ra: Any, _rb: Any, _names: list[str]) -> Any:
    from analysis.rankings import compare_rankings

    return compare_rankings(_ra, _rb, captions=_names)


def comparison(base: Bundle, drgi: Bundle, direction: str) -> Any:
    """:func:`analysis.rankings.compare_rankings` of DRGI vs base for ``"t2v"`` (queries are
    captions, named by their text) or ``"v2t"`` (queries are videos, named by id); cached."""
    if direction not in ("t2v", "v2t"):
        raise ValueError(f"direction={direction!r}: expected 't2v' or 'v2t'")
    names = list(base.captions) if direction == "t2v" else list(base.video_ids)
    return _comparison((_bundle_key(base), _bundle_key(drgi)), direction,
                       getattr(base.ranks, direction), getattr(drgi.ranks, direction), names)


@st.cache_resource(max_entries=16, show_spinner="Ranking each caption's negatives…")
def _negatives(key: tuple, _bundle_obj: Bundle) -> Any:
    from analysis.ranked_negatives import bundle_negatives

    return bundle_negatives(_bundle_obj)


def ranked_negatives(bundle: Bundle) -> Any:
    """Each caption's ranked negatives (:class:`analysis.ranked_negatives.RankedNegatives`):
    the export's (memory-mapped), or for an older bundle ranked once per process and bundle
    version from the whole similarity. Hard negatives, margins, failure lists and hubness are
    read from them."""
    return _negatives(_bundle_key(bundle), bundle)


# a resource, not data: st.cache_data would unpickle a fresh copy on every call (~1 s per
# table at 59,800 captions, and the Failures and Queries pages ask for two per rerun)
@st.cache_resource(max_entries=16, show_spinner="Listing failed queries…")
def _failures(key: tuple, k: int, top: int, _bundle_obj: Bundle) -> Any:
    from analysis.failures import bundle_failures, failures_at

    if k > 1:  # the threshold-1 table's rows that still fail: nothing typed again
        return failures_at(failure_table(_bundle_obj, 1, top), k)
    return bundle_failures(_bundle_obj, k=k, top=top, negatives=ranked_negatives(_bundle_obj))


def failure_table(bundle: Bundle, k: int = 1, top: int = 5) -> Any:
    """:func:`analysis.failures.bundle_failures` of a bundle (cached per bundle, k, top; a
    threshold above 1 filters the threshold-1 table, :func:`analysis.failures.failures_at`).

    The one cached table itself, shared by every rerun and session: read it, or ``.copy()``
    it before changing it."""
    return _failures(_bundle_key(bundle), int(k), int(top), bundle)


@st.cache_data(max_entries=16, show_spinner="Joining the per-query table…")
def _query_table(key: tuple, k: int, _base: Bundle, _drgi: Bundle, _fb: Any, _fd: Any,
                 _meta: Any) -> Any:
    from analysis.query_table import bundle_query_table

    return bundle_query_table(_base, _drgi, k=k, failures_base=_fb, failures_drgi=_fd,
                              synthvtt=_meta, negatives_base=ranked_negatives(_base),
                              negatives_drgi=ranked_negatives(_drgi))


def query_table(base: Bundle, drgi: Bundle, k: int = 1, synthvtt: Any = None) -> Any:
    """:func:`analysis.query_table.bundle_query_table` of the pair at failure threshold ``k``
    (cached per bundle pair, version and ``k``; ``synthvtt``: the split's SynthVTT ground truth
    for the family/edit columns, or None).

    Raises:
        ValueError: the bundles hold different captions or videos.
    """
    k = int(k)
    return _query_table((_bundle_key(base), _bundle_key(drgi), synthvtt is not None), k,
                        base, drgi, failure_table(base, k=k), failure_table(drgi, k=k), synthvtt)
