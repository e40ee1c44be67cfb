"""Tests of the SynthVTT generator (tvr.data.synthvtt) on tiny datasets built in tmp folders."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import av
import numpy as np
import pytest

from tvr.data import synthvtt as sv
from tvr.data.records import SourceError

TINY = {"n_train": 12, "n_val": 6, "n_test": 6, "size": 32, "fps": 8}


def _gen(out: Path, **kw) -> sv.GenerationSummary:
    args = {**TINY, "seed": 3, "workers": 1, "progress": False, **kw}
    return sv.generate(out, **args)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "synthvtt"
    _gen(out)
    return out


@pytest.fixture(scope="module")
def ds_bg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_bg") / "synthvtt"
    _gen(out, seed=5, n_train=15, n_val=9, n_test=9, background_captions=True)
    return out


def _decode(path: Path) -> tuple[np.ndarray, av.video.stream.VideoStream]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(stream)])
        return frames, stream


def _events(video: dict) -> list[tuple[str, str, str]]:
    return [(e["colour"], e["shape"], e["action"]) for e in video["events"]]


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


# --------------------------------------------------------------------------- layout and counts


def test_msrvtt_layout_and_counts(ds: Path) -> None:
    data = json.loads((ds / "MSRVTT_data.json").read_text())
    videos, sentences = data["videos"], data["sentences"]
    assert len(videos) == 24
    by_split = defaultdict(list)
    for v in videos:
        assert set(v) == {"id", "video_id", "category", "url", "start time", "end time", "split"}
        assert v["video_id"] == f"video{v['id']}"
        assert v["start time"] == 0.0 and v["end time"] > v["start time"]
        by_split[v["split"]].append(v["video_id"])
    assert {k: len(x) for k, x in by_split.items()} == {"train": 12, "validate": 6, "test": 6}
    assert len(sentences) == 12 * 5 + 6 + 6
    assert [s["sen_id"] for s in sentences] == list(range(len(sentences)))
    assert all(set(s) == {"sen_id", "video_id", "caption"} and s["caption"] for s in sentences)

    header, rows = _read_csv(ds / "MSRVTT_train.9k.csv")
    assert header == ["video_id"] and [r["video_id"] for r in rows] == by_split["train"]
    for name, split in (("MSRVTT_JSFUSION_test.csv", "test"), ("val.csv", "validate")):
        header, rows = _read_csv(ds / name)
        assert header == ["key", "vid_key", "video_id", "sentence"]
        assert [r["video_id"] for r in rows] == by_split[split]
        assert [r["key"] for r in rows] == [f"ret{i}" for i in range(len(rows))]
        assert all(r["vid_key"] == "msr" + r["video_id"][5:] for r in rows)
        texts = {s["video_id"]: s["caption"] for s in sentences if s["video_id"] in by_split[split]}
        assert all(texts[r["video_id"]] == r["sentence"] for r in rows)
    train_caps = defaultdict(int)
    for s in sentences:
        train_caps[s["video_id"]] += 1
    assert all(train_caps[v] == 5 for v in by_split["train"])
    assert sorted(p.name for p in (ds / "videos").iterdir()) == sorted(
        f"{v['video_id']}.mp4" for v in videos
    )
    assert (ds / "README.md").read_text().startswith("# SynthVTT")


def test_meta_contents(ds: Path) -> None:
    meta = sv.load_meta(ds)
    assert meta["version"] == sv.GENERATOR_VERSION
    assert meta["params"] == {"seed": 3, **TINY, "background_captions": False}
    data = json.loads((ds / "MSRVTT_data.json").read_text())
    assert set(meta["captions"]) == {str(s["sen_id"]) for s in data["sentences"]}
    split_of = {
        v["video_id"]: {"validate": "val"}.get(v["split"], v["split"]) for v in data["videos"]
    }
    for v_id, v in meta["videos"].items():
        assert v["split"] == split_of[v_id]
        assert 2 <= len(v["events"]) <= 4
        assert 24 <= v["n_frames"] <= 40
        ends = [0]
        for e in v["events"]:
            assert 6 <= e["end_frame"] - e["start_frame"] <= 12
            assert e["start_frame"] >= ends[-1]
            ends.append(e["end_frame"])
        assert len(set(_events(v))) == len(v["events"])  # events of a video are distinct
    for s in data["sentences"]:
        c = meta["captions"][str(s["sen_id"])]
        assert c["video_id"] == s["video_id"] and c["split"] == split_of[s["video_id"]]


def test_frame_states_follow_events(ds: Path) -> None:
    meta = sv.load_meta(ds)
    v = meta["videos"]["video0"]
    states = sv.frame_states(v)
    assert len(states) == v["n_frames"]
    inside = set()
    for i, e in enumerate(v["events"]):
        for f in range(e["start_frame"], e["end_frame"]):
            inside.add(f)
            st = states[f]
            t = f - e["start_frame"]
            assert st is not None and st["event"] == i and st["shape"] == e["shape"]
            assert st["x"] == pytest.approx(e["x"] + e["dx"] * t)
            assert st["r"] == pytest.approx(e["r"] + e["dr"] * t)
    assert all(states[f] is None for f in range(v["n_frames"]) if f not in inside)
    # actions are visible in the geometry
    for e in (e for vv in meta["videos"].values() for e in vv["events"]):
        sign = {"moves left": ("dx", -1), "moves right": ("dx", 1), "moves up": ("dy", -1)}
        sign |= {"moves down": ("dy", 1), "grows": ("dr", 1), "shrinks": ("dr", -1)}
        key, s = sign[e["action"]]
        assert e[key] * s > 0
        assert all(e[k] == 0 for k in ("dx", "dy", "dr") if k != key)


# --------------------------------------------------------------------------- determinism


def test_deterministic_from_seed(ds: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    _gen(again)
    for name in sv.ANNOTATION_FILES:
        assert (again / name).read_bytes() == (ds / name).read_bytes(), name
    for p in sorted((ds / "videos").iterdir()):
        a, _ = _decode(p)
        b, _ = _decode(again / "videos" / p.name)
        np.testing.assert_array_equal(a, b)
        assert (again / "videos" / p.name).read_bytes() == p.read_bytes(), p.name
    other = sv.plan(seed=4, **TINY)
    assert other[sv.META_FILE] != (ds / sv.META_FILE).read_text()


def test_parallel_workers_match_serial(ds: Path, tmp_path: Path) -> None:
    par = tmp_path / "par"
    _gen(par, workers=2)
    for p in sorted((ds / "videos").iterdir()):
        assert (par / "videos" / p.name).read_bytes() == p.read_bytes(), p.name
    assert (par / sv.META_FILE).read_bytes() == (ds / sv.META_FILE).read_bytes()


# --------------------------------------------------------------------------- captions and relevance


def _split_videos(meta: dict, split: str) -> dict[str, dict]:
    return {k: v for k, v in meta["videos"].items() if v["split"] == split}


@pytest.mark.parametrize("which", ["ds", "ds_bg"])
def test_relevance_sets_match_brute_force(which: str, request: pytest.FixtureRequest) -> None:
    meta = sv.load_meta(request.getfixturevalue(which))
    for c in meta["captions"].values():
        own = meta["videos"][c["video_id"]]
        mentioned = [_events(own)[i] for i in c["events"]]
        bg = own["background"] if c["background"] else None
        brute = sorted(
            vid
            for vid, v in _split_videos(meta, c["split"]).items()
            if (bg is None or v["background"] == bg)
            and any(  # brute force over every way of placing the events in order
                all(_events(v)[j] == m for j, m in zip(pos, mentioned))
                for pos in _increasing_positions(len(v["events"]), len(mentioned))
            )
        )
        assert sorted(c["relevant"]) == brute


def _increasing_positions(n: int, k: int) -> list[tuple[int, ...]]:
    return list(combinations(range(n), k))


@pytest.mark.parametrize("which", ["ds", "ds_bg"])
def test_heldout_captions_identify_their_video(which: str, request: pytest.FixtureRequest) -> None:
    meta = sv.load_meta(request.getfixturevalue(which))
    per_video = defaultdict(list)
    for c in meta["captions"].values():
        per_video[c["video_id"]].append(c)
    for vid, v in meta["videos"].items():
        caps = per_video[vid]
        if v["split"] == "train":
            assert len(caps) == 5
            continue
        assert len(caps) == 1
        (c,) = caps
        assert c["relevant"] == [vid]
        assert len(c["events"]) >= min(2, len(v["events"]))
        # smallest: no unique subset of fewer events exists, unless it was raised to 2 events
        if len(c["events"]) > 2:
            others = [_events(o) for k, o in _split_videos(meta, v["split"]).items() if k != vid]
            for sub in _increasing_positions(len(v["events"]), len(c["events"]) - 1):
                mentioned = [_events(v)[i] for i in sub]
                assert any(sv.caption_matches(mentioned, o) for o in others)


def test_captions_mention_events_in_temporal_order(ds_bg: Path) -> None:
    meta = sv.load_meta(ds_bg)
    data = json.loads((ds_bg / "MSRVTT_data.json").read_text())
    named_bg = 0
    for s in data["sentences"]:
        c = meta["captions"][str(s["sen_id"])]
        v = meta["videos"][c["video_id"]]
        assert c["events"] == sorted(set(c["events"]))
        text = s["caption"]
        assert ("background" in text) == c["background"]
        if c["background"]:
            named_bg += 1
            assert f"on a {v['background']} background" in text
            text = text.replace(f"on a {v['background']} background", "")
        pos = -1
        for i in c["events"]:
            e = v["events"][i]
            m = re.compile(rf"\b{e['colour']} {e['shape']}\b").search(text, pos + 1)
            assert m is not None, (text, e)
            pos = m.start()
        n_phrases = len(re.findall(r"\b(?:red|green|blue|yellow|purple|orange) [a-z]+\b", text))
        assert n_phrases == len(c["events"]), text
    assert 0 < named_bg < len(data["sentences"])


def test_families_are_whole_and_edits_are_true(ds: Path) -> None:
    meta = sv.load_meta(ds)
    families = defaultdict(list)
    for v in meta["videos"].values():
        families[v["family"]].append(v)
    for members in families.values():
        assert len({v["split"] for v in members}) == 1
        assert 3 <= len(members) <= 5
        bases = [v for v in members if v["edit"]["type"] == "none"]
        assert len(bases) == 1
        base = _events(bases[0])
        lists = [tuple(_events(v)) for v in members]
        assert len(set(lists)) == len(lists)
        for v in members:
            if v is not bases[0]:
                _check_edit(base, _events(v), v["edit"])
            if v["split"] != "train":
                assert v["edit"]["type"] in ("none", *sv.HELDOUT_EDITS)


def _check_edit(base: list, sib: list, edit: dict) -> None:
    kind, idx = edit["type"], edit["events"]
    if kind in ("colour", "shape", "action"):
        (i,) = idx
        slot = ("colour", "shape", "action").index(kind)
        assert len(sib) == len(base) and sib[:i] == base[:i] and sib[i + 1 :] == base[i + 1 :]
        diff = [k for k in range(3) if sib[i][k] != base[i][k]]
        assert diff == [slot]
    elif kind == "swap":
        i, j = idx
        expected = list(base)
        expected[i], expected[j] = expected[j], expected[i]
        assert sib == expected
    elif kind == "drop":
        (i,) = idx
        assert sib == base[:i] + base[i + 1 :]
    elif kind == "add":
        (p,) = idx
        assert base == sib[:p] + sib[p + 1 :]
    else:
        raise AssertionError(f"unexpected edit {edit}")


def test_train_families_use_drop_and_add() -> None:
    meta = json.loads(sv.plan(seed=0, n_train=200, n_val=3, n_test=3, size=32, fps=8)[sv.META_FILE])
    kinds = {v["edit"]["type"] for v in meta["videos"].values() if v["split"] == "train"}
    assert kinds == set(sv.EDIT_TYPES)


def test_caption_matches_known_answers() -> None:
    a, b, c = (
        ("red", "circle", "grows"),
        ("blue", "cross", "moves up"),
        ("green", "square", "shrinks"),
    )
    assert sv.caption_matches([a, c], [a, b, c])
    assert not sv.caption_matches([c, a], [a, b, c])
    assert not sv.caption_matches([a, a], [a, b])
    assert sv.caption_matches([{"colour": "blue", "shape": "cross", "action": "moves up"}], [a, b])
    assert not sv.caption_matches([a], [a], background="white", video_background="black")
    assert sv.caption_matches([a], [a], background="black", video_background="black")
    with pytest.raises(ValueError, match="video_background"):
        sv.caption_matches([a], [a], background="black")


# --------------------------------------------------------------------------- videos


def test_videos_decode_with_right_size_count_and_colours(ds: Path) -> None:
    meta = sv.load_meta(ds)
    for vid in ("video0", "video13", "video23"):
        v = meta["videos"][vid]
        frames, stream = _decode(ds / "videos" / f"{vid}.mp4")
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert frames.shape == (v["n_frames"], 32, 32, 3)
        ref = sv.render_video(v, 32)
        assert np.abs(frames.astype(int) - ref).mean() < 6.0
        for e in v["events"]:
            f = (e["start_frame"] + e["end_frame"]) // 2
            st = sv.frame_states(v)[f]
            mask = sv.shape_mask(st["shape"], st["x"], st["y"], st["r"], 32)
            assert mask.sum() >= 9
            mean_rgb = frames[f][mask].mean(axis=0)
            assert sv.nearest_colour(mean_rgb) == e["colour"]
            assert np.abs(mean_rgb - sv.COLOURS[e["colour"]]).max() < 40
            corner = frames[f][~mask].reshape(-1, 3)
            bg = np.asarray(sv.BACKGROUNDS[v["background"]])
            assert np.median(np.abs(corner - bg).max(axis=1)) < 12


def test_faststart_moov_before_mdat(ds: Path) -> None:
    raw = (ds / "videos" / "video0.mp4").read_bytes()
    assert 0 <= raw.find(b"moov") < raw.find(b"mdat")


# --------------------------------------------------------------------------- idempotence, atomicity


def test_existing_complete_dataset_is_kept(ds: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in ds.rglob("*")}
    summary = _gen(ds)
    assert summary.skipped
    assert summary.videos == {"train": 12, "val": 6, "test": 6}
    assert summary.captions == {"train": 60, "val": 6, "test": 6}
    assert {p: p.stat().st_mtime_ns for p in ds.rglob("*")} == before


def test_other_parameters_need_force(tmp_path: Path) -> None:
    out = tmp_path / "d"
    _gen(out, n_train=3, n_val=3, n_test=3)
    with pytest.raises(FileExistsError, match="force"):
        _gen(out, n_train=3, n_val=3, n_test=3, seed=9)
    summary = _gen(out, n_train=3, n_val=3, n_test=3, seed=9, force=True)
    assert not summary.skipped and sv.load_meta(out)["params"]["seed"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temp folders left


def test_foreign_folder_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SynthVTT dataset"):
        _gen(out, n_train=3, n_val=3, n_test=3, force=True)
    assert (out / "notes.txt").read_text() == "keep me"


def test_interrupted_generation_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def failing(job):
        calls.append(job)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return sv.render_video(job[0], job[1]).shape[0]

    monkeypatch.setattr(sv.writing, "_encode_job", failing)
    with pytest.raises(KeyboardInterrupt):
        _gen(tmp_path / "d", n_train=6, n_val=3, n_test=3)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- bad input, CLI


def test_load_meta_errors_name_file_and_key(ds: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="synthvtt_meta.json"):
        sv.load_meta(tmp_path)
    meta = json.loads((ds / sv.META_FILE).read_text())
    meta["videos"]["video2"]["events"][1]["colour"] = "pink"
    (tmp_path / sv.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(SourceError, match=r"videos\.video2\.events\[1\]\.colour.*'pink'") as e:
        sv.load_meta(tmp_path)
    assert e.value.path == tmp_path / sv.META_FILE
    meta = json.loads((ds / sv.META_FILE).read_text())
    meta["captions"]["0"]["events"] = [1, 0]
    (tmp_path / sv.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(SourceError, match=r"captions\.0\.events.*increasing"):
        sv.load_meta(tmp_path)
    (tmp_path / sv.META_FILE).write_text("{not json")
    with pytest.raises(SourceError, match="invalid JSON"):
        sv.load_meta(tmp_path)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"size": 33}, "size.*even"),
        ({"n_test": 0}, "n_test"),
        ({"fps": 0}, "fps"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_are_named(kw: dict, match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        _gen(tmp_path / "d", **kw)
    assert not (tmp_path / "d").exists()


def test_cli_generates_then_skips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--train", "3", "--val", "3", "--test", "3", "--size", "16"]
    argv += ["--seed", "1", "--workers", "1", "--quiet"]
    assert sv.main(argv) == 0
    assert sv.load_meta(out)["params"]["size"] == 16
    assert "9 videos" in capsys.readouterr().out
    assert sv.main(argv) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert sv.main([*argv, "--size", "17"]) == 1


def test_present_dataset_check_parses_no_video_or_caption(ds: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`make app` on a present dataset: the check reads the meta's header and counts its
    entries; parsing every video and caption (most of its time before) is left to readers."""
    from tvr.data.synthvtt import reader

    reader._read_meta.cache_clear()  # a meta parsed by an earlier test must not hide a parse
    parsed = []
    for name in ("_video", "_caption", "parse_meta"):
        real = getattr(reader, name)
        monkeypatch.setattr(reader, name, lambda *a, _r=real, _n=name: parsed.append(_n) or _r(*a))
    summary = _gen(ds)
    assert summary.skipped and parsed == []
    assert summary.videos == {"train": 12, "val": 6, "test": 6}
    assert summary.frames == sum(v.n_frames for v in sv.read_meta(ds).videos.values())


