"""Loading analysis bundles (analysis/bundle.py): the Bundle API, freshness, discovery."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from analysis.bundle import (
    Bundle,
    BundleError,
    DRGIArrays,
    StaleBundleError,
    bundle_status,
    find_bundles,
)
from analysis.export import ExportOptions, export_bundle
from tests.conftest import tiny_overrides
from tvr.checkpoint import load_pretrained
from tvr.config import load_config
from tvr.train import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_synthvtt) -> Path:
    """``<checkpoints>/base`` (meanP, PCA maps) and ``<checkpoints>/drgi`` (seqTransf + DRGI,
    no maps), trained for 2 steps and exported on synthvtt test."""
    out = tmp_path_factory.mktemp("bundle_runs")
    for name, extra, maps in (("base", ["model.head=meanp"], ("pca",)),
                              ("drgi", ["model.head=seqtransf", "drgi.enable=true"], ())):
        cfg = load_config(None, tiny_overrides(tiny_synthvtt, out, name, *extra, "train.epochs=1",
                                               "train.max_steps=2", "train.eval_after=false"))
        export_bundle(train(cfg, progress=False), options=ExportOptions(projections=maps),
                      progress=False)
    return out


def bdir(root: Path, run: str) -> Path:
    return root / run / "analysis" / "synthvtt-test"


# ------------------------------------------------------------------------------ the API


def test_load_attributes_and_lazy_read_only_arrays(runs):
    b = Bundle.load(bdir(runs, "base"))
    assert b.status is not None and b.status.fresh and b.status.reasons == ()
    assert (b.run_name, b.dataset, b.split, b.head) == ("base", "synthvtt", "test", "meanp")
    assert b.factorized and not b.has_drgi and b.drgi is None
    assert (b.num_texts, b.num_videos, b.num_frames, b.max_words, b.embed_dim) == (8, 8, 4, 16, 16)
    assert b.run_dir == runs / "base" and "base" in repr(b)
    assert len(b.captions) == 8 and b.text_to_video.tolist() == list(range(8))
    assert b.frame_timestamps.shape == (8, 4) and np.all(np.diff(b.frame_timestamps, axis=1) > 0)
    assert b.metrics["t2v/N"] == 8.0

    assert "sim" not in vars(b) and "text_tokens" not in vars(b)  # nothing big read yet
    assert b.sim.shape == (8, 8) and b.sim.dtype == np.float32
    assert b.text_tokens.shape == (8, 16, 16) and "text_tokens" in vars(b)
    for arr in (b.sim, b.text_tokens, b.text_mask, b.video_mask, b.text_pooled, b.ranks.t2v,
                b.text_frame_weights, b.text_to_video, b.frame_timestamps):
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
    assert b.text_weights is None and b.video_weights is None
    np.testing.assert_array_equal(b.ranks.text_to_video, b.text_to_video)
    assert b.ranks.v2t_any is None  # one caption per video


def test_words_ids_and_thumbnails(runs):
    b = Bundle.load(bdir(runs, "base"))
    assert b.words(0) == b.word_labels[0] and len(b.words(0)) == int(b.text_mask[0].sum())
    assert b.words(0)[0] == "[SOT]" and b.words(0)[-1] == "[EOT]"
    assert set(b.words(0)[1:-1]) <= set(b.captions[0].replace(",", " , ").split())
    with pytest.raises(IndexError, match="caption index 8"):
        b.words(8)

    image = b.thumbnail(2)
    n = int(b.thumb_counts[2])
    assert isinstance(image, Image.Image) and image.size == (n * b.thumb_size, b.thumb_size)
    strip = b.thumbnail(2, as_array=True)
    assert strip.shape == (64, n * 64, 3) and strip.dtype == np.uint8
    frames = b.thumbnail_frames(2)
    assert frames.shape == (n, 64, 64, 3)
    assert frames.reshape(n, -1).std(axis=1).min() > 0  # real pictures, not blank
    assert b.thumbnail_path(-1).name == "7.jpg"
    with pytest.raises(IndexError, match="video index 9"):
        b.thumbnail(9)


def test_stored_features_rescore_with_the_runs_head(runs):
    """What live search does: score stored features with the run's head."""
    b = Bundle.load(bdir(runs, "drgi"))
    model, _, _ = load_pretrained(b.run_dir)
    with torch.no_grad():
        sim = model.score(b.text_features(), b.video_features()).numpy()
        part = model.score(b.text_features([1, 3]), b.video_features(slice(0, 4))).numpy()
    np.testing.assert_allclose(sim, b.sim, atol=1e-5)
    np.testing.assert_allclose(part, b.sim[[1, 3], :4], atol=1e-5)


