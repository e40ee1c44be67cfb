"""Tests for analysis.projection: PCA/UMAP maps, shared PCA, Procrustes, kNN point placement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.projection import (
    PointPlacer,
    Projection,
    align_to,
    fit_and_place,
    fit_shared_pca,
    joint_projections,
    place_points,
    project,
    stratified_sample,
)

ROOT = Path(__file__).resolve().parents[1]


def _clusters(n_per: int = 20, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 5
    labels = np.repeat(np.arange(3), n_per)
    return (centres[labels] + rng.normal(size=(3 * n_per, dim)) * 0.3).astype(np.float32), labels


def test_importing_projection_does_not_import_umap():
    code = "import sys, analysis.projection; assert 'umap' not in sys.modules, 'umap imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_pca_preserves_a_planar_layout():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(30, 2)) * [3.0, 1.0]
    basis, _ = np.linalg.qr(rng.normal(size=(8, 2)))  # orthonormal [8, 2]
    X = plane @ basis.T + 7.0  # an isometric embedding of the plane in 8-D
    proj = project(X, "pca", metric="euclidean")
    assert isinstance(proj, Projection)
    assert proj.coords.shape == (30, 2) and proj.coords.dtype == np.float32
    d_orig = np.linalg.norm(plane[:, None] - plane[None], axis=-1)
    d_map = np.linalg.norm(proj.coords[:, None] - proj.coords[None], axis=-1)
    np.testing.assert_allclose(d_map, d_orig, atol=1e-4)
    assert sum(proj.params["explained_variance_ratio"]) == pytest.approx(1.0)
    meta = json.loads(json.dumps(proj.meta()))
    assert meta["method"] == "pca" and {"numpy", "scikit-learn"} <= set(meta["versions"])


def test_pca_cosine_ignores_row_scale_and_is_deterministic():
    X, labels = _clusters()
    scales = np.linspace(0.5, 4.0, X.shape[0], dtype=np.float32)[:, None]
    a = project(X, "pca", metric="cosine").coords
    b = project(X * scales, "pca", metric="cosine").coords
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_array_equal(project(X, "pca").coords, project(X, "pca").coords)
    # the clusters stay apart on the map
    centres = np.stack([a[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(a[labels == c] - centres[c], axis=1).max() for c in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > spread


def test_project_rejects_bad_input():
    with pytest.raises(ValueError, match="method='tsne'"):
        project(np.ones((4, 3)), "tsne")
    with pytest.raises(ValueError, match="X: row 1 contains non-finite values"):
        project(np.array([[1.0, 2.0], [np.nan, 1.0], [0.0, 1.0]]), "pca")
    with pytest.raises(ValueError, match="expected a 2-D"):
        project(np.ones(5), "pca")
    with pytest.raises(ValueError, match="metric='manhattan'"):
        project(np.ones((4, 3)), "pca", metric="manhattan")
    with pytest.raises(ValueError, match="at least 2 feature columns"):
        project(np.ones((4, 1)), "pca")


def test_fit_shared_pca_matches_joint_projection():
    X, _ = _clusters()
    coords, proj = fit_shared_pca({"text": X[:25], "video": X[25:]})
    assert coords["text"].shape == (25, 2) and coords["video"].shape == (35, 2)
    joint = project(X, "pca").coords
    np.testing.assert_allclose(np.concatenate([coords["text"], coords["video"]]), joint)
    assert proj.params["blocks"] == [["text", 25], ["video", 35]]
    with pytest.raises(ValueError, match="different feature dims"):
        fit_shared_pca({"text": np.ones((3, 4)), "video": np.ones((3, 5))})


def test_align_to_undoes_rotation_scale_and_shift():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(40, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = 2.5 * ref @ rot * [1, -1] + [10.0, -3.0]  # rotated, reflected, scaled, shifted
    np.testing.assert_allclose(align_to(ref, moved), ref, atol=1e-5)
    with pytest.raises(ValueError, match="must have the same shape"):
        align_to(ref, moved[:5])


def test_place_points_duplicate_lands_on_its_training_point():
    X, _ = _clusters()
    coords = project(X, "pca").coords
    placed = place_points(X[[3, 17, 42]] * 2.0, X, coords, k=10, power=4)  # scale-free: cosine
    np.testing.assert_allclose(placed, coords[[3, 17, 42]], atol=1e-5)
    assert placed.dtype == np.float32


def test_place_points_interpolates_by_similarity():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    # 45 degrees between the first two: equal weights; the third has cosine < 0 -> weight 0
    placed = place_points(np.array([[1.0, 1.0]]), X, coords, k=3)
    np.testing.assert_allclose(placed, [[0.5, 0.0]], atol=1e-6)
    # cos 0.8 / 0.6 with power 1 -> weights 0.8 : 0.6
    placed = place_points(np.array([0.8, 0.6]), X, coords, k=2, power=1)
    np.testing.assert_allclose(placed, [[0.6 / 1.4, 0.0]], atol=1e-6)
    # k = 1 snaps to the nearest point; all-negative neighbours fall back to their plain mean
    assert place_points(np.array([[0.9, 0.1]]), X, coords, k=1).tolist() == [[0.0, 0.0]]
    placed = place_points(np.array([[0.0, -1.0]]), X[[0, 2]], coords[[0, 2]], k=2)
    np.testing.assert_allclose(placed, [[2.5, 2.5]], atol=1e-6)


def test_point_placer_blocks_and_errors(monkeypatch):
    import analysis.projection as projection

    X, _ = _clusters()
    coords = project(X, "pca").coords
    rng = np.random.default_rng(3)
    queries = rng.normal(size=(9, X.shape[1])).astype(np.float32)
    placer = PointPlacer(X, coords, k=50)
    full = placer.place(queries)
    monkeypatch.setattr(projection, "_PLACE_BLOCK", 4)
    np.testing.assert_allclose(placer.place(queries), full, atol=1e-6)  # BLAS blocking
    assert PointPlacer(X, coords, k=1000).k == X.shape[0]
    with pytest.raises(ValueError, match="query has dim 3 but the map was fitted on dim 16"):
        placer.place(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"coords: expected shape \(60, 2\)"):
        PointPlacer(X, coords[:10])
    with pytest.raises(ValueError, match="power=0"):
        PointPlacer(X, coords, power=0)


@pytest.mark.slow
def test_umap_tiny_map_separates_clusters():
    pytest.importorskip("umap")
    X, labels = _clusters(n_per=15)
    proj = project(X, "umap", seed=0, n_neighbors=10, min_dist=0.1, metric="cosine")
    assert proj.coords.shape == (45, 2) and np.isfinite(proj.coords).all()
    assert proj.params["precomputed_distances"] is True and proj.params["n_neighbors"] == 10
    assert "umap-learn" in proj.versions
    c = proj.coords
    centres = np.stack([c[labels == k].mean(0) for k in range(3)])
    # every point is nearer its own cluster's centre than any other centre
    nearest = np.linalg.norm(c[:, None] - centres[None], axis=-1).argmin(1)
    assert (nearest == labels).all()


# ------------------------------------------------------------------------------ point budget


def test_stratified_sample_keeps_pooled_items_and_shares_the_rest_by_size():
    sizes = {"words": 9000, "frames": 3000, "texts": 500, "videos": 100}
    rows = stratified_sample(sizes, 2000, seed=0)
    counts = {k: len(v) for k, v in rows.items()}
    assert sum(counts.values()) == 2000
    assert counts["texts"] == 500 and counts["videos"] == 100  # every pooled item kept
    np.testing.assert_array_equal(rows["videos"], np.arange(100))
    assert counts == {"words": 1050, "frames": 350, "texts": 500, "videos": 100}  # 1400 as 3:1
    for kind, r in rows.items():
        assert r.dtype == np.int64 and np.all(np.diff(r) > 0) and r.max() < sizes[kind]
    again = stratified_sample(sizes, 2000, seed=0)
    assert all(np.array_equal(rows[k], again[k]) for k in sizes)  # deterministic
    other = stratified_sample(sizes, 2000, seed=1)
    assert not np.array_equal(rows["words"], other["words"])


def test_stratified_sample_when_pooled_items_exceed_the_budget_or_all_fit():
    sizes = {"words": 600, "frames": 200, "texts": 150, "videos": 50}
    counts = {k: len(v) for k, v in stratified_sample(sizes, 100, seed=0).items()}
    assert counts == {"words": 60, "frames": 20, "texts": 15, "videos": 5}
    counts = {k: len(v) for k, v in stratified_sample(sizes, 101, seed=0).items()}
    assert sum(counts.values()) == 101 and counts["words"] == 61  # largest remainder
    everything = stratified_sample(sizes, 5000, seed=0)
    assert all(np.array_equal(everything[k], np.arange(n)) for k, n in sizes.items())
    with pytest.raises(ValueError, match="budget=0"):
        stratified_sample(sizes, 0)


def test_fit_and_place_pca_is_the_fitted_maps_transform_and_knn_places_the_rest():
    x, labels = _clusters(n_per=40)
    fit_rows = np.arange(0, 120, 3)
    proj, how = fit_and_place(x, fit_rows, "pca", seed=0)
    assert how == "transform" and proj.coords.shape == (120, 2)
    on_sample = project(x[fit_rows], "pca", seed=0).coords
    scale = np.abs(on_sample).max()
    np.testing.assert_allclose(np.abs(proj.coords[fit_rows]), np.abs(on_sample),
                               atol=1e-4 * scale)  # same axes up to sign
    full, how = fit_and_place(x, np.arange(120), "pca", seed=0)
    assert how == "fit"
    np.testing.assert_array_equal(full.coords, project(x, "pca", seed=0).coords)
    # placed points land with their own cluster (kNN placement, as used for UMAP maps)
    placed = PointPlacer(x[fit_rows], on_sample).place(x)
    for c in range(3):
        centre = on_sample[labels[fit_rows] == c].mean(axis=0)
        others = [on_sample[labels[fit_rows] == o].mean(axis=0) for o in range(3) if o != c]
        mine = placed[labels == c]
        assert all(np.linalg.norm(mine - centre, axis=1).max() < np.linalg.norm(centre - o) / 2
                   for o in others)


def _features(nt: int, nv: int, L: int, T: int, D: int, seed: int = 0):
    import torch

    from tvr.models.features import TokenFeatures

    g = torch.Generator().manual_seed(seed)
    tmask = torch.zeros(nt, L, dtype=torch.long)
    for i in range(nt):
        tmask[i, : 2 + i % (L - 1)] = 1
    vmask = torch.ones(nv, T, dtype=torch.long)
    vmask[::3, T - 1] = 0
    text = TokenFeatures(torch.randn(nt, L, D, generator=g), tmask, torch.randn(nt, D, generator=g))
    video = TokenFeatures(torch.randn(nv, T, D, generator=g), vmask, torch.randn(nv, D, generator=g))
    return text, video


def test_joint_projections_respect_the_budget_and_record_the_sample():
    text, video = _features(nt=60, nv=30, L=8, T=4, D=6)
    arrays, meta = joint_projections(text, video, ("pca",), seed=0, budget=200)
    sizes = meta.kinds
    assert sizes["texts"] == 60 and sizes["videos"] == 30 and sum(sizes.values()) > 200
    assert meta.budget == 200 and meta.sampled
    assert sum(meta.fitted.values()) == 200
    assert meta.fitted["texts"] == 60 and meta.fitted["videos"] == 30
    for kind in ("words", "frames", "texts", "videos"):
        assert len(arrays[f"fit_{kind}"]) == meta.fitted[kind]
        assert arrays[f"pca_{kind}"].shape == (sizes[kind], 2)  # every point is on the map
    share = {k: meta.fitted[k] / sizes[k] for k in ("words", "frames")}
    assert abs(share["words"] - share["frames"]) < 0.02  # tokens sampled in proportion
    assert meta.methods["pca"]["placement"] == "transform"
    again, _ = joint_projections(text, video, ("pca",), seed=0, budget=200)
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)
    full, full_meta = joint_projections(text, video, ("pca",), seed=0, budget=None)
    assert full_meta.fitted is None and not full_meta.sampled and "fit_words" not in full
    assert full_meta.methods["pca"]["placement"] == "fit"
