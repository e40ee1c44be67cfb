"""Export a run's analysis bundle (the files are described in :mod:`analysis.bundle`).

::

    python -m analysis.export --run DIR [--dataset NAME --root PATH] --split test
                              [--projection umap,pca] [--projection-budget N] [--force]
    python -m analysis.export --demo     # checkpoints/demo-{base,drgi} on data/synthvtt test
    torchrun --nproc_per_node N -m analysis.export --run-dir DIR ...

(``--run-dir`` is an alias of ``--run``; torchrun's own argument parser rejects ``--run`` as an
ambiguous abbreviation of its ``--run-path``.)

This module is the pipeline and the CLI; the computations live in their own modules and the
files are written by :class:`analysis.bundle.BundleWriter` with a typed
:class:`analysis.bundle.BundleMeta`:

- :mod:`analysis.export_shards`: the model runs once over the split through
  :func:`tvr.evaluate.embed_split` (the evaluator's own code path, so the similarity and
  metrics are the evaluator's). Under ``torchrun`` each rank embeds a contiguous shard of the
  split's videos (with their captions) and renders their thumbnails; rank 0 gathers the shards
  (``all_gather_object`` of CPU tensors), scores the full similarity matrix with the head,
  computes the rest and writes.
- :mod:`analysis.ranked_negatives`: each caption's hardest negatives, ranked once (the app's
  hard negatives, margins, failure lists and hubness read them instead of the matrix).
- :mod:`analysis.text_frame`: each caption's weights over the frames of its video.
- :mod:`analysis.drgi_arrays`: DRGI attention and discriminator scores (runs with DRGI).
- :func:`analysis.projection.joint_projections`: for each method one joint 2-D map of all
  valid word tokens, all valid frame tokens, the pooled texts and the pooled videos; above
  ``projection_budget`` points it is fitted on a deterministic stratified sample (every
  caption and video when they fit, tokens in proportion) and the rest is placed on it.
- :mod:`analysis.thumbnails`: the model input's frames (taken from the embedding pass, so
  each video is decoded once) at ``thumb_size`` px, side by side in one JPEG per video.

The bundle is built in a hidden sibling folder and renamed into place; an exception leaves no
bundle behind (and an older bundle untouched). A kill cannot clean up, so every export first
removes the hidden work folders of exports that are no longer running
(:func:`analysis.bundle.clean_stale_work_dirs`). A bundle that is fresh
(:func:`analysis.bundle.bundle_status`) and was exported with the same parameters is kept
unless ``--force``.

Captions are ordered video by video (the split's records merged per video, as
:class:`tvr.data.dataset.EvalSplit` does), in the same order in one process and under torchrun;
``captions.json`` keeps each caption's position in the source's split order (``caption_index``).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from tqdm import tqdm

from analysis.bundle import (
    BundleError,
    BundleMeta,
    BundleWriter,
    DatasetHash,
    ExportParams,
    ProjectionsMeta,
    RunRef,
    SkippedVideo,
    ThumbIndex,
    bundle_dir_for,
    bundle_status,
    checkpoint_hash,
    clean_stale_work_dirs,
    dataset_sources,
    read_meta,
    relative_video_path,
    sources_digest,
)
from analysis.projection import DEFAULT_POINT_BUDGET
from tvr.precision import AMP_CHOICES

if TYPE_CHECKING:  # the model, the pipeline's modules and torch are imported only to export:
    import torch  # a fresh bundle is kept (make app's start) without importing torch
    from torch import nn

    from tvr.models.features import TokenFeatures

logger = logging.getLogger(__name__)

__all__ = ["ExportError", "ExportOptions", "ExportResult", "export_bundle", "main",
           "parse_projections"]


PROJECTION_METHODS: tuple[str, ...] = ("umap", "pca")
DEMO_RUNS: tuple[str, ...] = ("demo-base", "demo-drgi")
DEMO_DATASET = "synthvtt"
DEMO_ROOT = "data/synthvtt"
DEMO_SPLIT = "test"
# export parameters that change a bundle's content: a fresh bundle made with others is redone
CONTENT_PARAMS: tuple[str, ...] = ("projections", "thumb_size", "jpeg_quality", "seed", "amp",
                                   "projection_budget", "token_dtype")
# What a bundle written before a content parameter existed was exported with.
_PARAM_BEFORE: dict[str, Any] = {"amp": "off", "projection_budget": 0, "token_dtype": "float32"}
TOKEN_DTYPES: tuple[str, ...] = ("float16", "float32")


class ExportError(RuntimeError):
    """Bad export input (a missing demo run, bad options)."""


@dataclass(frozen=True)
class ExportOptions:
    """How a bundle is exported.

    Attributes:
        projections: 2-D map methods, any of ``"umap"``, ``"pca"`` (empty = none).
        batch_size: videos per embedding batch.
        graph_batch: anchor pairs per DRGI / text-to-frame batch.
        thumb_size: side of one thumbnail frame in pixels.
        jpeg_quality: JPEG quality of the thumbnail strips (1-95).
        seed: random seed of the projections.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... (torchrun with nccl uses its local GPU).
        amp: autocast for the towers (``tvr.precision``: ``"off"``, ``"auto"``, ``"bf16"``,
            ``"fp16"``); scoring and the bundle's arrays stay float32.
    """

    projections: tuple[str, ...] = PROJECTION_METHODS
    batch_size: int = 16
    graph_batch: int = 64
    thumb_size: int = 64
    jpeg_quality: int = 85
    seed: int = 0
    device: str = "auto"
    amp: str = "off"
    projection_budget: int = DEFAULT_POINT_BUDGET
    token_dtype: str = "float16"

    def __post_init__(self) -> None:
        bad = [m for m in self.projections if m not in PROJECTION_METHODS]
        if bad or len(set(self.projections)) != len(self.projections):
            raise ExportError(
                f"projections {list(self.projections)}: expected distinct methods among "
                f"{', '.join(PROJECTION_METHODS)}"
            )
        for key in ("batch_size", "graph_batch", "thumb_size"):
            if int(getattr(self, key)) < 1:
                raise ExportError(f"{key}={getattr(self, key)!r}: expected a positive integer")
        if self.amp not in AMP_CHOICES:
            raise ExportError(f"amp={self.amp!r}: expected one of {', '.join(AMP_CHOICES)}")
        if self.token_dtype not in TOKEN_DTYPES:
            raise ExportError(f"token_dtype={self.token_dtype!r}: expected one of "
                              f"{', '.join(TOKEN_DTYPES)}")
        if int(self.projection_budget) < 0:
            raise ExportError(f"projection_budget={self.projection_budget!r}: expected a "
                              "number of points >= 0 (0 = fit every point)")
        if not 1 <= int(self.jpeg_quality) <= 95:
            raise ExportError(f"jpeg_quality={self.jpeg_quality!r}: expected 1..95")

    def recorded(self) -> dict[str, Any]:
        """The options as written into ``meta.json`` (JSON types)."""
        out = asdict(self)
        out["projections"] = list(self.projections)
        return out


def parse_projections(text: str) -> tuple[str, ...]:
    """``"umap,pca"`` -> ``("umap", "pca")``; ``""`` or ``"none"`` -> ``()``."""
    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    if items == ["none"]:
        return ()
    return tuple(items)


class ExportResult(NamedTuple):
    """What :func:`export_bundle` did.

    Attributes:
        path: the bundle folder.
        written: False when a fresh bundle was kept (nothing was computed).
    """

    path: Path
    written: bool


def code_version() -> dict[str, str | None]:
    """``{"tvr": version, "git_commit": sha or None}`` of the code doing the export."""
    import tvr

    commit = None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(tvr.__file__).resolve().parent,
            capture_output=True, text=True, timeout=10, check=False,
        )
        if out.returncode == 0:
            commit = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("no git commit available: %s", exc)
    return {"tvr": tvr.__version__, "git_commit": commit}


def _np(t: torch.Tensor | None, dtype: Any) -> np.ndarray | None:
    return None if t is None else np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype))


def _word_labels(tokenizer: Any, ids: torch.Tensor, mask: torch.Tensor) -> list[list[str]]:
    from analysis.attention import clean_token

    labels = []
    for row, m in zip(ids.tolist(), mask.bool().tolist(), strict=True):
        tokens = tokenizer.hf.convert_ids_to_tokens([i for i, ok in zip(row, m, strict=True) if ok])
        labels.append([clean_token(str(t)) for t in tokens])
    return labels


def _ranks(sim: np.ndarray, text_to_video: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
    """``tvr.metrics`` on the stored similarity: (the result, the arrays of ``ranks.npz``)."""
    from tvr.metrics import evaluate_retrieval

    result = evaluate_retrieval(sim, text_to_video)
    ranks = {
        "t2v": result.t2v.ranks, "t2v_tied": result.t2v.tied, "v2t": result.v2t.ranks,
        "v2t_tied": result.v2t.tied, "text_to_video": np.asarray(text_to_video, np.int64),
    }
    if result.v2t_any is not None:
        ranks.update(v2t_any=result.v2t_any.ranks, v2t_any_tied=result.v2t_any.tied)
    return result, ranks


def _embedding_arrays(
    text: TokenFeatures, video: TokenFeatures, text_ids: torch.Tensor, token_dtype: str
) -> dict[str, np.ndarray | None]:
    """The tensors of ``embeddings.safetensors``: the head-embedded features
    (``Retriever.encode_*``), token features in ``token_dtype``; None where the head attaches
    no token weights."""
    tokens = np.dtype(token_dtype)
    return {
        "text_pooled": _np(text.pooled, np.float32), "video_pooled": _np(video.pooled, np.float32),
        "text_tokens": _np(text.tokens, tokens), "text_mask": _np(text.mask, bool),
        "text_ids": _np(text_ids, np.int64), "video_tokens": _np(video.tokens, tokens),
        "video_mask": _np(video.mask, bool), "text_weights": _np(text.weights, np.float32),
        "video_weights": _np(video.weights, np.float32),
    }


def _caption_ids(tokenizer: Any, captions: list[str], max_words: int,
                 text: TokenFeatures) -> torch.Tensor:
    """Token ids ``[Nt, L]`` of the captions, checked against the embedded text mask."""
    import torch

    ids, mask = tokenizer.encode(captions, max_words)
    if ids.shape != tuple(text.mask.shape) or not torch.equal(mask.bool(),
                                                              text.mask.bool().cpu()):
        raise BundleError(
            f"re-tokenised captions {tuple(ids.shape)} do not match the embedded text mask "
            f"{tuple(text.mask.shape)}"
        )
    return ids


def _build(
    writer: BundleWriter, *, run_dir: Path, model: nn.Module, tokenizer: Any, cfg: Any,
    emb: Any, thumbs: list[tuple[bytes, list[float | None], int]], caption_index: np.ndarray,
    split_gt: Any, name: str, split: str, data_root: str, source_options: dict[str, Any],
    opts: ExportOptions, device: torch.device, world: int, progress: bool,
    skipped: list[dict[str, Any]] | None = None,
) -> None:
    """Compute every file of the bundle and write it with ``writer`` (meta.json last)."""
    from analysis.drgi_arrays import drgi_arrays, drgi_meta, trained_drgi
    from analysis.projection import joint_projections
    from analysis.ranked_negatives import ranked_negatives
    from analysis.text_frame import text_frame_meta, text_frame_weights

    drgi = trained_drgi(model, run_dir)
    steps = ["ranks", "embeddings", "captions", "text-to-frame", "drgi", "thumbnails",
             "projections", "hashes", "meta"]
    bar = tqdm(total=len(steps), desc=f"export {run_dir.name}", disable=not progress)
    upcoming = iter(steps[1:])
    bar.set_postfix_str(steps[0])

    def step(done: str) -> None:
        """Mark step ``done`` finished and show the next one."""
        bar.update(1)
        bar.set_postfix_str(next(upcoming, "done"))

    text, video = emb.text, emb.video
    sim = np.ascontiguousarray(emb.sim, dtype=np.float32)
    writer.write_similarity(sim)
    result, ranks = _ranks(sim, emb.text_to_video)
    writer.write_ranks(ranks)
    if sim.shape[1] >= 2:  # a one-video split has no negatives
        writer.write_negatives(ranked_negatives(sim, emb.text_to_video).arrays())
    step("ranks")

    text_ids = _caption_ids(tokenizer, emb.captions, cfg.data.max_words, text)
    writer.write_embeddings(_embedding_arrays(text, video, text_ids, opts.token_dtype))
    step("embeddings")

    kept = [split_gt.videos[int(r)] for r in emb.video_rows]
    root = Path(data_root)
    writer.write_captions({
        "captions": emb.captions,
        "text_to_video": [int(v) for v in emb.text_to_video],
        "caption_index": [int(i) for i in caption_index],
        "word_labels": _word_labels(tokenizer, text_ids, text.mask),
        "video_ids": emb.video_ids,
        "video_paths": [relative_video_path(r.video_path, root) for r in kept],
        "video_windows": [[r.start, r.end] for r in kept],
        "frame_timestamps": [t for _, t, _ in thumbs],
    })
    step("captions")

    scale = float(model.logit_scale.detach().exp().cpu())
    weights, rule = text_frame_weights(model.head, text, video, emb.text_to_video, scale,
                                       batch=opts.graph_batch, device=device, progress=progress)
    writer.write_text_frame(weights)
    step("text-to-frame")

    diagnostics: dict[str, Any] = {}
    if drgi is not None:
        writer.write_drgi(drgi_arrays(drgi, text, video, sim, emb.text_to_video,
                                      batch=opts.graph_batch, device=device, progress=progress,
                                      report=diagnostics))
    step("drgi")

    writer.write_thumbnails([jpeg for jpeg, _, _ in thumbs])
    counts = [n for _, _, n in thumbs]  # the model's valid frames (the same decode)
    step("thumbnails")

    projection_meta = ProjectionsMeta(methods={})
    if opts.projections:
        arrays, projection_meta = joint_projections(text, video, opts.projections,
                                                    seed=opts.seed, budget=opts.projection_budget,
                                                    progress=progress)
        writer.write_projections(arrays)
    step("projections")

    sources = dataset_sources(root, [relative_video_path(r.video_path, root)
                                     for r in split_gt.videos])
    writer.write_sources({"data_root": str(root.resolve()), **sources})
    ckpt = checkpoint_hash(run_dir)
    step("hashes")

    nt, nv = sim.shape
    meta = BundleMeta(
        run=RunRef(run_dir.name, str(run_dir.resolve())),
        dataset=name,
        split=split,
        data_root=str(data_root),
        data_root_abs=str(root.resolve()),
        source_options=source_options,
        head=cfg.head.name,
        factorized=bool(model.factorized),
        has_drgi=drgi is not None,
        drgi=drgi_meta(cfg, drgi, diagnostics),
        num_texts=int(nt),
        num_videos=int(nv),
        num_frames=int(cfg.data.num_frames),
        max_words=int(cfg.data.max_words),
        embed_dim=int(text.pooled.shape[1]),
        skipped_videos=emb.skipped_videos,
        skipped=[SkippedVideo(**dict(x, path=relative_video_path(x["path"], root)))
                 for x in skipped or []],
        split_num_texts=int(split_gt.num_texts),
        split_num_videos=int(split_gt.num_videos),
        metrics=result.metrics,
        rank_protocols=result.protocols,
        logit_scale=scale,
        text_frame=text_frame_meta(rule, scale),
        thumb_index=ThumbIndex.jpeg_strips(opts.thumb_size, counts),
        projections=projection_meta,
        checkpoint_hash=ckpt,
        dataset_hash=DatasetHash(**sources_digest(sources)),
        code_version=code_version(),
        export_params=ExportParams(**opts.recorded(), world_size=world),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        files=writer.file_sizes(),
    )
    writer.write_meta(meta)
    step("meta")
    bar.close()


def _keep_existing(
    final: Path, data_root: str, opts: ExportOptions, source_options: dict[str, Any]
) -> tuple[bool, str]:
    status = bundle_status(final, data_root)
    if not status.fresh:
        return False, f"{status.state}: {'; '.join(status.reasons)}"
    meta = read_meta(final)
    recorded = meta.export_params.to_json() if meta.export_params else {}
    current = opts.recorded()
    for key in CONTENT_PARAMS:
        was = recorded.get(key, _PARAM_BEFORE.get(key))
        if was != current[key]:
            return False, f"export parameter {key} was {was!r}, now {current[key]!r}"
    if meta.source_options != source_options:
        return False, "source options changed"
    if meta.num_videos >= 2 and not meta.has_negatives:
        return False, "the bundle predates the stored ranked negatives of each caption"
    return True, "fresh"


def _device(opts: ExportOptions) -> torch.device:
    import torch
    import torch.distributed as dist

    from tvr.distributed import DistEnv
    from tvr.evaluate import resolve_eval_device

    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", DistEnv.from_env().local_rank)
    return resolve_eval_device(opts.device)


def _process_group() -> bool:
    """Whether a torch process group is initialised (none can be while ``torch.distributed``
    was never imported, so this imports nothing)."""
    dist = sys.modules.get("torch.distributed")
    return dist is not None and dist.is_available() and dist.is_initialized()


def _rank_and_world() -> tuple[int, int]:
    """``(rank, world size)``: ``(0, 1)`` without a process group."""
    if not _process_group():
        return 0, 1
    from tvr.distributed import get_rank, get_world_size

    return get_rank(), get_world_size()


def export_bundle(
    run_dir: str | Path,
    *,
    dataset: str | None = None,
    root: str | Path | None = None,
    split: str = "test",
    options: ExportOptions | None = None,
    force: bool = False,
    progress: bool = True,
) -> ExportResult:
    """Export (or keep, when fresh) the bundle of ``run_dir`` on ``dataset``/``split``.

    Works in a single process and under torchrun (the process group must already be
    initialised, as :func:`main` does); every rank must call it.

    Args:
        run_dir: a run folder (``config.json`` + ``model.safetensors``).
        dataset: source name (default: the run's training dataset).
        root: dataset root (default: the run's ``data.root``).
        split: split name.
        options: :class:`ExportOptions`.
        force: rebuild even when the bundle is fresh.
        progress: tqdm bars (rank 0 only).

    Returns:
        :class:`ExportResult` (the bundle folder; whether it was written).
    """
    from tvr.run_folder import CheckpointError, is_run_dir, load_run_config

    opts = options or ExportOptions()
    run_dir = Path(run_dir)
    rank, world = _rank_and_world()
    show = progress and rank == 0
    if not is_run_dir(run_dir):
        raise CheckpointError(
            f"{run_dir} is not a run folder: expected config.json and model.safetensors inside it"
        )
    cfg = load_run_config(run_dir)
    name = dataset or cfg.data.dataset
    data_root = str(root) if root is not None else cfg.data.root
    source_options = dict(cfg.data.source_options) if name == cfg.data.dataset else {}
    final = bundle_dir_for(run_dir, name, split)

    if rank == 0:  # folders of exports that were killed before publishing
        clean_stale_work_dirs(final.parent)
    # The freshness check needs only hashes: a fresh bundle is kept without building the model.
    keep = False
    if rank == 0 and not force and final.exists():
        keep, why = _keep_existing(final, data_root, opts, source_options)
        logger.info("%s: %s", final, "fresh, kept" if keep else f"re-exporting ({why})")
    if world > 1:
        from tvr.distributed import broadcast_object

        keep = broadcast_object(keep)
    if keep:
        return ExportResult(final, False)

    from analysis.export_shards import assemble_shards, embed_shard
    from tvr.checkpoint import load_pretrained
    from tvr.data.dataset import EvalSplit
    from tvr.data.sources import load_split
    from tvr.distributed import all_gather_object, broadcast_object

    device = _device(opts)
    model, tokenizer, cfg = load_pretrained(run_dir, device=device)

    records = load_split(name, data_root, split, **source_options)
    split_gt = EvalSplit.from_records(records)
    logger.info("exporting %s on %s/%s: %d captions, %d videos, %d rank(s)", run_dir.name, name,
                split, split_gt.num_texts, split_gt.num_videos, world)
    shard = embed_shard(model, tokenizer, split_gt, cfg, opts, device, rank, world, show)
    shards = all_gather_object(shard)

    error: BaseException | None = None
    if rank == 0:
        writer = BundleWriter(final)
        try:
            emb, thumbs, caption_index = assemble_shards(shards, split_gt, model, device, show)
            _build(writer, run_dir=run_dir, model=model, tokenizer=tokenizer, cfg=cfg, emb=emb,
                   thumbs=thumbs, caption_index=caption_index, split_gt=split_gt, name=name,
                   split=split, data_root=data_root, source_options=source_options, opts=opts,
                   device=device, world=world, progress=show,
                   skipped=[x for sh in shards for x in sh.get("skipped", [])])
            writer.publish()
        except BaseException as exc:
            writer.discard()
            error = exc
    if world > 1 and not broadcast_object(error is None) and error is None:
        raise BundleError(f"rank 0 failed to write {final}; see its log")
    if error is not None:
        raise error
    logger.info("wrote %s", final)
    return ExportResult(final, True)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.export",
        description="Export a run's analysis bundle (embeddings, similarity, ranks, DRGI "
        "attention, projections, thumbnails) for the app.",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--run", "--run-dir", dest="run", type=Path,
                        help="run folder (config.json + model.safetensors); spell it --run-dir "
                        "under torchrun, whose own parser takes --run for its --run-path")
    target.add_argument("--demo", action="store_true",
                        help=f"export {', '.join(DEMO_RUNS)} on {DEMO_ROOT} {DEMO_SPLIT}")
    p.add_argument("--dataset", help="source name (default: the run's dataset; synthvtt for --demo)")
    p.add_argument("--root", help=f"dataset root (default: the run's data.root; {DEMO_ROOT} "
                   "for --demo)")
    p.add_argument("--split", default=DEMO_SPLIT)
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"),
                   help="folder of the demo runs (--demo)")
    p.add_argument("--projection", default="umap,pca",
                   help="comma-separated map methods: umap, pca, or none")
    p.add_argument("--projection-budget", type=int, default=DEFAULT_POINT_BUDGET,
                   help="most points a 2-D map is fitted on: above it the maps are fitted on a "
                   "stratified sample (every caption and video when they fit) and the other "
                   f"points placed on them; 0 = fit every point (default {DEFAULT_POINT_BUDGET})")
    p.add_argument("--token-dtype", choices=TOKEN_DTYPES, default="float16",
                   help="storage of the bundle's token features (text_tokens, video_tokens); "
                   "default float16: half the bytes, read back as float32")
    p.add_argument("--force", action="store_true", help="rebuild even when the bundle is fresh")
    p.add_argument("--batch-size", type=int, default=16, help="videos per embedding batch")
    p.add_argument("--graph-batch", type=int, default=64, help="pairs per DRGI batch")
    p.add_argument("--thumb-size", type=int, default=64, help="thumbnail frame side (px)")
    p.add_argument("--seed", type=int, default=0, help="projection seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=AMP_CHOICES, default="off",
                   help="autocast for the towers (auto: bf16 where the device has it; "
                        "default off, float32); scores stay float32")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring. Returns the exit status."""
    from tvr.data.records import SourceError
    from tvr.data.sources import SourceOptionError
    from tvr.registry import RegistryError
    from tvr.run_folder import CheckpointError, is_run_dir

    args = _parser().parse_args(argv)
    is_main = True
    if os.environ.get("WORLD_SIZE", "1") != "1":  # under torchrun: start the process group
        from tvr.distributed import init_distributed

        is_main = init_distributed().is_main
    logging.basicConfig(
        level=logging.INFO if is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        opts = ExportOptions(
            projections=parse_projections(args.projection), batch_size=args.batch_size,
            graph_batch=args.graph_batch, thumb_size=args.thumb_size, seed=args.seed,
            device=args.device, amp=args.amp, projection_budget=args.projection_budget,
            token_dtype=args.token_dtype,
        )
        if args.demo:
            jobs = []
            for run_name in DEMO_RUNS:
                run = args.checkpoints / run_name
                if not is_run_dir(run):
                    raise ExportError(
                        f"{run} is not a run folder (config.json + model.safetensors); build "
                        f"the demo runs first with `make demo` (python -m tvr.demo)"
                    )
                jobs.append((run, args.dataset or DEMO_DATASET, args.root or DEMO_ROOT))
        else:
            jobs = [(args.run, args.dataset, args.root)]
        for run, dataset, root in jobs:
            result = export_bundle(run, dataset=dataset, root=root, split=args.split,
                                   options=opts, force=args.force, progress=not args.quiet)
            if is_main:
                print(f"{'wrote' if result.written else 'fresh, kept'} {result.path}")
    except (ExportError, BundleError, CheckpointError, SourceError, SourceOptionError,
            RegistryError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        if _process_group():
            from tvr.distributed import cleanup

            cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

