"""The analysis export (analysis/export.py): files, known answers, atomicity, CLI, torchrun."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from safetensors.numpy import load_file, save_file

from analysis.bundle import Bundle, BundleError, BundleWriter, bundle_status
from analysis.export import (
    ExportError,
    ExportOptions,
    export_bundle,
    main,
    parse_projections,
)
from analysis.hard_negatives import hubness
from analysis.ranked_negatives import bundle_negatives
from analysis.text_frame import text_frame_weights
from tests.conftest import tiny_overrides
from tvr.checkpoint import load_pretrained
from tvr.config import load_config
from tvr.drgi_probe import mine_split_negatives
from tvr.evaluate import evaluate_run
from tvr.metrics import evaluate_retrieval
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead
from tvr.objectives.drgi_negatives import mine_negatives
from tvr.train import train

# float32 token features, so the known-answer tests recompute from exactly what the export used
# (float16 storage, the default, is compared with it in test_float16_tokens_change_no_number)
PCA = ExportOptions(projections=("pca",), token_dtype="float32")
# the DRGI run uses the cross (non-factorized) WTI head, the base run the factorized meanP head
RUNS = {
    "drgi": ["model.head=wti", "drgi.enable=true"],
    "base": ["model.head=meanp"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_synthvtt) -> dict[str, Path]:
    """Two tiny trained runs (2 steps), each exported on synthvtt test with PCA maps."""
    out = tmp_path_factory.mktemp("export_runs")
    dirs = {}
    for name, extra in RUNS.items():
        cfg = load_config(None, tiny_overrides(tiny_synthvtt, out, name, *extra, "train.epochs=1",
                                               "train.max_steps=2", "train.eval_after=false"))
        dirs[name] = train(cfg, progress=False)
        assert export_bundle(dirs[name], split="test", options=PCA, progress=False).written
    return dirs


def bundle(run: Path) -> Path:
    return run / "analysis" / "synthvtt-test"


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of a run folder without its bundles."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("analysis"))
    return dest


def jpeg_size(path: Path) -> tuple[int, int]:
    with Image.open(io.BytesIO(path.read_bytes())) as im:
        return im.size


# ------------------------------------------------------------------------------ files


@pytest.mark.parametrize("name", list(RUNS))
def test_bundle_files_and_shapes(runs, name):
    b = bundle(runs[name])
    meta = json.loads((b / "meta.json").read_text())
    nt, nv, t, words, d = (meta[k] for k in ("num_texts", "num_videos", "num_frames", "max_words",
                                             "embed_dim"))
    assert (nt, nv, t, words, d) == (8, 8, 4, 16, 16)
    assert meta["complete"] and meta["format"] == 2 and meta["dataset"] == "synthvtt"
    assert meta["has_drgi"] == (name == "drgi") and (b / "drgi.safetensors").is_file() == (
        name == "drgi")
    if name == "drgi":  # the information test and graph diagnostics on the bundle's split
        diag = meta["drgi"]["diagnostics"]
        for side in ("video", "text"):
            r = diag[side]
            assert r["n"] == 8 and r["n_base_right"] + r["n_base_wrong"] == 8
            assert 0.0 <= r["acc"] <= 1.0 and 0.0 <= r["base_right"] <= 1.0
        assert 0.0 <= diag["entropy_text"] <= 1.0 and diag["num_texts"] == 8
        assert meta["drgi"]["variant"]["attention"] == "gat"
    for f, size in meta["files"].items():
        if f == "thumbs":
            assert len(list((b / f).iterdir())) == size == nv
        else:
            assert (b / f).stat().st_size == size, f
    assert set(meta["checkpoint_hash"]) == {"config.json", "model.safetensors", "encoder.json",
                                            "tokenizer"}
    assert meta["code_version"]["tvr"] and meta["created"]

    emb = load_file(str(b / "embeddings.safetensors"))
    assert emb["text_pooled"].shape == (nt, d) and emb["video_pooled"].shape == (nv, d)
    assert emb["text_tokens"].shape == (nt, words, d) and emb["video_tokens"].shape == (nv, t, d)
    assert emb["text_mask"].dtype == bool and emb["video_mask"].shape == (nv, t)
    assert emb["text_ids"].shape == (nt, words) and emb["text_ids"].dtype == np.int64
    assert ("text_weights" in emb) == ("video_weights" in emb) == (name == "drgi")  # WTI

    # ranks are tvr.metrics on the stored similarity
    sim = np.load(b / "similarity.npy", allow_pickle=False)
    assert sim.shape == (nt, nv) and sim.dtype == np.float32
    with np.load(b / "ranks.npz", allow_pickle=False) as r:
        ranks = dict(r)
    ref = evaluate_retrieval(sim, ranks["text_to_video"])
    np.testing.assert_array_equal(ranks["t2v"], ref.t2v.ranks)
    np.testing.assert_array_equal(ranks["v2t"], ref.v2t.ranks)
    assert meta["metrics"] == ref.metrics

    # each caption's ranked negatives: the sorted row without the ground truth, best first
    neg = load_file(str(b / "negatives.safetensors"))
    gt = ranks["text_to_video"]
    assert neg["video_ids"].shape == neg["scores"].shape == (nt, nv - 1)
    for q in range(nt):
        order = sorted((v for v in range(nv) if v != gt[q]), key=lambda v, q=q: (-sim[q, v], v))
        assert neg["video_ids"][q].tolist() == order
        assert neg["scores"][q].tolist() == sim[q, order].tolist()
    np.testing.assert_array_equal(neg["n_at_or_above"] + 1, ranks["t2v"])
    np.testing.assert_array_equal(neg["gt_scores"], sim[np.arange(nt), gt])

    # text-to-frame weights: one distribution per caption over its video's valid frames
    tf = np.load(b / "text_frame.npy")
    valid = emb["video_mask"][ranks["text_to_video"]]
    assert tf.shape == (nt, t) and np.all(tf[~valid] == 0)
    np.testing.assert_allclose(tf.sum(1), 1.0, atol=1e-5)

    caps = json.loads((b / "captions.json").read_text())
    assert len(caps["captions"]) == nt and caps["video_ids"][0].startswith("video")
    assert [len(w) for w in caps["word_labels"]] == emb["text_mask"].sum(1).tolist()
    assert caps["word_labels"][0][0] == "[SOT]" and caps["word_labels"][0][-1] == "[EOT]"
    assert all(len(ts) == t for ts in caps["frame_timestamps"])
    assert caps["frame_timestamps"][0][0] > 0 and caps["video_paths"][0].startswith("videos/")

    counts = meta["thumb_index"]["counts"]
    for v in range(nv):
        assert jpeg_size(b / "thumbs" / f"{v}.jpg") == (64 * counts[v], 64)

    kinds = meta["projections"]["kinds"]
    assert kinds == {"words": int(emb["text_mask"].sum()), "frames": int(emb["video_mask"].sum()),
                     "texts": nt, "videos": nv}
    with np.load(b / "projections.npz", allow_pickle=False) as p:
        for kind, n in kinds.items():
            assert p[f"pca_{kind}"].shape == (n, 2) and np.isfinite(p[f"pca_{kind}"]).all()
        assert p["word_ids"].shape == (kinds["words"], 2)
        assert emb["text_mask"][tuple(p["word_ids"].T)].all()
    assert "umap" not in meta["projections"]["methods"]
    assert meta["projections"]["methods"]["pca"]["versions"]["scikit-learn"]


def test_metrics_equal_evaluate_run(runs):
    run = runs["base"]
    meta = json.loads((bundle(run) / "meta.json").read_text())
    again = evaluate_run(run, split="test", progress=False, write=False)
    for key, value in meta["metrics"].items():
        assert again[key] == pytest.approx(value), key


def test_embeddings_are_the_models_features(runs):
    model, tok, cfg = load_pretrained(runs["drgi"])
    emb = load_file(str(bundle(runs["drgi"]) / "embeddings.safetensors"))
    caps = json.loads((bundle(runs["drgi"]) / "captions.json").read_text())
    ids, mask = tok.encode(caps["captions"], cfg.data.max_words)
    np.testing.assert_array_equal(emb["text_ids"], ids.numpy())
    with torch.no_grad():
        text = model.encode_text(ids, mask)
    np.testing.assert_allclose(emb["text_tokens"], text.tokens.numpy(), atol=1e-5)
    np.testing.assert_allclose(emb["text_weights"], text.weights.numpy(), atol=1e-6)


def test_cross_head_similarity_is_the_heads_score(runs):
    """WTI is not factorized: the similarity comes from head.score in blocks."""
    model, _, _ = load_pretrained(runs["drgi"])
    b = bundle(runs["drgi"])
    meta = json.loads((b / "meta.json").read_text())
    assert meta["factorized"] is False and meta["text_frame"]["rule"] == "word_softmax_mixture"
    e = {k: torch.from_numpy(v) for k, v in load_file(str(b / "embeddings.safetensors")).items()}
    text = TokenFeatures(e["text_tokens"], e["text_mask"].long(), e["text_pooled"],
                         e["text_weights"])
    video = TokenFeatures(e["video_tokens"], e["video_mask"].long(), e["video_pooled"],
                          e["video_weights"])
    with torch.no_grad():
        expected = model.score(text, video).numpy()
    np.testing.assert_allclose(np.load(b / "similarity.npy"), expected, atol=1e-6)


# ------------------------------------------------------------------------------ DRGI


def test_drgi_attention_and_negatives(runs):
    b = bundle(runs["drgi"])
    d = load_file(str(b / "drgi.safetensors"))
    emb = load_file(str(b / "embeddings.safetensors"))
    sim = np.load(b / "similarity.npy")
    t2v = np.load(b / "ranks.npz")["text_to_video"]
    att = d["text_attention"]
    assert att.shape == (8, 1, 16, 16) and att.dtype == np.float16
    assert d["video_attention"].shape == (8, 1, 4, 4)
    for a, m in ((att, emb["text_mask"]), (d["video_attention"], emb["video_mask"])):
        a = a.astype(np.float32)
        rows = a.sum(-1)  # [N, H, n]
        valid = np.broadcast_to(m[:, None, :], rows.shape)
        np.testing.assert_allclose(rows[valid], 1.0, atol=2e-3)
        assert np.all(rows[~valid] == 0)
        assert np.all(a[np.broadcast_to(~m[:, None, None, :], a.shape)] == 0)
    np.testing.assert_array_equal(d["text_node_mask"], emb["text_mask"])
    # one caption per video: equal to DRGI's own mining on the full pair-aligned square
    full = mine_negatives(torch.from_numpy(sim[:, t2v]), torch.from_numpy(t2v), topm=1)
    np.testing.assert_array_equal(d["text_queries_neg_video_index"], t2v[full.video[:, 0]])
    np.testing.assert_array_equal(d["text_queries_neg_text_index"], full.text[:, 0].numpy())
    assert np.all(d["text_queries_neg_video_index"] != t2v) and d["text_queries_neg_valid"].all()
    for q in ("text_queries", "video_queries"):
        for k in ("pos_video", "neg_video", "pos_text", "neg_text"):
            assert np.all((d[f"{q}_{k}"] > 0) & (d[f"{q}_{k}"] < 1)), (q, k)


def test_drgi_scores_match_the_objectives_report(runs):
    """Over the whole (one-caption) split as one batch, the objective reports the same means."""
    b = bundle(runs["drgi"])
    model, _, _ = load_pretrained(runs["drgi"])
    e = {k: torch.from_numpy(v) for k, v in load_file(str(b / "embeddings.safetensors")).items()}
    d = load_file(str(b / "drgi.safetensors"))
    t2v = torch.from_numpy(np.load(b / "ranks.npz")["text_to_video"])
    sim = torch.from_numpy(np.load(b / "similarity.npy"))
    text = TokenFeatures(e["text_tokens"], e["text_mask"].long(), e["text_pooled"])
    video = TokenFeatures(e["video_tokens"], e["video_mask"].long(), e["video_pooled"])[t2v]
    outputs = {"text": text, "video": video, "sim": sim[:, t2v], "video_index": t2v,
               "local": slice(0, len(t2v)), "logit_scale": torch.tensor(100.0)}
    with torch.no_grad():
        report = model.objectives["drgi"](outputs, {})
    pos = 0.5 * (d["text_queries_pos_video"] + d["text_queries_pos_text"])
    neg = 0.5 * (d["text_queries_neg_video"] + d["text_queries_neg_text"])
    assert float(report["drgi_pos_score"]) == pytest.approx(float(pos.mean()), abs=1e-5)
    assert float(report["drgi_neg_score"]) == pytest.approx(float(neg.mean()), abs=1e-5)


def test_mine_split_negatives_with_several_captions_per_video():
    # 5 captions of 3 videos; caption 0 and 1 belong to video 0, 2 and 3 to video 1
    t2v = np.array([0, 0, 1, 1, 2])
    sim = np.array(
        [[0.9, 0.8, 0.1],
         [0.2, 0.1, 0.7],
         [0.5, 0.9, 0.3],
         [0.6, 0.2, 0.1],
         [0.1, 0.4, 0.8]], dtype=np.float32)
    for block in (1, 2, 1024):
        n = mine_split_negatives(sim, t2v, block=block)
        np.testing.assert_array_equal(n.representative, [0, 2, 4])
        # hardest other video of each caption, over all videos
        np.testing.assert_array_equal(n.text_neg_video, [1, 2, 0, 0, 1])
        # hardest caption of another video, over first captions (0, 2, 4)
        np.testing.assert_array_equal(n.video_neg_text, [2, 0, 2])
        np.testing.assert_array_equal(n.video_neg_video, [1, 0, 1])  # for captions 0, 2, 4
        np.testing.assert_array_equal(n.text_neg_text, [2, 2, 0, 0, 2])  # their video's
        assert n.text_valid.all() and n.video_valid.all()
    one = mine_split_negatives(np.ones((2, 1), np.float32), np.array([0, 0]))
    assert not one.text_valid.any() and not one.video_valid.any()


# ------------------------------------------------------------------------------ known answers


class _PooledHead(SimilarityHead):
    """A head without token interaction (the pooled-cosine rule applies)."""


def test_text_frame_weights_known_answers():
    # pooled rule: cosines (1, 0, -1) and a padded frame, scale ln(2) -> weights 4:2:1
    text = TokenFeatures(torch.zeros(1, 2, 2), torch.ones(1, 2), torch.tensor([[1.0, 0.0]]))
    frames = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [5.0, 0.0]]])
    video = TokenFeatures(frames, torch.tensor([[1, 1, 1, 0]]), torch.zeros(1, 2))
    w, rule = text_frame_weights(_PooledHead(), text, video, np.array([0]), float(np.log(2)))
    assert rule == "pooled_cosine_softmax"
    np.testing.assert_allclose(w, [[4 / 7, 2 / 7, 1 / 7, 0.0]], atol=1e-6)

    # word rule: two words with weights 0.75 / 0.25, each matching one frame exactly
    class WordHead(SimilarityHead):
        token_scores = True

        def token_similarity(self, t, v):
            return torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])

    text = TokenFeatures(torch.zeros(1, 2, 2), torch.ones(1, 2), torch.zeros(1, 2),
                         torch.tensor([[0.75, 0.25]]))
    video = TokenFeatures(torch.zeros(1, 2, 2), torch.ones(1, 2), torch.zeros(1, 2))
    w, rule = text_frame_weights(WordHead(), text, video, np.array([0]), 1e4)
    assert rule == "word_softmax_mixture"
    np.testing.assert_allclose(w, [[0.75, 0.25]], atol=1e-6)


def test_options_and_projection_parsing():
    assert parse_projections("umap, PCA") == ("umap", "pca")
    assert parse_projections("none") == () and parse_projections("") == ()
    with pytest.raises(ExportError, match="tsne"):
        ExportOptions(projections=("tsne",))
    with pytest.raises(ExportError, match="thumb_size"):
        ExportOptions(thumb_size=0)


# ------------------------------------------------------------------------------ freshness, atomicity


def test_fresh_bundle_is_kept_and_force_rebuilds(runs, tmp_path):
    run = copy_run(runs["base"], tmp_path / "base")
    assert export_bundle(run, options=PCA, progress=False).written
    created = json.loads((bundle(run) / "meta.json").read_text())["created"]
    assert not export_bundle(run, options=PCA, progress=False).written
    assert export_bundle(run, options=PCA, force=True, progress=False).written
    # other content parameters redo the bundle; the old one is replaced, no leftovers
    assert export_bundle(run, options=ExportOptions(projections=(), thumb_size=32),
                         progress=False).written
    meta = json.loads((bundle(run) / "meta.json").read_text())
    assert meta["projections"]["methods"] == {} and not (bundle(run) / "projections.npz").exists()
    assert meta["thumb_index"]["frame_width"] == 32 and created
    assert sorted(p.name for p in (run / "analysis").iterdir()) == ["synthvtt-test"]


def test_a_bundle_without_ranked_negatives_is_exported_again(runs, tmp_path):
    """A bundle written before negatives.safetensors existed is redone, so the app never has
    to rank a large split's negatives itself; until then Bundle.negatives is None."""
    run = copy_run(runs["base"], tmp_path / "base")
    export_bundle(run, options=PCA, progress=False)
    meta_path = bundle(run) / "meta.json"
    meta = json.loads(meta_path.read_text())
    (bundle(run) / "negatives.safetensors").unlink()
    del meta["files"]["negatives.safetensors"]
    meta_path.write_text(json.dumps(meta))
    old = Bundle.load(bundle(run))
    assert old.negatives is None
    assert bundle_negatives(old).hubness(3).tolist() == hubness(old.sim, k=3).tolist()
    assert export_bundle(run, options=PCA, progress=False).written
    fresh = Bundle.load(bundle(run))
    assert fresh.negatives is not None and fresh.negatives.k == fresh.num_videos - 1
    np.testing.assert_array_equal(fresh.negatives.ranks, fresh.ranks.t2v)
    # a negatives file that does not fit the bundle is refused, naming the file
    path = bundle(run) / "negatives.safetensors"
    save_file({k: v[:-1] for k, v in load_file(str(path)).items()}, str(path))
    meta = json.loads(meta_path.read_text())
    meta["files"]["negatives.safetensors"] = path.stat().st_size
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="negatives.safetensors ranks 7 captions, meta.json "
                                          "says 8"):
        _ = Bundle.load(bundle(run)).negatives


