"""Text-to-frame weights: each caption's distribution over the frames of its ground-truth video.

For every run (base and DRGI alike), with ``s`` = the run's logit scale ``exp(logit_scale)``
as inverse temperature:

* heads with word-frame interaction and token weights (WTI): ``p_j = sum_i w_i
  softmax_j(s * A_ij)`` where ``A = head.token_similarity`` (word-by-frame cosines) and ``w``
  the head's word weights: each word spreads its weight over the frames it matches, and
  ``s -> inf`` recovers WTI's ``max`` (each word's weight on its best frame).
* other heads: ``p_j = softmax_j(s * cos(t, v_j))`` with ``t`` the caption's pooled vector and
  ``v_j`` the frame tokens of the head-embedded video.

Padded frames get 0; rows sum to 1 over valid frames. A bundle stores them in
``text_frame.npy`` and the rule in ``meta.json`` (:func:`text_frame_meta`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from analysis.bundle import TextFrameMeta
from tvr.models.features import TokenFeatures


def _masked_softmax(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits.float().masked_fill(~valid, float("-inf")), dim=-1)
    return torch.where(valid, probs, 0.0)


@torch.no_grad()
def text_frame_weights(
    head: nn.Module,
    text: TokenFeatures,
    video: TokenFeatures,
    text_to_video: np.ndarray,
    scale: float,
    *,
    batch: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, str]:
    """Each caption's weights over the frames of its ground-truth video (see the module docstring).

    Args:
        head: the run's similarity head (``token_similarity`` is used when the head declares
            ``token_scores`` and the text features carry token weights).
        text, video: head-embedded features of the split.
        text_to_video: ``[Nt]`` column of each caption's video.
        scale: inverse temperature (the run's ``exp(logit_scale)``).

    Returns:
        (``[Nt, T]`` float32, rows summing to 1 over valid frames; the rule's name,
        ``"word_softmax_mixture"`` or ``"pooled_cosine_softmax"``).

    Shapes:
        text ``[Nt, L, D]``, video ``[Nv, T, D]``, text_to_video ``[Nt]`` -> ``[Nt, T]``
    """
    use_words = head.token_scores and text.weights is not None
    out = np.zeros((len(text), video.tokens.shape[1]), dtype=np.float32)
    t2v = torch.as_tensor(np.asarray(text_to_video), dtype=torch.long)
    for a in tqdm(range(0, len(text), batch), desc="text-to-frame", disable=not progress,
                  leave=False):
        t = text[a : a + batch].to(device)
        v = video[t2v[a : a + batch]].to(device)
        frames = v.mask.bool()  # [K, T]
        if use_words:
            sims = head.token_similarity(t, v)  # [K, L, T]
            per_word = _masked_softmax(scale * sims, frames[:, None, :])  # [K, L, T]
            words = t.mask.bool()[..., None]
            weights = t.weights.float()[..., None]  # type: ignore[union-attr]
            probs = torch.where(words, weights * per_word, 0.0).sum(1)  # [K, T]
            probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-12)
        else:
            cos = torch.einsum(
                "kd,ktd->kt",
                nn.functional.normalize(t.pooled.float(), dim=-1),
                nn.functional.normalize(v.tokens.float(), dim=-1),
            )
            probs = _masked_softmax(scale * cos, frames)
        out[a : a + batch] = probs.cpu().numpy()
    return out, ("word_softmax_mixture" if use_words else "pooled_cosine_softmax")



def text_frame_meta(rule: str, scale: float) -> TextFrameMeta:
    """The ``meta.json`` entry of the weights computed by ``rule`` at inverse temperature
    ``scale``."""
    definition = (
        "p_j = sum_i w_i softmax_j(s * A_ij), A = head.token_similarity, w = word weights"
        if rule == "word_softmax_mixture"
        else "p_j = softmax_j(s * cos(pooled text, frame token j))"
    )
    return TextFrameMeta(
        rule=rule,
        temperature=1.0 / scale,
        inverse_temperature=scale,
        definition=f"{definition}; s = exp(logit_scale); over the valid frames of the "
                   "caption's ground-truth video",
    )

