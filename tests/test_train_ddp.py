"""One code path for one process and DDP: a 2-rank gloo run logs the single-process losses."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch.multiprocessing as mp

from tests.conftest import tiny_overrides
from tvr.config import load_config
from tvr.train import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, overrides: list[str]) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    train(load_config(None, overrides), progress=False)


def _losses(run) -> list[dict]:
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("extra", [["model.head=seqtransf", "drgi.enable=true"]])
def test_two_rank_ddp_matches_single_process(tmp_path, tiny_synthvtt, extra):
    common = [*extra, "train.epochs=1", "train.max_steps=3", "train.eval_after=false"]
    single = train(load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, "single", *common)),
                   progress=False)
    overrides = tiny_overrides(tiny_synthvtt, tmp_path, "ddp", *common)
    mp.start_processes(_worker, args=(2, _free_port(), overrides), nprocs=2, join=True,
                       start_method="spawn")
    a, b = _losses(single), _losses(tmp_path / "ddp")
    assert [x["step"] for x in a] == [x["step"] for x in b] == [1, 2, 3]
    for x, y in zip(a, b):
        # Same global batch, gathered with gradient: the same loss at step 1, and (gradients
        # averaged by DDP equal the single-process gradient) the same losses afterwards.
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4, abs=1e-5)
        assert y["drgi_loss"] == pytest.approx(x["drgi_loss"], rel=1e-4, abs=1e-5)
