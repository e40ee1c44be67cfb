"""Export a run's analysis bundle (the files are described in :mod:`analysis.bundle`).

::

    python -m analysis.export --run DIR [--dataset NAME --root PATH] --split test
                              [--projection umap,pca] [--force]
    python -m analysis.export --demo     # checkpoints/demo-{base,drgi} on data/synthvtt test
    torchrun --nproc_per_node N -m analysis.export --run-dir DIR ...

(``--run-dir`` is an alias of ``--run``; torchrun's own argument parser rejects ``--run`` as an
ambiguous abbreviation of its ``--run-path``.)

The model runs once over the split through :func:`tvr.evaluate.embed_split` (the evaluator's
own code path, so the similarity and metrics are the evaluator's). The bundle is built in a
hidden sibling folder and renamed into place; an exception leaves no bundle behind (and an
older bundle untouched). A kill cannot clean up, so every export first removes the hidden work
folders of exports that are no longer running (:func:`clean_stale_work_dirs`). A bundle that is fresh (:func:`analysis.bundle.bundle_status`) and was
exported with the same parameters is kept unless ``--force``.

Captions are ordered video by video (the split's records merged per video, as
:class:`tvr.data.dataset.EvalSplit` does), in the same order in one process and under torchrun;
``captions.json`` keeps each caption's position in the source's split order (``caption_index``).

Under ``torchrun`` each rank embeds a contiguous shard of the split's videos (with their
captions) and renders their thumbnails; rank 0 gathers the shards (``all_gather_object`` of
CPU tensors), scores the full similarity matrix with the head, computes the rest and writes.

Definitions (also recorded in ``meta.json``):

- **Text-to-frame weights** ``[Nt, T]``, one distribution per caption over the frames of its
  ground-truth video, for every run (base and DRGI alike), with ``s`` = the run's logit scale
  ``exp(logit_scale)`` as inverse temperature:

  * heads with word-frame interaction and token weights (WTI): ``p_j = sum_i w_i
    softmax_j(s * A_ij)`` where ``A = head.token_similarity`` (word-by-frame cosines) and
    ``w`` the head's word weights: each word spreads its weight over the frames it matches,
    and ``s -> inf`` recovers WTI's ``max`` (each word's weight on its best frame).
  * other heads: ``p_j = softmax_j(s * cos(t, v_j))`` with ``t`` the caption's pooled vector
    and ``v_j`` the frame tokens of the head-embedded video.

  Padded frames get 0; rows sum to 1 over valid frames.
- **DRGI** (runs whose checkpoint holds the objective): every caption is a query paired with
  its ground-truth video; every video is a query paired with its first caption. Hard
  negatives come from :func:`tvr.objectives.drgi.mine_negatives` on the split's similarity,
  always excluding the anchor's own video: the hardest video for a caption is searched over all
  videos (in blocks of pair-aligned sub-matrices, memory ``O((block + Nv)^2)``); the hardest
  caption for a video over one representative caption per video (its first), so the video
  side is an ``Nv x Nv`` pair-aligned matrix. On one-caption-per-video splits (MSR-VTT 1k-A,
  SynthVTT val/test) both equal mining on the full pair-aligned square. A caption query's text
  negative is its video's. ``DRGI.graph_outputs(..., return_attention=True)`` runs on batches
  of anchors; the scores are the mean sigmoid of the discriminator over the valid nodes.
- **Projections**: for each method one joint 2-D map of all valid word tokens, all valid frame
  tokens, the pooled texts and the pooled videos (so every point of a method shares axes).
- **Thumbnails**: the frames the sampler picks (same segment centres as the model input,
  :func:`tvr.data.video.read_frames`) at ``thumb_size`` px, side by side in one JPEG per video.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from analysis.bundle import (
    BUNDLE_FORMAT,
    CAPTIONS,
    DRGI_FILE,
    EMBEDDINGS,
    META,
    PROJECTION_KINDS,
    PROJECTIONS,
    RANKS,
    SIMILARITY,
    SOURCES,
    TEXT_FRAME,
    THUMBS,
    BundleError,
    bundle_dir_for,
    bundle_status,
    checkpoint_hash,
    dataset_sources,
    encode_jpeg,
    relative_video_path,
    sources_digest,
)
from tvr.drgi_probe import (  # noqa: F401  (re-exported: the export's DRGI probes live in tvr)
    SplitNegatives,
    drgi_query_outputs,
    information_report,
    information_test,
    mine_split_negatives,
    representative_captions,
)
from tvr.models.features import TokenFeatures
from tvr.precision import AMP_CHOICES

logger = logging.getLogger(__name__)

PROJECTION_METHODS: tuple[str, ...] = ("umap", "pca")
DEMO_RUNS: tuple[str, ...] = ("demo-base", "demo-drgi")
DEMO_DATASET = "synthvtt"
DEMO_ROOT = "data/synthvtt"
DEMO_SPLIT = "test"
STALE_WORK_AGE_S = 3600.0  # an ownerless .tmp-*/.old-* work folder older than this is removed
# export parameters that change a bundle's content: a fresh bundle made with others is redone
CONTENT_PARAMS: tuple[str, ...] = ("projections", "thumb_size", "jpeg_quality", "seed", "amp")
# What a bundle written before a content parameter existed was exported with.
_PARAM_BEFORE: dict[str, Any] = {"amp": "off"}


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


# --------------------------------------------------------------------------------------------
# Text-to-frame weights
# --------------------------------------------------------------------------------------------


def _masked_softmax(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits.float().masked_fill(~valid, float("-inf")), dim=-1)
    return torch.where(valid, probs, 0.0)


@torch.no_grad()
def text_frame_weights(
    head: nn.Module,
    text: TokenFeatures,
    video: TokenFeatures,
    text_to_video: np.ndarray,
    scale: float,
    *,
    batch: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, str]:
    """Each caption's weights over the frames of its ground-truth video (module docstring).

    Args:
        head: the run's similarity head (``token_similarity`` is used when the head declares
            ``token_scores`` and the text features carry token weights).
        text, video: head-embedded features of the split.
        text_to_video: ``[Nt]`` column of each caption's video.
        scale: inverse temperature (the run's ``exp(logit_scale)``).

    Returns:
        (``[Nt, T]`` float32, rows summing to 1 over valid frames; the rule's name,
        ``"word_softmax_mixture"`` or ``"pooled_cosine_softmax"``).

    Shapes:
        text ``[Nt, L, D]``, video ``[Nv, T, D]``, text_to_video ``[Nt]`` -> ``[Nt, T]``
    """
    use_words = head.token_scores and text.weights is not None
    out = np.zeros((len(text), video.tokens.shape[1]), dtype=np.float32)
    t2v = torch.as_tensor(np.asarray(text_to_video), dtype=torch.long)
    for a in tqdm(range(0, len(text), batch), desc="text-to-frame", disable=not progress,
                  leave=False):
        t = text[a : a + batch].to(device)
        v = video[t2v[a : a + batch]].to(device)
        frames = v.mask.bool()  # [K, T]
        if use_words:
            sims = head.token_similarity(t, v)  # [K, L, T]
            per_word = _masked_softmax(scale * sims, frames[:, None, :])  # [K, L, T]
            words = t.mask.bool()[..., None]
            weights = t.weights.float()[..., None]  # type: ignore[union-attr]
            probs = torch.where(words, weights * per_word, 0.0).sum(1)  # [K, T]
            probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-12)
        else:
            cos = torch.einsum(
                "kd,ktd->kt",
                nn.functional.normalize(t.pooled.float(), dim=-1),
                nn.functional.normalize(v.tokens.float(), dim=-1),
            )
            probs = _masked_softmax(scale * cos, frames)
        out[a : a + batch] = probs.cpu().numpy()
    return out, ("word_softmax_mixture" if use_words else "pooled_cosine_softmax")


# --------------------------------------------------------------------------------------------
# DRGI
# --------------------------------------------------------------------------------------------


def _drgi_objective(model: nn.Module, run_dir: Path) -> nn.Module | None:
    """The run's trained DRGI objective, or None (no DRGI, or an inference-only checkpoint)."""
    objectives = getattr(model, "objectives", {})
    if "drgi" not in objectives:
        return None
    from safetensors import safe_open

    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as f:
        trained = any(k.startswith("objectives.drgi.") for k in f.keys())  # noqa: SIM118
    if not trained:
        logger.warning(
            "%s: the config enables DRGI but model.safetensors holds no objectives.drgi.* "
            "weights (an inference export); exporting without DRGI outputs", run_dir
        )
        return None
    return objectives["drgi"]


def drgi_arrays(
    drgi: nn.Module,
    text: TokenFeatures,
    video: TokenFeatures,
    sim: np.ndarray,
    text_to_video: np.ndarray,
    *,
    batch: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
    report: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Everything ``drgi.safetensors`` holds (see :class:`analysis.bundle.DRGIArrays`).

    With ``report`` (a dict), also fills it with :func:`tvr.drgi_probe.information_report`
    computed from the same query outputs (the information test and graph diagnostics).
    """
    t2v = np.asarray(text_to_video, dtype=np.int64)
    nt, nv = sim.shape
    negs = mine_split_negatives(sim, t2v)
    queries = {
        "text_queries": (np.arange(nt), t2v, negs.text_neg_text, negs.text_neg_video,
                         negs.text_valid, "text"),
        "video_queries": (negs.representative, np.arange(nv), negs.video_neg_text,
                          negs.video_neg_video, negs.video_valid, "video"),
    }
    out: dict[str, np.ndarray] = {}
    results: dict[str, dict[str, np.ndarray]] = {}
    for prefix, (a_t, a_v, n_t, n_v, valid, keep) in queries.items():
        res = drgi_query_outputs(drgi, text, video, a_t, a_v, n_t, n_v, valid, keep=keep,
                                 batch=batch, device=device, progress=progress)
        results[keep] = res
        out[f"{keep}_attention"] = res["attention"]
        out[f"{keep}_node_mask"] = res["node_mask"]
        fields = {
            "anchor_text": a_t, "anchor_video": a_v, "neg_text_index": n_t,
            "neg_video_index": n_v, "neg_valid": valid, "pos_video": res["pos_video"],
            "neg_video": res["neg_video"], "pos_text": res["pos_text"],
            "neg_text": res["neg_text"],
        }
        for k, v in fields.items():
            v = np.asarray(v)
            out[f"{prefix}_{k}"] = v.astype(np.int64) if v.dtype.kind in "iu" else v
    if report is not None:
        report.update(information_report(results["text"], results["video"], negs, sim, t2v))
    return out


# --------------------------------------------------------------------------------------------
# Projections and thumbnails
# --------------------------------------------------------------------------------------------


def joint_projections(
    text: TokenFeatures,
    video: TokenFeatures,
    methods: tuple[str, ...],
    *,
    seed: int = 0,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One joint 2-D map per method of valid words, valid frames, pooled texts and videos.

    Returns:
        (arrays for ``projections.npz``: ``"<method>_<kind>"`` ``[N_kind, 2]`` float32,
        ``word_ids`` ``[Nw, 2]`` and ``frame_ids`` ``[Nf, 2]`` int64 (item, position);
        the ``meta.json`` entry).
    """
    from analysis.projection import project

    words = text.mask.bool()
    frames = video.mask.bool()
    blocks = {
        "words": text.tokens[words],
        "frames": video.tokens[frames],
        "texts": text.pooled,
        "videos": video.pooled,
    }
    sizes = {k: int(v.shape[0]) for k, v in blocks.items()}
    x = torch.cat([blocks[k].float() for k in PROJECTION_KINDS]).numpy()
    arrays: dict[str, np.ndarray] = {
        "word_ids": words.nonzero().numpy().astype(np.int64),
        "frame_ids": frames.nonzero().numpy().astype(np.int64),
    }
    fitted: dict[str, Any] = {}
    for method in tqdm(methods, desc="projections", disable=not progress, leave=False):
        start = time.perf_counter()
        proj = project(x, method, seed=seed)
        offset = 0
        for kind in PROJECTION_KINDS:
            arrays[f"{method}_{kind}"] = proj.coords[offset : offset + sizes[kind]]
            offset += sizes[kind]
        fitted[method] = dict(proj.meta(), seconds=round(time.perf_counter() - start, 3))
    meta = {
        "layout": "one joint map per method of words, frames, texts and videos",
        "kinds": sizes,
        "methods": fitted,
    }
    return arrays, meta


def render_thumbnail(
    record: Any, num_frames: int, size: int, quality: int = 85
) -> tuple[bytes, list[float | None], int]:
    """JPEG strip of the frames the sampler picks for ``record``.

    Returns:
        (JPEG bytes of ``[size, n * size, 3]``, ``T`` timestamps in seconds with None on
        padding, n real frames).
    """
    from tvr.data.video import read_frames

    decoded = read_frames(record.video_path, num_frames, size, record.start, record.end)
    strip = np.concatenate(list(decoded.frames), axis=1)  # [S, n*S, 3]
    n = int(decoded.frames.shape[0])
    times: list[float | None] = [float(t) for t in decoded.timestamps]
    times += [None] * (num_frames - n)
    return encode_jpeg(strip, quality), times, n


# --------------------------------------------------------------------------------------------
# Embedding shards
# --------------------------------------------------------------------------------------------


def _shard_bounds(num_videos: int, rank: int, world: int) -> tuple[int, int]:
    edges = np.linspace(0, num_videos, world + 1).round().astype(int)
    return int(edges[rank]), int(edges[rank + 1])


def _embed_shard(
    model: nn.Module, tokenizer: Any, split_gt: Any, cfg: Any, opts: ExportOptions,
    device: torch.device, rank: int, world: int, progress: bool,
) -> dict[str, Any]:
    """Embed this rank's videos (one merged record per video) and render their thumbnails."""
    from tvr.evaluate import embed_split

    start, stop = _shard_bounds(split_gt.num_videos, rank, world)
    records = split_gt.videos[start:stop]
    if not records:
        return {"start": start, "emb": None, "thumbs": []}
    emb = embed_split(
        model, tokenizer, records, num_frames=cfg.data.num_frames,
        image_size=cfg.data.image_size, max_words=cfg.data.max_words,
        on_decode_error=cfg.data.on_decode_error, frame_cache=cfg.data.frame_cache or None,
        frame_sampling=cfg.data.frame_sampling, decode_threads=cfg.data.decode_threads,
        batch_size=opts.batch_size, num_workers=cfg.data.num_workers, device=device,
        progress=progress, amp=opts.amp,
    )
    thumbs = [
        render_thumbnail(records[int(r)], cfg.data.num_frames, opts.thumb_size, opts.jpeg_quality)
        for r in tqdm(emb.video_rows, desc="thumbnails", disable=not progress, leave=False)
    ]
    skipped = skipped_video_reasons(records, emb.skipped_videos, cfg.data.num_frames,
                                    cfg.data.image_size)
    if world > 1:
        emb = replace(emb, sim=np.zeros((0, 0), dtype=np.float32))  # rank 0 rescores all pairs
    return {"start": start, "emb": emb, "thumbs": thumbs, "skipped": skipped}


def skipped_video_reasons(
    records: list[Any], skipped_ids: list[str], num_frames: int, image_size: int
) -> list[dict[str, Any]]:
    """Why each skipped video failed: ``[{"video_id", "path", "reason", "num_captions"}]``.

    The embedding may decode in DataLoader workers, whose skip reasons stay there, so each
    skipped video (few, by nature) is decoded once more here to read its error.
    """
    from tvr.data.video import FrameSampler, VideoDecodeError

    if not skipped_ids:
        return []
    sampler = FrameSampler(num_frames, image_size)
    by_id = {r.video_id: r for r in records}
    out = []
    for vid in skipped_ids:
        record = by_id[vid]
        try:
            sampler(record.video_path, record.start, record.end)
            reason = "failed to decode during the export (decoded when retried)"
        except VideoDecodeError as exc:
            reason = exc.reason
        out.append({"video_id": vid, "path": str(record.video_path), "reason": reason,
                    "num_captions": len(record.captions)})
    return out


def _assemble(
    shards: list[dict[str, Any]], split_gt: Any, model: nn.Module, device: torch.device,
    progress: bool,
) -> tuple[Any, list[tuple[bytes, list[float | None], int]], np.ndarray]:
    """Concatenate shards in video order; returns (SplitEmbedding, thumbnails, caption_index).

    ``caption_index`` maps each kept caption to its position in the source's split order.
    """
    from tvr.evaluate import SplitEmbedding, similarity_matrix

    parts = [s for s in shards if s["emb"] is not None]
    if not parts:
        raise BundleError("no video of the split could be embedded")
    per_video = [len(v.captions) for v in split_gt.videos]
    caption_offset = np.concatenate([[0], np.cumsum(per_video)]).astype(np.int64)
    canonical_to_source = np.concatenate(
        [np.asarray(t, dtype=np.int64) for t in split_gt.video_to_texts]
    )
    t2v, video_rows, caption_rows, thumbs = [], [], [], []
    column = 0
    for s in parts:
        e = s["emb"]
        t2v.append(e.text_to_video + column)
        column += len(e.video_ids)
        video_rows.append(e.video_rows + s["start"])
        caption_rows.append(e.caption_rows + caption_offset[s["start"]])
        thumbs.extend(s["thumbs"])
    text = TokenFeatures.cat([s["emb"].text for s in parts])
    video = TokenFeatures.cat([s["emb"].video for s in parts])
    if len(shards) == 1:
        sim = parts[0]["emb"].sim
    else:
        sim = similarity_matrix(model, text, video, device=device, progress=progress)
    rows = np.concatenate(caption_rows)
    emb = SplitEmbedding(
        text=text, video=video, sim=sim, text_to_video=np.concatenate(t2v),
        captions=[c for s in parts for c in s["emb"].captions],
        video_ids=[v for s in parts for v in s["emb"].video_ids],
        caption_rows=rows, video_rows=np.concatenate(video_rows),
        skipped_videos=[v for s in parts for v in s["emb"].skipped_videos],
    )
    return emb, thumbs, canonical_to_source[rows]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


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


def _write_json(path: Path, obj: Any, indent: int | None = None) -> None:
    path.write_text(json.dumps(obj, indent=indent, default=float) + "\n", encoding="utf-8")


def _write_thumbnails(folder: Path, thumbs: list[tuple[bytes, list[float | None], int]]) -> None:
    folder.mkdir()
    for v, (jpeg, _, _) in enumerate(thumbs):
        (folder / f"{v}.jpg").write_bytes(jpeg)


def _write_ranks(tmp: Path, sim: np.ndarray, text_to_video: np.ndarray) -> Any:
    """``similarity.npy`` and ``ranks.npz`` (``tvr.metrics`` on the stored similarity)."""
    from tvr.metrics import evaluate_retrieval

    np.save(tmp / SIMILARITY, sim)
    result = evaluate_retrieval(sim, text_to_video)
    ranks = {
        "t2v": result.t2v.ranks, "t2v_tied": result.t2v.tied, "v2t": result.v2t.ranks,
        "v2t_tied": result.v2t.tied, "text_to_video": np.asarray(text_to_video, np.int64),
    }
    if result.v2t_any is not None:
        ranks.update(v2t_any=result.v2t_any.ranks, v2t_any_tied=result.v2t_any.tied)
    with open(tmp / RANKS, "wb") as fh:
        np.savez(fh, **ranks)
    return result


def _write_embeddings(
    tmp: Path, text: TokenFeatures, video: TokenFeatures, text_ids: torch.Tensor
) -> None:
    """``embeddings.safetensors``: the head-embedded features (``Retriever.encode_*``)."""
    from safetensors.numpy import save_file

    tensors = {
        "text_pooled": _np(text.pooled, np.float32), "video_pooled": _np(video.pooled, np.float32),
        "text_tokens": _np(text.tokens, np.float32), "text_mask": _np(text.mask, bool),
        "text_ids": _np(text_ids, np.int64), "video_tokens": _np(video.tokens, np.float32),
        "video_mask": _np(video.mask, bool), "text_weights": _np(text.weights, np.float32),
        "video_weights": _np(video.weights, np.float32),
    }
    save_file({k: v for k, v in tensors.items() if v is not None}, str(tmp / EMBEDDINGS),
              metadata={"format": f"drgi-lab-bundle-{BUNDLE_FORMAT}"})


def _caption_ids(tokenizer: Any, captions: list[str], max_words: int,
                 text: TokenFeatures) -> torch.Tensor:
    """Token ids ``[Nt, L]`` of the captions, checked against the embedded text mask."""
    ids, mask = tokenizer.encode(captions, max_words)
    if ids.shape != tuple(text.mask.shape) or not torch.equal(mask.bool(),
                                                              text.mask.bool().cpu()):
        raise BundleError(
            f"re-tokenised captions {tuple(ids.shape)} do not match the embedded text mask "
            f"{tuple(text.mask.shape)}"
        )
    return ids


def _text_frame_meta(rule: str, scale: float) -> dict[str, Any]:
    definition = (
        "p_j = sum_i w_i softmax_j(s * A_ij), A = head.token_similarity, w = word weights"
        if rule == "word_softmax_mixture"
        else "p_j = softmax_j(s * cos(pooled text, frame token j))"
    )
    return {
        "rule": rule,
        "temperature": 1.0 / scale,
        "inverse_temperature": scale,
        "definition": f"{definition}; s = exp(logit_scale); over the valid frames of the "
                      "caption's ground-truth video",
    }


def _drgi_meta(cfg: Any, drgi: nn.Module | None,
               diagnostics: dict[str, Any] | None = None) -> dict[str, Any] | None:
    if drgi is None:
        return None
    d = cfg.drgi
    return {
        "mode": d.mode, "nodes": d.nodes, "hidden": d.hidden,
        "heads": int(drgi.text.encoder.heads), "neg_topm_used": 1,
        "mining": "hardest other video over all videos; hardest caption of another video over "
                  "each video's first caption; never the anchor's own video",
        "variant": {k: getattr(d, k) for k in (
            "attention", "root", "attn_temperature", "graph_topk", "readout", "score",
            "global_node", "summary", "negatives", "weight")},
        # the information test and graph diagnostics on this split (tvr.drgi_probe)
        "diagnostics": _json_safe(diagnostics) if diagnostics else None,
    }


def _json_safe(obj: Any) -> Any:
    """NaN / inf become None so meta.json stays strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _build(
    tmp: Path, *, run_dir: Path, model: nn.Module, tokenizer: Any, cfg: Any, emb: Any,
    thumbs: list[tuple[bytes, list[float | None], int]], caption_index: np.ndarray,
    split_gt: Any, name: str, split: str, data_root: str, source_options: dict[str, Any],
    opts: ExportOptions, device: torch.device, world: int, progress: bool,
    skipped: list[dict[str, Any]] | None = None,
) -> None:
    """Compute and write every file of the bundle into ``tmp`` (meta.json last)."""
    from safetensors.numpy import save_file

    drgi = _drgi_objective(model, run_dir)
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
    result = _write_ranks(tmp, sim, emb.text_to_video)
    step("ranks")

    text_ids = _caption_ids(tokenizer, emb.captions, cfg.data.max_words, text)
    _write_embeddings(tmp, text, video, text_ids)
    step("embeddings")

    kept = [split_gt.videos[int(r)] for r in emb.video_rows]
    root = Path(data_root)
    _write_json(tmp / CAPTIONS, {
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
    np.save(tmp / TEXT_FRAME, weights)
    step("text-to-frame")

    diagnostics: dict[str, Any] = {}
    if drgi is not None:
        arrays = drgi_arrays(drgi, text, video, sim, emb.text_to_video, batch=opts.graph_batch,
                             device=device, progress=progress, report=diagnostics)
        save_file(arrays, str(tmp / DRGI_FILE))
    step("drgi")

    _write_thumbnails(tmp / THUMBS, thumbs)
    counts = [n for _, _, n in thumbs]
    if counts != [int(f) for f in video.mask.sum(1).tolist()]:
        logger.warning("thumbnail frame counts differ from the model's valid frames for some "
                       "videos (the sampler picks differently at %d px)", opts.thumb_size)
    step("thumbnails")

    projection_meta: dict[str, Any] = {"methods": {}}
    if opts.projections:
        arrays, projection_meta = joint_projections(text, video, opts.projections,
                                                    seed=opts.seed, progress=progress)
        with open(tmp / PROJECTIONS, "wb") as fh:
            np.savez(fh, **arrays)
    step("projections")

    sources = dataset_sources(root, [relative_video_path(r.video_path, root)
                                     for r in split_gt.videos])
    _write_json(tmp / SOURCES, {"data_root": str(root.resolve()), **sources})
    ckpt = checkpoint_hash(run_dir)
    step("hashes")

    files = {p.relative_to(tmp).as_posix(): p.stat().st_size
             for p in sorted(tmp.iterdir()) if p.is_file()}
    files[THUMBS] = len(thumbs)
    nt, nv = sim.shape
    meta = {
        "format": BUNDLE_FORMAT,
        "complete": True,
        "run": {"name": run_dir.name, "path": str(run_dir.resolve())},
        "dataset": name,
        "split": split,
        "data_root": str(data_root),
        "data_root_abs": str(root.resolve()),
        "source_options": source_options,
        "head": cfg.head.name,
        "factorized": bool(model.factorized),
        "has_drgi": drgi is not None,
        "drgi": _drgi_meta(cfg, drgi, diagnostics),
        "num_texts": int(nt),
        "num_videos": int(nv),
        "num_frames": int(cfg.data.num_frames),
        "max_words": int(cfg.data.max_words),
        "embed_dim": int(text.pooled.shape[1]),
        "skipped_videos": emb.skipped_videos,
        "skipped": [dict(x, path=relative_video_path(x["path"], root)) for x in skipped or []],
        "split_num_texts": int(split_gt.num_texts),
        "split_num_videos": int(split_gt.num_videos),
        "metrics": result.metrics,
        "rank_protocols": result.protocols,
        "logit_scale": scale,
        "text_frame": _text_frame_meta(rule, scale),
        "thumb_index": {
            "path": f"{THUMBS}/{{video}}.jpg", "format": "jpeg", "frame_width": opts.thumb_size,
            "frame_height": opts.thumb_size, "counts": counts,
        },
        "projections": projection_meta,
        "checkpoint_hash": ckpt,
        "dataset_hash": sources_digest(sources),
        "code_version": code_version(),
        "export_params": dict(opts.recorded(), world_size=world),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    _write_json(tmp / META, meta, indent=2)
    step("meta")
    bar.close()


def _make_readable(folder: Path) -> None:
    """mkdtemp and safetensors create owner-only modes; give the bundle the umask's modes."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def _work_prefix(kind: str, name: str) -> str:
    """``.tmp-<bundle>-p<pid>@<host>-``: the owner of a work folder, for the stale check."""
    return f".{kind}-{name}-p{os.getpid()}@{_host()}-"


# .tmp-<bundle>-p<pid>@<host>-<mkdtemp suffix>; older exports wrote no owner
_WORK_OWNER = re.compile(r"-p(\d+)@(.+)-[A-Za-z0-9_]+$")


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

    A folder whose name carries its owner (``-p<pid>@<host>-``, this module's exports) is
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


def _publish(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` folder to ``final``, replacing an older bundle."""
    _make_readable(tmp)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=_work_prefix("old", final.name), dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old)


def _keep_existing(
    final: Path, data_root: str, opts: ExportOptions, source_options: dict[str, Any]
) -> tuple[bool, str]:
    status = bundle_status(final, data_root)
    if not status.fresh:
        return False, f"{status.state}: {'; '.join(status.reasons)}"
    meta = json.loads((final / META).read_text(encoding="utf-8"))
    recorded = meta.get("export_params", {})
    current = opts.recorded()
    for key in CONTENT_PARAMS:
        was = recorded.get(key, _PARAM_BEFORE.get(key))
        if was != current[key]:
            return False, f"export parameter {key} was {was!r}, now {current[key]!r}"
    if meta.get("source_options") != source_options:
        return False, "source options changed"
    return True, "fresh"


def _device(opts: ExportOptions) -> torch.device:
    import torch.distributed as dist

    from tvr.distributed import DistEnv
    from tvr.evaluate import resolve_eval_device

    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", DistEnv.from_env().local_rank)
    return resolve_eval_device(opts.device)


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
    from tvr.checkpoint import CheckpointError, is_run_dir, load_pretrained, load_run_config
    from tvr.data.dataset import EvalSplit
    from tvr.data.sources import load_split
    from tvr.distributed import all_gather_object, broadcast_object, get_rank, get_world_size

    opts = options or ExportOptions()
    run_dir = Path(run_dir)
    rank, world = get_rank(), get_world_size()
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
    if broadcast_object(keep):
        return ExportResult(final, False)

    device = _device(opts)
    model, tokenizer, cfg = load_pretrained(run_dir, device=device)

    records = load_split(name, data_root, split, **source_options)
    split_gt = EvalSplit.from_records(records)
    logger.info("exporting %s on %s/%s: %d captions, %d videos, %d rank(s)", run_dir.name, name,
                split, split_gt.num_texts, split_gt.num_videos, world)
    shard = _embed_shard(model, tokenizer, split_gt, cfg, opts, device, rank, world, show)
    shards = all_gather_object(shard)

    error: BaseException | None = None
    if rank == 0:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_work_prefix("tmp", final.name), dir=final.parent))
        try:
            emb, thumbs, caption_index = _assemble(shards, split_gt, model, device, show)
            _build(tmp, run_dir=run_dir, model=model, tokenizer=tokenizer, cfg=cfg, emb=emb,
                   thumbs=thumbs, caption_index=caption_index, split_gt=split_gt, name=name,
                   split=split, data_root=data_root, source_options=source_options, opts=opts,
                   device=device, world=world, progress=show,
                   skipped=[x for sh in shards for x in sh.get("skipped", [])])
            _publish(tmp, final)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
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
    from tvr.checkpoint import CheckpointError, is_run_dir
    from tvr.data.records import SourceError
    from tvr.data.sources import SourceOptionError
    from tvr.distributed import cleanup, init_distributed
    from tvr.registry import RegistryError

    args = _parser().parse_args(argv)
    env = init_distributed()
    logging.basicConfig(
        level=logging.INFO if env.is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        opts = ExportOptions(
            projections=parse_projections(args.projection), batch_size=args.batch_size,
            graph_batch=args.graph_batch, thumb_size=args.thumb_size, seed=args.seed,
            device=args.device, amp=args.amp,
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
            if env.is_main:
                print(f"{'wrote' if result.written else 'fresh, kept'} {result.path}")
    except (ExportError, BundleError, CheckpointError, SourceError, SourceOptionError,
            RegistryError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
