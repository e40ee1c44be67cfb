"""Stage 1 of the demo: pretrain the demo backbone and temporal head on SynthVTT's frames.

See :mod:`tvr.demo` for where this stage sits. :func:`frame_targets` reads each sampled train
frame's attributes from ``synthvtt_meta.json``; :func:`pretrain_vision` trains the vision tower
through :class:`AttributeProbes`; :func:`pretrain_temporal` trains the similarity head's temporal
module on the fixed frame features to tell each frame's action; :func:`pretrain_backbone` runs
both and writes the backbone folder (``model.pretrained`` loads it like a run folder).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from tvr.checkpoint import ENCODER, TOKENIZER, WEIGHTS
from tvr.config import ExperimentConfig
from tvr.io import atomic_write_text

log = logging.getLogger(__name__)

PRETRAIN_FILE = "pretrain.json"

# Frame-level targets of the backbone pretraining ("none" = the frame shows no event).
_NONE = "none"


@dataclass(frozen=True)
class PretrainSettings:
    """Stage 1: supervised pretraining of the vision tower, then of the temporal head."""

    vision_epochs: int = 6  # passes over the sampled train frames
    vision_batch_size: int = 256  # frames per step
    vision_lr: float = 3e-3  # AdamW peak learning rate (linear warm-up, then cosine)
    geometry_weight: float = 1.0  # weight of the position/size regression loss
    temporal_epochs: int = 40  # passes over the train videos (frozen frame features)
    temporal_batch_size: int = 32  # videos per step
    temporal_lr: float = 6e-3  # AdamW peak learning rate of the temporal head
    weight_decay: float = 0.05  # decoupled; biases, norms and embeddings exempt
    warmup: float = 0.05  # warm-up fraction of each stage's steps
    seed: int = 0  # seeds the initialisation and the sample order
    log_every: int = 20  # steps between learning-curve points
    eval_split: str = "val"  # held-out split the probes are scored on ("" = none)


# --------------------------------------------------------------------------------------------
# Stage 1: per-frame targets
# --------------------------------------------------------------------------------------------


@dataclass
class FrameTargets:
    """Sampled frames of a split with the ground truth of what each shows.

    Shapes:
        frames: ``[N, S, S, 3]`` uint8, the distinct sampled frames of every video in order.
        video, slot: ``[N]`` int64, the video's row in the split and the frame's position
            among that video's sampled frames.
        colour, shape, action, background: ``[N]`` int64 class indices (colour, shape and
            action have a last class "none" for frames outside every event).
        geometry: ``[N, 3]`` float32 ``(x, y, r)`` of the shape (frame units), NaN off-event.
    """

    frames: np.ndarray
    video: Tensor
    slot: Tensor
    colour: Tensor
    shape: Tensor
    action: Tensor
    background: Tensor
    geometry: Tensor
    num_videos: int
    num_frames: int  # T, the sampler's frames per clip

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def per_video(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """Scatter per-frame ``values [N, ...]`` into ``[V, T, ...]`` (zeros on padding).

        Returns:
            ``(grid [V, T, ...], mask [V, T])`` with mask 1 on sampled frames.
        """
        grid = values.new_zeros((self.num_videos, self.num_frames, *values.shape[1:]))
        grid[self.video, self.slot] = values
        mask = torch.zeros(self.num_videos, self.num_frames, dtype=torch.long)
        mask[self.video, self.slot] = 1
        return grid, mask


def _classes() -> dict[str, tuple[str, ...]]:
    from tvr.data.synthvtt import ACTIONS, BACKGROUNDS, COLOURS, SHAPES

    return {
        "colour": (*COLOURS, _NONE),
        "shape": (*SHAPES, _NONE),
        "action": (*ACTIONS, _NONE),
        "background": tuple(BACKGROUNDS),
    }


# What a single frame shows (the action needs several frames: the temporal head learns it).
_FRAME_CLASSES = ("colour", "shape", "background")


def frame_targets(
    root: str | Path,
    split: str,
    num_frames: int,
    image_size: int,
    *,
    frame_cache: str | Path | None = None,
    progress: bool = True,
) -> FrameTargets:
    """Sample ``num_frames`` frames of every video of ``split`` and label each from the meta file.

    Frames come from :class:`tvr.data.video.FrameSampler` (the same sampling and cache as
    training); a frame at time ``t`` is frame ``round(t * fps)`` of the meta file, whose state
    :func:`tvr.data.synthvtt.frame_states` gives.

    Raises:
        ValueError: a sampled frame index outside the video's frames (meta and video disagree).
    """
    from tvr.data.sources import load_split
    from tvr.data.synthvtt import frame_states, read_meta
    from tvr.data.video import FrameSampler

    meta = read_meta(root)
    fps = float(meta.params.fps)
    index = {k: {name: i for i, name in enumerate(v)} for k, v in _classes().items()}
    sampler = FrameSampler(num_frames, image_size, cache_dir=frame_cache or None)
    records = load_split("synthvtt", root, split)
    frames: list[np.ndarray] = []
    labels: dict[str, list[int]] = {k: [] for k in ("video", "slot", *index)}
    geometry: list[tuple[float, float, float]] = []
    for row, rec in enumerate(tqdm(records, desc=f"frames ({split})", disable=not progress,
                                   leave=False)):
        video = meta.videos[rec.video_id]
        states = frame_states(video)
        decoded = sampler.read_uint8(rec.video_path, rec.start, rec.end)
        for slot, t in enumerate(decoded.timestamps):
            f = int(round(float(t) * fps))
            if not 0 <= f < len(states):
                raise ValueError(
                    f"{rec.video_path}: sampled frame {f} (t={t:.3f} s) is outside the "
                    f"{len(states)} frames that {Path(root) / 'synthvtt_meta.json'} lists"
                )
            st = states[f] or {}
            labels["video"].append(row)
            labels["slot"].append(slot)
            for name in ("colour", "shape", "action"):
                labels[name].append(index[name][st.get(name, _NONE)])
            labels["background"].append(index["background"][video.background])
            geometry.append((st["x"], st["y"], st["r"]) if st else (math.nan,) * 3)
        frames.append(decoded.frames)
    return FrameTargets(
        frames=np.concatenate(frames),
        **{k: torch.tensor(v) for k, v in labels.items()},
        geometry=torch.tensor(geometry, dtype=torch.float32),
        num_videos=len(records),
        num_frames=num_frames,
    )


# --------------------------------------------------------------------------------------------
# Stage 1a: the vision tower
# --------------------------------------------------------------------------------------------


class AttributeProbes(nn.Module):
    """Linear read-outs of a frame feature: colour, shape, background logits and ``(x, y, r)``.

    Shapes:
        forward: features ``[N, D]`` -> dict of logits ``[N, classes]`` and geometry ``[N, 3]``
        (standardised: see :data:`GEOMETRY_CENTRE`, :data:`GEOMETRY_SCALE`).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        classes = _classes()
        self.classifiers = nn.ModuleDict(
            {name: nn.Linear(width, len(classes[name])) for name in _FRAME_CLASSES}
        )
        self.geometry = nn.Linear(width, 3)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        out = {name: fc(features) for name, fc in self.classifiers.items()}
        out["geometry"] = self.geometry(features)
        return out


