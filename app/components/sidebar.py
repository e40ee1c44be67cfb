"""The sidebar: pick the base run, the DRGI run and the dataset split; export missing bundles.

The three pickers are bound to the URL (``?base=…&drgi=…&split=…``), so a view can be shared as
a link. Runs are the folders under the checkpoints root holding ``config.json`` and
``model.safetensors``; splits are the ``<dataset>-<split>`` bundles exported for either picked
run, plus each run's own evaluation split. A missing bundle gets an export button; a stale one
(checkpoint or dataset changed since the export) is still loaded, with a warning and a
re-export button.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import streamlit as st

from analysis.bundle import BundleError, BundleInfo, bundle_dir_for
from app import resources
from app.components.export import export_button
from app.selection import Selection
from app.state import KEY_BASE_RUN, KEY_DRGI_RUN, KEY_SPLIT, AppRoots, PathOutsideRootsError
from app.urlstate import check_choice, remember

logger = logging.getLogger(__name__)

NO_RUN = "(none)"


def list_runs(checkpoints: Path) -> list[str]:
    """Names of the run folders (``config.json`` + ``model.safetensors``) under the root."""
    if not checkpoints.is_dir():
        return []
    return sorted(
        p.name for p in checkpoints.iterdir()
        if p.is_dir() and not p.name.startswith(".")
        and (p / "config.json").is_file() and (p / "model.safetensors").is_file()
    )


def run_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json`` as a dict (empty when unreadable)."""
    try:
        cfg = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _has_drgi(run_dir: Path) -> bool:
    """Whether the run trained with DRGI: ``drgi`` in its ``objectives`` (a config.json of
    the old shape: ``drgi.enable``)."""
    cfg = run_config(run_dir)
    objectives = cfg.get("objectives")
    if isinstance(objectives, list):
        return any(isinstance(o, dict) and o.get("name") == "drgi" for o in objectives)
    drgi = cfg.get("drgi", {})
    return bool(isinstance(drgi, dict) and drgi.get("enable"))


def _default_index(options: list[str], preferred: list[str]) -> int:
    for name in preferred:
        if name in options:
            return options.index(name)
    return 0


def default_base(roots: AppRoots, runs: list[str]) -> str:
    """The base run the sidebar opens on: the first named "…base…", else the first without
    DRGI, else the first (``runs`` not empty)."""
    preferred = [r for r in runs if "base" in r] + [
        r for r in runs if not _has_drgi(roots.checkpoints / r)]
    return runs[_default_index(runs, preferred)]


def default_drgi(roots: AppRoots, runs: list[str], base_name: str) -> str:
    """The second run the sidebar opens on beside ``base_name``: the first other run with
    DRGI, else the first other run, else :data:`NO_RUN`."""
    options = [NO_RUN, *runs]
    preferred = [r for r in runs if r != base_name and _has_drgi(roots.checkpoints / r)]
    preferred += [r for r in runs if r != base_name]
    return options[_default_index(options, preferred)]


def split_choices(infos: list[BundleInfo], base_run: Path,
                  drgi_run: Path | None) -> tuple[list[str], int]:
    """The ``<dataset>-<split>`` names offered for the picked runs and the index of the one
    the sidebar opens on (a test split both runs have, else any split both have)."""
    picked = {base_run.name} | ({drgi_run.name} if drgi_run else set())
    splits = sorted({f"{i.dataset}-{i.split}" for i in infos if i.run in picked})
    for run in (base_run, drgi_run):
        own = _own_split(run) if run is not None else None
        if own and own not in splits:
            splits.append(own)
    both = [s for s in splits if sum(
        1 for i in infos if f"{i.dataset}-{i.split}" == s and i.run in picked) == len(picked)]
    return splits, _default_index(splits, [s for s in both if s.endswith("-test")] + both)


def split_data_root(roots: AppRoots, infos: list[BundleInfo], dataset: str,
                    split: str) -> Path | None:
    """The dataset root the bundles of ``dataset``-``split`` are loaded with (None when it is
    not found inside the roots)."""
    meta_infos = [i for i in infos if i.dataset == dataset and i.split == split]
    if not meta_infos:
        return None
    data_root = resources.dataset_root(roots, resources.read_meta(meta_infos[0].path))
    return data_root if data_root.is_dir() else None


def _own_split(run_dir: Path) -> str | None:
    data = run_config(run_dir).get("data", {})
    if not isinstance(data, dict) or not data.get("dataset"):
        return None
    return f"{data['dataset']}-{data.get('eval_split', 'test')}"


def _root_for(roots: AppRoots, dataset: str, infos: list[BundleInfo], run_dir: Path) -> Path | None:
    """A dataset root inside the roots for exporting ``dataset``: from a bundle of the same
    dataset, else ``<data>/<dataset>``, else the run's own ``data.root``."""
    for info in infos:
        if info.dataset == dataset:
            root = resources.dataset_root(roots, resources.read_meta(info.path))
            if root.is_dir():
                return root
    candidates: list[Any] = [roots.data / dataset]
    data = run_config(run_dir).get("data", {})
    if isinstance(data, dict) and data.get("dataset") == dataset and data.get("root"):
        candidates.append(data["root"])
    for c in candidates:
        try:
            path = roots.check(c)
        except PathOutsideRootsError:
            continue
        if path.is_dir():
            return path
    return None


