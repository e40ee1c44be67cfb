"""Shared source machinery, the restricted unpickler, and the MSVD, VATEX and LSMDC sources."""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path

import pytest

from tvr import registry
from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources import (
    SourceOptionError,
    load_split,
    lsmdc,
    msvd,
    source_names,
    vatex,
)
from tvr.data.sources.safe_pickle import load_plain_pickle

ALL_SOURCES = ["activitynet", "didemo", "lsmdc", "msrvtt", "msvd", "synthvtt", "vatex"]


# ------------------------------------------------------------------------ registry / contract


def test_every_source_is_registered() -> None:
    assert source_names() == ALL_SOURCES
    for name in ALL_SOURCES:
        assert callable(registry.get("source", name))


@pytest.mark.parametrize("name", ALL_SOURCES)
def test_every_source_rejects_unknown_split_and_option(name: str, tmp_path: Path) -> None:
    with pytest.raises(SourceOptionError, match=r"unknown split 'nope'; valid splits: 'train'"):
        load_split(name, tmp_path, "nope")
    with pytest.raises(SourceOptionError, match=r"unknown option\(s\) 'bogus'.*check_videos"):
        load_split(name, tmp_path, "train", bogus=1)
    with pytest.raises(SourceError, match="dataset root folder"):
        load_split(name, tmp_path / "absent", "train")


def test_load_split_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(registry.RegistryError, match="unknown source 'kinetics'.*msrvtt"):
        load_split("kinetics", tmp_path, "train")


# ------------------------------------------------------------------------ restricted unpickler


class _Exploit:
    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (os.system, ("echo pwned",))


def test_plain_pickle_loads_plain_data(tmp_path: Path) -> None:
    data = {"vid-a_1": [["a", "man"], ["a", "dog"]], "n": (1, 2.5, None, True), "é": "ü"}
    path = tmp_path / "plain.pkl"
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        assert load_plain_pickle(path) == data


def test_plain_pickle_refuses_globals(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"vid": _Exploit()}))
    with pytest.raises(SourceError) as err:
        load_plain_pickle(path)
    assert err.value.path == path
    assert "refused to load global" in str(err.value)
    assert "system" in str(err.value)  # names the refused global (posix.system / nt.system)

    path.write_bytes(pickle.dumps({"when": __import__("datetime").date(2020, 1, 1)}))
    with pytest.raises(SourceError, match=r"refused to load global datetime\.date"):
        load_plain_pickle(path)


def test_plain_pickle_invalid_bytes(tmp_path: Path) -> None:
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(SourceError, match="junk.pkl"):
        load_plain_pickle(path)
    path.write_bytes(pickle.dumps({"a": ["b"]})[:-3])
    with pytest.raises(SourceError, match="junk.pkl"):
        load_plain_pickle(path)


# ------------------------------------------------------------------------ MSVD

MSVD_CAPTIONS = {
    "-4wsuPCjDBc_5_15": [["a", "man", "plays"], ["someone", "plays", "guitar"]],
    "zv2RIbUsnSw_159_166": [["a", "cat", "eats"]],
    "0lh_UWF9ZP4_27_31": [["a", "boy", "runs"], ["a", "kid", "is", "running"], ["running"]],
    "abc_1_2": [["unused"]],
}


def write_msvd(root: Path, fmt: str = "pkl") -> Path:
    root.mkdir(parents=True)
    (root / "train_list.txt").write_text("-4wsuPCjDBc_5_15\nzv2RIbUsnSw_159_166\n")
    (root / "val_list.txt").write_text("zv2RIbUsnSw_159_166\n")
    (root / "test_list.txt").write_text("0lh_UWF9ZP4_27_31\n-4wsuPCjDBc_5_15\n\n")
    if fmt == "pkl":
        (root / "raw-captions.pkl").write_bytes(pickle.dumps(MSVD_CAPTIONS))
    else:
        as_text = {k: [" ".join(c) for c in v] for k, v in MSVD_CAPTIONS.items()}
        (root / "raw-captions.json").write_text(json.dumps(as_text))
    return root


@pytest.mark.parametrize("fmt", ["pkl", "json"])
def test_msvd_lists_and_multi_caption_test(tmp_path: Path, fmt: str) -> None:
    root = write_msvd(tmp_path / "msvd", fmt)
    test = msvd.load(root, "test")
    assert [r.video_id for r in test] == ["0lh_UWF9ZP4_27_31", "-4wsuPCjDBc_5_15"]
    assert test[0].captions == ("a boy runs", "a kid is running", "running")  # all kept
    assert test[0].video_path == root / "videos" / "0lh_UWF9ZP4_27_31.avi"
    train = msvd.load(root, "train")
    assert sum(len(r.captions) for r in train) == 3
    assert [r.video_id for r in msvd.load(root, "val")] == ["zv2RIbUsnSw_159_166"]


def test_msvd_youtubeclips_folder(tmp_path: Path) -> None:
    root = write_msvd(tmp_path / "msvd")
    (root / "YouTubeClips").mkdir()
    assert msvd.load(root, "val")[0].video_path.parent == root / "YouTubeClips"