def test_drgi_arrays_and_projections(runs):
    d = Bundle.load(bdir(runs, "drgi"))
    assert d.has_drgi and isinstance(d.drgi, DRGIArrays)
    g = d.drgi
    assert g.text_attention.shape == (8, 1, 16, 16) and g.video_attention.shape == (8, 1, 4, 4)
    rows = g.video_attention.astype(np.float32).sum(-1)[:, 0]
    np.testing.assert_allclose(rows[g.video_node_mask], 1.0, atol=2e-3)
    tq, vq = g.text_queries, g.video_queries
    np.testing.assert_array_equal(tq.anchor_video, d.text_to_video)
    np.testing.assert_array_equal(vq.anchor_video, np.arange(8))
    assert np.all(tq.neg_video_index != tq.anchor_video) and tq.neg_valid.all()
    np.testing.assert_allclose(tq.pos, 0.5 * (tq.pos_video + tq.pos_text))
    assert tq.neg.shape == (8,) and not tq.neg_video_index.flags.writeable
    assert d.projections.methods == () and d.projections.word_ids.shape == (0, 2)
    # memory maps, read by row (the caption attention is ~190 MB at 59,800 captions)
    from analysis.bundle.memory import _mapped

    assert _mapped(g.text_attention) and _mapped(g.video_attention) and _mapped(tq.pos_video)
    fresh = Bundle.load(bdir(runs, "drgi"))
    before = fresh.resident_bytes()
    _ = fresh.drgi
    assert fresh.resident_bytes() - before < 1000

    p = Bundle.load(bdir(runs, "base")).projections
    assert p.methods == ("pca",)
    assert p.get("pca", "texts").shape == (8, 2) and p.get("pca", "videos").shape == (8, 2)
    assert p.get("pca", "frames").shape == (len(p.frame_ids), 2)
    assert p.params["pca"]["method"] == "pca"
    with pytest.raises(KeyError, match="umap"):
        p.get("umap", "texts")