def _bundle_panel(
    roots: AppRoots, which: str, run_dir: Path, dataset: str, split: str,
    infos: list[BundleInfo], data_root: Path | None,
) -> Any:
    """Show the state of one run's bundle; return the loaded Bundle or None."""
    path = bundle_dir_for(run_dir, dataset, split)
    info = next((i for i in infos if i.path == path), None)
    state = info.status.state if info is not None and info.status is not None else "missing"
    reasons = info.status.reasons if info is not None and info.status is not None else ()
    key = f"export_{which}"
    if state == "missing":
        st.warning(f"{which}: no bundle of **{run_dir.name}** on {dataset}-{split} yet.")
        if export_button(roots, run_dir, dataset, split,
                         _root_for(roots, dataset, infos, run_dir),
                         key=key, label=f"Export {run_dir.name}"):
            resources.clear_scan()
            st.rerun()
        return None
    if state == "stale":
        with st.expander(f"⚠️ {which} bundle is stale", expanded=False):
            st.caption("; ".join(reasons))
            if export_button(roots, run_dir, dataset, split,
                             _root_for(roots, dataset, infos, run_dir),
                             key=key, label=f"Re-export {run_dir.name}"):
                resources.clear_scan()
                st.rerun()
    try:
        return resources.load_bundle(roots, path, allow_stale=True, data_root=data_root)
    except (BundleError, PathOutsideRootsError) as exc:
        st.error(f"{which}: cannot load {path}: {exc}")
        return None


def _checked_run(roots: AppRoots, name: str, which: str) -> Path | None:
    """The run folder ``name`` under the checkpoints root, or None after an ``st.error`` when
    it resolves outside the roots (e.g. a symbolic link to another folder)."""
    try:
        return roots.check(roots.checkpoints / name)
    except PathOutsideRootsError as exc:
        st.error(
            f"{which} run **{name}** is not readable here: its folder resolves outside the "
            f"app's roots (a symbolic link?). {exc}",
            icon=":material/block:",
        )
        return None


def render_sidebar(roots: AppRoots, notices: Any = None) -> Selection | str:
    """Draw the pickers in the sidebar; return the :class:`Selection`, or a message saying
    why there is none. Warnings about bad values in the URL go to ``notices`` (a container
    of the page; the sidebar when None)."""
    sb = st.sidebar
    runs = list_runs(roots.checkpoints)
    if not runs:
        sb.info("No runs found.")
        return (
            f"No run folders under {roots.checkpoints}. Train one (`python -m tvr.train "
            "--config …`) or build the demo runs (`make demo`), or point DRGI_LAB_CHECKPOINTS "
            "at your checkpoints folder."
        )
    infos = resources.scan_bundles(roots)
    with sb:
        base_index = runs.index(default_base(roots, runs))
        check_choice(KEY_BASE_RUN, runs, runs[base_index],
                     what=f"run under {roots.checkpoints}", container=notices)
        base_name = remember(KEY_BASE_RUN, st.selectbox(
            "Base run", runs, index=base_index, key=KEY_BASE_RUN,
            bind="query-params", help="The reference model (e.g. seqTransf trained without DRGI).",
        ))
        drgi_options = [NO_RUN, *runs]
        drgi_index = drgi_options.index(default_drgi(roots, runs, str(base_name)))
        check_choice(KEY_DRGI_RUN, drgi_options, drgi_options[drgi_index],
                     what=f"run under {roots.checkpoints} (or {NO_RUN})", container=notices)
        drgi_name = remember(KEY_DRGI_RUN, st.selectbox(
            "DRGI run", drgi_options, index=drgi_index,
            key=KEY_DRGI_RUN, bind="query-params",
            help="The run compared with the base (trained with DRGI); any run works, pages "
            "that need DRGI's graphs say so.",
        ))
        base_run = _checked_run(roots, str(base_name), "base")
        if base_run is None:
            return (
                f"The base run {base_name} cannot be opened (see the sidebar): pick another "
                "run, or move the folder inside the checkpoints root."
            )
        drgi_run = None if drgi_name in (None, NO_RUN) else _checked_run(
            roots, str(drgi_name), "DRGI")

        splits, split_index = split_choices(infos, base_run, drgi_run)
        if not splits:
            return f"Run {base_run.name} has no readable config.json and no bundle."
        check_choice(KEY_SPLIT, splits, splits[split_index],
                     what="dataset split exported for the picked runs", container=notices)
        split_name = remember(KEY_SPLIT, st.selectbox(
            "Dataset split", splits, index=split_index,
            key=KEY_SPLIT, bind="query-params", help="Bundles are exported per dataset split.",
        ))
        dataset, _, split = str(split_name).rpartition("-")
        data_root = split_data_root(roots, infos, dataset, split)
        base = _bundle_panel(roots, "base", base_run, dataset, split, infos, data_root)
        drgi = None
        if drgi_run is not None:
            drgi = _bundle_panel(roots, "DRGI", drgi_run, dataset, split, infos, data_root)
        if base is not None:
            parts = [f"**{base.run_name}** ({base.head}{', DRGI' if base.has_drgi else ''})"]
            if drgi is not None:
                parts.append(f"**{drgi.run_name}** ({drgi.head}"
                             f"{', DRGI' if drgi.has_drgi else ', no DRGI'})")
            st.caption(" vs ".join(parts) + f" on {dataset}-{split}: "
                       f"{base.num_texts} captions, {base.num_videos} videos")
        if st.button("Rescan checkpoints", key="rescan", icon=":material/refresh:"):
            resources.clear_scan()
            st.rerun()
    if base is None:
        return (
            f"The base run {base_run.name} has no usable bundle on {dataset}-{split}: export "
            "it with the button in the sidebar, or run `python -m analysis.export --run "
            f"{base_run} --split {split}`."
        )
    return Selection(roots=roots, base_run=base_run, drgi_run=drgi_run, dataset=dataset,
                     split=split, base=base, drgi=drgi, data_root=base.data_root)
