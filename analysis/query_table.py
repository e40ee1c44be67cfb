"""The per-query comparison of a base run and a DRGI run: one row per caption query.

:func:`query_table` joins, for every text query (t2v: a caption finds its video), the
ground-truth rank of both runs, the rank change, the score margins, the SynthVTT failure type
and family/edit, and DRGI's discriminator scores into one DataFrame keyed by the query id (the
caption's row in the bundle). :func:`bundle_query_table` builds it from two analysis bundles.
:func:`filter_queries`, :func:`sort_queries` and :func:`failure_status_counts` are what the
app's Queries page does with it; :func:`table_bytes` exports it.

Conventions (those of :mod:`analysis.rankings`): ranks are 1-based and count ties against the
model; ``delta_rank = rank_drgi - rank_base`` and ``delta_log2 = log2(rank_drgi / rank_base)``
are negative where DRGI ranks the ground truth better. A query *fails* at threshold ``k`` when
its rank is greater than ``k`` (``k = 1``: it is not a hit at R@1), and its status is

- ``fixed``: the base run fails and the DRGI run does not;
- ``broken``: the DRGI run fails and the base run does not;
- ``both fail`` / ``both fine``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.ranked_negatives import RankedNegatives, bundle_negatives, ranked_negatives
from tvr.data.synthvtt import SplitMeta

FIXED, BROKEN, BOTH_FAIL, BOTH_FINE = "fixed", "broken", "both fail", "both fine"
STATUSES: tuple[str, ...] = (FIXED, BROKEN, BOTH_FAIL, BOTH_FINE)
NO_FAILURE = "(no failure)"  # failure_type of a query that fails in neither run
UNTYPED = "(untyped)"  # a failing query without a type (not SynthVTT, or meta not found)
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")

# sort name -> (columns, ascending); ties are always broken by the query id
SORTS: dict[str, tuple[tuple[str, ...], tuple[bool, ...]]] = {
    "Δ log2 rank (DRGI better first)": (("delta_log2", "delta_rank"), (True, True)),
    "Δ log2 rank (DRGI worse first)": (("delta_log2", "delta_rank"), (False, False)),
    "Δ rank (DRGI better first)": (("delta_rank",), (True,)),
    "Δ rank (DRGI worse first)": (("delta_rank",), (False,)),
    "base rank (worst first)": (("rank_base",), (False,)),
    "DRGI rank (worst first)": (("rank_drgi",), (False,)),
    "Δ margin (DRGI better first)": (("delta_margin",), (False,)),
    "query id": ((), ()),
}


@dataclass(frozen=True)
class RunQueries:
    """Per-query values of one run on the split's captions (``N`` = number of captions).

    Attributes:
        ranks: ``[N]`` int ground-truth ranks (1-based, ties against the model).
        margins: ``[N]`` float score of the ground truth minus the best other video's.
        hardest: ``[N]`` int column of the best-scoring video other than the ground truth.
        failure_types: ``[N]`` the failure type of each query failing at the table's ``k``
            (None where it does not fail), or None when the run's failures are not typed.
        disc_pos, disc_neg: ``[N]`` DRGI discriminator scores of the positive and the
            hard-negative graphs, or None for a run without DRGI.
    """

    ranks: np.ndarray
    margins: np.ndarray
    hardest: np.ndarray
    failure_types: Sequence[str | None] | None = None
    disc_pos: np.ndarray | None = None
    disc_neg: np.ndarray | None = None


def hardest_negatives(sim: Any, text_to_video: Any) -> tuple[np.ndarray, np.ndarray]:
    """The best-scoring other video of every caption and the margin to it.

    Ties between negatives go to the lower column.

    Shapes:
        sim ``[Nt, Nv]`` (Nv >= 2), text_to_video ``[Nt]`` -> (hardest ``[Nt]`` int64,
        margins ``[Nt]`` float64 = sim[q, gt] - sim[q, hardest])

    Raises:
        ValueError: a matrix that is not 2-D, has fewer than two columns, or a ground truth
            out of range.
    """
    arr = np.asarray(sim)
    gt = np.asarray(text_to_video).astype(np.int64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"sim: expected [Nt, Nv] with Nv >= 2, got shape {arr.shape}")
    if gt.shape != (arr.shape[0],) or (gt.size and (gt.min() < 0 or gt.max() >= arr.shape[1])):
        raise ValueError(f"text_to_video: expected {arr.shape[0]} columns in "
                         f"[0, {arr.shape[1]}), got shape {gt.shape}")
    return ranked_negatives(arr, gt, 1).hardest()


def run_queries(bundle: Any, failures: pd.DataFrame | None = None,
                negatives: RankedNegatives | None = None) -> RunQueries:
    """The :class:`RunQueries` of an :class:`analysis.bundle.Bundle`'s captions.

    Args:
        bundle: the run's bundle.
        failures: its failure table at the comparison's ``k``
            (:func:`analysis.failures.bundle_failures`); its ``failure_type`` column (when
            typed) fills ``failure_types``.
        negatives: the bundle's ranked negatives when the caller holds them (default:
            :func:`analysis.ranked_negatives.bundle_negatives`).
    """
    negatives = bundle_negatives(bundle) if negatives is None else negatives
    hardest, margins = negatives.hardest()
    types = None
    if failures is not None and "failure_type" in failures.columns:
        types = [None] * bundle.num_texts
        for q, t in zip(failures["query"].tolist(), failures["failure_type"].tolist(),
                        strict=True):
            types[int(q)] = str(t)
    pos = neg = None
    if bundle.drgi is not None:
        scores = bundle.drgi.text_queries
        pos = np.asarray(scores.pos, dtype=np.float64)
        neg = np.where(scores.neg_valid, np.asarray(scores.neg, dtype=np.float64), np.nan)
    return RunQueries(ranks=np.asarray(bundle.ranks.t2v), margins=margins, hardest=hardest,
                      failure_types=types, disc_pos=pos, disc_neg=neg)


def query_status(rank_base: Any, rank_drgi: Any, k: int = 1) -> np.ndarray:
    """``[N]`` object array of :data:`STATUSES`: fixed / broken / both fail / both fine at
    threshold ``k`` (a query fails when its rank is greater than ``k``)."""
    if isinstance(k, bool) or int(k) != k or int(k) < 1:
        raise ValueError(f"k={k!r}: expected a positive integer (a query fails when rank > k)")
    fail_a = np.asarray(rank_base) > int(k)
    fail_b = np.asarray(rank_drgi) > int(k)
    out = np.where(fail_a & fail_b, BOTH_FAIL, np.where(
        fail_a, FIXED, np.where(fail_b, BROKEN, BOTH_FINE)))
    return out.astype(object)


def _column(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape[:1] != (n,):
        raise ValueError(f"{name}: expected {n} values (one per query), got shape {arr.shape}")
    return arr


def query_table(
    base: RunQueries,
    drgi: RunQueries,
    *,
    captions: Sequence[str],
    text_to_video: Any,
    video_ids: Sequence[str],
    k: int = 1,
    families: Sequence[Any] | None = None,
    edits: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Join two runs' per-query values into one table keyed by the query id.

    Args:
        base, drgi: the two runs' :class:`RunQueries` on the same captions and videos.
        captions: ``[N]`` query texts.
        text_to_video: ``[N]`` ground-truth column of each caption.
        video_ids: ``[Nv]`` video ids (the columns).
        k: a query fails when its rank is greater than ``k``.
        families, edits: ``[Nv]`` SynthVTT family id and edit type of every video, or None.

    Returns:
        Indexed by ``query`` (the caption's row, 0..N-1), columns: ``caption``, ``gt_video``,
        ``rank_base``, ``rank_drgi``, ``delta_rank``, ``delta_log2``, ``outcome`` (win / tie /
        loss from DRGI's side), ``status`` (:data:`STATUSES`), ``failure_type`` (the failing
        run's type: DRGI's where DRGI fails, else the base's; :data:`NO_FAILURE` when neither
        fails, :data:`UNTYPED` without types), ``failure_base``, ``failure_drgi`` (None where
        that run does not fail), ``margin_base``, ``margin_drgi``, ``delta_margin``,
        ``hardest_base``, ``hardest_drgi`` (video ids); with ``families``: ``family``,
        ``edit``, ``sibling_base``, ``sibling_drgi`` (the hardest negative is from the ground
        truth's family); per run with DRGI arrays: ``disc_pos_<run>``, ``disc_neg_<run>``,
        ``disc_gap_<run>`` (positive minus hard-negative score).

    Raises:
        ValueError: arrays of different lengths or bad ranks (naming which).
    """
    from analysis.rankings import compare_rankings

    n = len(captions)
    gt = _column(text_to_video, n, "text_to_video").astype(np.int64)
    ids = np.asarray(list(video_ids), dtype=object)
    cmp = compare_rankings(_column(base.ranks, n, "base ranks"),
                           _column(drgi.ranks, n, "DRGI ranks"))
    ra, rb = cmp["rank_a"].to_numpy(), cmp["rank_b"].to_numpy()
    status = query_status(ra, rb, k)
    cols: dict[str, Any] = {
        "caption": [str(c) for c in captions],
        "gt_video": ids[gt],
        "rank_base": ra,
        "rank_drgi": rb,
        "delta_rank": cmp["delta"].to_numpy(),
        "delta_log2": np.log2(rb / ra),
        "outcome": cmp["outcome"].to_numpy(),
        "status": status,
    }
    per_run: dict[str, list[Any]] = {}
    for label, run in (("base", base), ("drgi", drgi)):
        fails = _column(run.ranks, n, f"{label} ranks") > int(k)
        if run.failure_types is None:
            per_run[label] = [UNTYPED if f else None for f in fails]
        else:
            types = list(_column(np.asarray(run.failure_types, dtype=object), n,
                                 f"{label} failure_types"))
            per_run[label] = [(t if t is not None else UNTYPED) if f else None
                              for t, f in zip(types, fails, strict=True)]
    cols["failure_type"] = [
        d if d is not None else (b if b is not None else NO_FAILURE)
        for b, d in zip(per_run["base"], per_run["drgi"], strict=True)]
    cols["failure_base"] = per_run["base"]
    cols["failure_drgi"] = per_run["drgi"]
    ma = _column(base.margins, n, "base margins").astype(np.float64)
    mb = _column(drgi.margins, n, "DRGI margins").astype(np.float64)
    cols.update(margin_base=ma, margin_drgi=mb, delta_margin=mb - ma)
    ha = _column(base.hardest, n, "base hardest").astype(np.int64)
    hb = _column(drgi.hardest, n, "DRGI hardest").astype(np.int64)
    cols.update(hardest_base=ids[ha], hardest_drgi=ids[hb])
    if families is not None:
        fam = _column(np.asarray(list(families), dtype=object), len(ids), "families")
        cols["family"] = fam[gt]
        cols["edit"] = (_column(np.asarray(list(edits), dtype=object), len(ids), "edits")[gt]
                        if edits is not None else None)
        cols["sibling_base"] = fam[ha] == fam[gt]
        cols["sibling_drgi"] = fam[hb] == fam[gt]
    for label, run in (("base", base), ("drgi", drgi)):
        if run.disc_pos is None or run.disc_neg is None:
            continue
        pos = _column(run.disc_pos, n, f"{label} disc_pos").astype(np.float64)
        neg = _column(run.disc_neg, n, f"{label} disc_neg").astype(np.float64)
        cols.update({f"disc_pos_{label}": pos, f"disc_neg_{label}": neg,
                     f"disc_gap_{label}": pos - neg})
    return pd.DataFrame(cols, index=pd.RangeIndex(n, name="query"))


def bundle_query_table(
    base: Any,
    drgi: Any,
    *,
    k: int = 1,
    failures_base: pd.DataFrame | None = None,
    failures_drgi: pd.DataFrame | None = None,
    synthvtt: SplitMeta | None = None,
    negatives_base: RankedNegatives | None = None,
    negatives_drgi: RankedNegatives | None = None,
) -> pd.DataFrame:
    """:func:`query_table` of two bundles holding the same captions and videos.

    Args:
        base, drgi: :class:`analysis.bundle.Bundle` of each run.
        k: failure threshold.
        failures_base, failures_drgi: the runs' failure tables at ``k``
            (:func:`analysis.failures.bundle_failures`; computed when None).
        synthvtt: the split's :class:`tvr.data.synthvtt.SplitMeta` for the family/edit
            columns, or None.
        negatives_base, negatives_drgi: the runs' ranked negatives when the caller holds them
            (:func:`analysis.ranked_negatives.bundle_negatives` otherwise).

    Raises:
        ValueError: the bundles describe different captions or videos.
    """
    if (base.num_texts != drgi.num_texts or base.num_videos != drgi.num_videos
            or list(base.captions) != list(drgi.captions)
            or list(base.video_ids) != list(drgi.video_ids)
            or not np.array_equal(base.text_to_video, drgi.text_to_video)):
        raise ValueError(
            f"bundles {base.path} and {drgi.path} hold different captions or videos "
            f"({base.num_texts}x{base.num_videos} vs {drgi.num_texts}x{drgi.num_videos}); "
            "re-export both on the same split")
    if failures_base is None or failures_drgi is None:
        from analysis.failures import bundle_failures

        failures_base = bundle_failures(base, k=k, top=1, negatives=negatives_base) \
            if failures_base is None else failures_base
        failures_drgi = bundle_failures(drgi, k=k, top=1, negatives=negatives_drgi) \
            if failures_drgi is None else failures_drgi
    families = edits = None
    if synthvtt is not None:
        families = [v.family for v in synthvtt.videos]
        edits = [v.edit.type for v in synthvtt.videos]
    return query_table(run_queries(base, failures_base, negatives_base),
                       run_queries(drgi, failures_drgi, negatives_drgi),
                       captions=base.captions, text_to_video=base.text_to_video,
                       video_ids=base.video_ids, k=k, families=families, edits=edits)


# -------------------------------------------------------------------------- views of the table
def filter_queries(
    table: pd.DataFrame,
    *,
    statuses: Iterable[str] = (),
    failure_types: Iterable[str] = (),
    outcomes: Iterable[str] = (),
    edits: Iterable[str] = (),
    text: str = "",
) -> pd.DataFrame:
    """The rows of ``table`` that pass every given filter (an empty filter passes all).

    Args:
        statuses, failure_types, outcomes, edits: keep rows whose ``status`` /
            ``failure_type`` / ``outcome`` / ``edit`` is one of these.
        text: words the caption must all contain (case-insensitive).

    Raises:
        ValueError: a filter on a column the table lacks (``edit`` off SynthVTT).
    """
    keep = np.ones(len(table), dtype=bool)
    for column, values in (("status", statuses), ("failure_type", failure_types),
                           ("outcome", outcomes), ("edit", edits)):
        values = [str(v) for v in values]
        if not values:
            continue
        if column not in table.columns:
            raise ValueError(f"cannot filter on {column!r}: the table has no such column "
                             f"(columns: {list(table.columns)})")
        keep &= table[column].astype(str).isin(values).to_numpy()
    words = text.lower().split()
    if words:
        low = table["caption"].str.lower()
        keep &= np.array([all(w in c for w in words) for c in low], dtype=bool)
    return table[keep]


