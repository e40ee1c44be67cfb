"""Evaluation: ``python -m tvr.evaluate --run DIR [--dataset NAME --root PATH] --split test [--dsl]
[--qb-norm [PRESET]]``.

Every caption and every video of the split is embedded once (batched), the similarity matrix is
filled block by block (factorized heads by a matmul of pooled vectors, token-wise and cross heads
with the head's own ``score`` per block), and the metrics of ``tvr.metrics`` are written into the
run's ``metrics.json`` under ``<dataset>-<split>`` (atomically).

Ranks count ties against the model (spec §11.2). Where some query ties, the optimistic figures
are stored beside the others (``t2v/R@1_optimistic``, ...), a warning is logged, and the printed
summary adds an ``(optimistic ...)`` line and a ``WARNING`` line per tied direction.

Test-time re-normalisations are opt-in and stored under their own keys beside the plain
figures: ``--dsl`` (dual softmax, ``dsl/t2v/R@1`` ...) and ``--qb-norm`` (querybank
normalisation, Bogolin et al., CVPR 2022: ``qbnorm/t2v/R@1`` ...; :func:`qb_norm_metrics`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tvr.io import atomic_write_text
from tvr.models.features import TokenFeatures
from tvr.precision import AMP_CHOICES, autocast_dtype, inference_autocast

log = logging.getLogger(__name__)


def resolve_eval_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def embed_texts(
    model: nn.Module,
    captions: list[str],
    tokenizer: Any,
    max_words: int,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> TokenFeatures:
    """Head-embedded text features of every caption, on CPU.

    Shapes:
        returns TokenFeatures ``[Nt, L, D]``
    """
    out = []
    for i in tqdm(range(0, len(captions), batch_size), desc="embed texts", disable=not progress,
                  leave=False):
        ids, mask = tokenizer.encode(captions[i : i + batch_size], max_words)
        out.append(model.encode_text(ids.to(device), mask.to(device)).to("cpu"))
    return TokenFeatures.cat(out)


@torch.no_grad()
def embed_videos(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int = 16,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    on_batch: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> tuple[TokenFeatures, np.ndarray]:
    """Head-embedded video features of every decodable video, on CPU.

    ``on_batch``, when given, sees every decoded batch (CPU tensors, before embedding), so a
    caller can use the sampled frames without decoding the videos again.

    Returns:
        (features ``[Nv', T, D]``, the dataset indices they belong to ``[Nv']``); videos the
        dataset skipped (``on_decode_error="skip"``) are absent.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         num_workers=num_workers, collate_fn=dataset.collate)
    feats, index = [], []
    for batch in tqdm(loader, desc="embed videos", disable=not progress, leave=False):
        if batch is None or len(batch["video_index"]) == 0:
            continue
        if on_batch is not None:
            on_batch(batch)
        f = model.encode_video(batch["video"].to(device), batch["video_mask"].to(device))
        feats.append(f.to("cpu"))
        index.append(batch["video_index"].cpu().numpy())
    if not feats:
        raise RuntimeError("no video of the split could be decoded")
    return TokenFeatures.cat(feats), np.concatenate(index)


