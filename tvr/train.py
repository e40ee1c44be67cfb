"""Training: ``python -m tvr.train --config configs/x.yaml [key.sub=value ...] [--resume]``.

One code path for a single process and ``torchrun --nproc_per_node N -m tvr.train ...``: each
rank takes ``batch_size / world_size`` pairs per step, features are all-gathered with gradient
before scoring, so every rank computes the loss of the global batch.

The run folder (``output_root/name``) receives the resolved ``config.json`` before step 0, a
JSONL log, and after every epoch the weights and ``train_state.pt`` (atomic writes). ``--resume``
continues from the last completed epoch: the data order is a pure function of (seed, epoch), so
a resumed run reaches the same step count as an uninterrupted one. Before anything is written,
``--resume`` checks that the config matches the run's ``config.json`` (but for
:data:`tvr.run_checks.RESUMABLE_KEYS`) and that the weights belong to ``train_state.pt``
(:func:`tvr.checkpoint.load_resume_state`); ``log.jsonl`` lines past the resumed step are
dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tvr import distributed as dist
from tvr.checkpoint import (
    LOG,
    STATE_WEIGHTS_SHA256,
    TOKENIZER,
    TRAIN_STATE,
    WEIGHTS,
    load_resume_state,
    load_weights,
    save_pretrained,
    save_train_state,
    sha256_file,
    truncate_log,
)
from tvr.config import ConfigError, ExperimentConfig, load_config, save_config
from tvr.gradients import DRGI_PREFIX, GradClipper, drgi_parameters, term_grad_norms
from tvr.optim import build_optimizer, build_scheduler
from tvr.run_checks import CHECKPOINT_FILE, check_pretrained_exists, check_training_config
from tvr.selection import ValSelector, check_selection_config

log = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Raised by ``train(..., stop_after_steps=k)``: simulates a run killed mid-epoch."""


# ------------------------------------------------------------------------------ set-up pieces
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str, env: dist.DistEnv) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("train.device=cuda but CUDA is not available")
        torch.cuda.set_device(env.local_rank)
        return torch.device("cuda", env.local_rank)
    if name != "cpu":
        raise ValueError(f"train.device={name!r}: expected auto, cpu or cuda")
    return torch.device("cpu")


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The global batches of one epoch: a seeded permutation cut into full batches (drop_last)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n_items, generator=g).tolist()
    n_steps = n_items // batch_size
    return [perm[i * batch_size : (i + 1) * batch_size] for i in range(n_steps)]


def steps_per_epoch(n_items: int, batch_size: int) -> int:
    return n_items // batch_size


class RankBatchSampler:
    """Yields this rank's share of each global batch of one epoch."""

    def __init__(self, n_items: int, cfg: ExperimentConfig, env: dist.DistEnv) -> None:
        self.n_items = n_items
        self.batch_size = cfg.train.batch_size
        self.seed = cfg.train.seed
        self.env = env
        self.epoch = 0
        self.start_step = 0
        if self.batch_size % env.world_size:
            raise ValueError(
                f"train.batch_size={self.batch_size} is not divisible by the world size "
                f"{env.world_size}"
            )
        self.per_rank = self.batch_size // env.world_size

    def __iter__(self) -> Iterator[list[int]]:
        batches = epoch_batches(self.n_items, self.batch_size, self.seed, self.epoch)
        r = self.env.rank
        for b in batches[self.start_step :]:
            yield b[r * self.per_rank : (r + 1) * self.per_rank]

    def __len__(self) -> int:
        return steps_per_epoch(self.n_items, self.batch_size) - self.start_step


def autocast_context(cfg: ExperimentConfig, device: torch.device):
    if device.type == "cuda" and cfg.train.amp == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype), dtype
    return contextlib.nullcontext(), None


