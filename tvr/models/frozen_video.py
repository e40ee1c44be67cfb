"""Cached features of a frozen vision tower, for training from fixed frame features.

With ``model.freeze_vision`` (or ``model.freeze_backbone``) the vision tower's output for a
training video never changes: frame sampling is deterministic (segment centres) and the tower
gets no gradient. ``train.cache_video_features`` then encodes every training video once
(:func:`encode_frozen_videos`) and the training loop looks the features up by ``video_index``
instead of decoding and encoding the frames at every step (``batch["video_features"]``, read by
:meth:`tvr.retriever.Retriever.forward`). The tower runs in eval mode for the cache, as
at inference; a tower with active dropout would see none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm

from tvr.data.dataset import PairDataset, VideoDataset
from tvr.models.features import TokenFeatures

log = logging.getLogger(__name__)


@dataclass
class FrozenVideoFeatures:
    """Encoder video features of every video of a training split, indexed by ``video_index``.

    Shapes:
        tokens: ``[V, T, D]``; mask: ``[V, T]``; pooled: ``[V, D]``.
        unavailable: ``video_index`` -> why the video could not be decoded (``skip`` policy).
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor
    unavailable: dict[int, str]

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def lookup(self, video_index: Tensor) -> TokenFeatures:
        """Features of a batch ``[B]`` of video indices -> TokenFeatures ``[B, T, D]``."""
        idx = video_index.to(self.tokens.device, torch.long)
        missing = [i for i in idx.tolist() if i in self.unavailable] if self.unavailable else []
        if missing:
            raise KeyError(f"no cached features for video_index {missing[:10]} (failed to decode)")
        return TokenFeatures(tokens=self.tokens[idx], mask=self.mask[idx], pooled=self.pooled[idx])


def check_frozen(model: nn.Module) -> None:
    """Raise unless no vision-tower parameter of ``model.encoder`` requires a gradient."""
    trainable = [p for p in model.encoder.vision_parameters() if p.requires_grad]
    if trainable:
        raise ValueError(
            "train.cache_video_features=true needs a frozen vision tower: set "
            "model.freeze_vision=true (or model.freeze_backbone=true); "
            f"{sum(p.numel() for p in trainable)} vision parameters would train"
        )


@torch.no_grad()
def encode_frozen_videos(
    encoder: nn.Module,
    dataset: PairDataset,
    *,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    progress: bool = True,
) -> FrozenVideoFeatures:
    """Encode each video of ``dataset`` once with ``encoder.encode_video`` (eval mode).

    Videos that fail to decode follow the dataset's ``on_decode_error`` policy: ``raise``
    propagates, ``skip`` leaves them in ``unavailable`` (and in the dataset's skip log), and
    :meth:`PairDataset.use_cached_videos` makes their pairs :class:`SkippedItem` s.

    Returns:
        the features on ``device``, float32.
    """
    videos = VideoDataset(dataset.records, dataset.sampler,
                          on_decode_error=dataset.on_decode_error, skip_log=dataset.skip_log)
    n = len(videos)
    loader = torch.utils.data.DataLoader(
        videos, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        collate_fn=videos.collate,
    )
    was_training = encoder.training
    encoder.eval()
    tokens = mask = pooled = None
    seen = torch.zeros(n, dtype=torch.bool)
    try:
        for batch in tqdm(loader, desc="frozen video features", disable=not progress,
                          leave=False):
            if batch is None:
                continue
            f = encoder.encode_video(batch["video"].to(device), batch["video_mask"].to(device))
            if tokens is None:
                t, d = f.tokens.shape[1:]
                tokens = torch.zeros(n, t, d, device=device)
                mask = torch.zeros(n, t, dtype=f.mask.dtype, device=device)
                pooled = torch.zeros(n, d, device=device)
            seen[batch["video_index"]] = True
            index = batch["video_index"].to(device)
            tokens[index] = f.tokens.float()
            mask[index] = f.mask
            pooled[index] = f.pooled.float()
    finally:
        encoder.train(was_training)
    if tokens is None:
        raise RuntimeError(f"none of the {n} training videos could be decoded; see the skip log")
    reasons = videos.skip_reasons
    unavailable = {
        v: reasons.get(str(videos.split.videos[v].video_path), "failed to decode")
        for v in (~seen).nonzero().flatten().tolist()
    }
    log.info("cached frozen features of %d videos (%d unavailable): tokens %s",
             n - len(unavailable), len(unavailable), tuple(tokens.shape))
    return FrozenVideoFeatures(tokens, mask, pooled, unavailable)
