"""2-D projections of embeddings (UMAP or PCA) and placement of new points on a fitted map.

UMAP is slow to import and JIT-compile (``notes/stack.md`` §5), so it is imported only inside
:func:`project` when ``method="umap"``; nothing here imports it at module load. Maps are
computed offline by the export and stored; the app only loads coordinates and places live
queries with :class:`PointPlacer` (k-nearest-neighbour interpolation, milliseconds on 10k
points), never with ``UMAP.transform``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from analysis.apportion import largest_remainder
from analysis.bundle import PROJECTION_KINDS, ProjectionsMeta

logger = logging.getLogger(__name__)

# below this many points umap-learn computes all pairwise distances with a numba callable in a
# Python loop (10-24 s for 2k points); precomputed sklearn distances are much faster there
_UMAP_PRECOMPUTED_BELOW = 4096
_PLACE_BLOCK = 1024  # queries placed per block in PointPlacer.place
_DUPLICATE_EPS = 1e-6  # cosine >= 1 - eps counts as an exact duplicate of a training point


@dataclass(frozen=True)
class Projection:
    """A fitted 2-D map.

    Attributes:
        coords: ``[N, 2]`` float32 map coordinates, one row per input row.
        method: ``"umap"`` or ``"pca"``.
        params: the parameters actually used (JSON-serialisable).
        versions: library versions that produced the map (JSON-serialisable).
    """

    coords: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        """Everything but the coordinates, as a JSON-serialisable dict."""
        return {"method": self.method, "params": dict(self.params), "versions": dict(self.versions)}


def _check_matrix(x: Any, name: str, *, min_rows: int = 1) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D [N, D] array, got shape {arr.shape}")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(
            f"{name}: expected at least {min_rows} row(s) and 1 column, got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"{name}: row {row} contains non-finite values")
    return arr


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _versions(*, with_umap: bool = False) -> dict[str, str]:
    import sklearn

    versions = {"numpy": np.__version__, "scikit-learn": sklearn.__version__}
    if with_umap:
        from importlib.metadata import version

        versions["umap-learn"] = version("umap-learn")
    return versions


def _pca_prepare(x: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return _l2_normalise(x)
    if metric == "euclidean":
        return x
    raise ValueError(
        f"metric={metric!r}: PCA supports 'cosine' (rows L2-normalised) or 'euclidean'"
    )


def project(
    X: Any,
    method: Literal["umap", "pca"] = "umap",
    *,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
) -> Projection:
    """Project ``X`` to 2-D with UMAP or PCA.

    - PCA (scikit-learn, deterministic): with ``metric="cosine"`` rows are L2-normalised first,
      so the map reflects angles; ``"euclidean"`` uses them as they are. ``n_neighbors`` and
      ``min_dist`` are ignored.
    - UMAP (umap-learn, imported here lazily, reproducible through ``random_state=seed``,
      which makes it single-threaded): below 4096 points the distances are precomputed with
      ``sklearn.metrics.pairwise_distances`` and passed as ``metric="precomputed"`` (umap's
      own exact path is a slow Python loop at that size); from 4096 points up umap's
      approximate neighbour search runs on ``metric`` directly. ``n_neighbors`` is clipped to
      ``N - 1``.

    Args:
        X: ``[N, D]`` embeddings (N >= 3 for UMAP, >= 2 for PCA; D >= 2 for PCA).
        method: ``"umap"`` or ``"pca"``.
        seed: random seed.
        n_neighbors: UMAP neighbourhood size.
        min_dist: UMAP minimum distance in the map.
        metric: ``"cosine"`` or ``"euclidean"`` (UMAP also takes any metric sklearn knows).

    Returns:
        A :class:`Projection` with ``coords [N, 2]`` float32.
    """
    if method == "pca":
        x = _check_matrix(X, "X", min_rows=2)
        return _project_pca(x, seed=seed, metric=metric)
    if method == "umap":
        x = _check_matrix(X, "X", min_rows=3)
        return _project_umap(
            x, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric
        )
    raise ValueError(f"method={method!r}: expected 'umap' or 'pca'")


def _project_pca(x: np.ndarray, *, seed: int, metric: str) -> Projection:
    from sklearn.decomposition import PCA

    if x.shape[1] < 2:
        raise ValueError(f"X: PCA to 2-D needs at least 2 feature columns, got {x.shape[1]}")
    prepared = _pca_prepare(x, metric)
    pca = PCA(n_components=2, random_state=seed)
    coords = pca.fit_transform(prepared.astype(np.float64))
    params = {
        "metric": metric,
        "seed": int(seed),
        "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
    }
    return Projection(coords.astype(np.float32), "pca", params, _versions())


def _project_umap(
    x: np.ndarray, *, seed: int, n_neighbors: int, min_dist: float, metric: str
) -> Projection:
    import umap  # lazy: slow import and numba JIT (notes/stack.md §5)

    n = x.shape[0]
    if int(n_neighbors) < 2:
        raise ValueError(f"n_neighbors={n_neighbors!r}: expected an integer >= 2")
    neighbours = min(int(n_neighbors), n - 1)
    if neighbours != int(n_neighbors):
        logger.info("UMAP: n_neighbors %d clipped to %d (N = %d)", n_neighbors, neighbours, n)
    precomputed = n < _UMAP_PRECOMPUTED_BELOW and metric != "precomputed"
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=neighbours,
        min_dist=float(min_dist),
        metric="precomputed" if precomputed else metric,
        random_state=int(seed),
    )
    with warnings.catch_warnings():
        # both are consequences of the choices above, not problems: no inverse_transform on
        # precomputed distances, and a seed forcing one thread
        warnings.filterwarnings("ignore", "using precomputed metric", UserWarning)
        warnings.filterwarnings("ignore", "n_jobs value", UserWarning)
        if precomputed:
            from sklearn.metrics import pairwise_distances

            dist = pairwise_distances(x.astype(np.float64), metric=metric)
            np.clip(dist, 0.0, None, out=dist)  # cosine distances can come out as -1e-16
            np.fill_diagonal(dist, 0.0)
            coords = reducer.fit_transform(dist)
        else:
            coords = reducer.fit_transform(x)
    params = {
        "metric": metric,
        "seed": int(seed),
        "n_neighbors": neighbours,
        "min_dist": float(min_dist),
        "precomputed_distances": bool(precomputed),
    }
    return Projection(
        np.asarray(coords, dtype=np.float32), "umap", params, _versions(with_umap=True)
    )


def fit_shared_pca(
    blocks: dict[str, Any], *, seed: int = 0, metric: str = "cosine"
) -> tuple[dict[str, np.ndarray], Projection]:
    """One PCA map for several sets of embeddings (e.g. texts and videos of one model).

    The PCA is fitted on the concatenation, so all blocks share the same axes.

    Args:
        blocks: name -> ``[N_i, D]`` embeddings, all with the same D.
        seed: random seed.
        metric: ``"cosine"`` (rows L2-normalised) or ``"euclidean"``.

    Returns:
        ``(coords, projection)``: name -> ``[N_i, 2]`` float32, and the :class:`Projection`
        of the concatenation (blocks in the order given; ``params["blocks"]`` lists the
        names and sizes).
    """
    if not blocks:
        raise ValueError("blocks is empty; expected at least one named [N, D] array")
    arrays = {name: _check_matrix(x, f"blocks[{name!r}]") for name, x in blocks.items()}
    dims = {name: a.shape[1] for name, a in arrays.items()}
    if len(set(dims.values())) != 1:
        raise ValueError(f"blocks have different feature dims {dims}; a shared map needs one D")
    joint = project(np.concatenate(list(arrays.values())), "pca", seed=seed, metric=metric)
    out: dict[str, np.ndarray] = {}
    start = 0
    for name, a in arrays.items():
        out[name] = joint.coords[start : start + a.shape[0]]
        start += a.shape[0]
    params = dict(joint.params, blocks=[[name, int(a.shape[0])] for name, a in arrays.items()])
    return out, Projection(joint.coords, joint.method, params, joint.versions)


def align_to(reference: Any, coords: Any) -> np.ndarray:
    """Rotate, reflect, scale and shift ``coords`` onto ``reference`` (Procrustes).

    Use it to draw two models' maps of the same items side by side with matching
    orientation. Both arrays must list the same items in the same order.

    Shapes:
        reference ``[N, 2]``, coords ``[N, 2]`` -> ``[N, 2]`` float32.
    """
    from scipy.linalg import orthogonal_procrustes

    ref = _check_matrix(reference, "reference").astype(np.float64)
    cur = _check_matrix(coords, "coords").astype(np.float64)
    if ref.shape != cur.shape:
        raise ValueError(f"reference {ref.shape} and coords {cur.shape} must have the same shape")
    ref_mean, cur_mean = ref.mean(axis=0), cur.mean(axis=0)
    a, b = ref - ref_mean, cur - cur_mean
    if not np.any(b):
        return np.broadcast_to(ref_mean, cur.shape).astype(np.float32)
    rotation, scale = orthogonal_procrustes(b, a)
    aligned = b @ rotation * (scale / float((b**2).sum())) + ref_mean
    return aligned.astype(np.float32)


class PointPlacer:
    """Place new points on a fitted map by k-nearest-neighbour interpolation in cosine space.

    A query lands at the weighted mean of the map coordinates of its ``k`` most
    cosine-similar training points, weights ``max(sim, 0) ** power``. An exact duplicate of
    training points (cosine >= 1 - 1e-6) lands on them (their mean); a query whose ``k``
    neighbours all have cosine <= 0 lands at their plain mean. Build once (it normalises the
    training matrix) and call :meth:`place` per request.

    Args:
        X: ``[N, D]`` training embeddings the map was fitted on.
        coords: ``[N, 2]`` their map coordinates.
        k: neighbours per query (clipped to N).
        power: exponent of the similarity weights (> 0).
    """

    def __init__(self, X: Any, coords: Any, *, k: int = 10, power: float = 4.0) -> None:
        x = _check_matrix(X, "X")
        c = _check_matrix(coords, "coords")
        if c.shape != (x.shape[0], 2):
            raise ValueError(f"coords: expected shape ({x.shape[0]}, 2) to match X, got {c.shape}")
        if int(k) < 1:
            raise ValueError(f"k={k!r}: expected a positive integer")
        if not float(power) > 0:
            raise ValueError(f"power={power!r}: expected a positive number")
        self._x = _l2_normalise(x)  # [N, D] float32
        self._coords = c.astype(np.float64)  # [N, 2]
        self.k = min(int(k), x.shape[0])
        self.power = float(power)

    @property
    def dim(self) -> int:
        return int(self._x.shape[1])

    def place(self, query: Any) -> np.ndarray:
        """Map coordinates of new points.

        Shapes:
            query ``[M, D]`` (or ``[D]`` for one point) -> ``[M, 2]`` float32.
        """
        q = np.asarray(query)
        if q.ndim == 1:
            q = q[None, :]
        q = _check_matrix(q, "query")
        if q.shape[1] != self.dim:
            raise ValueError(f"query has dim {q.shape[1]} but the map was fitted on dim {self.dim}")
        q = _l2_normalise(q)
        out = np.empty((q.shape[0], 2), dtype=np.float32)
        k = self.k
        for start in range(0, q.shape[0], _PLACE_BLOCK):
            sims = q[start : start + _PLACE_BLOCK] @ self._x.T  # [b, N]
            if k < sims.shape[1]:
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # [b, k]
            else:
                top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
            top_sims = np.take_along_axis(sims, top, axis=1).astype(np.float64)  # [b, k]
            weights = np.clip(top_sims, 0.0, None) ** self.power
            duplicate = top_sims >= 1.0 - _DUPLICATE_EPS
            has_dup = duplicate.any(axis=1)
            weights[has_dup] = duplicate[has_dup]
            zero = weights.sum(axis=1) <= 0
            weights[zero] = 1.0
            weights /= weights.sum(axis=1, keepdims=True)
            out[start : start + top.shape[0]] = np.einsum("bk,bkc->bc", weights, self._coords[top])
        return out


def place_points(query: Any, X: Any, coords: Any, k: int = 10, power: float = 4.0) -> np.ndarray:
    """One-shot :class:`PointPlacer`: place ``query`` on the map ``(X, coords)``.

    Shapes:
        query ``[M, D]``, X ``[N, D]``, coords ``[N, 2]`` -> ``[M, 2]`` float32.
    """
    return PointPlacer(X, coords, k=k, power=power).place(query)


DEFAULT_POINT_BUDGET = 20_000
"""Points a joint map is fitted on by default (UMAP costs ~1.2 ms per point, single-threaded)."""

_POOLED_KINDS = ("texts", "videos")
_TOKEN_KINDS = ("words", "frames")


def _proportional(sizes: dict[str, int], budget: int) -> dict[str, int]:
    """Split ``budget`` over ``sizes`` in proportion (:func:`largest_remainder`, ties by order)."""
    shares = largest_remainder(np.array(list(sizes.values()), dtype=np.int64), budget)
    return {k: int(v) for k, v in zip(sizes, shares.tolist(), strict=True)}


def stratified_sample(
    sizes: dict[str, int], budget: int, *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Deterministic rows of each kind of point to fit a map on, at most ``budget`` in all.

    Every pooled item (``texts``, ``videos``) is kept when they fit in the budget, and the rest
    of it is shared by the token kinds (``words``, ``frames``) in proportion to their sizes;
    when the pooled items alone exceed the budget, all kinds share it in proportion. Within a
    kind the rows are drawn uniformly without replacement with ``numpy``'s generator seeded
    by ``seed`` (the same sizes, budget and seed give the same rows).

    Args:
        sizes: kind -> number of points.
        budget: points in all (>= 1).
        seed: random seed.

    Returns:
        kind -> sorted int64 row indices ``[n_kind]``.
    """
    if int(budget) < 1:
        raise ValueError(f"budget={budget!r}: expected a positive number of points")
    budget = int(budget)
    pooled = {k: n for k, n in sizes.items() if k in _POOLED_KINDS}
    if sum(pooled.values()) <= budget:
        counts = dict(pooled)
        counts.update(_proportional({k: n for k, n in sizes.items() if k not in _POOLED_KINDS},
                                    budget - sum(pooled.values())))
    else:
        counts = _proportional(dict(sizes), budget)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for kind, n in sizes.items():  # one draw per kind, in the order given
        if counts[kind] >= n:
            out[kind] = np.arange(n, dtype=np.int64)
        else:
            out[kind] = np.sort(rng.choice(n, size=counts[kind], replace=False)).astype(np.int64)
    return out


