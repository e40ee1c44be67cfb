"""Tests for tvr.data.dataset: item contract, eval mapping, collate, decode-error policy."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tvr.data.dataset import (
    CaptionDataset,
    EvalSplit,
    PairDataset,
    SkippedItem,
    VideoDataset,
    collate,
)
from tvr.data.records import VideoTextRecord
from tvr.data.video import FrameSampler, VideoDecodeError

T, S, L = 4, 8, 10
ITEM_KEYS = {"video", "video_mask", "text", "text_mask", "video_index", "caption_index"}


class StubTokenizer:
    """Maps each word to 2 + len(word); SOT=0, EOT=1, pad=1 (like CLIP's EOT padding)."""

    bos_id, eos_id, pad_id = 0, 1, 1

    def encode(self, texts, max_words):
        ids = torch.full((len(texts), max_words), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), max_words), dtype=torch.long)
        for i, text in enumerate(texts):
            seq = [0, *[2 + len(w) for w in text.split()][: max_words - 2], 1]
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
        return ids, mask


class StubSampler:
    """Returns a video whose pixels encode the file stem's number; fails on names with 'bad'."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path, start=None, end=None):
        self.calls.append(str(path))
        if "bad" in Path(path).name:
            raise VideoDecodeError(path, "decoding failed after 3 frame(s) (test)")
        stem = Path(path).stem.lstrip("v")
        value = float(stem) if stem.isdigit() else -1.0
        video = torch.full((T, 3, S, S), value)
        mask = torch.tensor([1, 1, 1, 0])
        return video, mask, np.array([0.1, 0.2, 0.3, np.nan])


def rec(vid: str, *captions: str, path: str | None = None, start=None, end=None):
    return VideoTextRecord(vid, Path(path or f"/data/{vid}.mp4"), tuple(captions), start, end)


RECORDS = [
    rec("v0", "a red circle", "a circle moves"),
    rec("v1", "a blue square"),
    rec("v2", "a green star spins", "the star", "green"),
]


def test_pair_items_keys_shapes_and_indices() -> None:
    ds = PairDataset(RECORDS, StubSampler(), StubTokenizer(), L)
    assert len(ds) == 6
    item = ds[3]
    assert set(item) == ITEM_KEYS
    assert item["video"].shape == (T, 3, S, S) and item["video"].dtype == torch.float32
    assert item["video_mask"].shape == (T,)
    assert item["text"].shape == item["text_mask"].shape == (L,)
    assert item["text"].dtype == item["text_mask"].dtype == torch.long
    assert item["text"][:6].tolist() == [0, 3, 7, 6, 7, 1]  # "a green star spins"
    assert item["text_mask"].tolist() == [1] * 6 + [0] * 4
    assert (item["video_index"], item["caption_index"]) == (2, 3)
    assert float(item["video"][0, 0, 0, 0]) == 2.0  # v2's video
    assert [ds[i]["video_index"] for i in range(6)] == [0, 0, 1, 2, 2, 2]
    assert [ds[i]["caption_index"] for i in range(6)] == list(range(6))
    assert ds[-1]["caption_index"] == 5
    with pytest.raises(IndexError, match="out of range"):
        ds[6]


def test_repeated_video_id_shares_video_index() -> None:
    records = [rec("a", "x"), rec("b", "y"), rec("a", "z")]  # LSMDC repeats clip ids in train
    ds = PairDataset(records, StubSampler(), StubTokenizer(), L)
    assert [ds[i]["video_index"] for i in range(3)] == [0, 1, 0]


def test_collate_stacks_and_pads() -> None:
    ds = PairDataset(RECORDS, StubSampler(), StubTokenizer(), L)
    batch = ds.collate([ds[0], ds[2], ds[5]])
    assert set(batch) == ITEM_KEYS
    assert batch["video"].shape == (3, T, 3, S, S)
    assert batch["video_mask"].shape == (3, T)
    assert batch["text"].shape == batch["text_mask"].shape == (3, L)
    assert batch["video_index"].tolist() == [0, 1, 2]
    assert batch["caption_index"].dtype == torch.long
    # Texts of different lengths are right-padded with the pad id (mask 0).
    a = {"text": torch.tensor([0, 5, 1]), "text_mask": torch.ones(3, dtype=torch.long), "i": 0}
    b = {"text": torch.tensor([0, 1]), "text_mask": torch.ones(2, dtype=torch.long), "i": 1}
    out = collate([a, b], text_pad_id=9)
    assert out["text"].tolist() == [[0, 5, 1], [0, 1, 9]]
    assert out["text_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    with pytest.raises(ValueError, match="keys"):
        collate([a, {"text": torch.tensor([0, 1])}])
    with pytest.raises(ValueError, match="cannot stack 'video'"):
        collate([{"video": torch.zeros(2, 3)}, {"video": torch.zeros(3, 3)}])


def test_dataloader_batches() -> None:
    ds = PairDataset(RECORDS, StubSampler(), StubTokenizer(), L)
    batches = list(DataLoader(ds, batch_size=4, collate_fn=ds.collate))
    assert [b["video"].shape[0] for b in batches] == [4, 2]
    assert torch.cat([b["caption_index"] for b in batches]).tolist() == list(range(6))


def test_eval_split_mapping() -> None:
    split = EvalSplit.from_records(RECORDS)
    assert split.captions[2] == "a blue square"
    assert split.text_to_video.dtype == np.int64
    assert split.text_to_video.tolist() == [0, 0, 1, 2, 2, 2]
    assert split.video_to_texts == [[0, 1], [2], [3, 4, 5]]
    assert split.video_ids == ["v0", "v1", "v2"]
    assert (split.num_texts, split.num_videos, split.single_caption) == (6, 3, False)
    for v, texts in enumerate(split.video_to_texts):
        assert all(split.text_to_video[t] == v for t in texts)
    # Records of one video are merged; two different files under one id are an error.
    merged = EvalSplit.from_records([rec("a", "x"), rec("b", "y"), rec("a", "z")])
    assert merged.video_to_texts == [[0, 2], [1]]
    assert merged.videos[0].captions == ("x", "z")
    with pytest.raises(ValueError, match="'a' appears with two sources"):
        EvalSplit.from_records([rec("a", "x"), rec("a", "y", path="/other/a.mp4")])
    assert EvalSplit.from_records([rec("a", "x"), rec("b", "y")]).single_caption


def test_caption_and_video_datasets() -> None:
    split = EvalSplit.from_records(RECORDS)
    caps = CaptionDataset(split, StubTokenizer(), L)
    assert len(caps) == 6
    batch = caps.collate([caps[i] for i in range(6)])
    assert set(batch) == {"text", "text_mask", "caption_index"}
    assert batch["text"].shape == (6, L) and batch["caption_index"].tolist() == list(range(6))
    vids = VideoDataset(split, StubSampler())
    assert len(vids) == 3
    batch = vids.collate([vids[i] for i in range(3)])
    assert set(batch) == {"video", "video_mask", "video_index"}
    assert batch["video"].shape == (3, T, 3, S, S)
    assert batch["video"][:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_raise_policy_propagates() -> None:
    records = [rec("v0", "a"), rec("bad1", "b")]
    ds = PairDataset(records, StubSampler(), StubTokenizer(), L, on_decode_error="raise")
    with pytest.raises(VideoDecodeError, match="bad1.mp4"):
        ds[1]
    with pytest.raises(ValueError, match="on_decode_error"):
        PairDataset(records, StubSampler(), StubTokenizer(), L, on_decode_error="ignore")


def test_skip_policy_counts_logs_and_drops(caplog, tmp_path) -> None:
    records = [rec("v0", "a", "b"), rec("bad1", "c", "d"), rec("v2", "e")]
    sampler = StubSampler()
    log = tmp_path / "skips.jsonl"
    ds = PairDataset(records, sampler, StubTokenizer(), L, on_decode_error="skip", skip_log=log)
    with caplog.at_level(logging.WARNING, logger="tvr.data.dataset"):
        items = [ds[i] for i in range(len(ds))]
    assert isinstance(items[2], SkippedItem) and isinstance(items[3], SkippedItem)
    assert items[2].path == "/data/bad1.mp4" and "decoding failed" in items[2].reason
    assert ds.num_skipped == 2
    assert ds.skipped == ["/data/bad1.mp4"]
    assert ds.skip_reasons == {"/data/bad1.mp4": items[2].reason}
    assert sampler.calls.count("/data/bad1.mp4") == 1  # a known-bad file is not decoded again
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "/data/bad1.mp4" in warnings[0].getMessage()
    assert "decoding failed" in warnings[0].getMessage()
    batch = ds.collate(items)
    assert batch["video"].shape[0] == 3  # the bad pairs are dropped, never zero videos
    assert batch["caption_index"].tolist() == [0, 1, 4]
    assert (batch["video_mask"].sum(dim=1) > 0).all()
    assert ds.collate([items[2], items[3]]) is None  # a batch with nothing left
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries == [{"index": 2, "path": "/data/bad1.mp4", "reason": items[2].reason}]
    # Another process (a DataLoader worker) sees the skips through the shared log.
    other = PairDataset(records, StubSampler(), StubTokenizer(), L, "skip", skip_log=log)
    assert other.skipped == ["/data/bad1.mp4"] and other.num_skipped == 0


def _encode_grey(path: Path, n: int) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        for i in range(n):
            img = np.full((16, 16, 3), 20 * i, dtype=np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode())
    return path


def test_real_sampler_and_corrupt_file(tmp_path) -> None:
    good = _encode_grey(tmp_path / "good.mp4", 10)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    records = [rec("good", "a b", path=str(good)), rec("empty", "c", path=str(empty))]
    sampler = FrameSampler(T, S)
    ds = PairDataset(records, sampler, StubTokenizer(), L, on_decode_error="skip")
    batch = ds.collate([ds[0], ds[1]])
    assert batch["video"].shape == (1, T, 3, S, S)
    assert batch["video_mask"].tolist() == [[1] * T]
    assert ds.skipped == [str(empty)]
    assert ds.skip_reasons == {str(empty): "file is empty (0 bytes)"}
    strict = VideoDataset(records, sampler)  # records are accepted as well as an EvalSplit
    assert strict[0]["video"].shape == (T, 3, S, S)
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        strict[1]


def test_skips_in_worker_processes_reach_the_main_process(tmp_path) -> None:
    records = [rec("v0", "a"), rec("bad1", "b"), rec("v2", "c"), rec("bad3", "d")]
    log = tmp_path / "skips.jsonl"
    ds = PairDataset(records, StubSampler(), StubTokenizer(), L, "skip", skip_log=log)
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=ds.collate)
    batches = list(loader)
    assert [b["caption_index"].tolist() for b in batches] == [[0], [2]]
    assert ds.num_skipped == 0  # the workers counted them, not this process ...
    assert sorted(ds.skipped) == ["/data/bad1.mp4", "/data/bad3.mp4"]  # ... but the log has them
