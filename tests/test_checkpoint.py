"""Run-folder files: named errors for damaged files, the weights stamp, log truncation."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tests.conftest import tiny_overrides
from tvr.checkpoint import (
    CheckpointError,
    load_pretrained,
    load_train_state,
    load_weights,
    read_weights_stamp,
    save_weights,
    truncate_log,
)
from tvr.config import load_config
from tvr.train import train


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_weights_error_names_the_file(tmp_path, tiny_synthvtt):
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, "t", "train.epochs=1",
                                           "train.eval_after=false"))
    run = train(cfg, progress=False)
    weights = run / "model.safetensors"
    _truncate(weights)
    with pytest.raises(CheckpointError) as exc:
        load_pretrained(run)
    assert str(weights) in str(exc.value) and "truncated or corrupt" in str(exc.value)
    _truncate(run / "train_state.pt")
    with pytest.raises(CheckpointError, match="train_state.pt"):
        load_train_state(run / "train_state.pt")


def test_weights_stamp_round_trip(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(nn.Linear(2, 3), path, stamp={"step": 40, "epoch": 3})
    assert read_weights_stamp(path) == {"step": 40, "epoch": 3}
    assert set(load_weights(path)) == {"weight", "bias"}
    save_weights(nn.Linear(2, 3), path)
    assert read_weights_stamp(path) == {}
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(tmp_path / "missing.safetensors")


def test_truncate_log_drops_steps_past_the_resumed_one(tmp_path):
    log = tmp_path / "log.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 8)]
    log.write_text("\n".join(lines) + "\n" + '{"step": 8, "lo')  # a line cut by a kill
    assert truncate_log(log, 5) == 3
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2, 3, 4, 5]
    before = log.stat().st_mtime_ns
    assert truncate_log(log, 5) == 0 and log.stat().st_mtime_ns == before  # nothing rewritten
    assert truncate_log(tmp_path / "none.jsonl", 0) == 0


def test_train_state_without_step_is_refused(tmp_path):
    path = tmp_path / "train_state.pt"
    torch.save({"optimizer": {}}, path)
    with pytest.raises(CheckpointError, match="not a train state"):
        load_train_state(path)