def test_msvd_refuses_unsafe_pickle(tmp_path: Path) -> None:
    root = write_msvd(tmp_path / "msvd")
    (root / "raw-captions.pkl").write_bytes(pickle.dumps({"-4wsuPCjDBc_5_15": [_Exploit()]}))
    with pytest.raises(SourceError, match=r"raw-captions\.pkl: unsafe or invalid pickle"):
        msvd.load(root, "train")


def test_msvd_bad_input(tmp_path: Path) -> None:
    root = write_msvd(tmp_path / "msvd")
    (root / "test_list.txt").write_text("0lh_UWF9ZP4_27_31\nnot_captioned_1_2\n")
    with pytest.raises(SourceError) as err:
        msvd.load(root, "test")
    assert err.value.path == root / "test_list.txt" and err.value.where == "line 2"
    assert "'not_captioned_1_2' has no captions" in str(err.value)

    (root / "test_list.txt").write_text("0lh_UWF9ZP4_27_31\n0lh_UWF9ZP4_27_31\n")
    with pytest.raises(SourceError, match=r"line 2\).*duplicate video id"):
        msvd.load(root, "test")

    (root / "test_list.txt").write_text("\n\n")
    with pytest.raises(SourceError, match=r"test_list\.txt: MSVD test list is empty"):
        msvd.load(root, "test")

    (root / "raw-captions.pkl").unlink()
    (root / "raw-captions.json").write_text(json.dumps({"-4wsuPCjDBc_5_15": ["ok", 7]}))
    with pytest.raises(SourceError) as err:
        msvd.load(root, "train")
    assert err.value.path == root / "raw-captions.json"
    assert err.value.where == 'key ["-4wsuPCjDBc_5_15"][1]'

    (root / "raw-captions.json").unlink()
    with pytest.raises(SourceError, match="raw-captions.json or raw-captions.pkl"):
        msvd.load(root, "train")


# ------------------------------------------------------------------------ VATEX

VATEX_IDS = {
    "train": ["Ptf_2VRj-V0_000122_000132", "abc_def_000001_000011"],
    "val": ["v1x_000000_000010"],
    "test": ["t1-_000005_000015", "t_2_000000_000010"],
}


def _en(vid: str, n: int = 10) -> list[str]:
    return [f"{vid} english caption {i}" for i in range(n)]


def write_vatex(root: Path, shape: str = "ts2net") -> Path:
    root.mkdir(parents=True)
    for split, ids in VATEX_IDS.items():
        (root / f"{split}_list.txt").write_text("\n".join(ids) + "\n")
    all_ids = [v for ids in VATEX_IDS.values() for v in ids]
    if shape == "ts2net":
        (root / "ref_captions.json").write_text(json.dumps({v: _en(v) for v in all_ids}))
    elif shape == "clip2video":
        (root / "vatex_data.json").write_text(
            json.dumps({v: {"enCap": _en(v), "chCap": ["中文"]} for v in all_ids})
        )
    else:  # official: training file + validation file (HGR val/test come from the latter)

        def entries(ids: list[str]) -> list[dict]:
            return [{"videoID": v, "enCap": _en(v), "chCap": ["中文"] * 10} for v in ids]

        (root / "vatex_training_v1.0.json").write_text(json.dumps(entries(VATEX_IDS["train"])))
        (root / "vatex_validation_v1.0.json").write_text(
            json.dumps(entries(VATEX_IDS["val"] + VATEX_IDS["test"]))
        )
    return root


@pytest.mark.parametrize("shape", ["ts2net", "clip2video", "official"])
def test_vatex_caption_shapes_and_multi_caption(tmp_path: Path, shape: str) -> None:
    root = write_vatex(tmp_path / "vatex", shape)
    test = vatex.load(root, "test")
    assert [r.video_id for r in test] == VATEX_IDS["test"]
    assert all(len(r.captions) == 10 for r in test)
    assert test[1].captions[3] == "t_2_000000_000010 english caption 3"
    assert test[0].video_path == root / "videos" / "t1-_000005_000015.mp4"
    assert len(vatex.load(root, "train")) == 2 and len(vatex.load(root, "val")) == 1


def test_vatex_bad_input(tmp_path: Path) -> None:
    root = write_vatex(tmp_path / "vatex")
    (root / "val_list.txt").write_text("v1x_000000_000010\nmissing_000000_000010\n")
    with pytest.raises(SourceError) as err:
        vatex.load(root, "val")
    assert err.value.path == root / "val_list.txt" and err.value.where == "line 2"

    (root / "ref_captions.json").write_text(json.dumps({"v1x_000000_000010": {"chCap": []}}))
    with pytest.raises(SourceError) as err:
        vatex.load(root, "val")
    assert err.value.where == "key v1x_000000_000010.enCap"

    (root / "ref_captions.json").write_text(json.dumps([{"videoID": "a", "enCap": []}]))
    with pytest.raises(SourceError, match=r"key \[0\]\.enCap.*at least one English caption"):
        vatex.load(root, "val")


