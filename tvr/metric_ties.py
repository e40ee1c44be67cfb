"""Reading the tie report of a metric dict (``metrics.json``, a bundle's ``meta.json``): which
directions have tied queries, and one sentence about them.

Kept apart from :mod:`tvr.metrics` (which computes the ranks and re-exports these names) so
that readers of saved metrics, such as the app's bundle freshness check and its Overview,
import no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OPTIMISTIC_SUFFIX", "tie_warning", "tied_directions"]

OPTIMISTIC_SUFFIX = "_optimistic"  # metric keys of the ties-favour-the-model figures


def tied_directions(metrics: Mapping[str, Any]) -> dict[str, int]:
    """``{direction: number of tied queries}`` for every direction of ``metrics`` with ties.

    Reads the ``"<direction>/ties"`` keys of a metric dict (e.g. a ``metrics.json`` entry);
    directions without ties, and dicts from before the key existed, give nothing.
    """
    out: dict[str, int] = {}
    for key, value in metrics.items():
        if not key.endswith("/ties") or "/" in key[: -len("/ties")]:
            continue  # "dsl/t2v/ties" etc. belong to re-normalised figures
        try:
            n = int(float(value))
        except (TypeError, ValueError):
            continue
        if n > 0:
            out[key[: -len("/ties")]] = n
    return out


def tie_warning(metrics: Mapping[str, Any], direction: str, run: str | None = None) -> str:
    """One sentence on a direction's ties: the count and the optimistic R@1 beside the project's.

    Args:
        metrics: a flat metric dict holding ``"<direction>/ties"`` and ``"<direction>/N"``.
        direction: ``"t2v"``, ``"v2t"`` or ``"v2t_any"``.
        run: a run name to open the sentence with.
    """
    n_tied = int(float(metrics.get(f"{direction}/ties", 0)))
    n = metrics.get(f"{direction}/N")
    of = f" of {int(float(n))}" if n is not None else ""
    r1 = metrics.get(f"{direction}/R@1")
    r1_opt = metrics.get(f"{direction}/R@1{OPTIMISTIC_SUFFIX}")
    figures = ""
    if r1 is not None and r1_opt is not None:
        figures = (
            f"; R@1 {float(r1):.1f} with ties against the model, {float(r1_opt):.1f} if ties "
            "favoured it"
        )
    who = f"{run}: " if run else ""
    return (
        f"{who}{direction}: {n_tied}{of} queries tie with another item at their ground-truth "
        f"score (ranks count ties against the model){figures}"
    )
