"""The token-feature container passed between backbone, heads and objectives."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass
class TokenFeatures:
    """Per-item token embeddings of one modality.

    Shapes:
        tokens: ``[B, N, D]`` word or frame features (padding positions included).
        mask: ``[B, N]`` 1 on valid tokens (SOT..EOT for text, real frames for video).
        pooled: ``[B, D]`` one vector per item (EOT feature for text, frame mean for video).
        weights: optional ``[B, N]`` per-token weights a head attaches (e.g. WTI), else None.
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor
    weights: Tensor | None = None

    def __post_init__(self) -> None:
        if self.tokens.dim() != 3 or self.mask.shape != self.tokens.shape[:2]:
            raise ValueError(
                f"TokenFeatures: tokens {tuple(self.tokens.shape)} and mask "
                f"{tuple(self.mask.shape)} do not agree as [B, N, D] / [B, N]"
            )
        if self.pooled.dim() != 2 or self.pooled.shape[0] != self.tokens.shape[0]:
            raise ValueError(
                f"TokenFeatures: pooled {tuple(self.pooled.shape)} should be [B, D] with "
                f"B = {self.tokens.shape[0]}"
            )

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def map(self, fn) -> TokenFeatures:
        """Apply ``fn`` to every tensor field (e.g. ``.to(device)``, slicing, detach)."""
        return replace(
            self,
            **{
                f.name: (fn(getattr(self, f.name)) if getattr(self, f.name) is not None else None)
                for f in fields(self)
            },
        )

    def __getitem__(self, index) -> TokenFeatures:
        return self.map(lambda t: t[index])

    def to(self, *args, **kwargs) -> TokenFeatures:
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> TokenFeatures:
        return self.map(lambda t: t.detach())

    @staticmethod
    def cat(items: list[TokenFeatures]) -> TokenFeatures:
        """Concatenate along the batch; token lengths must agree."""
        if not items:
            raise ValueError("TokenFeatures.cat needs at least one item")
        has_w = items[0].weights is not None
        return TokenFeatures(
            tokens=torch.cat([x.tokens for x in items]),
            mask=torch.cat([x.mask for x in items]),
            pooled=torch.cat([x.pooled for x in items]),
            weights=torch.cat([x.weights for x in items]) if has_w else None,  # type: ignore[misc]
        )