def prepare_tokenizer(cfg: ExperimentConfig, run_dir: Path, train_captions: list[str], env):
    """The run's tokenizer, from the first that applies:

    1. the run folder's own ``tokenizer/`` (a resumed run, or one prepared before);
    2. ``model.tokenizer``: OpenAI's BPE file ``bpe_simple_vocab_16e6.txt.gz`` (converted once
       into the run's ``tokenizer/``), or a tokenizer folder or hub id;
    3. the tokenizer of ``model.pretrained``: an HF CLIP folder's own files, a run folder's
       ``tokenizer/``, or a hub id (online);
    4. with no ``model.pretrained``: a new BPE trained on the training captions.

    Raises:
        ConfigError: a local ``model.pretrained`` that does not exist.
        TokenizerError: no tokenizer can be found for ``model.pretrained`` (an OpenAI archive or
            CLIP4Clip file, an HF folder without tokenizer files, a hub id while offline); the
            message says which file to provide and where it is usually found.
    """
    from tvr.data.bpe_training import train_bpe_tokenizer
    from tvr.data.clip_bpe import convert_openai_bpe, is_openai_bpe_file
    from tvr.data.tokenizer import load_tokenizer

    own = run_dir / TOKENIZER
    if own.is_dir():
        return load_tokenizer(str(own))
    if cfg.model.tokenizer:
        if is_openai_bpe_file(cfg.model.tokenizer):
            if env.is_main:  # converted once, into the run folder (temp folder + rename)
                convert_openai_bpe(cfg.model.tokenizer, own)
            dist.barrier()
            return load_tokenizer(str(own))
        return load_tokenizer(cfg.model.tokenizer)
    check_pretrained_exists(cfg.model.pretrained)
    if cfg.model.pretrained:
        return pretrained_tokenizer(cfg.model.pretrained)
    # From scratch: train a BPE tokenizer on the training captions (rank 0), share via disk.
    if env.is_main:
        train_bpe_tokenizer(train_captions, own)
    dist.barrier()
    return load_tokenizer(str(own))


def pretrained_tokenizer(pretrained: str):
    """The tokenizer that comes with ``model.pretrained`` (see :func:`prepare_tokenizer`)."""
    from tvr.data.clip_bpe import missing_tokenizer_message
    from tvr.data.tokenizer import TokenizerError, load_tokenizer
    from tvr.run_checks import looks_like_local_path

    path = Path(pretrained).expanduser()
    what = "an HF CLIP folder without tokenizer files"
    if path.is_dir():
        for src in (path / TOKENIZER, path):
            if (src / "tokenizer.json").is_file() or (src / "vocab.json").is_file():
                return load_tokenizer(str(src))
    elif path.is_file():
        what = CHECKPOINT_FILE
    elif not looks_like_local_path(pretrained):
        try:
            return load_tokenizer(pretrained)
        except TokenizerError as exc:
            what = f"a hub id whose tokenizer could not be fetched ({exc})"
    raise TokenizerError(missing_tokenizer_message(pretrained, what))


def _head_key(key: str) -> str:
    """Map an importer's head-state name onto this library's head parameter names."""
    if key.startswith(("frame_position.", "blocks.")):
        return f"temporal.{key}"
    for src, dst in (("text_weight.", "text_weight_fc."), ("video_weight.", "video_weight_fc.")):
        if key.startswith(src):
            return dst + key[len(src):]
    return key


def build_model(cfg: ExperimentConfig, tokenizer) -> nn.Module:
    """Encoder (pretrained or from scratch) + head + objectives.

    Head tensors that came with the pretrained weights (a CLIP4Clip/DRL checkpoint or a run
    folder) are loaded into the head; otherwise a temporal module is initialised from the
    text tower's first blocks when ``seqtransf.init_from_text`` and the widths match.
    """
    from tvr.models.loading import build_encoder
    from tvr.retriever import Retriever

    loaded = build_encoder(cfg, tokenizer)
    encoder = loaded.encoder
    model = Retriever(cfg, encoder)
    head_state = {_head_key(k): v for k, v in loaded.head_state.items()}
    if head_state:
        missing, unexpected = model.head.load_state_dict(head_state, strict=False)
        log.info("loaded %d imported head tensors; head keys not in the checkpoint: %s; "
                 "checkpoint keys the head does not have: %s",
                 len(head_state) - len(unexpected), missing, unexpected)
    if cfg.seqtransf.init_from_text and not any(k.startswith("temporal.") for k in head_state):
        copied = model.head.init_from_text_layers(
            encoder.text_layers_for_init(), encoder.text_positions_for_init())
        if copied:
            log.info("initialised %s temporal blocks from the text tower", copied)
    if cfg.model.freeze_backbone:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    if cfg.model.freeze_vision:  # no gradient: the vision tower runs forward only
        for p in model.encoder.vision_parameters():
            p.requires_grad_(False)
        if cfg.model.train_vision_layers:  # ... except its last blocks, norm and projection
            for p in model.encoder.vision_tail_parameters(cfg.model.train_vision_layers):
                p.requires_grad_(True)
    elif cfg.model.train_vision_layers:
        raise ConfigError("model.train_vision_layers only applies with model.freeze_vision=true "
                          "(without it the whole vision tower trains)")
    return model


