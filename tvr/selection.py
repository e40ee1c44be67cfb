"""Validation during training and the choice of the checkpoint a run keeps.

``train.val_split`` evaluates that split at the end of every ``train.val_every``-th epoch (and
the last) on the in-memory model, with the evaluator's own code path. Each evaluation appends a
line ``{"split": "val", "epoch", "step", "elapsed_s", "t2v/R@1", ..., "drgi_info/...": ...}``
to ``log.jsonl`` (DRGI runs add the information test of :mod:`tvr.drgi_probe`).

``train.select``:

- ``last``: the run keeps the last epoch's weights (the default, as before).
- ``best_val``: the weights of the epoch with the best ``train.select_metric`` on val (higher is
  better; MdR / MnR lower) are kept as ``model.safetensors`` and the last epoch's are moved to
  ``last.safetensors``. Ties keep the earlier epoch.

Either way ``metrics.json`` gets ``selection`` (rule, split, metric, chosen epoch/step/value and
the history of val values), the chosen epoch's val metrics under ``<dataset>-<val split>`` and,
for DRGI runs, its information test under ``drgi_info``. The test split is evaluated once after
training, on the kept weights (``train.eval_after``), never used to choose.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from tvr.checkpoint import LOG
from tvr.config import ConfigError, ExperimentConfig

log = logging.getLogger(__name__)

BEST_WEIGHTS = "best.safetensors"  # best-on-val weights while training (best_val)
LAST_WEIGHTS = "last.safetensors"  # the last epoch's weights once best_val chose another epoch
SELECT_RULES = ("last", "best_val")
LOWER_IS_BETTER = ("MdR", "MnR")


def check_selection_config(cfg: ExperimentConfig) -> None:
    """Validate ``train.select`` / ``val_split`` / ``val_every`` (errors name the key)."""
    t = cfg.train
    if t.select not in SELECT_RULES:
        raise ConfigError(f"config key 'train.select': got {t.select!r}, expected one of "
                          f"{', '.join(SELECT_RULES)}")
    if t.select == "best_val" and not t.val_split:
        raise ConfigError("train.select=best_val needs train.val_split (e.g. val): the "
                          "checkpoint is chosen on a validation split, never on test")
    if t.val_split and t.val_split == cfg.data.eval_split:
        raise ConfigError(f"train.val_split={t.val_split!r} is also data.eval_split: choosing "
                          "on the split that is reported would read the test set twice")
    if t.val_every < 1:
        raise ConfigError(f"config key 'train.val_every': got {t.val_every}, expected >= 1")


class ValSelector:
    """Evaluates the val split during training and keeps the selected checkpoint (rank 0 only).

    Args:
        cfg: the experiment config (``train.val_split``, ``val_every``, ``select``,
            ``select_metric``; the data section says how to read the split).
        run_dir: the run folder.
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: Path) -> None:
        check_selection_config(cfg)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.split = cfg.train.val_split
        self.metric = cfg.train.select_metric
        self.rule = cfg.train.select
        self._records: list | None = None
        self.history: list[dict[str, Any]] = []  # {"epoch", "step", "value"} per evaluation
        self.chosen: dict[str, Any] | None = None  # the kept epoch's entry + metrics + info

    # ------------------------------------------------------------------ state (resume)
    def state(self) -> dict[str, Any]:
        return {"history": self.history, "chosen": self.chosen}

    def load_state(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self.chosen = state.get("chosen")

    # ------------------------------------------------------------------ evaluation
    def due(self, epoch: int, last: bool) -> bool:
        """Whether the end of ``epoch`` (0-based) is evaluated."""
        return last or (epoch + 1) % self.cfg.train.val_every == 0

    @property
    def records(self) -> list:
        if self._records is None:
            from tvr.data.sources import load_split

            d = self.cfg.data
            self._records = load_split(d.dataset, d.root, self.split, **d.source_options)
        return self._records

    def _better(self, value: float) -> bool:
        if self.chosen is None:
            return True
        best = float(self.chosen["value"])
        lower = self.metric.rsplit("/", 1)[-1] in LOWER_IS_BETTER
        return value < best if lower else value > best

    def evaluate(self, model: nn.Module, tokenizer: Any, epoch: int, step: int, device: Any,
                 *, elapsed_s: float = 0.0, progress: bool = False) -> dict[str, Any]:
        """Evaluate val on the in-memory model, log it, and keep the weights if they are chosen.

        Leaves the model in eval mode (the caller switches back to training).
        """
        from tvr.checkpoint import save_weights
        from tvr.evaluate import evaluate_model

        d = self.cfg.data
        metrics, emb = evaluate_model(model, tokenizer, self.cfg, self.records, dataset=d.dataset,
                                      split=self.split, device=device, progress=progress)
        if self.metric not in metrics:
            names = sorted(k for k in metrics if k.startswith(("t2v/", "v2t/")))
            raise ConfigError(f"config key 'train.select_metric': {self.metric!r} is not a "
                              f"metric; choose one of {', '.join(names)}")
        info = None
        objectives = getattr(model, "objectives", {})
        if "drgi" in objectives:
            from tvr.drgi_probe import information_test

            info = information_test(objectives["drgi"], emb.text, emb.video, emb.sim,
                                    emb.text_to_video, device=device)
        value = float(metrics[self.metric])
        row: dict[str, Any] = {"split": self.split, "epoch": epoch, "step": step,
                               "elapsed_s": elapsed_s}
        row.update({k: v for k, v in metrics.items()
                    if k.startswith(("t2v/", "v2t/")) and isinstance(v, int | float)})
        if info is not None:
            from tvr.drgi_probe import flatten_info

            row.update(flatten_info(info))
        with (self.run_dir / LOG).open("a") as f:
            f.write(json.dumps(row) + "\n")
        entry = {"epoch": epoch, "step": step, "value": value}
        self.history.append(entry)
        if self.rule == "last" or self._better(value):
            if self.rule == "best_val":
                save_weights(model, self.run_dir / BEST_WEIGHTS, stamp={"step": step, "epoch": epoch})
            self.chosen = {**entry, "metrics": metrics, "drgi_info": info}
        log.info("%s split, epoch %d: %s = %.2f (kept: epoch %d)", self.split, epoch + 1,
                 self.metric, value, self.chosen["epoch"] + 1)
        return metrics

    # ------------------------------------------------------------------ the end
    def finish(self) -> None:
        """Put the chosen weights in place and record the selection in metrics.json."""
        from tvr.checkpoint import WEIGHTS
        from tvr.drgi_probe import INFO_KEY
        from tvr.evaluate import write_metrics

        if self.chosen is None:
            return
        last_epoch = self.history[-1]["epoch"]
        best = self.run_dir / BEST_WEIGHTS
        if self.rule == "best_val" and best.is_file():
            if self.chosen["epoch"] != last_epoch:
                os.replace(self.run_dir / WEIGHTS, self.run_dir / LAST_WEIGHTS)
                os.replace(best, self.run_dir / WEIGHTS)
            else:
                best.unlink()
        d = self.cfg.data
        moved = (self.run_dir / LAST_WEIGHTS).is_file()
        write_metrics(self.run_dir, "selection", {
            "rule": self.rule, "split": self.split, "metric": self.metric,
            "epoch": self.chosen["epoch"], "step": self.chosen["step"],
            "value": self.chosen["value"], "history": self.history,
            "weights": WEIGHTS, "last_weights": LAST_WEIGHTS if moved else WEIGHTS,
        })
        write_metrics(self.run_dir, f"{d.dataset}-{self.split}", self.chosen["metrics"])
        if self.chosen.get("drgi_info") is not None:
            path = self.run_dir / "metrics.json"
            existing = json.loads(path.read_text()).get(INFO_KEY, {})
            existing[f"{d.dataset}-{self.split}"] = self.chosen["drgi_info"]
            write_metrics(self.run_dir, INFO_KEY, existing)