# x, y in [0, 1] around 0.5; r in [0.07, 0.26] (synthvtt's radii).
GEOMETRY_CENTRE = torch.tensor([0.5, 0.5, 0.15])
GEOMETRY_SCALE = torch.tensor([0.25, 0.25, 0.05])


def probe_losses(
    out: dict[str, Tensor], batch: dict[str, Tensor], geometry_weight: float = 1.0
) -> tuple[Tensor, dict[str, float]]:
    """Cross-entropy on the frame classes plus MSE on the standardised on-event geometry.

    Returns:
        (total loss, report with ``loss``, ``<class>_acc``, ``xy_mae`` and ``r_mae`` in frame
        units).
    """
    report: dict[str, float] = {}
    total = out["geometry"].new_zeros(())
    for name in _FRAME_CLASSES:
        total = total + F.cross_entropy(out[name], batch[name])
        report[f"{name}_acc"] = float((out[name].argmax(-1) == batch[name]).float().mean())
    geo = batch["geometry"]
    on = ~torch.isnan(geo[:, 0])
    if bool(on.any()):
        pred = out["geometry"][on]
        total = total + geometry_weight * F.mse_loss(
            pred, (geo[on] - GEOMETRY_CENTRE) / GEOMETRY_SCALE
        )
        err = (pred.detach() * GEOMETRY_SCALE + GEOMETRY_CENTRE - geo[on]).abs()
        report["xy_mae"] = float(err[:, :2].mean())
        report["r_mae"] = float(err[:, 2].mean())
    report["loss"] = float(total.detach())
    return total, report