def sort_queries(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """``table`` sorted by one of :data:`SORTS`, ties by the query id (stable)."""
    if by not in SORTS:
        raise ValueError(f"sort {by!r}: expected one of {list(SORTS)}")
    columns, ascending = SORTS[by]
    t = table.assign(_query=table.index.to_numpy())
    t = t.sort_values([*columns, "_query"], ascending=[*ascending, True], kind="stable")
    return t.drop(columns="_query")


def failure_status_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Queries per failure type (rows) and status (columns :data:`STATUSES`), with totals.

    Rows: the failure types present, then :data:`NO_FAILURE`, then ``"all"``; columns: the
    four statuses, then ``"all"``.
    """
    for column in ("status", "failure_type"):
        if column not in table.columns:
            raise ValueError(f"table lacks {column!r}; build it with query_table()")
    counts = pd.crosstab(table["failure_type"], table["status"]).reindex(
        columns=list(STATUSES), fill_value=0)
    order = sorted((t for t in counts.index if t != NO_FAILURE), key=str)
    order += [NO_FAILURE] if NO_FAILURE in counts.index else []
    counts = counts.reindex(order).astype(np.int64)
    counts["all"] = counts.sum(axis=1)
    counts.loc["all"] = counts.sum(axis=0)
    counts.index.name = "failure type"
    counts.columns.name = None
    return counts


def table_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    """``table`` (query id as the first column) as CSV (UTF-8) or Parquet bytes.

    Raises:
        ValueError: an unknown format.
        ImportError: Parquet without pyarrow.
    """
    flat = table.reset_index()
    if fmt == "csv":
        return flat.to_csv(index=False).encode("utf-8")
    if fmt == "parquet":
        buf = io.BytesIO()
        flat.to_parquet(buf, index=False)
        return buf.getvalue()
    raise ValueError(f"format {fmt!r}: expected one of {EXPORT_FORMATS}")
