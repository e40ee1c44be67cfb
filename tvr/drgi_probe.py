"""Split-level DRGI probes: hard negatives of a whole split, discriminator scores per query,
and the information test (methods.md §9.8).

    python -m tvr.drgi_probe --run DIR [--split val] [--dataset NAME --root PATH] [--no-write]

The information test asks whether DRGI knows anything the base model does not. For every
caption query the discriminator scores the video nodes of its own video and of the split's
hardest other video against the caption (the t->v direction, "video"), and for every video
query the text nodes of its caption and of the hardest other caption (v->t, "text"); it is
right when the positive graph's mean sigmoid score beats the negative's. The same anchors are
split by whether the base similarity already ranks the pair above that negative. On the
anchors the base gets wrong, accuracy above chance (0.5) is the only evidence that DRGI adds
information; at chance it can only add noise.

The report is written into the run's ``metrics.json`` under ``drgi_info`` ->
``<dataset>-<split>``; training writes the same report at every val evaluation (log.jsonl).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tvr.models.features import TokenFeatures
from tvr.objectives.drgi_diagnostics import (
    attention_entropy,
    attention_logit_range,
    mean_pairwise_cosine,
    node_mean_sigmoid,
)
from tvr.objectives.drgi_negatives import mine_negatives

log = logging.getLogger(__name__)

MINE_BLOCK = 1024  # caption anchors per pair-aligned mining sub-matrix
INFO_KEY = "drgi_info"  # metrics.json key of the information-test reports


@dataclass(frozen=True)
class SplitNegatives:
    """Hard negatives of a split's caption and video queries (module docstring, "DRGI").

    Shapes:
        representative: ``[Nv]`` first caption of every video.
        text_neg_video, text_neg_text, text_valid: ``[Nt]`` per caption query.
        video_neg_video, video_neg_text, video_valid: ``[Nv]`` per video query.
    """

    representative: np.ndarray
    text_neg_video: np.ndarray
    text_neg_text: np.ndarray
    text_valid: np.ndarray
    video_neg_video: np.ndarray
    video_neg_text: np.ndarray
    video_valid: np.ndarray


def representative_captions(text_to_video: np.ndarray, num_videos: int) -> np.ndarray:
    """The first caption of every video; ``[Nv]`` int64.

    Raises:
        ValueError: a video without caption.
    """
    t2v = np.asarray(text_to_video, dtype=np.int64)
    videos, first = np.unique(t2v, return_index=True)
    if len(videos) != num_videos:
        missing = sorted(set(range(num_videos)) - set(videos.tolist()))
        raise ValueError(f"videos {missing[:10]} have no caption in the split")
    return first.astype(np.int64)


def mine_split_negatives(
    sim: np.ndarray, text_to_video: np.ndarray, *, block: int = MINE_BLOCK
) -> SplitNegatives:
    """Hardest negatives of every caption and every video with ``drgi.mine_negatives``.

    Shapes:
        sim ``[Nt, Nv]``, text_to_video ``[Nt]`` -> :class:`SplitNegatives`
    """
    sim = np.asarray(sim, dtype=np.float32)
    t2v = np.asarray(text_to_video, dtype=np.int64)
    nt, nv = sim.shape
    rep = representative_captions(t2v, nv)
    videos = np.arange(nv)
    # video queries: pairs (first caption of v, v), an Nv x Nv pair-aligned matrix
    vq = mine_negatives(torch.from_numpy(np.ascontiguousarray(sim[rep])),
                        torch.from_numpy(videos), topm=1)
    video_neg_video = vq.video[:, 0].numpy()
    video_neg_text = rep[vq.text[:, 0].numpy()]
    video_valid = vq.valid[:, 0].numpy()
    # caption queries: anchors of one block plus one pair per video, so every video competes
    text_neg_video = np.empty(nt, dtype=np.int64)
    text_valid = np.empty(nt, dtype=bool)
    for a in range(0, nt, block):
        rows = np.arange(a, min(nt, a + block))
        texts = np.concatenate([rows, rep])
        cols = np.concatenate([t2v[rows], videos])
        sub = torch.from_numpy(np.ascontiguousarray(sim[np.ix_(texts, cols)]))
        neg = mine_negatives(sub, torch.from_numpy(cols), topm=1, anchors=slice(0, len(rows)))
        text_neg_video[rows] = cols[neg.video[:, 0].numpy()]
        text_valid[rows] = neg.valid[:, 0].numpy()
    return SplitNegatives(
        representative=rep,
        text_neg_video=text_neg_video,
        text_neg_text=video_neg_text[t2v],
        text_valid=text_valid & video_valid[t2v],
        video_neg_video=video_neg_video.astype(np.int64),
        video_neg_text=video_neg_text.astype(np.int64),
        video_valid=video_valid,
    )


@torch.no_grad()
def drgi_query_outputs(
    drgi: nn.Module,
    text: TokenFeatures,
    video: TokenFeatures,
    anchor_text: np.ndarray,
    anchor_video: np.ndarray,
    neg_text: np.ndarray,
    neg_video: np.ndarray,
    neg_valid: np.ndarray,
    *,
    keep: Literal["text", "video"],
    batch: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Discriminator scores and GAT attention of anchor pairs, in batches.

    Each batch encodes its anchor pairs and one negative pair per anchor (caption
    ``neg_text``, video ``neg_video``), so memory is bounded by ``batch``.

    Args:
        drgi: the run's :class:`~tvr.objectives.drgi.DRGI` objective.
        text, video: head-embedded features of the split.
        anchor_text, anchor_video, neg_text, neg_video, neg_valid: ``[A]`` per query.
        keep: whose GAT attention to return: the anchor captions' or the anchor videos'.

    Returns:
        ``pos_video``, ``neg_video``, ``pos_text``, ``neg_text`` ``[A]`` float32 (NaN on
        invalid negatives), ``attention`` ``[A, H, N, N]`` float16, ``node_mask``
        ``[A, N]`` bool, ``node_cos`` / ``input_cos`` ``[A]`` (mean pairwise cosine of the GAT
        outputs / inputs of one graph), ``entropy`` / ``logit_range`` ``[A]`` (of its float32
        attention) of the kept side.
    """
    n = len(anchor_text)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("pos_video", "neg_video", "pos_text", "neg_text", "attention",
                        "node_mask", "node_cos", "input_cos", "entropy", "logit_range")
    }
    for a in tqdm(range(0, n, batch), desc=f"DRGI {keep} queries", disable=not progress,
                  leave=False):
        sl = slice(a, min(n, a + batch))
        c = sl.stop - sl.start
        valid = torch.as_tensor(neg_valid[sl], dtype=torch.bool)
        t_idx = torch.as_tensor(np.concatenate([anchor_text[sl], neg_text[sl]]), dtype=torch.long)
        v_idx = torch.as_tensor(np.concatenate([anchor_video[sl], neg_video[sl]]),
                                dtype=torch.long)
        neg = torch.arange(c, 2 * c)[:, None]
        g = drgi.graph_outputs(
            text[t_idx].to(device), video[v_idx].to(device), neg.to(device), neg.to(device),
            valid[:, None].to(device), anchors=torch.arange(c, device=device),
            return_attention=True,
        )
        scores = {
            "pos_video": node_mean_sigmoid(g.pos_video_scores, g.pos_video_mask),
            "neg_video": node_mean_sigmoid(g.neg_video_scores[:, 0], g.neg_video_mask[:, 0]),
            "pos_text": node_mean_sigmoid(g.pos_text_scores, g.pos_text_mask),
            "neg_text": node_mean_sigmoid(g.neg_text_scores[:, 0], g.neg_text_mask[:, 0]),
        }
        for k, v in scores.items():
            parts[k].append(v.cpu().numpy().astype(np.float32))
        graph = g.text if keep == "text" else g.video
        inputs = g.text_inputs if keep == "text" else g.video_inputs
        parts["attention"].append(graph.attention[:c].cpu().numpy().astype(np.float16))
        parts["node_mask"].append(graph.mask[:c].cpu().numpy().astype(bool))
        parts["entropy"].append(  # from float32 attention, before the float16 cast above
            attention_entropy(graph.attention[:c], graph.mask[:c]).cpu().numpy())
        parts["logit_range"].append(
            attention_logit_range(graph.attention[:c], graph.mask[:c]).cpu().numpy())
        parts["node_cos"].append(
            mean_pairwise_cosine(graph.nodes[:c], graph.mask[:c]).cpu().numpy().astype(np.float32))
        parts["input_cos"].append(
            mean_pairwise_cosine(inputs[:c], graph.mask[:c]).cpu().numpy().astype(np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _wilson(k: int, n: int) -> list[float]:
    """95% Wilson interval of a proportion k / n ([nan, nan] when n = 0)."""
    if n == 0:
        return [math.nan, math.nan]
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def _accuracy_split(pos: np.ndarray, neg: np.ndarray, base_right: np.ndarray,
                    valid: np.ndarray) -> dict[str, Any]:
    """Discriminator accuracy overall and on the anchors the base ranks right / wrong."""
    ok = valid & np.isfinite(pos) & np.isfinite(neg)
    right = (pos > neg)[ok]
    base = base_right[ok]
    out: dict[str, Any] = {
        "n": int(ok.sum()),
        "acc": float(right.mean()) if ok.any() else math.nan,
        "base_right": float(base.mean()) if ok.any() else math.nan,
    }
    for name, sel in (("base_right", base), ("base_wrong", ~base)):
        k, n = int(right[sel].sum()), int(sel.sum())
        out[f"n_{name}"] = n
        out[f"acc_{name}"] = k / n if n else math.nan
        out[f"acc_{name}_ci95"] = _wilson(k, n)
    return out


def information_report(
    cap: dict[str, np.ndarray],
    vid: dict[str, np.ndarray],
    negs: SplitNegatives,
    sim: np.ndarray,
    text_to_video: np.ndarray,
) -> dict[str, Any]:
    """The report of :func:`information_test` from already computed query outputs.

    Args:
        cap: :func:`drgi_query_outputs` of every caption query (``keep="text"``).
        vid: the same for every video query (``keep="video"``).
        negs: the split's negatives the queries were scored on.
        sim: ``[Nt, Nv]`` base similarity; text_to_video: ``[Nt]``.
    """
    sim = np.asarray(sim, dtype=np.float32)
    t2v = np.asarray(text_to_video, dtype=np.int64)
    nt, nv = sim.shape
    rows, cols = np.arange(nt), np.arange(nv)
    base_video = sim[rows, t2v] > sim[rows, negs.text_neg_video]
    base_text = sim[negs.representative, cols] > sim[negs.video_neg_text, cols]
    ent_t, rng_t = float(np.nanmean(cap["entropy"])), float(np.nanmean(cap["logit_range"]))
    ent_v, rng_v = float(np.nanmean(vid["entropy"])), float(np.nanmean(vid["logit_range"]))
    pos = np.concatenate([cap["pos_video"], vid["pos_text"]])
    neg = np.concatenate([cap["neg_video"], vid["neg_text"]])
    return {
        "video": _accuracy_split(cap["pos_video"], cap["neg_video"], base_video, negs.text_valid),
        "text": _accuracy_split(vid["pos_text"], vid["neg_text"], base_text, negs.video_valid),
        "pos_score": float(np.nanmean(pos)),
        "neg_score": float(np.nanmean(neg)),
        "entropy_text": ent_t, "entropy_video": ent_v,
        "logit_range_text": rng_t, "logit_range_video": rng_v,
        "node_cos_text": float(np.nanmean(cap["node_cos"])),
        "node_cos_video": float(np.nanmean(vid["node_cos"])),
        "input_cos_text": float(np.nanmean(cap["input_cos"])),
        "input_cos_video": float(np.nanmean(vid["input_cos"])),
        "num_texts": int(nt), "num_videos": int(nv),
    }


@torch.no_grad()
def information_test(
    drgi: nn.Module,
    text: TokenFeatures,
    video: TokenFeatures,
    sim: np.ndarray,
    text_to_video: np.ndarray,
    *,
    batch: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """The information test and graph diagnostics of a DRGI objective on one split.

    Args:
        drgi: a trained :class:`~tvr.objectives.drgi.DRGI` objective.
        text, video: head-embedded features of the split (``tvr.evaluate.embed_split``).
        sim: ``[Nt, Nv]`` base similarity; text_to_video: ``[Nt]``.

    Returns:
        ``video`` / ``text``: accuracy against the hardest negative (``acc``), the base's own
        accuracy on the same pairs (``base_right``), the discriminator's accuracy on the
        anchors the base ranks right / wrong (``acc_base_right``, ``acc_base_wrong``, each with
        its count and a 95% Wilson interval); ``pos_score`` / ``neg_score`` (mean sigmoid);
        ``entropy_*`` / ``logit_range_*`` (attention), ``node_cos_*`` / ``input_cos_*``
        (mean pairwise cosine of GAT outputs / inputs within a graph).
    """
    sim = np.asarray(sim, dtype=np.float32)
    t2v = np.asarray(text_to_video, dtype=np.int64)
    negs, cap, vid = split_query_outputs(drgi, text, video, sim, t2v, batch=batch, device=device,
                                         progress=progress)
    return information_report(cap, vid, negs, sim, t2v)


@torch.no_grad()
def split_query_outputs(
    drgi: nn.Module,
    text: TokenFeatures,
    video: TokenFeatures,
    sim: np.ndarray,
    text_to_video: np.ndarray,
    *,
    batch: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[SplitNegatives, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The split's hardest negatives and DRGI's outputs for every caption query (anchor: the
    caption and its video) and every video query (anchor: the video and its representative
    caption), in eval mode; what :func:`information_test` and the bundle export both read.

    Shapes:
        sim ``[Nt, Nv]``, text_to_video ``[Nt]`` -> (negatives, caption-query outputs ``[Nt, ...]``,
        video-query outputs ``[Nv, ...]``) as :func:`drgi_query_outputs` returns them.
    """
    t2v = np.asarray(text_to_video, dtype=np.int64)
    nt, nv = np.shape(sim)
    negs = mine_split_negatives(np.asarray(sim, dtype=np.float32), t2v)
    was_training = drgi.training
    drgi.eval()
    try:
        cap = drgi_query_outputs(drgi, text, video, np.arange(nt), t2v, negs.text_neg_text,
                                 negs.text_neg_video, negs.text_valid, keep="text", batch=batch,
                                 device=device, progress=progress)
        vid = drgi_query_outputs(drgi, text, video, negs.representative, np.arange(nv),
                                 negs.video_neg_text, negs.video_neg_video, negs.video_valid,
                                 keep="video", batch=batch, device=device, progress=progress)
    finally:
        drgi.train(was_training)
    return negs, cap, vid


def flatten_info(info: dict[str, Any], prefix: str = "drgi_info") -> dict[str, float]:
    """One flat ``{prefix/key: number}`` dict of a report (for log lines and tables)."""
    out: dict[str, float] = {}
    for k, v in info.items():
        if isinstance(v, dict):
            out.update(flatten_info(v, f"{prefix}/{k}"))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[f"{prefix}/{k}"] = v
    return out


def format_info(info: dict[str, Any]) -> str:
    """A small text table of :func:`information_test`'s report."""
    lines = ["direction       acc    base right   acc | base right   acc | base wrong (n, 95% CI)"]
    for side, label in (("video", "t->v (video)"), ("text", "v->t (text)")):
        r = info[side]
        lo, hi = r["acc_base_wrong_ci95"]
        lines.append(
            f"{label:<14} {r['acc']:.3f}  {r['base_right']:.3f}        {r['acc_base_right']:.3f}"
            f"             {r['acc_base_wrong']:.3f} ({r['n_base_wrong']}, {lo:.2f}-{hi:.2f})"
        )
    lines.append(
        f"scores pos {info['pos_score']:.3f} / neg {info['neg_score']:.3f}; attention entropy "
        f"t {info['entropy_text']:.3f} / v {info['entropy_video']:.3f}; node cos t "
        f"{info['node_cos_text']:.3f} / v {info['node_cos_video']:.3f} (inputs "
        f"{info['input_cos_text']:.3f} / {info['input_cos_video']:.3f})"
    )
    return "\n".join(lines)


def probe_run(
    run_dir: str | Path,
    *,
    split: str = "val",
    dataset: str | None = None,
    root: str | None = None,
    device: str = "auto",
    progress: bool = True,
    write: bool = True,
) -> dict[str, Any]:
    """Run the information test of a DRGI run on a split (and record it in metrics.json)."""
    from tvr.checkpoint import load_pretrained
    from tvr.data.sources import load_split
    from tvr.evaluate import evaluate_model, resolve_eval_device, write_metrics

    run_dir = Path(run_dir)
    dev = resolve_eval_device(device)
    model, tokenizer, cfg = load_pretrained(run_dir, device=dev)
    if "drgi" not in model.objectives:
        raise ValueError(f"{run_dir}: the run has no DRGI objective (drgi is not among its objectives)")
    name = dataset or cfg.data.dataset
    options = cfg.data.source_options if name == cfg.data.dataset else {}
    records = load_split(name, root or cfg.data.root, split, **options)
    _, emb = evaluate_model(model, tokenizer, cfg, records, dataset=name, split=split,
                            device=dev, progress=progress)
    info = information_test(model.objectives["drgi"], emb.text, emb.video, emb.sim,
                            emb.text_to_video, device=dev, progress=progress)
    if write:
        path = run_dir / "metrics.json"
        existing = json.loads(path.read_text()).get(INFO_KEY, {}) if path.is_file() else {}
        existing[f"{name}-{split}"] = info
        write_metrics(run_dir, INFO_KEY, existing)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tvr.drgi_probe", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="DRGI run folder")
    p.add_argument("--split", default="val", help="split to probe (default: val)")
    p.add_argument("--dataset", help="source name (default: the run's training dataset)")
    p.add_argument("--root", help="dataset root (default: the run's data.root)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-write", action="store_true", help="do not record it in metrics.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    info = probe_run(args.run, split=args.split, dataset=args.dataset, root=args.root,
                     device=args.device, write=not args.no_write)
    print(format_info(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
