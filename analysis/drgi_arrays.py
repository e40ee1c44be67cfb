"""DRGI probing of a split: what a bundle's ``drgi.safetensors`` holds and ``meta.json``'s
``drgi`` entry, for runs whose checkpoint holds the trained DRGI objective.

Every caption is a query paired with its ground-truth video; every video is a query paired with
its first caption. Hard negatives come from :func:`tvr.objectives.drgi.mine_negatives` on the
split's similarity, always excluding the anchor's own video: the hardest video for a caption is
searched over all videos (in blocks of pair-aligned sub-matrices, memory
``O((block + Nv)^2)``); the hardest caption for a video over one representative caption per
video (its first), so the video side is an ``Nv x Nv`` pair-aligned matrix. On
one-caption-per-video splits (MSR-VTT 1k-A, SynthVTT val/test) both equal mining on the full
pair-aligned square. A caption query's text negative is its video's.
``DRGI.graph_outputs(..., return_attention=True)`` runs on batches of anchors; the scores are
the mean sigmoid of the discriminator over the valid nodes. The probing primitives live in
:mod:`tvr.drgi_probe`; this module assembles them into the bundle's arrays.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.bundle import DRGIMeta
from tvr.drgi_probe import information_report, split_query_outputs
from tvr.models.features import TokenFeatures

logger = logging.getLogger(__name__)

MINING = ("hardest other video over all videos; hardest caption of another video over each "
          "video's first caption; never the anchor's own video")
VARIANT_KEYS: tuple[str, ...] = ("attention", "root", "attn_temperature", "graph_topk",
                                 "readout", "score", "global_node", "summary", "negatives",
                                 "weight")


def trained_drgi(model: nn.Module, run_dir: Path) -> nn.Module | None:
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
    negs, cap, vid = split_query_outputs(drgi, text, video, sim, t2v, batch=batch, device=device,
                                         progress=progress)
    results = {"text": cap, "video": vid}
    queries = {
        "text_queries": (np.arange(nt), t2v, negs.text_neg_text, negs.text_neg_video,
                         negs.text_valid, "text"),
        "video_queries": (negs.representative, np.arange(nv), negs.video_neg_text,
                          negs.video_neg_video, negs.video_valid, "video"),
    }
    out: dict[str, np.ndarray] = {}
    for prefix, (a_t, a_v, n_t, n_v, valid, keep) in queries.items():
        res = results[keep]
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



def drgi_meta(cfg: Any, drgi: nn.Module | None,
              diagnostics: dict[str, Any] | None = None) -> DRGIMeta | None:
    """The ``meta.json`` entry of the run's DRGI objective (None without one).

    Args:
        cfg: the run's :class:`tvr.config.ExperimentConfig` (its ``drgi`` section).
        drgi: the trained objective (:func:`trained_drgi`).
        diagnostics: the :func:`drgi_arrays` report (NaN / inf are stored as null).
    """
    if drgi is None:
        return None
    d = cfg.drgi
    return DRGIMeta(
        mode=d.mode, nodes=d.nodes, hidden=d.hidden, heads=int(drgi.text.encoder.heads),
        neg_topm_used=1, mining=MINING, variant={k: getattr(d, k) for k in VARIANT_KEYS},
        # the information test and graph diagnostics on this split (tvr.drgi_probe)
        diagnostics=_json_safe(diagnostics) if diagnostics else None,
    )


def _json_safe(obj: Any) -> Any:
    """NaN / inf become None so meta.json stays strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj

