"""Tests for tvr.data.synthvtt.reader (and the typed meta of tvr.data.synthvtt.meta): the one
reader of synthvtt_meta.json round-trips what the generator writes, names the file and field of
every format error, and aligns the meta with a split's rows."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tvr.data.synthvtt as sv
from tvr.data.records import SourceError


@pytest.fixture(scope="module")
def raw(tiny_synthvtt: Path) -> dict[str, Any]:
    return json.loads((tiny_synthvtt / sv.META_FILE).read_text(encoding="utf-8"))


def test_reader_round_trips_the_file_byte_for_byte(tiny_synthvtt: Path) -> None:
    text = (tiny_synthvtt / sv.META_FILE).read_text(encoding="utf-8")
    meta = sv.read_meta(tiny_synthvtt)
    again = json.dumps(meta.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n"
    assert again == text
    assert sv.load_meta(tiny_synthvtt) == json.loads(text)


def test_typed_meta_holds_the_file(tiny_synthvtt: Path, raw: dict[str, Any]) -> None:
    meta = sv.read_meta(tiny_synthvtt)
    assert meta.params == sv.GenerationParams(3, 16, 6, 8, 32, 8, False)
    assert meta.params.families == sv.FAMILY_SIZE and meta.params.videos_in("val") == 6
    assert list(meta.videos) == list(raw["videos"])
    assert list(meta.captions) == [int(k) for k in raw["captions"]]
    vid, entry = next(iter(raw["videos"].items()))
    v = meta.videos[vid]
    assert v.video_id == vid and v.family == entry["family"] and v.edit.type == entry["edit"]["type"]
    assert v.event_types == tuple((e["colour"], e["shape"], e["action"]) for e in entry["events"])
    assert [e.start_frame for e in v.events] == [e["start_frame"] for e in entry["events"]]
    assert v.events[0].label == " ".join(v.event_types[0])
    sid, c_entry = next(iter(raw["captions"].items()))
    c = meta.captions[int(sid)]
    assert c.sen_id == int(sid) and c.relevant == tuple(c_entry["relevant"])
    assert meta.mentioned(c) == [meta.videos[c.video_id].events[i] for i in c_entry["events"]]
    # frames render the same from the typed video and from its JSON entry
    assert sv.frame_states(v) == sv.frame_states(entry)
    assert np.array_equal(sv.render_video(v, 32), sv.render_video(entry, 32))


def _set(obj: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    if value is _DELETE:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("generator",), "other", r"\(generator\): expected 'synthvtt'"),
        (("params", "fps"), 0, r"\(params\.fps\): expected an integer in \[1, 120\], got 0"),
        (("params", "size"), 34.0, r"\(params\.size\): expected an integer"),
        (("params", "background_captions"), 1, r"\(params\.background_captions\): .*boolean"),
        (("params", "family_size"), [5, 3], r"\(params\.family_size\): .*lo <= hi"),
        (("params", "n_test"), 9, r"\(videos\): params\.n_test is 9 but 8 videos"),
        (("videos", "video0", "events"), [], r"\(videos\.video0\.events\): expected a non-empty"),
        (("videos", "video0", "events", 0, "colour"), _DELETE,
         r"\(videos\.video0\.events\[0\]\.colour\): missing key"),
        (("videos", "video0", "events", 0, "shape"), "hexagon",
         r"\(videos\.video0\.events\[0\]\.shape\): expected one of .*'hexagon'"),
        (("videos", "video0", "events", 0, "x"), "0.5",
         r"\(videos\.video0\.events\[0\]\.x\): expected a number"),
        (("videos", "video0", "events", 1, "start_frame"), 0,
         r"\(videos\.video0\.events\[1\]\.start_frame\): expected \d+ <= start_frame"),
        (("videos", "video0", "background"), ["black"],
         r"\(videos\.video0\.background\): expected one of"),
        (("videos", "video0", "edit"), {"type": "twist", "events": []},
         r"\(videos\.video0\.edit\.type\): expected one of .*'twist'"),
        (("videos", "video0", "n_frames"), 0, r"\(videos\.video0\.n_frames\): expected a positive"),
        (("captions", "0", "relevant"), ["video0", "video999"],
         r"\(captions\.0\.relevant\): 'video999' is not a video of split 'train'"),
        (("captions", "0", "background"), "no", r"\(captions\.0\.background\): expected a boolean"),
        (("captions", "0", "events"), [7], r"\(captions\.0\.events\): expected increasing indices"),
        (("captions", "0", "relevant"), [], r"\(captions\.0\.relevant\): expected a list of video"),
        (("captions", "0", "split"), "val", r"\(captions\.0\.split\): expected 'train'"),
    ],
)
def test_parse_errors_name_file_and_field(
    raw: dict[str, Any], path: tuple, value: Any, match: str, tmp_path: Path
) -> None:
    obj = copy.deepcopy(raw)
    _set(obj, path, value)
    (tmp_path / sv.META_FILE).write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(SourceError, match=match) as e:
        sv.read_meta(tmp_path)
    assert e.value.path == tmp_path / sv.META_FILE


def test_captions_need_sen_id_keys_and_known_videos(raw: dict[str, Any]) -> None:
    obj = copy.deepcopy(raw)
    obj["captions"]["0"].update(video_id="video999", relevant=["video999"])
    with pytest.raises(SourceError, match=r"\(captions\.0\.video_id\): unknown video"):
        sv.parse_meta(obj, "m.json")
    obj = copy.deepcopy(raw)
    obj["captions"]["07"] = obj["captions"].pop("0")
    with pytest.raises(SourceError, match=r"\(captions\.07\): expected an integer sen_id"):
        sv.parse_meta(obj, "m.json")


def test_typed_entries_check_themselves() -> None:
    ev = sv.MetaEvent("red", "circle", "grows", 0, 4, 0.5, 0.5, 0.1, 0.0, 0.0, 0.01)
    with pytest.raises(sv.MetaFieldError, match=r"events\[1\]\.start_frame"):
        sv.MetaVideo("video0", "test", 0, sv.Edit(), "black", 8, (ev, ev))
    with pytest.raises(sv.MetaFieldError, match="colour"):
        sv.MetaEvent("pink", "circle", "grows", 0, 4, 0.5, 0.5, 0.1, 0.0, 0.0, 0.01)
    with pytest.raises(sv.MetaFieldError, match="n_train"):
        sv.GenerationParams(0, 0, 1, 1, 32, 8, False)


def _rows(root: Path, split: str) -> tuple[list[str], list[str], np.ndarray, list[int]]:
    """A split's rows as an export lays them out: videos, then caption texts in reverse."""
    data = json.loads((root / sv.DATA_FILE).read_text(encoding="utf-8"))
    meta = sv.read_meta(root)
    video_ids = [vid for vid, v in meta.videos.items() if v.split == split][::-1]
    col = {vid: j for j, vid in enumerate(video_ids)}
    sentences = [s for s in data["sentences"] if s["video_id"] in col][::-1]
    texts = [s["caption"] for s in sentences]
    t2v = np.array([col[s["video_id"]] for s in sentences])
    return video_ids, texts, t2v, [s["sen_id"] for s in sentences]


