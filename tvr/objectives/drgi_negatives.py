"""DRGI's corrupted graphs: hard negatives mined on the detached base similarity, or drawn at
random / semi-hard, never from the anchor's own video (methods.md §9.3, §9.9)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# --------------------------------------------------------------------------------------------
# Hard-negative mining
# --------------------------------------------------------------------------------------------


@dataclass
class HardNegatives:
    """Mined hard negatives of a set of anchor pairs.

    Shapes:
        anchors: ``[A]`` row indices of the anchor pairs.
        video: ``[A, m]`` hardest videos ``j*(i)`` for text i (hardest first).
        text: ``[A, m]`` hardest texts ``k*(i)`` for video i.
        valid: ``[A, m]`` bool; False where the candidate set had fewer than m members
            (the index there is a placeholder, the anchor itself).
    """

    anchors: Tensor
    video: Tensor
    text: Tensor
    valid: Tensor

    @property
    def anchor_valid(self) -> Tensor:
        """``[A]`` bool: anchors with at least one candidate (the others are skipped)."""
        return self.valid.any(dim=-1)

    @property
    def skipped(self) -> int:
        """Number of anchors whose candidate set was empty."""
        return int((~self.anchor_valid).sum())


def _candidates(
    sim: Tensor, video_index: Tensor, anchors: Tensor | slice | None, exclude_same_video: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Anchor rows ``[A]``, the detached float similarity ``[B, B]`` and ``Cand(i)`` ``[A, B]``
    (bool: another video, or with ``exclude_same_video=False`` any other pair)."""
    b = sim.shape[0]
    all_rows = torch.arange(b, device=sim.device)
    anchor_idx = all_rows if anchors is None else all_rows[anchors]  # [A]
    vid = video_index.to(sim.device)
    if exclude_same_video:
        cand = vid[None, :] != vid[anchor_idx][:, None]  # [A, B]
    else:
        cand = all_rows[None, :] != anchor_idx[:, None]
    return anchor_idx, sim.detach().float(), cand


def mine_negatives(
    sim: Tensor,
    video_index: Tensor,
    topm: int = 1,
    anchors: Tensor | slice | None = None,
    exclude_same_video: bool = True,
) -> HardNegatives:
    """Hardest negatives per anchor pair on a detached square similarity (methods.md §9.3).

    ``Cand(i) = {j : vid(j) != vid(i)}`` (or ``{j != i}`` without ``exclude_same_video``);
    ``j*(i)`` are the top-m of row ``S[i, Cand]`` (videos for text i) and ``k*(i)`` the top-m of
    column ``S[Cand, i]`` (texts for video i).

    Args:
        sim: ``[B, B]`` scores of pair-aligned texts (rows) and videos (columns); detached here.
        video_index: ``[B]`` video id of each pair.
        topm: negatives per anchor and direction (>= 1).
        anchors: rows to mine for (index tensor or slice); all rows by default.
        exclude_same_video: False only for ablations (then only ``j == i`` is excluded).

    Returns:
        :class:`HardNegatives` whose indices point into the B pairs.
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(
            f"mine_negatives needs a square [B, B] similarity of aligned pairs, got "
            f"{tuple(sim.shape)}"
        )
    b = sim.shape[0]
    if video_index.shape != (b,):
        raise ValueError(
            f"mine_negatives: video_index has shape {tuple(video_index.shape)}, expected ({b},)"
        )
    if topm < 1:
        raise ValueError(f"drgi.neg_topm={topm}: expected at least 1")
    if bool(torch.isnan(sim).any()):
        raise ValueError("mine_negatives: the similarity matrix holds NaN scores")
    device = sim.device
    anchor_idx, s, cand = _candidates(sim, video_index, anchors, exclude_same_video)
    k = min(topm, b)
    neg_inf = float("-inf")
    rows = s[anchor_idx].masked_fill(~cand, neg_inf)  # [A, B]: text i vs videos
    cols = s[:, anchor_idx].T.masked_fill(~cand, neg_inf)  # [A, B]: video i vs texts
    row_idx = rows.topk(k, dim=-1).indices
    col_idx = cols.topk(k, dim=-1).indices
    # Both directions share Cand(i): entry r is a real candidate iff r < |Cand(i)|.
    valid = torch.arange(k, device=device)[None, :] < cand.sum(-1, keepdim=True)  # [A, k]
    placeholder = anchor_idx[:, None].expand(-1, k)
    return HardNegatives(
        anchors=anchor_idx,
        video=torch.where(valid, row_idx, placeholder),
        text=torch.where(valid, col_idx, placeholder),
        valid=valid,
    )


def sample_negatives(
    sim: Tensor,
    video_index: Tensor,
    mode: str,
    anchors: Tensor | slice | None = None,
    exclude_same_video: bool = True,
    semihard_k: int = 8,
) -> HardNegatives:
    """One negative per anchor and direction, drawn from ``Cand(i)`` (methods.md §9.9).

    ``mode="random"``: uniform over the candidates; ``"semihard"``: uniform over the
    ``semihard_k`` highest-scoring candidates; ``"hardest"``: :func:`mine_negatives` with m = 1.
    Uses torch's global generator (:meth:`DRGI.forward` runs it on DRGI's own stream).

    Shapes:
        sim ``[B, B]``, video_index ``[B]`` -> :class:`HardNegatives` with m = 1
    """
    if mode == "hardest":
        return mine_negatives(sim, video_index, 1, anchors, exclude_same_video)
    if mode not in ("random", "semihard"):
        raise ValueError(f"sample_negatives: mode={mode!r}, expected hardest, random or semihard")
    if semihard_k < 1:
        raise ValueError(f"drgi.semihard_k={semihard_k}: expected at least 1")
    b = sim.shape[0]
    device = sim.device
    anchor_idx, s, cand = _candidates(sim, video_index, anchors, exclude_same_video)

    def draw(scores: Tensor) -> Tensor:  # scores [A, B] -> one candidate per row [A]
        allowed = cand
        if mode == "semihard":
            k = min(semihard_k, b)
            top = scores.masked_fill(~cand, float("-inf")).topk(k, dim=-1).indices
            allowed = cand & torch.zeros_like(cand).scatter_(-1, top, True)
        noise = torch.rand(allowed.shape, device=device)
        return noise.masked_fill(~allowed, -1.0).argmax(dim=-1)

    valid = cand.any(dim=-1, keepdim=True)  # [A, 1]
    placeholder = anchor_idx[:, None]
    return HardNegatives(
        anchors=anchor_idx,
        video=torch.where(valid, draw(s[anchor_idx])[:, None], placeholder),
        text=torch.where(valid, draw(s[:, anchor_idx].T)[:, None], placeholder),
        valid=valid,
    )


def negatives_at(mode: str, step: int, curriculum: tuple[int, int]) -> str:
    """The negative mode in force at ``step``: ``curriculum`` runs random -> semihard -> hardest.

    Args:
        mode: ``drgi.negatives``.
        step: optimiser steps done so far.
        curriculum: ``(a, b)``: random before step a, semihard before step b, hardest after.
    """
    if mode != "curriculum":
        return mode
    a, b = curriculum
    if step < a:
        return "random"
    if step < b:
        return "semihard"
    return "hardest"