def test_a_dataset_missing_a_video_or_with_a_bad_meta_is_not_complete(tmp_path: Path) -> None:
    out = tmp_path / "d"
    _gen(out, n_train=3, n_val=3, n_test=3)
    (out / "videos" / "video0.mp4").unlink()
    with pytest.raises(FileExistsError, match="incomplete"):
        _gen(out, n_train=3, n_val=3, n_test=3)
    _gen(out, n_train=3, n_val=3, n_test=3, force=True)
    meta = json.loads((out / sv.META_FILE).read_text())
    del next(iter(meta["videos"].values()))["split"]
    (out / sv.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(FileExistsError, match="incomplete"):
        _gen(out, n_train=3, n_val=3, n_test=3)


def test_family_size_makes_larger_families_and_is_recorded() -> None:
    default = json.loads(sv.plan(seed=0, n_train=40, n_val=30, n_test=30, size=32)[sv.META_FILE])
    assert "family_size" not in default["params"]  # default datasets stay byte-identical
    texts = sv.plan(seed=0, n_train=40, n_val=30, n_test=30, size=32, family_size=(8, 12))
    meta = json.loads(texts[sv.META_FILE])
    assert meta["params"]["family_size"] == [8, 12]
    assert "--family-size 8 12" in texts[sv.README_FILE]
    families = defaultdict(list)
    for v in meta["videos"].values():
        families[(v["split"], v["family"])].append(v)
    sizes = [len(m) for m in families.values()]
    # 30 videos in families of 8-12 leave at most one smaller family per split
    assert all(n <= 12 for n in sizes)
    assert sum(n < 8 for n in sizes) <= 3
    assert max(sizes) >= 8
    for members in families.values():  # siblings are still one true edit from their base
        (base,) = [v for v in members if v["edit"]["type"] == "none"]
        for v in members:
            if v is not base:
                _check_edit(_events(base), _events(v), v["edit"])


@pytest.mark.parametrize("bad", [(1, 4), (5, 4), (3, 40), (3,), ("3", 5)])
def test_bad_family_size_is_named(bad: tuple, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="family_size"):
        _gen(tmp_path / "d", family_size=bad)
    assert not (tmp_path / "d").exists()


def test_load_meta_checks_family_size(ds: Path, tmp_path: Path) -> None:
    meta = json.loads((ds / sv.META_FILE).read_text())
    meta["params"]["family_size"] = [9, 3]
    (tmp_path / sv.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(SourceError, match=r"params\.family_size.*lo <= hi"):
        sv.load_meta(tmp_path)


def test_cli_family_size(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--train", "8", "--val", "6", "--test", "6", "--size", "16"]
    argv += ["--workers", "1", "--quiet", "--family-size", "6", "8"]
    assert sv.main(argv) == 0
    assert sv.load_meta(out)["params"]["family_size"] == [6, 8]


def test_test_captions_give_the_msrvtt_full_shape(tmp_path: Path) -> None:
    """K captions per test video (val keeps one), each identifying its video within the split;
    the default stays byte-identical (nothing recorded, the same draws)."""
    from tvr.data.dataset import EvalSplit
    from tvr.data.sources import load_split

    args = dict(seed=0, n_train=10, n_val=8, n_test=12, size=32)
    default = sv.plan(**args)
    assert sv.plan(**args, test_captions=1) == default
    assert "test_captions" not in json.loads(default[sv.META_FILE])["params"]
    texts = sv.plan(**args, test_captions=4)
    meta = json.loads(texts[sv.META_FILE])
    assert meta["params"]["test_captions"] == 4 and "--test-captions 4" in texts[sv.README_FILE]
    assert meta["videos"] == json.loads(default[sv.META_FILE])["videos"]  # same videos
    per_video: dict[str, list[dict]] = defaultdict(list)
    for c in meta["captions"].values():
        per_video[c["video_id"]].append(c)
    for vid, v in meta["videos"].items():
        caps = per_video[vid]
        assert len(caps) == {"train": 5, "val": 1, "test": 4}[v["split"]]
        if v["split"] != "train":
            assert all(c["relevant"] == [vid] for c in caps)  # unique within the split

    out = tmp_path / "k4"
    _gen(out, n_train=8, n_val=6, n_test=6, test_captions=4)
    split = EvalSplit.from_records(load_split("synthvtt", out, "test"))
    assert split.num_videos == 6 and split.num_texts == 24
    assert all(len(t) == 4 for t in split.video_to_texts)
    assert sv.load_meta(out)["params"]["test_captions"] == 4
    with pytest.raises(ValueError, match="test_captions"):
        _gen(tmp_path / "bad", test_captions=0)
    assert not (tmp_path / "bad").exists()
