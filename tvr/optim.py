"""Optimisers and the learning-rate schedule of the training recipe (methods.md §1.4).

- ``adamw``: torch AdamW with bias correction (the modern default).
- ``bertadam_legacy``: the CLIP4Clip-family "BertAdam": Adam without bias correction and with a
  per-parameter gradient-norm clip of 1.0, kept to reproduce published recipes.

Parameter groups: backbone (``encoder.*``) at ``train.clip_lr``, everything else (heads,
objectives, logit scale) at ``train.lr``, and named prefixes in groups of their own (DRGI's
``drgi.lr``); biases, norms, embeddings and scalars take no weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from tvr.config import TrainConfig


def _no_decay(name: str, p: nn.Parameter) -> bool:
    lname = name.lower()
    return (
        p.ndim < 2
        or lname.endswith(".bias")
        or "norm" in lname
        or "embedding" in lname
        or "logit_scale" in lname
    )


def param_groups(
    model: nn.Module, cfg: TrainConfig, own_groups: Mapping[str, float] | None = None
) -> list[dict]:
    """Groups {backbone, new, each own group} x {decay, no decay}; empty groups are left out.

    Args:
        model: the model; only parameters that require a gradient are grouped.
        cfg: learning rates and weight decay.
        own_groups: parameter-name prefix -> learning rate of a group of its own (e.g.
            ``{"objectives.drgi.": 1e-2}``); the group is named after the prefix's last part.
    """
    own = dict(own_groups or {})
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    lrs: dict[str, float] = {"backbone": cfg.clip_lr, "new": cfg.lr}
    for prefix, lr in own.items():
        lrs[prefix.rstrip(".").rsplit(".", 1)[-1]] = lr
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = "backbone" if name.startswith("encoder.") else "new"
        for prefix in own:
            if name.startswith(prefix):
                kind = prefix.rstrip(".").rsplit(".", 1)[-1]
        groups.setdefault((kind, _no_decay(name, p)), []).append(p)
    out = []
    for (kind, no_decay), params in sorted(groups.items()):
        out.append(
            {
                "params": params,
                "lr": lrs[kind],
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                "group": f"{kind}/{'no_decay' if no_decay else 'decay'}",
            }
        )
    return out


class BertAdam(torch.optim.Optimizer):
    """Adam without bias correction, with decoupled weight decay and a per-parameter clip.

    Reproduces the CLIP4Clip-family optimiser: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr * (m / (sqrt(v) + eps) + wd * p)`` where ``g`` is first clipped to norm
    ``max_grad_norm`` per parameter.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        max_grad_norm=max_grad_norm)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["max_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_([p], group["max_grad_norm"])
                    g = p.grad
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                update = m / (v.sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update = update + group["weight_decay"] * p
                p.add_(update, alpha=-group["lr"])
        return loss


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, own_groups: Mapping[str, float] | None = None
) -> torch.optim.Optimizer:
    """AdamW or the legacy BertAdam over :func:`param_groups`."""
    groups = param_groups(model, cfg, own_groups)
    if cfg.optim == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.optim == "bertadam_legacy":
        return BertAdam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    raise ValueError(f"train.optim={cfg.optim!r}: expected 'adamw' or 'bertadam_legacy'")


def warmup_cosine(step: int, total_steps: int, warmup: float) -> float:
    """LR factor at ``step``: linear warm-up over ``warmup`` of the run, then cosine.

    As in the CLIP4Clip recipe the cosine runs over the whole run and is not re-based after
    warm-up: ``x = step / total``; ``x / warmup`` for ``x < warmup`` else ``0.5 (1 + cos(pi x))``.
    """
    if total_steps <= 0:
        return 1.0
    x = step / total_steps
    if warmup > 0 and x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(x, 1.0)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup: float
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, total_steps, warmup)
    )