@torch.no_grad()
def similarity_matrix(
    model: nn.Module,
    text: TokenFeatures,
    video: TokenFeatures,
    *,
    block: int = 512,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Cosine-scale scores ``[Nt, Nv]`` (float32), filled block by block.

    Factorized heads use a matmul of pooled vectors; other heads call ``model.score`` on
    ``block x block`` sub-batches, so memory stays bounded for any split size.
    """
    nt, nv = len(text), len(video)
    sim = np.empty((nt, nv), dtype=np.float32)
    if model.factorized:
        v = video.pooled.to(device).float()
        for i in range(0, nt, block):
            t = text.pooled[i : i + block].to(device).float()
            sim[i : i + block] = (t @ v.T).float().cpu().numpy()
        return sim
    blocks = [(i, j) for i in range(0, nt, block) for j in range(0, nv, block)]
    for i, j in tqdm(blocks, desc="score blocks", disable=not progress, leave=False):
        t = text[i : i + block].to(device)
        v = video[j : j + block].to(device)
        sim[i : i + block, j : j + block] = model.score(t, v).float().cpu().numpy()
    return sim


def _float32(feats: TokenFeatures) -> TokenFeatures:
    """Floating fields as float32 (what autocast left in bf16/fp16)."""
    return feats.map(lambda t: t.float() if t.is_floating_point() else t)


@dataclass
class SplitEmbedding:
    """A split embedded by one model: features, similarity and the ground truth mapping."""

    text: TokenFeatures  # [Nt, L, D]
    video: TokenFeatures  # [Nv, T, D]
    sim: np.ndarray  # [Nt, Nv] cosine scale
    text_to_video: np.ndarray  # [Nt] column of each caption's video in ``sim``
    captions: list[str]
    video_ids: list[str]
    caption_rows: np.ndarray  # [Nt] index of each kept caption in the split's caption list
    video_rows: np.ndarray  # [Nv] index of each kept video in the split's record list
    skipped_videos: list[str]


@dataclass(frozen=True)
class EmbedOptions:
    """How :func:`embed_split` and :func:`embed_bank` sample, decode and embed a split.

    Build it once from a run's data config (:meth:`from_data`) and pass it to both.
    """

    num_frames: int  # frames sampled per video (T)
    image_size: int  # frame side in pixels
    max_words: int  # tokens per caption (L)
    on_decode_error: str = "raise"  # raise | skip: what an undecodable video does
    frame_cache: str | None = None  # on-disk cache of sampled frames (None = off)
    frame_sampling: str = "auto"  # tvr.data.video sampling method
    decode_threads: str = ""  # FFmpeg decoder threads ("" = per sampling mode)
    batch_size: int = 16  # videos per batch (captions: at least 64)
    num_workers: int = 0  # DataLoader workers for decoding
    device: torch.device | str = "cpu"
    progress: bool = True  # tqdm bars
    amp: str = "off"  # autocast of the towers (tvr.precision); scores stay float32
    # sees each decoded video batch (video, video_mask, video_index, video_times) before it is
    # embedded, e.g. the export's thumbnails; None = batches carry no video_times
    on_video_batch: Callable[[dict[str, torch.Tensor]], None] | None = None

    @classmethod
    def from_data(cls, data: Any, **overrides: Any) -> EmbedOptions:
        """Options of a :class:`tvr.config.DataConfig` (frames, words, decoding, cache,
        workers); ``overrides`` set the other fields (``batch_size``, ``device``, ...)."""
        fields = dict(
            num_frames=data.num_frames, image_size=data.image_size, max_words=data.max_words,
            on_decode_error=data.on_decode_error, frame_cache=data.frame_cache or None,
            frame_sampling=data.frame_sampling, decode_threads=data.decode_threads,
            num_workers=data.num_workers,
        )
        return cls(**{**fields, **overrides})


def _resolve_options(options: EmbedOptions | None, fields: dict[str, Any]) -> EmbedOptions:
    """``options`` with ``fields`` replaced, or options built from ``fields`` alone.

    Raises:
        TypeError: a field name :class:`EmbedOptions` does not have, or neither options nor
            the three sizes (``num_frames``, ``image_size``, ``max_words``).
    """
    if options is None:
        return EmbedOptions(**fields)
    return replace(options, **fields) if fields else options


def _video_dataset(records: list, opts: EmbedOptions) -> tuple[Any, Any]:
    """``(EvalSplit, VideoDataset)`` of ``records`` sampled for evaluation."""
    from tvr.data.dataset import EvalSplit, VideoDataset
    from tvr.data.video import FrameSampler, sampling_options

    split = EvalSplit.from_records(records)
    method, thread_type = sampling_options(opts.frame_sampling, opts.decode_threads)
    sampler = FrameSampler(opts.num_frames, opts.image_size, method=method,
                           cache_dir=opts.frame_cache or None, thread_type=thread_type)
    return split, VideoDataset(split, sampler, on_decode_error=opts.on_decode_error,
                               with_times=opts.on_video_batch is not None)


def embed_split(
    model: nn.Module,
    tokenizer: Any,
    records: list,
    options: EmbedOptions | None = None,
    /,
    **fields: Any,
) -> SplitEmbedding:
    """Embed every caption and video of ``records`` and score all pairs.

    ``options`` (:class:`EmbedOptions`) says how; keyword ``fields`` replace its fields (or
    build the options when none are given). ``amp`` runs the towers under autocast
    (:mod:`tvr.precision`: ``"off"``, ``"auto"``, ``"bf16"``, ``"fp16"``); the features are
    cast back to float32 and scored in float32.

    Videos that cannot be decoded under ``on_decode_error="skip"`` leave the gallery together
    with their captions; the numbers evaluated are logged.
    """
    opts = _resolve_options(options, fields)
    amp, device, progress, batch_size = opts.amp, opts.device, opts.progress, opts.batch_size
    split, vds = _video_dataset(records, opts)
    with inference_autocast(amp, device):
        video, kept_videos = embed_videos(model, vds, batch_size=batch_size,
                                          num_workers=opts.num_workers, device=device,
                                          progress=progress, on_batch=opts.on_video_batch)
    video = _float32(video)
    kept_set = {int(v): col for col, v in enumerate(kept_videos)}
    t2v_full = np.asarray(split.text_to_video)
    caption_rows = np.array([i for i, v in enumerate(t2v_full) if int(v) in kept_set], dtype=np.int64)
    captions = [split.captions[i] for i in caption_rows]
    with inference_autocast(amp, device):
        text = _float32(embed_texts(model, captions, tokenizer, opts.max_words,
                                    batch_size=max(batch_size, 64), device=device,
                                    progress=progress))
    text_to_video = np.array([kept_set[int(t2v_full[i])] for i in caption_rows], dtype=np.int64)
    # scored in float32: bf16 scores keep ~3 significant digits, enough to tie near neighbours
    sim = similarity_matrix(model, text, video, device=device, progress=progress)
    skipped = [split.video_ids[i] for i in range(split.num_videos) if i not in kept_set]
    if skipped:
        log.warning("evaluated %d of %d videos (%d could not be decoded: %s)", len(kept_videos),
                    split.num_videos, len(skipped), skipped[:10])
    return SplitEmbedding(
        text=text, video=video, sim=sim, text_to_video=text_to_video, captions=captions,
        video_ids=[split.video_ids[int(i)] for i in kept_videos], caption_rows=caption_rows,
        video_rows=np.asarray(kept_videos, dtype=np.int64), skipped_videos=skipped,
    )


QB_NORM_SETTINGS: dict[str, dict[str, str]] = {
    "reference": {"t2v": "reference", "v2t": "reference"},
    "dicosa": {"t2v": "dicosa_t2v", "v2t": "dicosa_v2t"},
}
"""``--qb-norm`` presets -> the :data:`tvr.renorm.QB_NORM_PRESETS` entry used per direction."""


def embed_bank(
    model: nn.Module,
    tokenizer: Any,
    records: list,
    options: EmbedOptions | None = None,
    /,
    **fields: Any,
) -> tuple[TokenFeatures, TokenFeatures]:
    """Head-embedded captions and videos of a query bank's records (e.g. the training split).

    ``options``/``fields`` as in :func:`embed_split`. Unlike it, no bank x bank similarity is computed; videos the dataset
    skips (``on_decode_error="skip"``) leave the bank, their captions stay.

    Shapes:
        returns (text ``[Nb_t, L, D]``, video ``[Nb_v, T, D]``)
    """
    opts = _resolve_options(options, fields)
    split, vds = _video_dataset(records, opts)
    with inference_autocast(opts.amp, opts.device):
        video, _ = embed_videos(model, vds, batch_size=opts.batch_size,
                                num_workers=opts.num_workers, device=opts.device,
                                progress=opts.progress)
        text = embed_texts(model, list(split.captions), tokenizer, opts.max_words,
                           batch_size=max(opts.batch_size, 64), device=opts.device,
                           progress=opts.progress)
    return _float32(text), _float32(video)


def qb_norm_metrics(
    model: nn.Module,
    emb: SplitEmbedding,
    bank_text: TokenFeatures,
    bank_video: TokenFeatures,
    *,
    preset: str = "reference",
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Metrics of ``emb`` after querybank normalisation (:func:`tvr.renorm.qb_norm`).

    t2v rows are the split's captions and the bank is ``bank_text`` x the split's videos; v2t
    rows are the split's videos and the bank is ``bank_video`` x the split's captions (spec
    ``data_and_metrics.md`` §12.2). The hyper-parameters come from :data:`QB_NORM_SETTINGS`.

    Returns:
        ``qbnorm/t2v/...`` and ``qbnorm/v2t/...`` (and ``qbnorm/v2t_any/...``) metric keys,
        plus ``qb_norm``: the preset, each direction's ``k``/``beta``/``theta`` and the bank sizes.

    Shapes:
        bank_text ``[Nb_t, L, D]``, bank_video ``[Nb_v, T, D]``; ``emb.sim`` ``[Nt, Nv]``.
    """
    from tvr.metrics import retrieval_metrics
    from tvr.renorm import QB_NORM_PRESETS, qb_norm

    if preset not in QB_NORM_SETTINGS:
        raise ValueError(f"qb_norm preset {preset!r}: expected one of {sorted(QB_NORM_SETTINGS)}")
    params = {d: dict(QB_NORM_PRESETS[name]) for d, name in QB_NORM_SETTINGS[preset].items()}
    bank_t2v = similarity_matrix(model, bank_text, emb.video, device=device,
                                 progress=progress)  # [Nb_t, Nv]
    bank_v2t = similarity_matrix(model, emb.text, bank_video, device=device,
                                 progress=progress).T  # [Nb_v, Nt]
    t2v_sim = qb_norm(emb.sim, bank_t2v, **params["t2v"])  # [Nt, Nv]
    v2t_sim = qb_norm(np.ascontiguousarray(emb.sim.T), bank_v2t, **params["v2t"]).T  # [Nt, Nv]
    normalised = retrieval_metrics(t2v_sim, emb.text_to_video, v2t_sim=v2t_sim)
    out: dict[str, Any] = {
        f"qbnorm/{k}": v for k, v in normalised.items() if k.startswith(("t2v/", "v2t/", "v2t_any/"))
    }
    out["qb_norm"] = {"preset": preset, **params, "bank_texts": len(bank_text),
                      "bank_videos": len(bank_video)}
    return out


def evaluate_run(
    run_dir: str | Path,
    *,
    dataset: str | None = None,
    root: str | None = None,
    split: str = "test",
    dsl: bool = False,
    qb_norm: str | None = None,
    qb_bank: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
    progress: bool = True,
    write: bool = True,
    amp: str = "off",
) -> dict[str, Any]:
    """Evaluate a run folder on a split; returns (and writes) its metrics.

    ``dataset``/``root`` default to the run's own training data; ``amp`` as in
    :func:`embed_split` (recorded in the metrics). ``qb_norm`` (a :data:`QB_NORM_SETTINGS`
    preset) adds the querybank-normalised figures, with the bank built from split ``qb_bank``
    of the same dataset (default: the run's ``data.train_split``).
    """
    from tvr.checkpoint import load_pretrained
    from tvr.data.sources import load_split

    run_dir = Path(run_dir)
    dev = resolve_eval_device(device)
    model, tokenizer, cfg = load_pretrained(run_dir, device=dev)
    name = dataset or cfg.data.dataset
    data_root = root or cfg.data.root
    options = cfg.data.source_options if name == cfg.data.dataset else {}
    records = load_split(name, data_root, split, **options)
    bank_records = None
    if qb_norm is not None:
        bank_split = qb_bank or cfg.data.train_split
        if bank_split == split:
            raise ValueError(f"qb_bank={bank_split!r} is the evaluated split; QB-Norm's bank must "
                             "be other queries (e.g. the training split)")
        bank_records = load_split(name, data_root, bank_split, **options)
    metrics, _ = evaluate_model(model, tokenizer, cfg, records, dataset=name, split=split,
                                dsl=dsl, qb_norm=qb_norm, bank_records=bank_records,
                                batch_size=batch_size, device=dev, progress=progress, amp=amp)
    if qb_norm is not None:
        metrics["qb_norm"]["bank_split"] = bank_split
    if write:
        write_metrics(run_dir, f"{name}-{split}", metrics)
    return metrics


def write_metrics(run_dir: str | Path, key: str, value: Any) -> None:
    """Set ``key`` of the run's ``metrics.json`` (other keys stay), atomically."""
    path = Path(run_dir) / "metrics.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    existing[key] = value
    atomic_write_text(path, json.dumps(existing, indent=2, default=float) + "\n")


def evaluate_model(
    model: nn.Module,
    tokenizer: Any,
    cfg: Any,
    records: list,
    *,
    dataset: str,
    split: str,
    dsl: bool = False,
    qb_norm: str | None = None,
    bank_records: list | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    progress: bool = True,
    amp: str = "off",
) -> tuple[dict[str, Any], SplitEmbedding]:
    """Metrics of an in-memory model on a split's records (inference mode; training-only
    objectives are not run). Returns the metrics and the split's embedding.

    ``qb_norm`` (a :data:`QB_NORM_SETTINGS` preset) adds :func:`qb_norm_metrics` with the
    query bank embedded from ``bank_records``."""
    if qb_norm is not None and not bank_records:
        raise ValueError("qb_norm needs bank_records (the query bank, e.g. the training split)")
    from tvr.metrics import RANK_RULE, retrieval_metrics
    from tvr.renorm import dual_softmax

    model = model.for_inference()
    opts = EmbedOptions.from_data(cfg.data, batch_size=batch_size, device=device,
                                  progress=progress, amp=amp)
    emb = embed_split(model, tokenizer, records, opts)
    name = dataset
    metrics: dict[str, Any] = dict(retrieval_metrics(emb.sim, emb.text_to_video))
    if dsl:
        t2v = retrieval_metrics(dual_softmax(emb.sim, direction="t2v"), emb.text_to_video)
        v2t = retrieval_metrics(dual_softmax(emb.sim, direction="v2t"), emb.text_to_video)
        metrics.update({f"dsl/{k}": v for k, v in t2v.items() if k.startswith("t2v/")})
        metrics.update({f"dsl/{k}": v for k, v in v2t.items() if k.startswith("v2t/")})
    if qb_norm is not None:
        bank_text, bank_video = embed_bank(model, tokenizer, bank_records, opts)
        metrics.update(qb_norm_metrics(model, emb, bank_text, bank_video, preset=qb_norm,
                                       device=device, progress=progress))
    applied = [name for name, on in (("dsl", dsl), ("qb_norm", qb_norm is not None)) if on]
    metrics.update(
        {
            "dataset": name, "split": split, "num_texts": len(emb.captions),
            "num_videos": len(emb.video_ids), "skipped_videos": emb.skipped_videos,
            "frames": cfg.data.num_frames, "words": cfg.data.max_words,
            "head": cfg.head.name, "post_processing": "+".join(applied) or "none",
            "rank_rule": RANK_RULE, "v2t_rule": "best caption per video (MSVD)",
            "precision": str(autocast_dtype(amp, device) or torch.float32).split(".")[-1],
        }
    )
    return metrics, emb


def format_metrics(metrics: dict[str, Any], run: str | None = None) -> str:
    """The printed summary: R@K, MdR, MnR per direction.

    Where a direction has tied queries, an ``(optimistic)`` line with the ties-in-favour figures
    follows it and a ``WARNING`` line (naming ``run`` when given) ends the summary. With
    QB-Norm figures (``qbnorm/...``) a ``(QB-Norm)`` line follows each direction.
    """
    from tvr.metric_ties import OPTIMISTIC_SUFFIX, tie_warning, tied_directions

    keys = ["R@1", "R@5", "R@10", "R@50", "MdR", "MnR"]

    def line(label: str, direction: str, suffix: str) -> str:
        shown = [
            f"{k} {metrics[f'{direction}/{k}{suffix}']:.1f}"
            for k in keys
            if f"{direction}/{k}{suffix}" in metrics
        ]
        return f"{label}: " + "  ".join(shown)

    tied = tied_directions(metrics)
    rows = []
    for direction in ("t2v", "v2t"):
        rows.append(line(direction, direction, ""))
        if direction in tied and f"{direction}/R@1{OPTIMISTIC_SUFFIX}" in metrics:
            rows.append(line(f"{direction} (optimistic, ties favour the model)", direction,
                             OPTIMISTIC_SUFFIX))
        if f"qbnorm/{direction}/R@1" in metrics:
            rows.append(line(f"{direction} (QB-Norm)", f"qbnorm/{direction}", ""))
    rows.extend(f"WARNING: {tie_warning(metrics, d, run=run)}" for d in tied)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tvr.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="run folder (config.json + weights)")
    p.add_argument("--dataset", help="source name (default: the run's training dataset)")
    p.add_argument("--root", help="dataset root (default: the run's data.root)")
    p.add_argument("--split", default="test")
    p.add_argument("--dsl", action="store_true", help="also report dual-softmax re-normalised metrics")
    p.add_argument("--qb-norm", nargs="?", const="reference", choices=sorted(QB_NORM_SETTINGS),
                   metavar="PRESET",
                   help="also report querybank-normalised metrics (QB-Norm, Bogolin et al. 2022; "
                   "preset 'reference' (k=1, beta=20, theta=1, the default) or 'dicosa')")
    p.add_argument("--qb-bank", metavar="SPLIT",
                   help="split whose captions/videos form QB-Norm's query bank (default: the "
                   "run's data.train_split)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=AMP_CHOICES, default="off",
                   help="autocast for the towers: bf16 on CPUs/GPUs that have it (auto), bf16, "
                        "fp16, or off (float32, the default); scores stay float32")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.qb_bank and not args.qb_norm:
        p.error("--qb-bank needs --qb-norm")
    metrics = evaluate_run(args.run, dataset=args.dataset, root=args.root, split=args.split,
                           dsl=args.dsl, qb_norm=args.qb_norm, qb_bank=args.qb_bank,
                           batch_size=args.batch_size, device=args.device, amp=args.amp)
    print(format_metrics(metrics, run=str(args.run)))
    print(f"N: {metrics['num_texts']} texts x {metrics['num_videos']} videos; "
          f"written to {args.run / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
