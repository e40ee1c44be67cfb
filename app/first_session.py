"""The first session's work, computed before anyone asks: for the Overview the bundle scan,
the bundles the sidebar opens on, the paired tests and the model cards; then what the next
pages share (the split's SynthVTT ground truth, whose parse takes seconds, each run's failure
table and the joined per-query table of the Queries page); last the live search's text towers
and map placers.

:func:`app.warmup.start_server_warm_up` runs the steps of :func:`warm_first_session` in a
background thread when ``python -m app`` starts, so the first browser session finds these in
the app's caches (the same cached loaders the pages call, with the same keys) instead of
computing them while the user waits (:func:`warm_live_search` after the live search's imports). What the sidebar opens on comes from the sidebar's own
default functions, so the two cannot disagree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from analysis.bundle import bundle_dir_for
from app import resources
from app.components.sidebar import (
    NO_RUN,
    default_base,
    default_drgi,
    list_runs,
    split_choices,
    split_data_root,
)
from app.components.synthvtt import alignment_sources, split_alignment, synthvtt_split
from app.selection import same_queries
from app.state import AppRoots

logger = logging.getLogger(__name__)


def _timed(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, float, Any]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return name, time.perf_counter() - t0, out


def _default_bundles(roots: AppRoots, infos: list) -> Iterator[tuple[str, float, Any]]:
    """Load the bundles the sidebar opens on: ``(step, seconds, bundle)`` per bundle there."""
    runs = list_runs(roots.checkpoints)
    if not runs:
        return
    base_name = default_base(roots, runs)
    drgi_name = default_drgi(roots, runs, base_name)
    base_run = roots.check(roots.checkpoints / base_name)
    drgi_run = None if drgi_name == NO_RUN else roots.check(roots.checkpoints / drgi_name)
    splits, index = split_choices(infos, base_run, drgi_run)
    if not splits:
        return
    dataset, _, split = splits[index].rpartition("-")
    data_root = split_data_root(roots, infos, dataset, split)
    for run in (base_run, drgi_run):
        path = bundle_dir_for(run, dataset, split) if run is not None else None
        info = next((i for i in infos if i.path == path), None)
        if info is None or info.status is None or info.status.state == "missing":
            continue  # the sidebar offers an export here; nothing to load
        yield _timed(f"bundle {run.name}", resources.load_bundle, roots, path,
                     allow_stale=True, data_root=data_root)


def warm_first_session(roots: AppRoots) -> Iterator[tuple[str, float]]:
    """Fill the caches a new session reads with the sidebar's default choice, one step per
    ``next()`` (the caller may let a session run between two steps): :func:`warm_overview`,
    then :func:`warm_next_pages`.

    Yields:
        ``(step, seconds)``: ``scan``, ``bundle <run>``, ``paired tests``, ``card <run>``,
        ``SynthVTT ground truth <run>``, ``failures <run>`` (the failure table at threshold
        1), ``query table``, ``attention-event alignment <run> <source>``; steps that do
        not apply (no runs, no bundle, a single run, another dataset) are left out.
    """
    yield from warm_overview(roots)
    yield from warm_next_pages(roots)


def warm_overview(roots: AppRoots) -> Iterator[tuple[str, float]]:
    """What the Overview, the first page, reads: ``scan``, ``bundle <run>``, ``paired
    tests``, ``card <run>`` (see :func:`warm_first_session`)."""
    if not list_runs(roots.checkpoints):
        return
    name, seconds, infos = _timed("scan", resources.scan_bundles, roots)
    yield name, seconds
    bundles = []
    for name, seconds, bundle in _default_bundles(roots, infos):
        bundles.append(bundle)
        yield name, seconds
    pair = len(bundles) == 2 and same_queries(*bundles)
    if len(bundles) == 2:
        base, drgi = bundles
        if pair:
            yield _timed("paired tests", resources.paired_stats, base, drgi)[:2]
        else:
            common = resources.common_comparison(base, drgi)
            yield _timed("paired tests", resources.paired_stats_on_common, base, drgi,
                         common)[:2]
    for bundle in bundles:
        yield _timed(f"card {bundle.run_name}", resources.model_card, roots, bundle.run_dir)[:2]


def warm_next_pages(roots: AppRoots) -> Iterator[tuple[str, float]]:
    """What the next pages share: ``SynthVTT ground truth <run>``, ``failures <run>``,
    ``query table``, ``attention-event alignment <run> <source>`` (see
    :func:`warm_first_session`; the bundles come from the caches :func:`warm_overview`
    filled)."""
    if not list_runs(roots.checkpoints):
        return
    bundles = [b for *_, b in _default_bundles(roots, resources.scan_bundles(roots))]
    if not bundles:
        return
    pair = len(bundles) == 2 and same_queries(*bundles)
    meta = None
    metas = []
    for bundle in bundles:  # Attention reads each run's (aligned with its bundle's videos)
        name, seconds, (split_meta, _) = _timed(f"SynthVTT ground truth {bundle.run_name}",
                                                synthvtt_split, roots, bundle)
        if split_meta is None:
            break  # not SynthVTT, or its dataset is not there
        meta = meta or split_meta
        metas.append((bundle, split_meta))
        yield name, seconds
    if pair:  # the Queries page opens at "fails when rank > 1"; Failures reads the same tables
        for bundle in bundles:  # one step each: a click waits for one table, not for the join
            yield _timed(f"failures {bundle.run_name}", resources.failure_table, bundle, 1)[:2]
        yield _timed("query table", resources.query_table, *bundles, k=1, synthvtt=meta)[:2]
    for bundle, split_meta in metas:  # the Attention page's summary over the split
        for _, source in alignment_sources(bundle):
            yield _timed(f"attention-event alignment {bundle.run_name} {source}",
                         split_alignment, bundle, split_meta, source)[:2]


def warm_live_search(roots: AppRoots) -> Iterator[tuple[str, float]]:
    """Load the text tower of each default bundle's run and the placer that puts a query on
    its map (what the first live query needs), one step per ``next()``.

    Yields:
        ``(step, seconds)``: ``text tower <run>``, ``map placer <run>`` per default bundle
        (a bundle without projections has no placer).
    """
    from app.components.live_results import map_method

    if not list_runs(roots.checkpoints):
        return
    bundles = [b for *_, b in _default_bundles(roots, resources.scan_bundles(roots))]
    for bundle in bundles:
        yield _timed(f"text tower {bundle.run_name}", resources.live_search, roots, bundle)[:2]
        method = map_method(bundle.projections.methods)  # the map the Live query page uses
        if method is not None:
            yield _timed(f"map placer {bundle.run_name}", resources.point_placer, bundle,
                         method)[:2]