def test_exception_mid_export_leaves_no_bundle(runs, tmp_path, monkeypatch):
    run = copy_run(runs["drgi"], tmp_path / "drgi")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(BundleWriter, "write_thumbnails", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_bundle(run, options=PCA, progress=False)
    assert list((run / "analysis").iterdir()) == []  # no bundle, no temporary folder
    assert bundle_status(bundle(run)).state == "missing"

    # a failed re-export leaves the previous bundle as it was
    monkeypatch.undo()
    export_bundle(run, options=PCA, progress=False)
    before = (bundle(run) / "meta.json").read_text()
    monkeypatch.setattr(BundleWriter, "write_thumbnails", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_bundle(run, options=PCA, force=True, progress=False)
    assert (bundle(run) / "meta.json").read_text() == before
    assert bundle_status(bundle(run)).state == "fresh"
    assert sorted(p.name for p in (run / "analysis").iterdir()) == ["synthvtt-test"]


# ------------------------------------------------------------------------------ CLI


def test_cli_run_and_demo(runs, tiny_synthvtt, tmp_path, capsys, caplog):
    run = copy_run(runs["base"], tmp_path / "base")
    args = ["--run", str(run), "--split", "test", "--projection", "pca", "--quiet"]
    assert main(args) == 0
    assert f"wrote {bundle(run)}" in capsys.readouterr().out
    assert main(args) == 0
    assert "fresh, kept" in capsys.readouterr().out
    assert main([*args, "--force", "--dataset", "synthvtt", "--root", str(tiny_synthvtt)]) == 0
    assert "wrote" in capsys.readouterr().out

    ckpts = tmp_path / "checkpoints"
    with caplog.at_level(logging.ERROR):
        assert main(["--demo", "--checkpoints", str(ckpts), "--quiet"]) == 1
    assert "make demo" in caplog.text and "demo-base" in caplog.text
    for name, src in (("demo-base", "base"), ("demo-drgi", "drgi")):
        copy_run(runs[src], ckpts / name)
    demo = ["--demo", "--checkpoints", str(ckpts), "--root", str(tiny_synthvtt),
            "--projection", "pca", "--quiet"]
    assert main(demo) == 0
    assert capsys.readouterr().out.count("wrote") == 2
    assert main(demo) == 0
    assert capsys.readouterr().out.count("fresh, kept") == 2
    assert json.loads((bundle(ckpts / "demo-drgi") / "meta.json").read_text())["has_drgi"]

    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(["--run", str(tmp_path / "nope"), "--quiet"]) == 1
    assert "not a run folder" in caplog.text
    with pytest.raises(SystemExit):
        main(["--split", "test"])  # neither --run nor --demo


# ------------------------------------------------------------------------------ torchrun


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, argv: list[str]) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    if main(argv) != 0:
        raise SystemExit(f"rank {rank}: export failed")


def test_two_rank_export_equals_single_process(runs, tmp_path):
    run = copy_run(runs["drgi"], tmp_path / "ddp")
    argv = ["--run", str(run), "--projection", "pca", "--quiet", "--device", "cpu",
            "--token-dtype", "float32"]
    mp.start_processes(_worker, args=(2, _free_port(), argv), nprocs=2, join=True,
                       start_method="spawn")
    a, b = bundle(runs["drgi"]), bundle(run)
    meta_a, meta_b = (json.loads((x / "meta.json").read_text()) for x in (a, b))
    assert meta_b["export_params"]["world_size"] == 2
    assert meta_b["metrics"] == meta_a["metrics"]
    assert meta_b["thumb_index"] == meta_a["thumb_index"]
    assert (json.loads((a / "captions.json").read_text())
            == json.loads((b / "captions.json").read_text()))
    np.testing.assert_allclose(np.load(b / "similarity.npy"), np.load(a / "similarity.npy"),
                               atol=1e-5)
    for f in ("embeddings.safetensors", "drgi.safetensors"):
        x, y = load_file(str(a / f)), load_file(str(b / f))
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_allclose(y[k].astype(np.float32), x[k].astype(np.float32),
                                       atol=2e-3 if "attention" in k else 1e-5, err_msg=k)
    for f in ("ranks.npz", "projections.npz"):
        with np.load(a / f) as x, np.load(b / f) as y:
            for k in x.files:
                np.testing.assert_allclose(y[k], x[k], atol=1e-4, err_msg=f"{f}:{k}")
    for v in range(8):
        assert (a / "thumbs" / f"{v}.jpg").read_bytes() == (b / "thumbs" / f"{v}.jpg").read_bytes()
    assert bundle_status(b).state == "fresh"


# ------------------------------------------------------------------------------ UMAP


@pytest.mark.slow
def test_umap_export(runs, tmp_path):
    run = copy_run(runs["base"], tmp_path / "umap")
    export_bundle(run, options=ExportOptions(projections=("umap",)), progress=False)
    meta = json.loads((bundle(run) / "meta.json").read_text())
    umap_meta = meta["projections"]["methods"]["umap"]
    assert umap_meta["versions"]["umap-learn"] and umap_meta["params"]["seed"] == 0
    with np.load(bundle(run) / "projections.npz") as p:
        assert p["umap_videos"].shape == (8, 2) and np.isfinite(p["umap_words"]).all()


def test_export_removes_work_folders_of_killed_exports(runs, tmp_path):
    import re
    import subprocess
    import sys
    import time

    run = copy_run(runs["base"], tmp_path / "base")
    assert export_bundle(run, options=PCA, progress=False).written
    analysis = run / "analysis"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())
    made = {
        "killed": f".tmp-synthvtt-test-p{dead_pid}@{host}-abcd1234",  # owner gone: stale
        "killed_old": f".old-synthvtt-test-p{dead_pid}@{host}-efgh5678",
        "live": f".tmp-synthvtt-val-p{os.getpid()}@{host}-ijkl9012",  # a running export
        "legacy_old": ".tmp-synthvtt-test-mnop3456",  # no owner, 2 hours old: stale
        "legacy_new": ".tmp-synthvtt-test-qrst7890",  # no owner, just made: maybe running
    }
    for name in made.values():
        (analysis / name).mkdir()
        (analysis / name / "similarity.npy").write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(analysis / made["legacy_old"], (two_hours_ago, two_hours_ago))

    assert not export_bundle(run, options=PCA, progress=False).written  # fresh: kept
    left = sorted(p.name for p in analysis.iterdir())
    assert left == sorted(["synthvtt-test", made["live"], made["legacy_new"]])