def fit_and_place(x: np.ndarray, fit_rows: np.ndarray, method: str, *,
                  seed: int = 0) -> tuple[Projection, str]:
    """A map of every row of ``x`` fitted on ``x[fit_rows]`` only.

    PCA projects the other rows with the fitted axes (``"transform"``, the same map); UMAP
    places them with :class:`PointPlacer` (``"knn"``: cosine k-nearest-neighbour
    interpolation among the fitted points, as the app places live queries).

    Shapes:
        x ``[N, D]``, fit_rows ``[n]`` -> coords ``[N, 2]`` float32.

    Returns:
        (the :class:`Projection` of all rows, the placement used).
    """
    if len(fit_rows) == x.shape[0]:
        return project(x, method, seed=seed), "fit"
    if method == "pca":
        from sklearn.decomposition import PCA

        prepared = _pca_prepare(x, "cosine").astype(np.float64)
        pca = PCA(n_components=2, random_state=seed).fit(prepared[fit_rows])
        params = {"metric": "cosine", "seed": int(seed), "explained_variance_ratio":
                  [float(v) for v in pca.explained_variance_ratio_]}
        coords = pca.transform(prepared).astype(np.float32)
        return Projection(coords, "pca", params, _versions()), "transform"
    fitted = project(x[fit_rows], method, seed=seed)  # type: ignore[arg-type]
    rest = np.ones(x.shape[0], dtype=bool)
    rest[fit_rows] = False
    coords = np.empty((x.shape[0], 2), dtype=np.float32)
    coords[fit_rows] = fitted.coords
    coords[rest] = PointPlacer(x[fit_rows], fitted.coords).place(x[rest])
    return Projection(coords, fitted.method, fitted.params, fitted.versions), "knn"


