"""tvr.distributed: torchrun env parsing, single-process identity, and a real 2-rank gloo run.

The 2-rank test spawns two CPU processes that check all_gather_with_grad's forward values and
that the DDP-averaged gradient of a contrastive loss over the gathered batch equals the
single-process gradient on the full batch (with unequal per-rank batch sizes).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from tvr import distributed as tdist
from tvr.distributed import DistEnv

WORLD = 2
SIZES = (3, 5)  # unequal per-rank batches; global batch 8
IN_DIM, OUT_DIM = 6, 4


# --------------------------------------------------------------------------------------------
# Environment parsing
# --------------------------------------------------------------------------------------------


def test_dist_env_single_process_defaults():
    env = DistEnv.from_env({})
    assert (env.rank, env.local_rank, env.world_size, env.backend) == (0, 0, 1, None)
    assert env.is_main and not env.is_distributed
    assert env.device == torch.device("cpu")


def test_dist_env_from_torchrun_vars():
    env = DistEnv.from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (env.rank, env.local_rank, env.world_size) == (3, 1, 4)
    assert not env.is_main and env.is_distributed
    assert DistEnv.from_env({"WORLD_SIZE": "2", "RANK": "1"}).local_rank == 1
    assert DistEnv(0, 0, 2, "nccl").device == torch.device("cuda", 0)
    assert tdist.env_from_environ({"WORLD_SIZE": "2", "RANK": "1"}) == DistEnv(1, 1, 2)


@pytest.mark.parametrize(
    ("environ", "exc", "match"),
    [
        ({"WORLD_SIZE": "two", "RANK": "0"}, ValueError, "WORLD_SIZE='two': expected an integer"),
        ({"WORLD_SIZE": "2"}, RuntimeError, "RANK is not set"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, ValueError, r"RANK=2: expected 0\.\.1"),
        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "-1"}, ValueError, "LOCAL_RANK=-1"),
        ({"WORLD_SIZE": "0", "RANK": "0"}, ValueError, "WORLD_SIZE=0: expected >= 1"),
    ],
)
def test_dist_env_bad_values(environ, exc, match):
    with pytest.raises(exc, match=match):
        DistEnv.from_env(environ)


def test_resolve_backend(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tdist.resolve_backend("auto") == "gloo"
    assert tdist.resolve_backend("gloo") == "gloo"
    with pytest.raises(ValueError, match="needs CUDA"):
        tdist.resolve_backend("nccl")
    with pytest.raises(ValueError, match="expected one of auto, gloo, nccl"):
        tdist.resolve_backend("mpi")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert tdist.resolve_backend("auto") == "nccl"


# --------------------------------------------------------------------------------------------
# Single process: every helper is the identity
# --------------------------------------------------------------------------------------------


def test_single_process_helpers(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    env = tdist.init_distributed()
    assert env == DistEnv() and not dist.is_initialized()
    assert tdist.get_rank() == 0 and tdist.get_world_size() == 1 and tdist.is_main()
    tdist.barrier()
    assert tdist.all_gather_object({"a": 1}) == [{"a": 1}]
    assert tdist.broadcast_object([1, 2]) == [1, 2]
    with pytest.raises(ValueError, match="src"):
        tdist.broadcast_object(1, src=1)
    assert tdist.gather_sizes(5) == [5]
    x = torch.randn(3, 2, requires_grad=True)
    y = tdist.all_gather_with_grad(x)
    assert y is x
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(3, 2))
    tdist.cleanup()  # no group: nothing to do


def test_init_world_size_one_creates_no_group(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert tdist.init_distributed("gloo") == DistEnv()
    assert not dist.is_initialized()


def test_init_without_rendezvous_address(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(RuntimeError, match="MASTER_ADDR, MASTER_PORT not set"):
        tdist.init_distributed("gloo")
    assert not dist.is_initialized()


def test_local_slice():
    assert tdist.local_slice(4, rank=0) == slice(0, 4)
    assert tdist.local_slice(4, rank=2) == slice(8, 12)
    assert tdist.local_slice(4) == slice(0, 4)  # current rank: 0 without a group
    assert tdist.local_slice([3, 5, 2], rank=1) == slice(3, 8)
    assert tdist.local_slice([3, 5, 2], rank=2) == slice(8, 10)
    with pytest.raises(ValueError, match=r"rank: expected 0\.\.2"):
        tdist.local_slice([3, 5, 2], rank=3)
    with pytest.raises(ValueError, match="batch_local"):
        tdist.local_slice(-1, rank=0)


# --------------------------------------------------------------------------------------------
# Two real processes over gloo
# --------------------------------------------------------------------------------------------


class TwoTower(nn.Module):
    """Two linear towers and a learnable temperature, like a tiny CLIP."""

    def __init__(self) -> None:
        super().__init__()
        self.text = nn.Linear(IN_DIM, OUT_DIM)
        self.video = nn.Linear(IN_DIM, OUT_DIM)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, text: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return F.normalize(self.text(text), dim=-1), F.normalize(self.video(video), dim=-1)


def make_problem() -> tuple[TwoTower, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = TwoTower()
    n = sum(SIZES)
    return model, torch.randn(n, IN_DIM), torch.randn(n, IN_DIM)


def contrastive_loss(model: TwoTower, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the whole (gathered) batch; diagonal positives."""
    logits = model.logit_scale.exp() * t @ v.T  # [B, B]
    target = torch.arange(t.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def reference_grads() -> dict[str, torch.Tensor]:
    model, text, video = make_problem()
    t, v = model(text, video)
    contrastive_loss(model, t, v).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def _worker(rank: int, port: int, out_dir: str) -> None:
    import os

    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    env = tdist.init_distributed("gloo", timeout_s=60)
    try:
        result: dict[str, object] = {
            "env": (env.rank, env.local_rank, env.world_size, env.backend, env.is_main),
            "helpers": (tdist.get_rank(), tdist.get_world_size(), tdist.is_main()),
        }
        assert tdist.init_distributed("gloo") == env  # idempotent
        rows = tdist.local_slice(list(SIZES), rank)

        # forward values: 3-D tensors, unequal batches, sizes gathered or given
        x = torch.full((SIZES[rank], 2, 3), float(rank)) + torch.arange(SIZES[rank]).view(-1, 1, 1)
        result["gathered"] = tdist.all_gather_with_grad(x)
        result["gathered_given_sizes"] = tdist.all_gather_with_grad(x, sizes=SIZES)
        result["sizes"] = tdist.gather_sizes(SIZES[rank])
        result["objects"] = tdist.all_gather_object({"rank": rank})
        result["broadcast"] = tdist.broadcast_object(f"from {rank}", src=1)
        tdist.barrier()

        # mismatched trailing dims: every rank raises the same clear error, nobody hangs
        try:
            tdist.all_gather_with_grad(torch.zeros(2, 3 + rank))
            result["mismatch"] = "no error"
        except ValueError as exc:
            result["mismatch"] = str(exc)

        # gradients: DDP model, gather both towers, same global loss on every rank
        for mode in ("sum", "local"):
            model, text, video = make_problem()
            ddp = DDP(model)
            t, v = ddp(text[rows], video[rows])
            local_only = mode == "local"
            t_all = tdist.all_gather_with_grad(t, local_grad_only=local_only)
            v_all = tdist.all_gather_with_grad(v, local_grad_only=local_only)
            contrastive_loss(model, t_all, v_all).backward()  # DDP averages over ranks
            result[f"grads_{mode}"] = {k: p.grad.clone() for k, p in model.named_parameters()}
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        tdist.cleanup()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("dist")
    mp.start_processes(
        _worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True, start_method="spawn"
    )
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_two_ranks_env_and_objects(two_rank_results):
    for rank, res in enumerate(two_rank_results):
        assert res["env"] == (rank, rank, WORLD, "gloo", rank == 0)
        assert res["helpers"] == (rank, WORLD, rank == 0)
        assert res["sizes"] == list(SIZES)
        assert res["objects"] == [{"rank": 0}, {"rank": 1}]
        assert res["broadcast"] == "from 1"


def test_two_ranks_gather_forward(two_rank_results):
    parts = [
        torch.full((n, 2, 3), float(r)) + torch.arange(n).view(-1, 1, 1)
        for r, n in enumerate(SIZES)
    ]
    expected = torch.cat(parts)
    for res in two_rank_results:
        assert res["gathered"].shape == (sum(SIZES), 2, 3)
        assert torch.equal(res["gathered"], expected)
        assert torch.equal(res["gathered_given_sizes"], expected)


def test_two_ranks_shape_mismatch_raises_everywhere(two_rank_results):
    for res in two_rank_results:
        assert "non-batch dims differ" in res["mismatch"]
        assert "[(2, 3), (2, 4)]" in res["mismatch"]


def test_two_ranks_ddp_gradient_equals_single_process(two_rank_results):
    ref = reference_grads()
    for res in two_rank_results:
        for name, grad in ref.items():
            torch.testing.assert_close(res["grads_sum"][name], grad, rtol=1e-5, atol=1e-6)


def test_two_ranks_local_grad_only_is_one_over_world(two_rank_results):
    ref = reference_grads()
    for res in two_rank_results:
        for name, grad in ref.items():
            if name == "logit_scale":
                # used outside the gather on every rank: DDP averages W identical full grads
                torch.testing.assert_close(res["grads_local"][name], grad, rtol=1e-5, atol=1e-6)
            else:
                torch.testing.assert_close(
                    res["grads_local"][name], grad / WORLD, rtol=1e-5, atol=1e-6
                )