def test_each_video_is_decoded_once_and_thumbnails_are_the_model_frames(runs, tmp_path,
                                                                      monkeypatch):
    """Thumbnails come from the embedding pass's decode: one read_frames per video, and the
    strip holds exactly the frames (and times) the sampler picked for the model."""
    import tvr.data.video.sampler as video_module  # where FrameSampler looks read_frames up
    from analysis.bundle import Bundle
    from analysis.jpeg import encode_jpeg

    run = copy_run(runs["base"], tmp_path / "base")
    real_read = video_module.read_frames
    calls: list[str] = []

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(video_module, "read_frames", counting)
    opts = ExportOptions(projections=(), thumb_size=32)  # the tiny model's image_size
    assert export_bundle(run, split="test", options=opts, progress=False).written
    monkeypatch.undo()

    b = Bundle.load(bundle(run))
    root = Path(b.info.data_root_abs)
    paths = [str(root / p) for p in b.video_paths]
    assert sorted(calls) == sorted(paths) and b.num_videos == 8  # once per video, no more
    cfg = load_pretrained(run)[2]
    for v, path in enumerate(paths):
        decoded = real_read(path, cfg.data.num_frames, 32)
        jpeg = (bundle(run) / "thumbs" / f"{v}.jpg").read_bytes()
        assert jpeg == encode_jpeg(np.concatenate(list(decoded.frames), axis=1), 85)
        n = decoded.frames.shape[0]
        assert int(b.thumb_counts[v]) == n
        np.testing.assert_array_equal(b.frame_timestamps[v, :n], decoded.timestamps)
        assert np.isnan(b.frame_timestamps[v, n:]).all()