def joint_projections(
    text: Any,
    video: Any,
    methods: tuple[str, ...],
    *,
    seed: int = 0,
    budget: int | None = DEFAULT_POINT_BUDGET,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], ProjectionsMeta]:
    """One joint 2-D map per method of valid words, valid frames, pooled texts and videos.

    Every point of a method shares axes (one fit on all four kinds together), so a bundle's
    map can draw words, frames, captions and videos together. Above ``budget`` points the
    maps are fitted on a :func:`stratified_sample` (every caption and video when they fit,
    tokens in proportion) and the other points are placed on them (:func:`fit_and_place`).

    Args:
        text, video: head-embedded :class:`tvr.models.features.TokenFeatures` of a split.
        methods: e.g. ``("umap", "pca")``.
        seed: random seed of every fit and of the sample.
        budget: most points a map is fitted on (None or 0: every point).

    Returns:
        (arrays for ``projections.npz``: ``"<method>_<kind>"`` ``[N_kind, 2]`` float32,
        ``word_ids`` ``[Nw, 2]`` and ``frame_ids`` ``[Nf, 2]`` int64 (item, position), and
        with a sample ``fit_<kind>`` int64 rows fitted; the ``meta.json`` entry,
        :class:`analysis.bundle.ProjectionsMeta`).

    Shapes:
        text tokens ``[Nt, L, D]``, video tokens ``[Nv, T, D]`` -> ``[N_kind, 2]`` per kind
    """
    import time

    import torch
    from tqdm import tqdm

    words = text.mask.bool()
    frames = video.mask.bool()
    blocks = {
        "words": text.tokens[words],
        "frames": video.tokens[frames],
        "texts": text.pooled,
        "videos": video.pooled,
    }
    sizes = {k: int(blocks[k].shape[0]) for k in PROJECTION_KINDS}
    x = torch.cat([blocks[k].float() for k in PROJECTION_KINDS]).numpy()
    arrays: dict[str, np.ndarray] = {
        "word_ids": words.nonzero().numpy().astype(np.int64),
        "frame_ids": frames.nonzero().numpy().astype(np.int64),
    }
    budget = int(budget) if budget else None
    fitted_counts: dict[str, int] | None = None
    if budget is not None and sum(sizes.values()) > budget:
        rows = stratified_sample(sizes, budget, seed=seed)
        offsets = np.cumsum([0] + [sizes[k] for k in PROJECTION_KINDS])
        fit_rows = np.concatenate([rows[k] + offsets[i] for i, k in enumerate(PROJECTION_KINDS)])
        arrays.update({f"fit_{k}": rows[k] for k in PROJECTION_KINDS})
        fitted_counts = {k: int(len(rows[k])) for k in PROJECTION_KINDS}
        logger.info("projections fitted on %d of %d points (budget %d): %s", len(fit_rows),
                    x.shape[0], budget, fitted_counts)
    else:
        fit_rows = np.arange(x.shape[0])
    fitted: dict[str, Any] = {}
    for method in tqdm(methods, desc="projections", disable=not progress, leave=False):
        start = time.perf_counter()
        proj, placement = fit_and_place(x, fit_rows, method, seed=seed)
        offset = 0
        for kind in PROJECTION_KINDS:
            arrays[f"{method}_{kind}"] = proj.coords[offset : offset + sizes[kind]]
            offset += sizes[kind]
        fitted[method] = dict(proj.meta(), seconds=round(time.perf_counter() - start, 3),
                              placement=placement)
    meta = ProjectionsMeta(
        layout="one joint map per method of words, frames, texts and videos",
        kinds=sizes,
        methods=fitted,
        budget=budget,
        fitted=fitted_counts,
    )
    return arrays, meta