def test_vatex_captions_file_option(tmp_path: Path) -> None:
    root = write_vatex(tmp_path / "vatex", "official")
    recs = vatex.load(root, "val", captions_file=["vatex_validation_v1.0.json"])
    assert len(recs[0].captions) == 10
    with pytest.raises(SourceError, match=r"test_list\.txt \(line 1\).*vatex_training_v1\.0\.json"):
        vatex.load(root, "test", captions_file="vatex_training_v1.0.json")


# ------------------------------------------------------------------------ LSMDC

BROKEN = "1012_Unbreakable_00.05.16.065-00.05.21.941"


def lsmdc_line(clip: str, sentence: str, t: str = "00.00.51.926") -> str:
    return "\t".join([clip, t, "00.00.54.129", "00.00.51.000", "00.00.55.000", sentence])


def write_lsmdc(root: Path) -> Path:
    root.mkdir(parents=True)
    a = "0001_American_Beauty_00.00.51.926-00.00.54.129"
    b = "3011_BLIND_DATING_01.11.23.496-01.11.25.853"
    (root / "LSMDC16_annos_training.csv").write_text(
        "\n".join(
            [
                lsmdc_line(a, "SOMEONE lies on the bed."),
                lsmdc_line(BROKEN, "Broken clip."),
                lsmdc_line(b, "SOMEONE smiles."),
                lsmdc_line(a, "He looks up."),
            ]
        )
        + "\n"
    )
    (root / "LSMDC16_annos_val.csv").write_text(lsmdc_line(b, "SOMEONE waves.") + "\n")
    (root / "LSMDC16_challenge_1000_publictect.csv").write_text(
        "\n".join(
            [
                lsmdc_line("1006_Slumdog_Millionaire_01.25.49.077-01.25.54.718", "A boy runs."),
                lsmdc_line(a, "SOMEONE sleeps."),
            ]
        )
        + "\n"
    )
    return root


def test_lsmdc_grouping_movie_folder_and_broken_clip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_lsmdc(tmp_path / "lsmdc")
    with caplog.at_level(logging.WARNING, logger="tvr.data.sources.lsmdc"):
        train = lsmdc.load(root, "train")
    assert BROKEN in caplog.text and "line 2" in caplog.text
    assert [r.video_id for r in train] == [
        "0001_American_Beauty_00.00.51.926-00.00.54.129",
        "3011_BLIND_DATING_01.11.23.496-01.11.25.853",
    ]
    assert train[0].captions == ("SOMEONE lies on the bed.", "He looks up.")
    assert train[0].video_path == (
        root
        / "videos"
        / "0001_American_Beauty"
        / "0001_American_Beauty_00.00.51.926-00.00.54.129.avi"
    )
    assert train[0].start is None and train[0].end is None
    test = lsmdc.load(root, "test")
    assert [r.captions for r in test] == [("A boy runs.",), ("SOMEONE sleeps.",)]
    assert test[0].video_path.parent.name == "1006_Slumdog_Millionaire"
    assert len(lsmdc.load(root, "val")) == 1


def test_lsmdc_movie_rule() -> None:
    assert lsmdc.movie_of(BROKEN) == "1012_Unbreakable"
    assert lsmdc.movie_of("no-dot-here") is None


def test_lsmdc_bad_input(tmp_path: Path) -> None:
    root = write_lsmdc(tmp_path / "lsmdc")
    test_file = root / "LSMDC16_challenge_1000_publictect.csv"
    good = lsmdc_line("1006_Slumdog_Millionaire_01.25.49.077-01.25.54.718", "A boy runs.")
    test_file.write_text(good + "\n" + "1006_X_00.00.01.000-00.00.02.000\t00.00.01.000\tonly\n")
    with pytest.raises(SourceError) as err:
        lsmdc.load(root, "test")
    assert err.value.path == test_file and err.value.where == "line 2"
    assert "expected 6 tab-separated fields" in str(err.value) and "got 3" in str(err.value)

    test_file.write_text(good + "\n" + lsmdc_line("0002_B_00.00.01.000-00.00.02.000", "x", "soon"))
    with pytest.raises(SourceError, match=r"line 2\).*'start aligned'.*'soon'"):
        lsmdc.load(root, "test")

    test_file.write_text(good + "\n" + good + "\n")
    with pytest.raises(SourceError, match=r"line 2\).*duplicate clip id"):
        lsmdc.load(root, "test")

    (root / "LSMDC16_annos_val.csv").unlink()
    with pytest.raises(SourceError, match=r"LSMDC16_annos_val\.csv: .*not found"):
        lsmdc.load(root, "val")


def test_records_are_video_text_records(tmp_path: Path) -> None:
    root = write_lsmdc(tmp_path / "lsmdc")
    assert all(isinstance(r, VideoTextRecord) for r in load_split("lsmdc", root, "train"))