def mean_over_ranks(report: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a report over ranks (a collective: every rank must call it).

    Objectives such as DRGI average over this rank's anchors only; the mean over ranks is the
    value a single process would log for the global batch.
    """
    keys = sorted(report)
    values = torch.tensor([float(report[k]) for k in keys], dtype=torch.float64, device=device)
    finite = torch.isfinite(values)
    # NaN (a diagnostic undefined on a rank's anchors) is left out of that key's mean
    t = torch.cat([torch.where(finite, values, 0.0), finite.to(torch.float64)])
    torch.distributed.all_reduce(t)
    total, count = t[: len(keys)], t[len(keys):]
    mean = torch.where(count > 0, total / count.clamp_min(1), float("nan"))
    return dict(zip(keys, mean.tolist()))


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


# ------------------------------------------------------------------------------ training loop
def train(
    cfg: ExperimentConfig,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
    progress: bool = True,
) -> Path:
    """Train ``cfg``; returns the run folder.

    Args:
        cfg: the experiment config.
        resume: continue from ``run_dir/train_state.pt`` (the last completed epoch).
        stop_after_steps: raise :class:`TrainingInterrupted` after this many optimiser steps of
            this call (simulates a killed run; used by tests).
        progress: show tqdm bars (rank 0 only).
    """
    from tvr.data.dataset import PairDataset
    from tvr.data.sources import load_split
    from tvr.data.video import FrameSampler

    check_training_config(cfg)  # nothing is written before the config is validated
    check_selection_config(cfg)
    env = dist.init_distributed()
    try:
        device = resolve_device(cfg.train.device, env)
        run_dir = cfg.run_dir
        state = None
        if resume:  # config and files checked against the run's before anything is written
            state = load_resume_state(cfg, run_dir)
        elif (run_dir / TRAIN_STATE).exists():
            raise FileExistsError(
                f"{run_dir} already holds a training run; pass --resume to continue it or choose "
                "another name="
            )
        if env.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.json")
            truncate_log(run_dir / LOG, int(state["step"]) if state is not None else 0)
        dist.barrier()
        seed_everything(cfg.train.seed + env.rank)

        records = load_split(cfg.data.dataset, cfg.data.root, cfg.data.train_split,
                             **cfg.data.source_options)
        captions = [c for r in records for c in r.captions]
        tokenizer = prepare_tokenizer(cfg, run_dir, captions, env)
        model = build_model(cfg, tokenizer)
        if state is not None:
            model.load_state_dict(load_weights(run_dir / WEIGHTS, device="cpu"))
        model.to(device)

        sampler = FrameSampler.from_config(cfg.data)
        dataset = PairDataset(records, sampler, tokenizer, cfg.data.max_words,
                              on_decode_error=cfg.data.on_decode_error,
                              skip_log=run_dir / "skipped_videos.jsonl")
        frozen = None
        if cfg.train.cache_video_features:
            from tvr.models.frozen_video import check_frozen, encode_frozen_videos

            check_frozen(model)
            frozen = encode_frozen_videos(
                model.encoder, dataset, batch_size=cfg.train.batch_size, device=device,
                num_workers=cfg.data.num_workers, progress=progress and env.is_main,
            )
            dataset.use_cached_videos(frozen.unavailable)
        batch_sampler = RankBatchSampler(len(dataset), cfg, env)
        n_steps_epoch = steps_per_epoch(len(dataset), cfg.train.batch_size)
        if n_steps_epoch == 0:
            raise ValueError(
                f"{cfg.data.dataset} {cfg.data.train_split}: {len(dataset)} training pairs are "
                f"fewer than one batch of train.batch_size={cfg.train.batch_size}"
            )
        total_steps = n_steps_epoch * cfg.train.epochs
        if cfg.train.max_steps:
            total_steps = min(total_steps, cfg.train.max_steps)

        drgi_params = drgi_parameters(model)
        d = cfg.settings("drgi")  # DRGI's settings (its defaults when it is not trained)
        own = {DRGI_PREFIX: d.lr or cfg.train.lr} if drgi_params and (
            d.lr > 0 or d.clip >= 0) else {}
        optimizer = build_optimizer(model, cfg.train, own)
        clipper = GradClipper(model, cfg, exempt=drgi_params if d.clip >= 0 else [])
        scheduler = build_scheduler(optimizer, total_steps, cfg.train.warmup)
        start_epoch, step = 0, 0
        selector = ValSelector(cfg, run_dir) if cfg.train.val_split and env.is_main else None
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
            torch.set_rng_state(state["rng"]["torch"])
            if selector is not None and state.get("selection"):
                selector.load_state(state["selection"])
            log.info("resumed %s at epoch %d, step %d", run_dir, start_epoch, step)

        ddp_model: nn.Module = model
        gather = None
        if env.world_size > 1:
            ddp_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,
            )
            gather = dist.all_gather_with_grad
        amp_ctx, amp_dtype = autocast_context(cfg, device)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)
        if env.is_main:
            report = model.parameter_report()
            log.info("parameters: %s", report)
            log.info("steps: %d per epoch, %d total, device %s, world %d, amp %s",
                     n_steps_epoch, total_steps, device, env.world_size, amp_dtype)

        log_path = run_dir / LOG
        done_this_call = 0
        t0 = time.time()
        for epoch in range(start_epoch, cfg.train.epochs):
            if step >= total_steps:
                break
            batch_sampler.epoch = epoch
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=batch_sampler, collate_fn=dataset.collate,
                num_workers=cfg.data.num_workers, persistent_workers=False,
            )
            model.train()
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
                       disable=not (progress and env.is_main), leave=False)
            for batch in bar:
                if step >= total_steps:
                    break
                if batch is None:  # every pair of this rank's batch failed to decode
                    raise RuntimeError(
                        f"step {step}: no video of the batch could be decoded; see "
                        f"{run_dir / 'skipped_videos.jsonl'}"
                    )
                batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                         for k, v in batch.items()}
                if frozen is not None:
                    batch["video_features"] = frozen.lookup(batch["video_index"])
                log_now = (step + 1) % cfg.train.log_every == 0 or step + 1 == total_steps
                for objective in model.objectives.values():
                    objective.on_step(step, log_now)
                with amp_ctx:
                    outputs = ddp_model(batch, gather=gather, rank=env.rank, with_losses=True)
                    loss, rep = outputs["loss"], outputs["report"]
                if log_now and env.world_size == 1 and "drgi_loss" in outputs["loss_terms"]:
                    rep.update(term_grad_norms(model, outputs["loss_terms"]))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if clipper.active:
                    scaler.unscale_(optimizer)
                    rep.update(clipper.clip())
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                model.clamp_logit_scale()
                step += 1
                done_this_call += 1
                if log_now and env.world_size > 1:
                    rep = mean_over_ranks(rep, device)
                if env.is_main:
                    bar.set_postfix(loss=f"{rep['loss']:.3f}")
                    if log_now:
                        rep.update(step=step, epoch=epoch, lr=scheduler.get_last_lr()[-1],
                                   elapsed_s=round(time.time() - t0, 2))
                        line = {k: v for k, v in rep.items()
                                if not (isinstance(v, float) and not math.isfinite(v))}
                        with log_path.open("a") as f:
                            f.write(json.dumps(line) + "\n")
                if stop_after_steps is not None and done_this_call >= stop_after_steps:
                    raise TrainingInterrupted(f"stopped after {done_this_call} steps (step {step})")
            if dataset.skipped and env.is_main:
                log.warning("epoch %d skipped %d undecodable videos: %s", epoch,
                            len(dataset.skipped), dataset.skipped[:10])
            if env.is_main:
                # weights first, stamped; the state (written last) records their sha256
                save_pretrained(model, run_dir, tokenizer, stamp={"step": step, "epoch": epoch})
                # val before the state, so a resumed run's selection includes this epoch
                last_epoch = epoch + 1 == cfg.train.epochs or step >= total_steps
                if selector is not None and selector.due(epoch, last_epoch):
                    selector.evaluate(model, tokenizer, epoch, step, device,
                                      elapsed_s=round(time.time() - t0, 2), progress=progress)
                    model.train()
                save_train_state(run_dir / TRAIN_STATE, {
                    "epoch": epoch, "step": step, "total_steps": total_steps,
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": rng_state(), STATE_WEIGHTS_SHA256: sha256_file(run_dir / WEIGHTS),
                    "selection": selector.state() if selector else None,
                })
            dist.barrier()
        if env.is_main:
            log.info("trained %d steps in %.1f s", step, time.time() - t0)
            if selector is not None:
                selector.finish()
    finally:
        dist.cleanup()
    if cfg.train.eval_after and env.is_main:
        from tvr.evaluate import evaluate_run

        evaluate_run(run_dir, split=cfg.data.eval_split, progress=progress)
    return run_dir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tvr.train", description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, help="YAML experiment file")
    p.add_argument("--resume", action="store_true", help="continue the run from its last epoch")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=3")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = dist.env_from_environ()
    logging.basicConfig(
        level=logging.INFO if env.rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = load_config(args.config, args.overrides)
    run_dir = train(cfg, resume=args.resume)
    if env.rank == 0:
        print(f"run folder: {run_dir}")
        metrics = run_dir / "metrics.json"
        if metrics.is_file():
            print(metrics.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
