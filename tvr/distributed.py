"""torchrun environment, rank helpers and an all-gather that carries gradients.

One code path serves a single process and ``torchrun --nproc_per_node N``: when ``WORLD_SIZE``
is unset (or 1) no process group is created and every helper here acts as the identity
(``all_gather_with_grad(x) is x``, ``all_gather_object(o) == [o]``, ``barrier()`` returns).

Gradient convention of :func:`all_gather_with_grad` (decided here; methods.md §1.3 describes
the CLIP4Clip variant):

- Forward: every rank receives the concatenation of all ranks' tensors along dim 0, in rank
  order (per-rank batch sizes may differ).
- Backward: the incoming gradient of the gathered tensor is **all-reduced (summed) over ranks**
  and each rank keeps its own slice. No further scaling.

Why that is exact. Let rank r compute a loss ``L_r`` from the gathered batch. After the
all-reduce, the gradient each rank keeps for its local rows is ``d(sum_r L_r)/dx_local``, so
summing the per-rank parameter gradients over ranks gives ``d(sum_r L_r)/dtheta`` (parameters
used directly in the loss, such as ``logit_scale``, contribute ``dL_r/dtheta`` on each rank).
DDP divides that sum by ``W = world_size``: the update is ``d((1/W) sum_r L_r)/dtheta``. When
every rank computes the same global loss ``L`` over the full gathered batch (the usual B x B
contrastive loss), that is ``d(W L / W)/dtheta = dL/dtheta``: **the 2-process DDP gradient
equals the single-process gradient on the full batch** (extra factor 1, whatever the per-rank
batch sizes; tests/test_distributed.py checks it with batches of 3 and 5). The CLIP4Clip
family instead returns only the local slice without the all-reduce, which makes the DDP
gradient of every parameter reached through the gathered features ``1/W`` of the true one
(harmless under Adam, wrong for SGD and gradient norms); ``local_grad_only=True`` reproduces
it.

All ranks must call the collectives here in the same order, and every rank must back-propagate
through the gathered tensor (the backward pass holds a collective).
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "gloo", "nccl")
_MAX_NDIM = 15  # largest tensor rank all_gather_with_grad can check across ranks


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------


def _env_int(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = environ.get(name)
    if raw is None:
        if default is None:
            raise RuntimeError(
                f"environment variable {name} is not set but WORLD_SIZE is; launch with "
                f"torchrun (which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)"
            )
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r}: expected an integer") from None


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a torchrun job.

    Attributes:
        rank: global rank, 0..world_size-1.
        local_rank: rank on this machine (selects the CUDA device under nccl).
        world_size: number of processes (1 = single process, no process group).
        backend: ``"gloo"`` / ``"nccl"`` once a process group is initialised, else None.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that logs, evaluates and writes checkpoints)."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def device(self) -> torch.device:
        """``cuda:<local_rank>`` under nccl, otherwise the CPU."""
        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        """Read ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` (as set by torchrun).

        ``WORLD_SIZE`` unset means a single process. ``LOCAL_RANK`` defaults to ``RANK``.

        Raises:
            RuntimeError: ``WORLD_SIZE`` is set but ``RANK`` is not.
            ValueError: a non-integer or out-of-range value, naming the variable.
        """
        environ = os.environ if environ is None else environ
        if environ.get("WORLD_SIZE") is None:
            return cls()
        world_size = _env_int(environ, "WORLD_SIZE")
        if world_size < 1:
            raise ValueError(f"environment variable WORLD_SIZE={world_size}: expected >= 1")
        rank = _env_int(environ, "RANK")
        local_rank = _env_int(environ, "LOCAL_RANK", default=rank)
        if not 0 <= rank < world_size:
            raise ValueError(
                f"environment variable RANK={rank}: expected 0..{world_size - 1} "
                f"(WORLD_SIZE={world_size})"
            )
        if not 0 <= local_rank < world_size:
            raise ValueError(
                f"environment variable LOCAL_RANK={local_rank}: expected 0..{world_size - 1} "
                f"(WORLD_SIZE={world_size})"
            )
        return cls(rank=rank, local_rank=local_rank, world_size=world_size)


def env_from_environ(environ: Mapping[str, str] | None = None) -> DistEnv:
    """:meth:`DistEnv.from_env` as a function: read torchrun's variables, create no group."""
    return DistEnv.from_env(environ)


def resolve_backend(backend: str = "auto") -> str:
    """``"auto"`` -> ``"nccl"`` when CUDA is available, else ``"gloo"``; validate the rest."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError(
            "backend 'nccl' needs CUDA, but torch.cuda.is_available() is False; use gloo"
        )
    return backend


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_distributed(backend: str = "auto", *, timeout_s: float = 1800.0) -> DistEnv:
    """Initialise the default process group from torchrun's environment variables.

    A single process (``WORLD_SIZE`` unset or 1) creates no group and returns
    ``DistEnv(rank=0, local_rank=0, world_size=1)``. Otherwise the group is created with
    ``init_method="env://"`` (``MASTER_ADDR``/``MASTER_PORT``); under nccl the current CUDA
    device is set to ``local_rank``. Calling it again after success returns the same env.

    Args:
        backend: ``"auto"`` (nccl on CUDA, gloo on CPU), ``"gloo"`` or ``"nccl"``.
        timeout_s: collective timeout in seconds.

    Raises:
        ValueError / RuntimeError: bad environment variables, a missing rendezvous address, an
            unknown backend, or ``local_rank`` beyond the visible CUDA devices.
    """
    env = DistEnv.from_env()
    if env.world_size == 1:
        logger.debug("single process: no process group")
        return env
    name = resolve_backend(backend)
    if _initialized():
        current = (dist.get_rank(), dist.get_world_size())
        if current != (env.rank, env.world_size):
            raise RuntimeError(
                f"a process group already exists with (rank, world_size)={current}, but the "
                f"environment says {(env.rank, env.world_size)}"
            )
        return DistEnv(env.rank, env.local_rank, env.world_size, str(dist.get_backend()))
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={env.world_size} but {', '.join(missing)} not set; launch with torchrun "
            f"or set the rendezvous address"
        )
    if name == "nccl":
        n_dev = torch.cuda.device_count()
        if env.local_rank >= n_dev:
            raise RuntimeError(
                f"LOCAL_RANK={env.local_rank} but only {n_dev} CUDA devices are visible"
            )
        torch.cuda.set_device(env.local_rank)
    dist.init_process_group(
        backend=name,
        init_method="env://",
        rank=env.rank,
        world_size=env.world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    logger.info(
        "process group ready: rank %d/%d (local %d), backend %s",
        env.rank,
        env.world_size,
        env.local_rank,
        name,
    )
    return DistEnv(env.rank, env.local_rank, env.world_size, name)


def cleanup() -> None:
    """Destroy the default process group, if any."""
    if _initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    """Global rank (0 without a process group)."""
    return dist.get_rank() if _initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if _initialized() else 1


def is_main() -> bool:
    """True on rank 0 and in a single process."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if get_world_size() > 1:
        dist.barrier()


# --------------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------------


def all_gather_object(obj: Any) -> list[Any]:
    """Gather one picklable object per rank into a list in rank order (``[obj]`` alone).

    The objects come from the job's own ranks (trusted); do not use this for untrusted data.
    """
    if get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (``obj`` itself in a single process)."""
    world = get_world_size()
    if not 0 <= src < world:
        raise ValueError(f"src: expected a rank in 0..{world - 1}, got {src}")
    if world == 1:
        return obj
    box = [obj if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


# --------------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------------


def local_slice(batch_local: int | Sequence[int], rank: int | None = None) -> slice:
    """Rows of ``rank``'s items inside a batch gathered along dim 0.

    Args:
        batch_local: the per-rank batch size when all ranks hold the same number of items,
            or the list of per-rank sizes (as returned by :func:`gather_sizes`).
        rank: the rank (default: this process's).

    Returns:
        ``slice(start, stop)`` into the gathered batch.
    """
    r = get_rank() if rank is None else rank
    if isinstance(batch_local, int):
        if batch_local < 0:
            raise ValueError(f"batch_local: expected a size >= 0, got {batch_local}")
        if r < 0:
            raise ValueError(f"rank: expected >= 0, got {r}")
        return slice(r * batch_local, (r + 1) * batch_local)
    sizes = [int(n) for n in batch_local]
    if any(n < 0 for n in sizes):
        raise ValueError(f"batch_local: expected sizes >= 0, got {sizes}")
    if not 0 <= r < len(sizes):
        raise ValueError(f"rank: expected 0..{len(sizes) - 1} for {len(sizes)} sizes, got {r}")
    start = sum(sizes[:r])
    return slice(start, start + sizes[r])


def _shape_code(x: torch.Tensor) -> torch.Tensor:
    """``[2 + _MAX_NDIM]`` int64: dtype code, ndim, then the shape padded with -1."""
    if x.dim() == 0 or x.dim() > _MAX_NDIM:
        raise ValueError(
            f"all_gather_with_grad: expected a tensor with 1..{_MAX_NDIM} dims (batch first), "
            f"got shape {tuple(x.shape)}"
        )
    code = [zlib.crc32(str(x.dtype).encode()), x.dim(), *x.shape]
    code += [-1] * (2 + _MAX_NDIM - len(code))
    return torch.tensor(code, dtype=torch.int64, device=x.device)


def _gather_shapes(x: torch.Tensor) -> list[tuple[int, ...]]:
    """Every rank's shape of ``x``; raise the same clear error on every rank on a mismatch."""
    mine = _shape_code(x)
    codes = [torch.empty_like(mine) for _ in range(get_world_size())]
    dist.all_gather(codes, mine)
    shapes: list[tuple[int, ...]] = []
    dtypes = []
    for c in codes:
        vals = c.tolist()
        dtypes.append(vals[0])
        shapes.append(tuple(vals[2 : 2 + vals[1]]))
    if len(set(dtypes)) != 1:
        raise ValueError(
            f"all_gather_with_grad: ranks pass different dtypes (this rank: {x.dtype}); "
            f"all ranks must gather the same dtype"
        )
    trailing = {s[1:] for s in shapes}
    if len(trailing) != 1:
        raise ValueError(
            f"all_gather_with_grad: ranks pass tensors whose non-batch dims differ: shapes by "
            f"rank {shapes}; only dim 0 may differ"
        )
    return shapes


def gather_sizes(n: int, device: torch.device | str = "cpu") -> list[int]:
    """Every rank's local batch size, in rank order (``[n]`` in a single process).

    Under nccl pass the CUDA ``device``.
    """
    if get_world_size() == 1:
        return [int(n)]
    mine = torch.tensor([int(n)], dtype=torch.int64, device=device)
    out = [torch.empty_like(mine) for _ in range(get_world_size())]
    dist.all_gather(out, mine)
    return [int(t.item()) for t in out]


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's tensor along dim 0; see the module docstring for the backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, sizes: tuple[int, ...], rank: int, reduce_grad: bool
    ) -> torch.Tensor:
        ctx.sizes, ctx.rank, ctx.reduce_grad = sizes, rank, reduce_grad
        largest = max(sizes)
        x = x.contiguous()
        if x.shape[0] < largest:  # gloo and nccl all_gather need equal shapes: pad, then trim
            pad = x.new_zeros((largest - x.shape[0], *x.shape[1:]))
            x = torch.cat([x, pad], dim=0)
        buffers = [torch.empty_like(x) for _ in sizes]
        dist.all_gather(buffers, x)
        return torch.cat([buf[:n] for buf, n in zip(buffers, sizes)], dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        grad = grad.contiguous()
        if ctx.reduce_grad:
            grad = grad.clone()
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        rows = local_slice(list(ctx.sizes), ctx.rank)
        return grad[rows], None, None, None


def all_gather_with_grad(
    x: torch.Tensor, *, sizes: Sequence[int] | None = None, local_grad_only: bool = False
) -> torch.Tensor:
    """All-gather along dim 0 with a gradient path back to every rank's local tensor.

    Forward: the concatenation of all ranks' ``x`` in rank order; the local rows are at
    ``local_slice(sizes)``. Backward (default): the incoming gradient is summed over ranks and
    the local slice returned, so that after DDP's gradient averaging the update equals the
    single-process gradient of the same global batch when every rank computes the same loss
    (see the module docstring for the derivation). ``local_grad_only=True`` skips the sum (the
    CLIP4Clip convention: the net gradient is then ``1/world_size`` of the true one).

    In a single process this returns ``x`` itself.

    Args:
        x: the local batch; only dim 0 may differ between ranks.
        sizes: every rank's ``x.shape[0]`` when the caller knows them; otherwise shapes are
            gathered first (one small extra collective) and checked for consistency.
        local_grad_only: reproduce the CLIP4Clip backward (no all-reduce).

    Shapes:
        x: ``[B_r, *]`` on rank r; returns ``[sum_r B_r, *]``.

    Raises:
        ValueError: ranks disagree on the non-batch dims or dtype (raised on every rank), or
            ``sizes`` does not fit ``x`` / the world size.
    """
    world = get_world_size()
    if world == 1:
        return x
    rank = get_rank()
    if sizes is None:
        all_sizes = tuple(s[0] for s in _gather_shapes(x))
    else:
        all_sizes = tuple(int(n) for n in sizes)
        if len(all_sizes) != world or all_sizes[rank] != x.shape[0]:
            raise ValueError(
                f"all_gather_with_grad: sizes={list(all_sizes)} does not fit world_size={world} "
                f"and this rank's ({rank}) batch of {x.shape[0]}"
            )
    return _AllGatherWithGrad.apply(x, all_sizes, rank, not local_grad_only)
