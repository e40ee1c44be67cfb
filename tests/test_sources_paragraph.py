"""Paragraph-to-video sources: ActivityNet Captions and DiDeMo."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tvr.data.records import MissingVideosError, SourceError
from tvr.data.sources import activitynet, didemo, load_split

# ------------------------------------------------------------------------ ActivityNet

ANET_TRAIN = {
    "v_QOlSCBRmfWY": {
        "duration": 82.73,
        "timestamps": [[0.83, 19.86], [17.37, 60.81], [56.26, 79.42]],
        "sentences": [
            " A young woman is seen standing in a room.",
            " She begins to dance.  ",
            "She stops and bows. ",
        ],
    },
    "v_ehGHCYKzyZ8": {
        "duration": 61,
        "timestamps": [[0, 61]],
        "sentences": ["A man plays drums."],
    },
}
ANET_VAL1 = {
    "v_uqiMw7tQ1Cc": {"duration": 55.2, "timestamps": [[0, 20]], "sentences": ["A dog runs."]},
    "v_a-b_c": {"duration": "10.0", "timestamps": [[1, 2]], "sentences": ["x", "y"]},
}


def write_anet(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "train_ids.json").write_text(json.dumps(["v_ehGHCYKzyZ8", "v_QOlSCBRmfWY"]))
    # val_ids covers val_1 and val_2: the val_2-only id has no entry in val_1.json
    (root / "val_ids.json").write_text(json.dumps(["v_uqiMw7tQ1Cc", "v_onlyInVal2", "v_a-b_c"]))
    (root / "train.json").write_text(json.dumps(ANET_TRAIN))
    (root / "val_1.json").write_text(json.dumps(ANET_VAL1))
    (root / "videos").mkdir()
    (root / "videos" / "QOlSCBRmfWY.mp4").write_bytes(b"")
    (root / "videos" / "ehGHCYKzyZ8.mkv").write_bytes(b"")
    (root / "videos" / "uqiMw7tQ1Cc.webm").write_bytes(b"")
    return root


def test_activitynet_paragraphs_and_windows(tmp_path: Path) -> None:
    root = write_anet(tmp_path / "anet")
    train = activitynet.load(root, "train")
    assert [r.video_id for r in train] == ["v_ehGHCYKzyZ8", "v_QOlSCBRmfWY"]  # id-list order
    rec = train[1]
    assert rec.captions == (
        "A young woman is seen standing in a room. She begins to dance. She stops and bows.",
    )
    assert (rec.start, rec.end) == (0.0, 83.0)  # [0, ceil(82.73)]
    assert (train[0].start, train[0].end) == (0.0, 61.0)
    assert rec.video_path == root / "videos" / "QOlSCBRmfWY.mp4"  # "v_" stripped
    assert train[0].video_path == root / "videos" / "ehGHCYKzyZ8.mkv"


def test_activitynet_test_is_val1(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_anet(tmp_path / "anet")
    with caplog.at_level(logging.INFO, logger="tvr.data.sources"):
        test = load_split("activitynet", root, "test")
    assert [r.video_id for r in test] == ["v_uqiMw7tQ1Cc", "v_a-b_c"]
    assert test[0].video_path.name == "uqiMw7tQ1Cc.webm"
    assert test[1].video_path.name == "a-b_c.mp4"  # default extension when absent
    assert test[1].captions == ("x y",) and test[1].end == 10.0
    assert "1 of 3 listed videos have no entry in val_1.json" in caplog.text
    assert "activitynet/test: 2 videos, 2 captions" in caplog.text
    kept = activitynet.load(root, "test", skip_missing_videos=True)
    assert [r.video_id for r in kept] == ["v_uqiMw7tQ1Cc"]
    with pytest.raises(MissingVideosError, match="1 of 2 video files are missing"):
        activitynet.load(root, "test", check_videos=True)


def test_activitynet_caption_for_unlisted_video(tmp_path: Path) -> None:
    root = write_anet(tmp_path / "anet")
    (root / "train_ids.json").write_text(json.dumps(["v_QOlSCBRmfWY"]))
    with pytest.raises(SourceError) as err:
        activitynet.load(root, "train")
    assert err.value.path == root / "train.json"
    assert err.value.where == "key v_ehGHCYKzyZ8"
    assert "not in the split's video list" in str(err.value)


@pytest.mark.parametrize(
    ("patch", "where", "problem"),
    [
        ({"duration": "long"}, "key v_ehGHCYKzyZ8.duration", "'long'"),
        ({"duration": 0}, "key v_ehGHCYKzyZ8.duration", "positive duration"),
        ({"sentences": []}, "key v_ehGHCYKzyZ8.sentences", "at least one sentence"),
        ({"sentences": ["ok", None]}, "key v_ehGHCYKzyZ8.sentences[1]", "got null"),
        ({"timestamps": [[0, "x"]]}, "key v_ehGHCYKzyZ8.timestamps[0][1]", "'x'"),
        ({"timestamps": [[0, 1, 2]]}, "key v_ehGHCYKzyZ8.timestamps[0]", "[start, end]"),
    ],
)
def test_activitynet_bad_entries(tmp_path: Path, patch: dict, where: str, problem: str) -> None:
    root = write_anet(tmp_path / "anet")
    data = json.loads(json.dumps(ANET_TRAIN))
    data["v_ehGHCYKzyZ8"].update(patch)
    (root / "train.json").write_text(json.dumps(data))
    with pytest.raises(SourceError) as err:
        activitynet.load(root, "train")
    assert err.value.path == root / "train.json" and err.value.where == where
    assert problem in err.value.problem


def test_activitynet_bad_files(tmp_path: Path) -> None:
    root = write_anet(tmp_path / "anet")
    (root / "val_ids.json").write_text('["v_uqiMw7tQ1Cc",\n 42]')
    with pytest.raises(SourceError, match=r"val_ids\.json \(key \[1\]\): expected a video id"):
        activitynet.load(root, "test")
    (root / "val_ids.json").write_text("[]")
    with pytest.raises(SourceError, match="id list is empty"):
        activitynet.load(root, "test")
    (root / "val_1.json").write_text("{")
    (root / "val_ids.json").write_text('["v_uqiMw7tQ1Cc"]')
    with pytest.raises(SourceError, match=r"val_1\.json \(line 1, column 2\): invalid JSON"):
        activitynet.load(root, "test")
    (root / "train_ids.json").unlink()
    with pytest.raises(SourceError, match=r"train_ids\.json: ActivityNet id list not found"):
        activitynet.load(root, "train")


# ------------------------------------------------------------------------ DiDeMo


def didemo_entry(video: str, description: str, times: list | None = None) -> dict:
    return {
        "video": video,
        "description": description,
        "times": times if times is not None else [[0, 0], [0, 1], [0, 0], [1, 1]],
        "annotation_id": 1,
    }


def write_didemo(root: Path) -> Path:
    root.mkdir(parents=True)
    a, b, c = (
        "10015567@N08_3655084291_d8b58466fa.mov",
        "4026@N00_2340532048_d7d0a8a0c1.mp4",
        "99@N00_1_abc.m4v",
    )
    (root / "train_list.txt").write_text(f"{a}\n{b}\n")
    (root / "train_data.json").write_text(
        json.dumps(
            [
                didemo_entry(a, "a dog jumps "),
                didemo_entry(b, "the camera pans left"),
                didemo_entry(a, " the dog lands"),
                didemo_entry(a, "first time we see the ball"),
            ]
        )
    )
    (root / "val_list.txt").write_text(f"{c}\n")
    (root / "val_data.json").write_text(json.dumps([didemo_entry(c, "a car")]))
    # test: one listed video without descriptions, one description of an unlisted video
    (root / "test_list.txt").write_text(f"{b}\nnot_described.mp4\n")
    (root / "test_data.json").write_text(
        json.dumps(
            [
                didemo_entry(b, "a man talks"),
                didemo_entry("unlisted.mp4", "a woman"),
            ]
        )
    )
    return root


def test_didemo_paragraph_mode(tmp_path: Path) -> None:
    root = write_didemo(tmp_path / "didemo")
    train = didemo.load(root, "train")
    assert [r.video_id for r in train] == [
        "10015567@N08_3655084291_d8b58466fa.mov",
        "4026@N00_2340532048_d7d0a8a0c1.mp4",
    ]
    assert train[0].captions == ("a dog jumps the dog lands first time we see the ball",)
    assert (train[0].start, train[0].end) == (0.0, 31.0)
    assert train[0].video_path == root / "videos" / "10015567@N08_3655084291_d8b58466fa.mov"
    assert len(didemo.load(root, "val")) == 1


def test_didemo_keeps_list_and_json_intersection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_didemo(tmp_path / "didemo")
    with caplog.at_level(logging.WARNING, logger="tvr.data.sources.didemo"):
        test = load_split("didemo", root, "test")
    assert [r.video_id for r in test] == ["4026@N00_2340532048_d7d0a8a0c1.mp4"]
    assert "1 of 2 listed videos have no description" in caplog.text
    assert "descriptions of 1 videos not in test_list.txt are ignored" in caplog.text


def test_didemo_bad_input(tmp_path: Path) -> None:
    root = write_didemo(tmp_path / "didemo")
    json_path = root / "val_data.json"
    json_path.write_text(json.dumps([didemo_entry("99@N00_1_abc.m4v", "a car", [[0, "end"]])]))
    with pytest.raises(SourceError) as err:
        didemo.load(root, "val")
    assert err.value.path == json_path and err.value.where == "key [0].times[0][1]"
    assert "'end'" in err.value.problem

    json_path.write_text(json.dumps([{"video": "99@N00_1_abc.m4v", "times": []}]))
    with pytest.raises(SourceError, match=r"key \[0\]\.description\): missing"):
        didemo.load(root, "val")

    json_path.write_text(json.dumps({"video": "x"}))
    with pytest.raises(SourceError, match=r"val_data\.json \(top level\): expected a list"):
        didemo.load(root, "val")

    json_path.write_text(json.dumps([didemo_entry("other.mp4", "a car")]))
    with pytest.raises(SourceError, match="the split is empty"):
        didemo.load(root, "val")

    (root / "val_list.txt").write_text("99@N00_1_abc.m4v extra\n")
    with pytest.raises(SourceError, match=r"val_list\.txt \(line 1\): expected one video id"):
        didemo.load(root, "val")