def test_synthvtt_meta_is_read_once_per_bundle_and_charged(runs, tiny_synthvtt, monkeypatch):
    """The failure table, the Queries and Attention pages each ask for it (~4 s a read at
    59,800 captions): the bundle reads it once and counts it in its resident bytes; another
    bundle of the same rows (the other run on the split) shares it; a rewritten ground truth
    is read again."""
    from collections import OrderedDict

    import tvr.data.synthvtt as synthvtt
    from analysis.bundle import reader

    monkeypatch.setattr(reader, "_shared_splits", OrderedDict())
    reads: list[str] = []
    real = synthvtt.read_split_meta
    monkeypatch.setattr(synthvtt, "read_split_meta",
                        lambda *a, **k: reads.append(a[1]) or real(*a, **k))
    b = Bundle.load(bdir(runs, "base"))
    before = b.resident_bytes()
    first = b.synthvtt_meta()
    assert b.synthvtt_meta() is first and reads == ["test"]
    assert b.resident_bytes() > before
    other = Bundle.load(bdir(runs, "drgi"))
    assert other.captions == b.captions and other.video_ids == b.video_ids
    charged = other.resident_bytes()
    assert other.synthvtt_meta() is first and reads == ["test"]  # shared, not aligned again
    assert other.resident_bytes() > charged  # and counted by each bundle that holds it
    meta_file = b.data_root / synthvtt.META_FILE
    st = meta_file.stat()
    try:
        os.utime(meta_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        again = Bundle.load(bdir(runs, "base")).synthvtt_meta()
    finally:
        os.utime(meta_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert again is not first and again == first and reads == ["test", "test"]


def test_synthvtt_meta_is_aligned(runs, tiny_synthvtt):
    b = Bundle.load(bdir(runs, "base"))
    gt = b.synthvtt_meta()
    assert gt is not None and gt.params.n_test == 8 and "colours" in gt.vocabulary
    assert len(gt.videos) == 8 and len(gt.captions) == 8
    for i, c in enumerate(gt.captions):
        assert c is not None and c.split == "test"
        assert c.video_id == b.video_ids[b.text_to_video[i]]
        assert c.relevant == (c.video_id,)  # test captions identify their video
        events = gt.videos[b.text_to_video[i]].events
        assert all(0 <= e < len(events) for e in c.events)
        for e in c.events:  # the caption names the colour and shape of what it mentions
            assert events[e].colour in b.captions[i] and events[e].shape in b.captions[i]


# ------------------------------------------------------------------------------ freshness


def test_find_bundles(runs, tmp_path):
    found = find_bundles(runs)
    assert [(f.run, f.dataset, f.split) for f in found] == [("base", "synthvtt", "test"),
                                                            ("drgi", "synthvtt", "test")]
    assert all(f.status is not None and f.status.state == "fresh" for f in found)
    (runs / "base" / "analysis" / ".tmp-synthvtt-test-x").mkdir()  # work in progress: ignored
    assert len(find_bundles(runs, check=False)) == 2
    assert find_bundles(runs, check=False)[0].status is None
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_bundles(tmp_path / "nowhere")


def test_changed_checkpoint_makes_the_bundle_stale(runs, tmp_path):
    run = shutil.copytree(runs / "base", tmp_path / "base")
    assert bundle_status(bdir(tmp_path, "base")).state == "fresh"  # a copied run stays fresh
    weights = load_file(str(run / "model.safetensors"))
    weights["logit_scale"] = weights["logit_scale"] + 1.0
    save_file(weights, str(run / "model.safetensors"))
    state, reasons = bundle_status(bdir(tmp_path, "base"))
    assert state == "stale" and any("model.safetensors" in r for r in reasons)
    with pytest.raises(StaleBundleError, match="model.safetensors") as err:
        Bundle.load(bdir(tmp_path, "base"))
    assert "--force" in str(err.value) and err.value.reasons == reasons
    b = Bundle.load(bdir(tmp_path, "base"), allow_stale=True)
    assert b.status is not None and b.status.state == "stale" and b.sim.shape == (8, 8)
    assert Bundle.load(bdir(tmp_path, "base"), check=False).status is None


def test_changed_dataset_makes_the_bundle_stale(runs, tiny_synthvtt, tmp_path):
    data = shutil.copytree(tiny_synthvtt, tmp_path / "data")  # copy2 keeps mtimes
    path = bdir(runs, "base")
    assert bundle_status(path, data_root=data).state == "fresh"

    csv = data / "MSRVTT_JSFUSION_test.csv"
    csv.write_text(csv.read_text().replace("square", "box", 1))
    state, reasons = bundle_status(path, data_root=data)
    assert state == "stale" and len(reasons) == 1 and "MSRVTT_JSFUSION_test.csv changed" in reasons[0]
    with pytest.raises(StaleBundleError, match="MSRVTT_JSFUSION_test.csv"):
        Bundle.load(path, data_root=data)

    shutil.copy2(tiny_synthvtt / csv.name, csv)
    (data / "extra.json").write_text("{}")
    assert "extra.json was added" in bundle_status(path, data_root=data).reasons[0]
    (data / "extra.json").unlink()

    video = data / json.loads((path / "captions.json").read_text())["video_paths"][3]
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    state, reasons = bundle_status(path, data_root=data)
    assert state == "stale" and "1 video file(s) changed" in reasons[0] and video.name in reasons[0]
    video.unlink()
    assert "(1 missing)" in bundle_status(path, data_root=data).reasons[0]

    state, reasons = bundle_status(path, data_root=tmp_path / "gone")
    assert state == "stale" and "not found" in reasons[0]


def test_missing_incomplete_and_old_format_bundles(runs, tmp_path):
    assert bundle_status(tmp_path / "nothing").state == "missing"
    with pytest.raises(BundleError, match="no usable bundle"):
        Bundle.load(tmp_path / "nothing")

    shutil.copytree(runs / "base", tmp_path / "base")
    path = bdir(tmp_path, "base")
    (path / "similarity.npy").unlink()
    state, reasons = bundle_status(path)
    assert state == "missing" and "similarity.npy" in reasons[0]
    with pytest.raises(BundleError, match="similarity.npy"):
        Bundle.load(path, check=False)

    shutil.copy2(bdir(runs, "base") / "similarity.npy", path / "similarity.npy")
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps(dict(meta, format=0)))
    state, reasons = bundle_status(path)
    assert state == "stale" and "format 0" in reasons[0]
    # ties ranked by the old optimistic rule (tied queries, no *_optimistic keys): stale
    old = dict(meta, metrics={**meta["metrics"], "t2v/ties": 2.0})
    (path / "meta.json").write_text(json.dumps(old))
    state, reasons = bundle_status(path)
    assert state == "stale" and "old tie rule" in reasons[0] and "t2v: 2" in reasons[0]
    new = dict(old, metrics={**old["metrics"], "t2v/R@1_optimistic": 50.0})
    (path / "meta.json").write_text(json.dumps(new))
    assert bundle_status(path).state == "fresh"
    (path / "meta.json").write_text(json.dumps(meta))
    (path / "sources.json").write_text('{"videos": 3}')
    state, reasons = bundle_status(path)
    assert state == "missing" and "sources.json" in reasons[0]  # its size changed too

    (path / "meta.json").unlink()
    assert "meta.json is missing" in bundle_status(path).reasons[0]


def test_tokenizer_and_encoder_changes_make_the_bundle_stale(runs, tmp_path):
    run = shutil.copytree(runs / "base", tmp_path / "base")
    path = bdir(tmp_path, "base")
    assert bundle_status(path).state == "fresh"
    tok = run / "tokenizer" / "tokenizer_config.json"
    original = tok.read_text()
    tok.write_text(original.replace("}", ', "model_max_length": 7}', 1))
    state, reasons = bundle_status(path)
    assert state == "stale" and any(str(run / "tokenizer") in r for r in reasons)
    tok.write_text(original)
    assert bundle_status(path).state == "fresh"
    enc = run / "encoder.json"
    enc.write_text(enc.read_text() + "\n")
    state, reasons = bundle_status(path)
    assert state == "stale" and any(str(enc) in r for r in reasons)


@pytest.mark.parametrize("name", ["similarity.npy", "embeddings.safetensors", "ranks.npz"])
def test_truncated_bundle_file_is_not_fresh_and_is_named(runs, tmp_path, name):
    shutil.copytree(runs / "base", tmp_path / "base")
    path = bdir(tmp_path, "base")
    target = path / name
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    state, reasons = bundle_status(path)
    assert state == "missing" and str(target) in reasons[0] and "truncated" in reasons[0]
    for check in (True, False):
        with pytest.raises(BundleError, match=name):
            Bundle.load(path, check=check)


@pytest.mark.parametrize(("name", "attr"), [("embeddings.safetensors", "text_pooled"),
                                            ("similarity.npy", "sim"), ("ranks.npz", "ranks")])
def test_corrupt_bundle_file_read_error_names_the_file(runs, tmp_path, name, attr):
    shutil.copytree(runs / "base", tmp_path / "base")
    path = bdir(tmp_path, "base")
    b = Bundle.load(path)
    target = path / name
    size = target.stat().st_size
    target.write_bytes(b"\0" * size)  # same size, garbage: only the reader can tell
    with pytest.raises(BundleError) as exc:
        getattr(b, attr)
    assert str(target) in str(exc.value)


def test_resident_bytes_grow_with_loaded_arrays_not_with_memory_maps(runs):
    """What the app's byte-bounded bundle cache charges a bundle."""
    b = Bundle.load(bdir(runs, "drgi"))
    start = b.resident_bytes()
    assert start > sum(len(c) for c in b.captions)  # captions, labels, ids are in memory
    _ = b.sim[0, :3], b.text_tokens[1], b.video_tokens[2]  # memory maps: nothing more
    assert b.resident_bytes() - start < 1000  # only the cached attribute names
    ranks = b.ranks  # read from ranks.npz into memory
    assert b.resident_bytes() - start >= ranks.t2v.nbytes + ranks.v2t.nbytes


def test_resident_bytes_are_measured_once_per_part_not_per_call(runs, monkeypatch):
    """The app's cache asks on every rerun: the bundle walks its eager attributes once, at
    load, and each lazy attribute once, when it loads; asking again walks nothing."""
    from analysis.bundle import memory

    walked: list[type] = []
    walk = memory.resident_bytes

    def counting(obj):
        walked.append(type(obj))
        return walk(obj)

    monkeypatch.setattr(memory, "resident_bytes", counting)
    b = Bundle.load(bdir(runs, "drgi"))
    assert walked == [dict]  # the eager attributes
    eager = b.resident_bytes()
    for _ in range(3):
        assert b.resident_bytes() == eager
    assert walked == [dict]
    ranks = b.ranks
    assert walked == [dict, type(ranks)]  # only the part that loaded
    assert b.resident_bytes() == eager + walk(ranks)
    _ = b.ranks, b.resident_bytes()
    assert len(walked) == 2
    monkeypatch.setattr(memory, "resident_bytes", walk)
    fresh = Bundle.load(bdir(runs, "drgi"))  # the ledger agrees with one walk of everything
    _ = fresh.ranks, fresh.projections, fresh.sim
    ledger = fresh.__dict__.pop(memory.LEDGER)
    assert abs(sum(ledger.values()) - walk(vars(fresh))) < 1000


def test_disk_bytes_add_up_the_files_and_strips(runs):
    b = Bundle.load(bdir(runs, "base"))
    disk = b.disk_bytes()
    on_disk = sum(p.stat().st_size for p in b.path.rglob("*") if p.is_file())
    meta_size = (b.path / "meta.json").stat().st_size  # meta.json does not list itself
    assert disk["total"] == on_disk - meta_size
    assert disk["similarity"] == b.sim.nbytes + 128 and disk["thumbs"] > 0


def test_release_mapped_pages_unmaps_what_was_read_and_keeps_the_data(runs):
    b = Bundle.load(bdir(runs, "drgi"))
    assert b.release_mapped_pages() == 0  # nothing mapped yet
    sim = np.asarray(b.sim).copy()
    row = np.asarray(b.text_tokens[1]).copy()
    _ = b.drgi.text_attention[0]
    assert b.release_mapped_pages() >= 3  # sim, text_tokens, the DRGI attention
    np.testing.assert_array_equal(np.asarray(b.sim), sim)  # read again from the page cache
    np.testing.assert_array_equal(np.asarray(b.text_tokens[1]), row)
