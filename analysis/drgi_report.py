"""Plain-language verdicts on DRGI's diagnostics, for the app's DRGI pages.

The numbers come from the bundle (``meta["drgi"]["diagnostics"]``: the information test and
graph diagnostics of :func:`tvr.drgi_probe.information_report`, computed at export on the
bundle's split) and from the attention matrices themselves. These functions only turn them
into sentences and tables; they compute nothing the export did not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.attention import uniform_baseline

UNIFORM_ENTROPY = 0.98  # normalised entropy above which attention reads as uniform
UNIFORM_MAX_DEVIATION = 0.02  # ... or every weight within this of 1/N'
CHANCE = 0.5


def diagnostics_of(bundle: Any) -> dict[str, Any] | None:
    """The bundle's DRGI diagnostics, or None (no DRGI, or exported before they existed)."""
    drgi = (getattr(bundle, "meta", None) or {}).get("drgi") or {}
    diag = drgi.get("diagnostics")
    return diag if isinstance(diag, dict) else None


def max_uniform_deviation(attn: Any, mask: Any) -> float:
    """Largest ``|α_ij − 1/N'|`` over the valid block of ``[N, N]`` (or the head mean of
    ``[H, N, N]``) attention."""
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim == 3:
        a = a.mean(axis=0)
    m = np.asarray(mask, dtype=bool)
    block = a[np.ix_(m, m)]
    if block.size == 0:
        return math.nan
    base = uniform_baseline(m)[np.ix_(m, m)]
    return float(np.abs(block - base).max())


def attention_verdict(graph_entropy: float, graph_max_dev: float,
                      split_entropy: float | None, nodes: str) -> tuple[bool, str]:
    """Is this graph's attention uniform? Returns (uniform, a sentence with the numbers).

    Args:
        graph_entropy: mean normalised entropy of the shown graph's rows.
        graph_max_dev: its largest ``|α − 1/N'|``.
        split_entropy: mean normalised entropy over every graph of this kind in the split
            (from the diagnostics), or None.
        nodes: "words" or "frames".
    """
    uniform = graph_entropy >= UNIFORM_ENTROPY or graph_max_dev <= UNIFORM_MAX_DEVIATION
    split = (f" Over the whole split the {nodes} graphs average an entropy of "
             f"{split_entropy:.4f}." if split_entropy is not None and math.isfinite(split_entropy)
             else "")
    if uniform:
        return True, (
            f"**Attention is uniform here**: normalised entropy {graph_entropy:.4f} (1 = uniform), "
            f"every weight within {graph_max_dev:.4f} of 1/N. Each node's output is then "
            f"(almost) the same average of the graph, so the pattern below is noise, not "
            f"structure.{split}")
    return False, (
        f"Attention is not uniform: normalised entropy {graph_entropy:.4f}, the largest "
        f"departure from 1/N is {graph_max_dev:.4f}.{split}")


def _num(x: Any) -> float:
    """A diagnostics value as a float (None, written for NaN, becomes NaN)."""
    return math.nan if x is None else float(x)


def _pct(x: Any) -> str:
    return "–" if not math.isfinite(_num(x)) else f"{100.0 * _num(x):.1f} %"


def _fixed(x: Any, digits: int) -> str:
    return "–" if not math.isfinite(_num(x)) else f"{_num(x):.{digits}f}"


def discriminator_verdict(diag: dict[str, Any]) -> str:
    """One paragraph: does the discriminator separate hard negatives, and does it know
    anything the base model does not (the information test)?"""
    v, t = diag["video"], diag["text"]
    acc = [_num(x) for x in (v.get("acc"), t.get("acc")) if math.isfinite(_num(x))]
    learned = bool(acc) and sum(acc) / len(acc) > 0.55
    lows = [_num((d.get("acc_base_wrong_ci95") or [None])[0]) for d in (v, t)]
    knows_more = all(math.isfinite(lo) and lo > CHANCE for lo in lows)
    first = (f"Against the hardest negative of the split the discriminator is right for "
             f"{_pct(v.get('acc'))} of caption queries (video nodes) and {_pct(t.get('acc'))} of "
             f"video queries (text nodes); chance is 50 %.")
    second = (f" On the anchors whose hardest negative the base model already ranks above the "
              f"true pair ({v.get('n_base_wrong', 0)} and {t.get('n_base_wrong', 0)}) it is "
              f"right for {_pct(v.get('acc_base_wrong'))} and {_pct(t.get('acc_base_wrong'))}.")
    if not learned:
        verdict = " **The discriminator is at chance: DRGI learned nothing to separate them.**"
    elif knows_more:
        verdict = (" **It knows something the base does not** (both intervals above 50 %).")
    else:
        verdict = (" **It mostly repeats what the base already knows**: on the pairs the base "
                   "gets wrong it is not reliably above chance, so DRGI has little to add.")
    return first + second + verdict