@pytest.mark.parametrize("split", ["train", "test"])
def test_read_split_meta_aligns_rows(tiny_synthvtt: Path, split: str) -> None:
    video_ids, texts, t2v, sen_ids = _rows(tiny_synthvtt, split)
    text_of = dict(zip(sen_ids, texts))
    texts[0] = "a caption the dataset does not hold"
    got = sv.read_split_meta(tiny_synthvtt, split, video_ids, texts, t2v)
    meta = sv.read_meta(tiny_synthvtt)
    assert got.params == meta.params and got.vocabulary == meta.vocabulary
    assert [v.video_id for v in got.videos] == video_ids
    assert got.captions[0] is None
    # each row gets a caption of its video with its text, each caption once (a video's
    # duplicate texts may swap their sen_ids)
    rows = got.captions[1:]
    assert all(c is not None and c.split == split for c in rows)
    assert sorted(c.sen_id for c in rows) == sorted(sen_ids[1:])
    assert [text_of[c.sen_id] for c in rows] == texts[1:]
    assert [c.video_id for c in rows] == [video_ids[t] for t in t2v[1:]]


def test_read_split_meta_errors(tiny_synthvtt: Path, tmp_path: Path) -> None:
    video_ids, texts, t2v, _ = _rows(tiny_synthvtt, "test")
    with pytest.raises(SourceError, match=r"synthvtt_meta\.json \(videos\): no entry .*'nope'"):
        sv.read_split_meta(tiny_synthvtt, "test", ["nope", *video_ids[1:]], texts, t2v)
    (tmp_path / sv.META_FILE).write_bytes((tiny_synthvtt / sv.META_FILE).read_bytes())
    with pytest.raises(FileNotFoundError, match=sv.DATA_FILE):
        sv.read_split_meta(tmp_path, "test", video_ids, texts, t2v)
    (tmp_path / sv.DATA_FILE).write_text('{"sentences": [{"sen_id": "0"}]}', encoding="utf-8")
    with pytest.raises(SourceError, match=r"MSRVTT_data\.json \(sentences\[0\]\)"):
        sv.read_split_meta(tmp_path, "test", video_ids, texts, t2v)


def test_one_file_version_is_parsed_once_and_a_rewrite_is_read_again(
        tiny_synthvtt: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    for name in (sv.META_FILE, sv.DATA_FILE):
        (root / name).write_bytes((tiny_synthvtt / name).read_bytes())
    first = sv.read_meta(root)
    assert sv.read_meta(root) is first  # the base and DRGI bundles of a split share one parse
    video_ids, texts, t2v, _ = _rows(root, "test")
    a = sv.read_split_meta(root, "test", video_ids, texts, t2v)
    b = sv.read_split_meta(root, "test", video_ids, texts, t2v)  # the shared ids stay whole
    assert [c.sen_id for c in a.captions] == [c.sen_id for c in b.captions]
    raw = json.loads((root / sv.META_FILE).read_text(encoding="utf-8"))
    raw["params"]["fps"] = raw["params"]["fps"] + 1
    (root / sv.META_FILE).write_text(json.dumps(raw), encoding="utf-8")
    again = sv.read_meta(root)
    assert again is not first and again.params.fps == first.params.fps + 1