def _encode_frames(encoder: nn.Module, frames: np.ndarray) -> Tensor:
    """uint8 frames ``[N, S, S, 3]`` -> projected frame features ``[N, D]``."""
    from tvr.data.video import normalize_frames

    video = normalize_frames(frames).unsqueeze(1)  # [N, 1, 3, S, S]
    mask = torch.ones(video.shape[:2], dtype=torch.long)
    return encoder.encode_video(video, mask).tokens[:, 0]


def _batch(data: FrameTargets, idx: Tensor) -> dict[str, Tensor]:
    batch = {name: getattr(data, name)[idx] for name in _FRAME_CLASSES}
    batch["geometry"] = data.geometry[idx]
    return batch


@torch.no_grad()
def frame_features(encoder: nn.Module, data: FrameTargets, batch_size: int = 512) -> Tensor:
    """Projected features ``[N, D]`` of every frame of ``data`` (eval mode, no gradient)."""
    encoder.eval()
    return torch.cat([_encode_frames(encoder, data.frames[i : i + batch_size])
                      for i in range(0, len(data), batch_size)])


def _adamw(params: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.98), eps=1e-6,
    )


def pretrain_vision(
    encoder: nn.Module,
    data: FrameTargets,
    settings: PretrainSettings,
    *,
    progress: bool = True,
) -> tuple[AttributeProbes, list[dict[str, float]]]:
    """Train the vision tower (and linear probes on its frame features) on ``data``.

    Returns:
        (the probes, the learning curve: one dict per ``settings.log_every`` steps).
    """
    from tvr.optim import build_scheduler

    probes = AttributeProbes(encoder.embed_dim)
    params = [*encoder.vision_parameters(), *probes.parameters()]
    optimizer = _adamw(params, settings.vision_lr, settings.weight_decay)
    per_epoch = len(data) // settings.vision_batch_size
    total = per_epoch * settings.vision_epochs
    scheduler = build_scheduler(optimizer, total, settings.warmup)
    g = torch.Generator().manual_seed(settings.seed)
    curve: list[dict[str, float]] = []
    step, t0 = 0, time.time()
    encoder.train()
    probes.train()
    with tqdm(total=total, desc="pretrain vision", disable=not progress, leave=False) as bar:
        for epoch in range(settings.vision_epochs):
            perm = torch.randperm(len(data), generator=g)
            for i in range(per_epoch):
                idx = perm[i * settings.vision_batch_size : (i + 1) * settings.vision_batch_size]
                feats = _encode_frames(encoder, data.frames[idx.numpy()])
                loss, rep = probe_losses(probes(feats), _batch(data, idx), settings.geometry_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                bar.update()
                bar.set_postfix(loss=f"{rep['loss']:.3f}", shape=f"{rep['shape_acc']:.2f}")
                if step % settings.log_every == 0 or step == total:
                    curve.append({"step": step, "epoch": epoch + 1,
                                  "elapsed_s": round(time.time() - t0, 1),
                                  **{k: round(v, 4) for k, v in rep.items()}})
    return probes, curve


@torch.no_grad()
def score_probes(probes: AttributeProbes, features: Tensor, data: FrameTargets) -> dict[str, float]:
    """Probe accuracies and geometry errors of ``features [N, D]`` against ``data``'s labels."""
    probes.eval()
    _, report = probe_losses(probes(features), _batch(data, torch.arange(len(data))))
    return {k: round(v, 4) for k, v in report.items()}


# --------------------------------------------------------------------------------------------
# Stage 1b: the temporal head
# --------------------------------------------------------------------------------------------


def _action_logits(head: nn.Module, classifier: nn.Linear, feats: Tensor, mask: Tensor) -> Tensor:
    """Frame features ``[B, T, D]`` -> the head's per-frame video tokens -> logits ``[B, T, A]``."""
    from tvr.models.features import TokenFeatures

    w = mask.unsqueeze(-1).to(feats.dtype)
    pooled = (feats * w).sum(1) / w.sum(1)
    tokens = head.embed_video(TokenFeatures(tokens=feats, mask=mask, pooled=pooled)).tokens
    return classifier(tokens)


def _action_loss(logits: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, float]:
    valid = mask.bool()
    loss = F.cross_entropy(logits[valid], target[valid])
    acc = float((logits[valid].argmax(-1) == target[valid]).float().mean())
    return loss, acc


def pretrain_temporal(
    head: nn.Module,
    features: Tensor,
    data: FrameTargets,
    settings: PretrainSettings,
    *,
    progress: bool = True,
) -> tuple[nn.Linear, list[dict[str, float]]]:
    """Train the similarity head's video side to tell each frame's action (or "none").

    A single frame cannot show "moves left" or "grows"; the head's temporal module sees the
    frame's neighbours. Frame features are fixed (the pretrained vision tower's).

    Returns:
        (the action classifier, the learning curve: one dict per epoch).
    """
    from tvr.optim import build_scheduler

    feats, mask = data.per_video(features)  # [V, T, D], [V, T]
    target, _ = data.per_video(data.action)  # [V, T]
    classifier = nn.Linear(features.shape[-1], len(_classes()["action"]))
    params = [*head.parameters(), *classifier.parameters()]
    optimizer = _adamw(params, settings.temporal_lr, settings.weight_decay)
    per_epoch = max(1, data.num_videos // settings.temporal_batch_size)
    total = per_epoch * settings.temporal_epochs
    scheduler = build_scheduler(optimizer, total, settings.warmup)
    g = torch.Generator().manual_seed(settings.seed + 1)
    curve: list[dict[str, float]] = []
    t0 = time.time()
    head.train()
    with tqdm(total=total, desc="pretrain temporal head", disable=not progress,
              leave=False) as bar:
        for epoch in range(settings.temporal_epochs):
            perm = torch.randperm(data.num_videos, generator=g)
            losses, accs = [], []
            for i in range(per_epoch):
                b = perm[i * settings.temporal_batch_size : (i + 1) * settings.temporal_batch_size]
                loss, acc = _action_loss(
                    _action_logits(head, classifier, feats[b], mask[b]), target[b], mask[b]
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                accs.append(acc)
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.3f}", action=f"{acc:.2f}")
            curve.append({"epoch": epoch + 1, "elapsed_s": round(time.time() - t0, 1),
                          "action_loss": round(float(np.mean(losses)), 4),
                          "action_acc": round(float(np.mean(accs)), 4)})
    return classifier, curve


@torch.no_grad()
def score_temporal(head: nn.Module, classifier: nn.Linear, features: Tensor,
                   data: FrameTargets) -> dict[str, float]:
    """Per-frame action accuracy of the head on ``data`` (frame features ``[N, D]``)."""
    head.eval()
    feats, mask = data.per_video(features)
    target, _ = data.per_video(data.action)
    loss, acc = _action_loss(_action_logits(head, classifier, feats, mask), target, mask)
    return {"action_loss": round(float(loss), 4), "action_acc": round(acc, 4)}


# --------------------------------------------------------------------------------------------
# Stage 1: the backbone folder
# --------------------------------------------------------------------------------------------


def pretrain_backbone(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    settings: PretrainSettings | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Stage 1: build and pretrain the demo backbone and temporal head; write ``out_dir``.

    The backbone is :class:`tvr.models.backbone.HFClipEncoder` of ``cfg.model.clip``'s size with
    ``vision_stem="conv"``, ``cfg.data.image_size`` frames and a BPE tokenizer trained on the
    train captions; the head is ``cfg``'s similarity head. Only SynthVTT's train split is
    trained on. ``out_dir`` (replaced atomically) receives ``encoder.json``,
    ``model.safetensors`` (keys ``encoder.*`` and ``head.*``: ``model.pretrained=out_dir``
    loads it like a run folder, head included), ``tokenizer/`` and ``pretrain.json``
    (settings, timings, learning curves, held-out probe scores).

    Returns:
        The content of ``pretrain.json``.
    """
    from safetensors.torch import save_file

    from tvr.checkpoint import state_dict_for_save
    from tvr.data.bpe_training import train_bpe_tokenizer
    from tvr.data.sources import load_split
    from tvr.data.tokenizer import load_tokenizer
    from tvr.models.backbone import HFClipEncoder
    from tvr.models.heads import build_head
    from tvr.train import seed_everything

    settings = settings or PretrainSettings()
    out_dir = Path(out_dir)
    d = cfg.data
    t0 = time.time()
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        records = load_split(d.dataset, d.root, d.train_split)
        train_bpe_tokenizer([c for r in records for c in r.captions], tmp / TOKENIZER)
        tokenizer = load_tokenizer(tmp / TOKENIZER)
        data = frame_targets(d.root, d.train_split, d.num_frames, d.image_size,
                             frame_cache=d.frame_cache or None, progress=progress)
        seconds = {"frames": round(time.time() - t0, 1)}

        seed_everything(settings.seed)
        encoder = HFClipEncoder.from_config(
            cfg.model.clip, vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, image_size=d.image_size,
            max_positions=cfg.model.clip.max_positions, vision_stem="conv",
        )
        head = build_head(cfg, encoder.embed_dim)
        t = time.time()
        probes, vision_curve = pretrain_vision(encoder, data, settings, progress=progress)
        seconds["vision"] = round(time.time() - t, 1)
        t = time.time()
        features = frame_features(encoder, data)
        classifier, temporal_curve = pretrain_temporal(head, features, data, settings,
                                                       progress=progress)
        seconds["temporal"] = round(time.time() - t, 1)
        result: dict[str, Any] = {
            "settings": asdict(settings),
            "data": {"root": str(d.root), "split": d.train_split, "videos": data.num_videos,
                     "frames": len(data), "num_frames": d.num_frames,
                     "image_size": d.image_size},
            "seconds": seconds,
            "vision_curve": vision_curve,
            "temporal_curve": temporal_curve,
        }
        if settings.eval_split:
            t = time.time()
            held = frame_targets(d.root, settings.eval_split, d.num_frames, d.image_size,
                                 frame_cache=d.frame_cache or None, progress=progress)
            held_features = frame_features(encoder, held)
            result[f"{settings.eval_split}_scores"] = {
                **score_probes(probes, held_features, held),
                **score_temporal(head, classifier, held_features, held),
            }
            seconds["eval"] = round(time.time() - t, 1)
        seconds["total"] = round(time.time() - t0, 1)

        model = nn.Module()
        model.encoder, model.head = encoder, head
        save_file(state_dict_for_save(model), str(tmp / WEIGHTS), metadata={"format": "pt"})
        atomic_write_text(tmp / ENCODER, json.dumps(
            {"encoder": "hf_clip", "config": encoder.export_config()}, indent=2) + "\n")
        atomic_write_text(tmp / PRETRAIN_FILE, json.dumps(result, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.replace(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("pretrained the demo backbone in %.0f s; held-out scores %s", seconds["total"],
             result.get(f"{settings.eval_split}_scores"))
    return result