def diagnostics_rows(diag: dict[str, Any]) -> list[dict[str, Any]]:
    """A small table of the diagnostics (one row per quantity, text / video columns)."""
    def ci(d: dict[str, Any]) -> str:
        lo, hi = (d.get("acc_base_wrong_ci95") or [None, None])[:2]
        if lo is None or hi is None:
            return "–"
        return f"{_pct(d.get('acc_base_wrong'))} ({100 * lo:.0f}–{100 * hi:.0f} %, n = {d.get('n_base_wrong')})"

    v, t = diag["video"], diag["text"]
    return [
        {"quantity": "disc. accuracy vs hardest negative", "captions → videos": _pct(v.get("acc")),
         "videos → captions": _pct(t.get("acc"))},
        {"quantity": "base model right on the same pairs", "captions → videos": _pct(v.get("base_right")),
         "videos → captions": _pct(t.get("base_right"))},
        {"quantity": "disc. accuracy where the base is wrong (95 % CI)",
         "captions → videos": ci(v), "videos → captions": ci(t)},
        {"quantity": "attention entropy (1 = uniform), word / frame graphs",
         "captions → videos": _fixed(diag.get("entropy_text"), 4),
         "videos → captions": _fixed(diag.get("entropy_video"), 4)},
        {"quantity": "node cosine within a graph (1 = collapsed), words / frames",
         "captions → videos": _fixed(diag.get("node_cos_text"), 3),
         "videos → captions": _fixed(diag.get("node_cos_video"), 3)},
        {"quantity": "input cosine within a graph, words / frames",
         "captions → videos": _fixed(diag.get("input_cos_text"), 3),
         "videos → captions": _fixed(diag.get("input_cos_video"), 3)},
    ]


TRAINING_CURVES: dict[str, str] = {
    "drgi_acc": "disc. accuracy (training negatives)",
    "drgi_acc_hard_video": "disc. accuracy vs hardest, t→v",
    "drgi_acc_hard_text": "disc. accuracy vs hardest, v→t",
    "drgi_acc_hard_base_wrong_video": "… where the base is wrong, t→v",
    "drgi_entropy_text": "attention entropy, words",
    "drgi_entropy_video": "attention entropy, frames",
    "drgi_node_cos_text": "node cosine, words",
    "drgi_node_cos_video": "node cosine, frames",
}


def training_curves(log_path: str | Path) -> pd.DataFrame:
    """DRGI's in-training diagnostics from a run's ``log.jsonl``, long format.

    Returns:
        columns ``step``, ``quantity`` (a label of :data:`TRAINING_CURVES`), ``value``; empty
        when the log has none (a run without DRGI, or trained before they were logged).

    Raises:
        ValueError: a line that is not JSON (names the file and line).
    """
    path = Path(log_path)
    rows = []
    if not path.is_file():
        return pd.DataFrame(columns=["step", "quantity", "value"])
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {n}: not JSON ({exc.msg})") from None
        if "split" in rec:  # a val evaluation line
            continue
        for key, label in TRAINING_CURVES.items():
            value = rec.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                rows.append({"step": int(rec["step"]), "quantity": label, "value": float(value)})
    return pd.DataFrame(rows, columns=["step", "quantity", "value"])


def same_pairs(text_queries: Any, video_queries: Any) -> bool:
    """Whether the discriminator's caption-query and video-query pairs are the same pairs.

    They are when every video has one caption (its "first caption" is that caption) and both
    directions mined the same hard negatives: then the two score sets are equal and a switch
    between them would show identical numbers. ``text_queries`` / ``video_queries`` are
    :class:`analysis.bundle.DRGIScores` (``[Nt]`` / ``[Nv]`` fields).
    """
    fields = ("anchor_text", "anchor_video", "neg_text_index", "neg_video_index", "neg_valid",
              "pos_video", "pos_text", "neg_video", "neg_text")
    return all(
        _equal(getattr(text_queries, f), getattr(video_queries, f))
        for f in fields
    )


def _equal(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return bool(np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True))
    return bool(np.array_equal(a, b))