def test_projection_budget_fits_a_recorded_sample_and_places_the_rest(runs, tmp_path):
    from analysis.bundle import Bundle

    run = copy_run(runs["base"], tmp_path / "base")
    opts = ExportOptions(projections=("pca",), projection_budget=40)
    assert export_bundle(run, split="test", options=opts, progress=False).written
    b = Bundle.load(bundle(run))
    pm = b.info.projections
    assert pm.budget == 40 and pm.sampled and sum(pm.fitted.values()) == 40
    assert pm.fitted["texts"] == b.num_texts and pm.fitted["videos"] == b.num_videos
    assert b.info.export_params.projection_budget == 40
    proj = b.projections
    for kind, n in pm.kinds.items():
        assert len(proj.fitted_rows[kind]) == pm.fitted[kind]
        assert proj.get("pca", kind).shape == (n, 2)
    # a bigger budget is another content parameter: the bundle is redone, fitted on all
    opts = ExportOptions(projections=("pca",), projection_budget=0)
    assert export_bundle(run, split="test", options=opts, progress=False).written
    b = Bundle.load(bundle(run))
    assert b.projections.fitted_rows is None and not b.info.projections.sampled
    with pytest.raises(ExportError, match="projection_budget=-1"):
        ExportOptions(projection_budget=-1)



