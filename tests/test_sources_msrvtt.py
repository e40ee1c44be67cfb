"""MSR-VTT and SynthVTT sources on tiny annotation files in the real formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvr import registry
from tvr.data.records import MissingVideosError, SourceError
from tvr.data.sources import SourceOptionError, load_split, msrvtt, synthvtt

# video id -> (official split, captions); caption counts deliberately vary (never 20)
VIDEOS: dict[str, tuple[str, list[str]]] = {
    "video0": ("train", ["a man cooks", "someone is cooking pasta", "a chef in a kitchen"]),
    "video1": ("train", ["a dog runs", "a puppy plays"]),
    "video2": ("validate", ["a car drives by"]),
    "video3": ("test", ["a girl sings", "a woman sings on stage"]),
    "video4": ("test", ["people dance"]),
    "video5": ("test", ["a cat sleeps", "a kitten naps", "a cat on a sofa", "a sleepy cat"]),
}


def write_msrvtt(root: Path, *, layout: str = "videos/all", with_files: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    videos = [
        {
            "id": i,
            "video_id": vid,
            "category": 0,
            "url": "https://example.invalid",
            "start time": 1.0,
            "end time": 11.0,
            "split": split,
        }
        for i, (vid, (split, _)) in enumerate(VIDEOS.items())
    ]
    # interleave sentences of different videos, as the real file does not group them
    sentences = []
    caps = {vid: list(c) for vid, (_, c) in VIDEOS.items()}
    sen_id = 0
    while any(caps.values()):
        for vid in VIDEOS:
            if caps[vid]:
                sentences.append({"sen_id": sen_id, "video_id": vid, "caption": caps[vid].pop(0)})
                sen_id += 1
    (root / "MSRVTT_data.json").write_text(
        json.dumps({"info": {}, "videos": videos, "sentences": sentences})
    )
    (root / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo2\nvideo4\n")
    (root / "MSRVTT_train.7k.csv").write_text("video_id\nvideo0\nvideo1\nvideo2\n")
    (root / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\n"
        "ret0,msr5,video5,a cat sleeps\n"
        'ret1,msr3,video3,"a girl sings, loudly"\n'
    )
    if with_files:
        vdir = root / layout
        vdir.mkdir(parents=True, exist_ok=True)
        for vid in VIDEOS:
            (vdir / f"{vid}.mp4").write_bytes(b"")
    return root


def test_train_9k_keeps_every_caption_in_json_order(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    recs = msrvtt.load(root, "train")
    assert [r.video_id for r in recs] == ["video0", "video1", "video2", "video4"]
    assert recs[0].captions == tuple(VIDEOS["video0"][1])
    assert [len(r.captions) for r in recs] == [3, 2, 1, 1]
    assert recs[0].video_path == root / "videos" / "all" / "video0.mp4"
    assert recs[0].start is None and recs[0].end is None


def test_train_7k_list(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    recs = msrvtt.load(root, "train", train_list="7k")
    assert [r.video_id for r in recs] == ["video0", "video1", "video2"]
    assert sum(len(r.captions) for r in recs) == 6


def test_test_split_is_jsfusion_csv_in_file_order(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    recs = load_split("msrvtt", str(root), "test")
    assert [r.video_id for r in recs] == ["video5", "video3"]  # file order, not sorted
    assert [r.captions for r in recs] == [("a cat sleeps",), ("a girl sings, loudly",)]


def test_flat_video_layout_and_webm_fallback(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt", layout="videos")
    (root / "videos" / "video1.mp4").unlink()
    (root / "videos" / "video1.webm").write_bytes(b"")
    recs = {r.video_id: r for r in msrvtt.load(root, "train")}
    assert recs["video0"].video_path == root / "videos" / "video0.mp4"
    assert recs["video1"].video_path == root / "videos" / "video1.webm"


def test_full_protocol_uses_json_split_field(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    train = msrvtt.load(root, "train", protocol="full")
    val = msrvtt.load(root, "val", protocol="full")
    test = msrvtt.load(root, "test", protocol="full")
    assert [r.video_id for r in train] == ["video0", "video1"]
    assert [r.video_id for r in val] == ["video2"]
    assert [r.video_id for r in test] == ["video3", "video4", "video5"]
    assert test[2].captions == tuple(VIDEOS["video5"][1])  # multi-caption test


def test_unknown_split_and_options(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    with pytest.raises(SourceOptionError, match=r"unknown split 'val'.*'train', 'test'"):
        msrvtt.load(root, "val")
    with pytest.raises(SourceOptionError, match=r"'trainlist'.*valid options: .*train_list"):
        msrvtt.load(root, "train", trainlist="7k")
    with pytest.raises(SourceOptionError, match=r"'train_list' must be one of '9k', '7k'"):
        msrvtt.load(root, "train", train_list="8k")
    with pytest.raises(SourceOptionError, match="protocol '1k-A' only"):
        msrvtt.load(root, "train", protocol="full", train_list="9k")
    with pytest.raises(SourceOptionError, match="'check_videos' must be bool"):
        msrvtt.load(root, "train", check_videos="yes")


def test_listed_video_without_caption_names_csv_line(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    (root / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo99\n")
    with pytest.raises(SourceError) as err:
        msrvtt.load(root, "train")
    assert err.value.path == root / "MSRVTT_train.9k.csv"
    assert err.value.where == "line 3"
    assert "video99" in str(err.value)


def test_duplicate_id_in_train_list(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    (root / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo0\n")
    with pytest.raises(
        SourceError, match=r"line 4\).*duplicate video id 'video0' \(first on line 2"
    ):
        msrvtt.load(root, "train")


def test_test_csv_missing_column_and_wrong_field_count(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    csv_path = root / "MSRVTT_JSFUSION_test.csv"
    csv_path.write_text("key,vid_key,video_id,text\nret0,msr5,video5,a cat\n")
    with pytest.raises(SourceError) as err:
        msrvtt.load(root, "test")
    assert err.value.path == csv_path and err.value.where == "line 1"
    assert "missing column(s) 'sentence'" in str(err.value)

    csv_path.write_text("key,vid_key,video_id,sentence\nret0,msr5,video5,a cat\nret1,video3\n")
    with pytest.raises(SourceError) as err:
        msrvtt.load(root, "test")
    assert err.value.where == "line 3" and "expected 4 fields" in str(err.value)


def test_test_csv_duplicate_video(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    (root / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\nret0,msr5,video5,a\nret1,msr5,video5,b\n"
    )
    with pytest.raises(SourceError, match=r"line 3.*duplicate video id 'video5'"):
        msrvtt.load(root, "test")


def test_bad_json_names_line_and_key(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    json_path = root / "MSRVTT_data.json"
    json_path.write_text('{"sentences": [\n  {"video_id": "video0", "caption": "x"},\n  oops\n]}')
    with pytest.raises(SourceError) as err:
        msrvtt.load(root, "train")
    assert err.value.path == json_path and err.value.where.startswith("line 3, column 3")

    json_path.write_text(
        json.dumps({"sentences": [{"video_id": "video0", "caption": "x"}, {"video_id": "video1"}]})
    )
    with pytest.raises(SourceError) as err:
        msrvtt.load(root, "train")
    assert err.value.where == "key sentences[1].caption"

    json_path.write_text(json.dumps({"sentences": [{"video_id": "video0", "caption": 3}]}))
    with pytest.raises(SourceError, match=r"key sentences\[0\].caption.*got the number 3"):
        msrvtt.load(root, "train")

    json_path.write_text(json.dumps({"videos": []}))
    with pytest.raises(SourceError, match=r"key sentences\): missing"):
        msrvtt.load(root, "train")


def test_full_protocol_bad_split_value(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    json_path = root / "MSRVTT_data.json"
    data = json.loads(json_path.read_text())
    data["videos"][4]["split"] = "testing"
    json_path.write_text(json.dumps(data))
    with pytest.raises(SourceError) as err:
        msrvtt.load(root, "test", protocol="full")
    assert err.value.where == "key videos[4].split" and "'testing'" in str(err.value)


def test_missing_files(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    (root / "MSRVTT_train.7k.csv").unlink()
    with pytest.raises(
        SourceError, match=r"MSRVTT_train\.7k\.csv: MSR-VTT training list not found"
    ):
        msrvtt.load(root, "train", train_list="7k")
    with pytest.raises(SourceError, match="dataset root folder"):
        msrvtt.load(tmp_path / "nowhere", "train")


def test_empty_split(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    (root / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\n")
    with pytest.raises(SourceError, match="split 'test' of source 'msrvtt' has no videos"):
        msrvtt.load(root, "test")


def test_check_and_skip_missing_videos(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt")
    for vid in ("video1", "video4"):
        (root / "videos" / "all" / f"{vid}.mp4").unlink()
    assert len(msrvtt.load(root, "train")) == 4  # no existence check by default
    with pytest.raises(MissingVideosError) as err:
        msrvtt.load(root, "train", check_videos=True)
    assert [p.name for p in err.value.missing] == ["video1.mp4", "video4.mp4"]
    kept = msrvtt.load(root, "train", skip_missing_videos=True)
    assert [r.video_id for r in kept] == ["video0", "video2"]
    with pytest.raises(SourceOptionError, match="exclude each other"):
        msrvtt.load(root, "train", check_videos=True, skip_missing_videos=True)


def test_video_dir_override(tmp_path: Path) -> None:
    root = write_msrvtt(tmp_path / "msrvtt", with_files=False)
    recs = msrvtt.load(root, "test", video_dir="clips")
    assert recs[0].video_path == root / "clips" / "video5.mp4"
    elsewhere = tmp_path / "elsewhere"
    recs = msrvtt.load(root, "test", video_dir=str(elsewhere))
    assert recs[0].video_path == elsewhere / "video5.mp4"


# ---------------------------------------------------------------- SynthVTT (MSR-VTT layout)


def write_synthvtt(root: Path) -> Path:
    root.mkdir(parents=True)
    sentences = [
        {"sen_id": k, "video_id": f"video{v}", "caption": f"caption {k} of video {v}"}
        for k, v in enumerate([0, 0, 1, 1, 0, 2, 3])
    ]
    (root / "MSRVTT_data.json").write_text(json.dumps({"videos": [], "sentences": sentences}))
    (root / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\n")
    (root / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\nret0,msr3,video3,caption 6 of video 3\n"
    )
    (root / "val.csv").write_text("key,vid_key,video_id,sentence\nret0,msr2,video2,a red circle\n")
    (root / "videos").mkdir()
    for v in range(4):
        (root / "videos" / f"video{v}.mp4").write_bytes(b"")
    return root


def test_synthvtt_splits(tmp_path: Path) -> None:
    root = write_synthvtt(tmp_path / "synthvtt")
    train = registry.get("source", "synthvtt")(root, "train")
    assert [r.video_id for r in train] == ["video0", "video1"]
    assert train[0].captions == (
        "caption 0 of video 0",
        "caption 1 of video 0",
        "caption 4 of video 0",
    )
    assert train[0].video_path == root / "videos" / "video0.mp4"
    val = load_split("synthvtt", root, "val", check_videos=True)
    assert [(r.video_id, r.captions) for r in val] == [("video2", ("a red circle",))]
    test = synthvtt.load(root, "test")
    assert [r.video_id for r in test] == ["video3"]


def test_synthvtt_bad_input(tmp_path: Path) -> None:
    root = write_synthvtt(tmp_path / "synthvtt")
    (root / "val.csv").write_text("key,vid_key,video_id,sentence\nret0,msr2,video2,\n")
    with pytest.raises(SourceError) as err:
        synthvtt.load(root, "val")
    assert err.value.path == root / "val.csv" and err.value.where == "line 2"
    with pytest.raises(SourceOptionError, match=r"unknown split 'dev'.*'train', 'val', 'test'"):
        synthvtt.load(root, "dev")
    with pytest.raises(SourceOptionError, match="unknown option"):
        synthvtt.load(root, "train", train_list="7k")
