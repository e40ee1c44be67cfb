"""Gradient clipping with DRGI's own group, and per-term gradient diagnostics.

- :class:`GradClipper`: the global ``train.grad_clip`` over every trainable parameter, except
  those exempted (DRGI's with ``drgi.clip >= 0``), which are clipped on their own. Under the
  global clip DRGI's gradients are scaled with the base model's (pre-clip norms 5-160 on the demo)
  and fall below Adam's eps (shared/notes/drgi_feasibility.md).
- :func:`term_grad_norms`: gradient norm of the DRGI term and of the rest of the loss on the
  parameters they share (backbone and head), logged on log steps.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tvr.config import ExperimentConfig

DRGI_PREFIX = "objectives.drgi."  # parameter-name prefix of the DRGI objective
SHARED_PREFIXES = ("encoder.", "head.")  # what the base loss and DRGI both reach


def drgi_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Trainable parameters of the model's DRGI objective (empty without DRGI)."""
    return [p for n, p in model.named_parameters() if n.startswith(DRGI_PREFIX) and p.requires_grad]


def _total_norm(params: list[nn.Parameter]) -> Tensor:
    """The 2-norm of the parameters' gradients, as ``clip_grad_norm_`` computes it (0 when
    none has a gradient)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


def _norm(grads: list[Tensor | None]) -> float:
    total = sum(float(g.detach().float().pow(2).sum()) for g in grads if g is not None)
    return math.sqrt(total)


class GradClipper:
    """Clip gradients after ``backward`` (and ``GradScaler.unscale_``).

    Args:
        model: the (unwrapped) model.
        cfg: ``train.grad_clip`` (0 = off) and ``drgi.clip`` (-1: DRGI under the global clip;
            0: exempt and unclipped; > 0: exempt, clipped to that norm on its own).
        exempt: parameters left out of the global clip (DRGI's when ``drgi.clip >= 0``).
    """

    def __init__(self, model: nn.Module, cfg: ExperimentConfig, exempt: list[nn.Parameter]) -> None:
        ids = {id(p) for p in exempt}
        self.main = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        # DRGI's parameters under the global clip join its norm through hypot, so that at
        # zero DRGI gradient the norm is the base model's to the last bit (a longer norm
        # reduction rounds differently, and the rounding grows into a different run)
        drgi_ids = {id(p) for p in drgi_parameters(model)}
        self.main_base = [p for p in self.main if id(p) not in drgi_ids]
        self.main_drgi = [p for p in self.main if id(p) in drgi_ids]
        self.own = list(exempt)
        self.global_clip = float(cfg.train.grad_clip)
        self.own_clip = float(cfg.settings("drgi").clip)

    @property
    def active(self) -> bool:
        """Whether :meth:`clip` has anything to do (a clip to apply or a norm to report)."""
        return self.global_clip > 0 or bool(self.own)

    def clip(self) -> dict[str, float]:
        """Clip in place; returns ``grad_norm`` (pre-clip, global group) and, with an own DRGI
        group, ``drgi_grad_norm`` (pre-clip)."""
        report: dict[str, float] = {}
        if self.global_clip > 0:
            total = _total_norm(self.main_base)
            if self.main_drgi:
                total = torch.hypot(total, _total_norm(self.main_drgi).to(total.device))
            torch.nn.utils.clip_grads_with_norm_(self.main, self.global_clip, total)
            report["grad_norm"] = float(total)
        if self.own:
            if self.own_clip > 0:
                report["drgi_grad_norm"] = float(
                    torch.nn.utils.clip_grad_norm_(self.own, self.own_clip))
            else:
                report["drgi_grad_norm"] = _norm([p.grad for p in self.own])
        return report


def term_grad_norms(model: nn.Module, terms: dict[str, Tensor]) -> dict[str, float]:
    """Gradient norms of the DRGI term and of every other loss term on the shared parameters.

    Runs two extra backward passes over the retained graph (call it on log steps only, before
    the step's own ``backward``).

    Returns:
        ``grad_shared_drgi``, ``grad_shared_base`` and their ratio ``grad_shared_ratio``, and
        ``grad_shared_dominant``: the share of the shared parameters' elements where DRGI's
        gradient is larger in magnitude than the base loss's. Adam normalises each element's
        step, so on those elements DRGI steers the update however small its norm ratio is
        (e.g. embedding rows of tokens the base loss hardly reads).
    """
    shared = [p for n, p in model.named_parameters()
              if p.requires_grad and n.startswith(SHARED_PREFIXES)]
    drgi = terms.get("drgi_loss")
    rest = [v for k, v in terms.items() if k != "drgi_loss"]
    if drgi is None or not rest or not shared:
        return {}
    base = torch.stack([r.float() for r in rest]).sum()
    g_drgi = torch.autograd.grad(drgi, shared, retain_graph=True, allow_unused=True)
    g_base = torch.autograd.grad(base, shared, retain_graph=True, allow_unused=True)
    n_drgi, n_base = _norm(list(g_drgi)), _norm(list(g_base))
    dominant = sum(
        int((_abs(gd, p) > _abs(gb, p)).sum()) for gd, gb, p in zip(g_drgi, g_base, shared,
                                                                    strict=True)
    )
    return {
        "grad_shared_drgi": n_drgi,
        "grad_shared_base": n_base,
        "grad_shared_ratio": n_drgi / n_base if n_base > 0 else math.nan,
        "grad_shared_dominant": dominant / sum(p.numel() for p in shared),
    }


def _abs(grad: Tensor | None, param: nn.Parameter) -> Tensor:
    """``|grad|`` (zeros shaped like ``param`` when the term does not reach it)."""
    return torch.zeros_like(param) if grad is None else grad.detach().abs()