def test_float16_tokens_change_no_number_the_export_computes(runs, tmp_path):
    """Default float16 token storage: the token tensors are the float32 ones rounded, every
    other array is byte-identical, and the reader hands computations float32."""
    from analysis.bundle import Bundle

    run = copy_run(runs["drgi"], tmp_path / "drgi")
    half = ExportOptions(projections=("pca",))
    assert half.token_dtype == "float16"
    assert export_bundle(run, split="test", options=half, progress=False).written
    b16, b32 = bundle(run), bundle(runs["drgi"])
    e16 = load_file(str(b16 / "embeddings.safetensors"))
    e32 = load_file(str(b32 / "embeddings.safetensors"))
    assert set(e16) == set(e32)
    for key in e32:
        if key in ("text_tokens", "video_tokens"):
            assert e16[key].dtype == np.float16
            np.testing.assert_array_equal(e16[key], e32[key].astype(np.float16))
        else:
            np.testing.assert_array_equal(e16[key], e32[key])
            assert e16[key].dtype == e32[key].dtype
    for name in ("similarity.npy", "text_frame.npy"):
        assert (b16 / name).read_bytes() == (b32 / name).read_bytes(), name
    for name in ("ranks.npz", "projections.npz"):
        with np.load(b16 / name) as x, np.load(b32 / name) as y:
            assert sorted(x.files) == sorted(y.files)
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k])
    a16, a32 = load_file(str(b16 / "drgi.safetensors")), load_file(str(b32 / "drgi.safetensors"))
    assert all(np.array_equal(a16[k], a32[k]) for k in a32)
    assert (json.loads((b16 / "meta.json").read_text())["metrics"]
            == json.loads((b32 / "meta.json").read_text())["metrics"])

    b = Bundle.load(b16)
    assert b.info.export_params.token_dtype == "float16"
    text, video = b.text_features(), b.video_features([0, 2])
    assert text.tokens.dtype == video.tokens.dtype == torch.float32
    model, _, _ = load_pretrained(run)
    with torch.no_grad():  # live search: stored features rescored with the run's head
        sim = model.score(text, video).numpy()
    np.testing.assert_allclose(sim, b.sim[:, [0, 2]], atol=2e-3)
    with pytest.raises(ExportError, match="token_dtype='bfloat16'"):
        ExportOptions(token_dtype="bfloat16")
