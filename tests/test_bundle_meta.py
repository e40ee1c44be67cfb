"""meta.json as a typed, versioned BundleMeta (analysis/bundle/meta.py) and the BundleWriter
(analysis/bundle/writer.py): round trips, errors naming the file and field, old versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis.bundle import (
    BUNDLE_FORMAT,
    Bundle,
    BundleError,
    BundleMeta,
    BundleMetaError,
    BundleWriter,
    ExportParams,
    RunRef,
    SkippedVideo,
    ThumbIndex,
    bundle_dir_for,
    bundle_status,
    meta_dict,
    read_meta,
)

REPO = Path(__file__).resolve().parents[1]
# meta.json of the demo bundles as the export wrote them before BundleMeta existed (format 2,
# 2026-12-07; absolute paths replaced), plus any demo bundle exported in this checkout
OLDER_METAS = sorted((REPO / "tests" / "fixtures" / "bundle_meta").glob("*.json")) + sorted(
    REPO.glob("checkpoints/demo-*/analysis/*/meta.json"))


def _bundles(pair) -> list[Path]:
    return [bundle_dir_for(run, pair.dataset, pair.split) for run in (pair.base, pair.drgi)]


def _raw(bundle: Path) -> dict:
    return json.loads((bundle / "meta.json").read_text())


def _write(bundle: Path, meta: dict) -> None:
    (bundle / "meta.json").write_text(json.dumps(meta, indent=2))


# ------------------------------------------------------------------------------ round trips


def test_exported_meta_round_trips_exactly(tiny_run_pair):
    for bundle in _bundles(tiny_run_pair):
        text = (bundle / "meta.json").read_text()
        raw = json.loads(text)
        meta = BundleMeta.from_json(raw, bundle / "meta.json")
        assert meta.to_json() == raw and list(meta.to_json()) == list(raw)  # same key order
        assert json.dumps(meta.to_json(), indent=2) + "\n" == text  # the file's very bytes
        assert read_meta(bundle) == meta and meta.format == BUNDLE_FORMAT
    base, drgi = (read_meta(b) for b in _bundles(tiny_run_pair))
    assert base.drgi is None and not base.has_drgi
    assert drgi.drgi is not None and drgi.drgi.heads >= 1 and drgi.has_drgi
    assert drgi.projections is not None and set(drgi.projections.methods) == {"pca"}
    assert drgi.thumb_index.path == "thumbs/{video}.jpg"
    assert drgi.export_params is not None and drgi.export_params.amp == "off"


@pytest.mark.parametrize("path", OLDER_METAS, ids=lambda p: str(p.relative_to(REPO)))
def test_demo_bundle_meta_round_trips_exactly(path):
    raw = json.loads(path.read_text())
    assert BundleMeta.from_json(raw, path).to_json() == raw


def test_bundle_reads_the_typed_meta(tiny_run_pair):
    bundle = _bundles(tiny_run_pair)[1]
    b = Bundle.load(bundle)
    assert b.info == read_meta(bundle) and b.meta == _raw(bundle)
    assert (b.run_name, b.head, b.num_texts) == (b.info.run.name, b.info.head, b.info.num_texts)
    assert b.thumb_size == b.info.thumb_index.frame_width
    assert b.thumb_counts.tolist() == b.info.thumb_index.counts


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("change", "field", "expected"), [
    (lambda m: m.pop("num_texts"), "num_texts", "missing"),
    (lambda m: m.update(num_videos="8"), "num_videos", "expected an integer"),
    (lambda m: m.update(factorized=1), "factorized", "expected true or false"),
    (lambda m: m["run"].pop("name"), "run.name", "missing"),
    (lambda m: m["thumb_index"].update(counts=[4, "x"]), "thumb_index.counts", "integers"),
    (lambda m: m.update(metrics={"t2v/R@1": "high"}), "metrics", "numbers"),
    (lambda m: m["export_params"].update(seed=0.5), "export_params.seed", "integer"),
    (lambda m: m.update(skipped=[{"video_id": "v1"}]), "skipped[0].reason", "missing"),
])
def test_bad_field_names_the_file_and_the_field(tiny_run_pair, tmp_path, change, field, expected):
    raw = _raw(_bundles(tiny_run_pair)[0])
    change(raw)
    path = tmp_path / "meta.json"
    with pytest.raises(BundleMetaError) as err:
        BundleMeta.from_json(raw, path)
    message = str(err.value)
    assert str(path) in message and repr(field) in message and expected in message


def test_other_format_is_refused_with_the_reexport_command(tiny_run_pair, tmp_path):
    run = shutil.copytree(tiny_run_pair.base, tmp_path / "base")
    bundle = bundle_dir_for(run, tiny_run_pair.dataset, tiny_run_pair.split)
    _write(bundle, dict(_raw(bundle), format=1))
    assert bundle_status(bundle).state == "stale"
    for load in (lambda: Bundle.load(bundle, allow_stale=True),
                 lambda: Bundle.load(bundle, check=False), lambda: read_meta(bundle)):
        with pytest.raises(BundleMetaError) as err:
            load()
        assert "bundle format 1, this code reads format 2" in str(err.value)
        assert f"re-export with: python -m analysis.export --run {run} --force" in str(err.value)
    assert meta_dict(bundle)["format"] == 1  # still readable as plain JSON (for display)


def test_malformed_meta_makes_the_bundle_missing(tiny_run_pair, tmp_path):
    run = shutil.copytree(tiny_run_pair.base, tmp_path / "base")
    bundle = bundle_dir_for(run, tiny_run_pair.dataset, tiny_run_pair.split)
    raw = _raw(bundle)
    raw["thumb_index"]["frame_width"] = "64px"
    _write(bundle, raw)
    state, reasons = bundle_status(bundle)
    assert state == "missing" and "thumb_index.frame_width" in reasons[0]
    with pytest.raises(BundleError, match="thumb_index.frame_width"):
        Bundle.load(bundle)


def test_older_format_2_meta_still_loads(tiny_run_pair, tmp_path):
    """Keys added within format 2 (skipped reasons, split sizes, amp, the projection point
    budget) are optional on read and stay absent on write."""
    run = shutil.copytree(tiny_run_pair.base, tmp_path / "base")
    bundle = bundle_dir_for(run, tiny_run_pair.dataset, tiny_run_pair.split)
    raw = _raw(bundle)
    for key in ("skipped", "split_num_texts", "split_num_videos", "data_root_abs"):
        raw.pop(key)
    raw["skipped_videos"] = ["video9"]
    raw["export_params"].pop("amp")
    raw["export_params"].pop("projection_budget")
    raw["projections"].pop("budget")
    _write(bundle, raw)
    meta = read_meta(bundle)
    assert meta.to_json() == raw
    assert meta.skipped is None and meta.export_params is not None
    assert meta.export_params.amp is None and meta.export_params.projection_budget is None
    assert meta.projections.budget is None and not meta.projections.sampled
    (skipped,) = meta.skipped_list
    assert skipped.video_id == "video9" and skipped.num_captions == -1
    assert "not recorded" in skipped.reason
    b = Bundle.load(bundle, check=False)
    assert b.split_num_videos == b.num_videos + 1 and b.skipped == [skipped]


# ------------------------------------------------------------------------------ the writer


def _tiny_meta(files: dict[str, int]) -> BundleMeta:
    return BundleMeta(
        run=RunRef("r", "/x/r"), dataset="d", split="test", head="meanp", factorized=True,
        has_drgi=False, num_texts=2, num_videos=2, num_frames=1, max_words=4, embed_dim=3,
        metrics={"t2v/R@1": 50.0}, thumb_index=ThumbIndex.jpeg_strips(8, [1, 1]), files=files,
        skipped=[SkippedVideo("v3", "videos/v3.mp4", "cannot decode", 1)],
        export_params=ExportParams(["pca"], 16, 64, 8, 85, 0, "cpu", 1, "off"),
    )


def test_writer_publishes_atomically_and_meta_round_trips(tmp_path):
    final = tmp_path / "run" / "analysis" / "d-test"
    writer = BundleWriter(final)
    assert writer.path.parent == final.parent and writer.path.name.startswith(".tmp-d-test-p")
    writer.write_similarity(np.eye(2, dtype=np.float32))
    writer.write_thumbnails([b"\xff\xd8a", b"\xff\xd8b"])
    sizes = writer.file_sizes()
    assert sizes == {"similarity.npy": (final.parent / writer.path.name / "similarity.npy")
                     .stat().st_size, "thumbs": 2}
    meta = _tiny_meta(sizes)
    writer.write_meta(meta)
    assert not final.exists()  # nothing visible before publish
    assert writer.publish() == final
    assert read_meta(final) == meta and not writer.path.exists()
    assert sorted(p.name for p in final.parent.iterdir()) == ["d-test"]
    assert (final / "thumbs" / "1.jpg").read_bytes() == b"\xff\xd8b"

    failed = BundleWriter(final)  # a failed rewrite leaves the published bundle as it was
    failed.write_similarity(np.zeros((2, 2), dtype=np.float32))
    failed.discard()
    assert sorted(p.name for p in final.parent.iterdir()) == ["d-test"]
    assert read_meta(final) == meta
