"""Validation during training and the checkpoint a run keeps (tvr/selection.py, tvr/train.py;
methods.md §9.8, §10.5), and the SynthVTT val split it reads (tvr/data/synthvtt/)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from tests.conftest import tiny_overrides
from tvr.config import ConfigError, ExperimentConfig, load_config
from tvr.selection import LAST_WEIGHTS, ValSelector, check_selection_config

STEPS_PER_EPOCH = 16 * 5 // 8  # tiny SynthVTT: 16 train videos x 5 captions, batch 8


def log_rows(run: Path) -> tuple[list[dict], list[dict]]:
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("split") != "val"], [r for r in rows if r.get("split") == "val"]


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def best_epoch(history: list[dict], lower: bool = False) -> int:
    """The earliest epoch with the best value (naive reference)."""
    best = None
    for h in history:
        v = h["value"]
        if best is None or (v < best[1] if lower else v > best[1]):
            best = (h["epoch"], v)
    return best[0]


def cfg_for(root, out, name, *extra):
    return load_config(None, tiny_overrides(root, out, name, "train.epochs=3", *extra))


# ------------------------------------------------------------------ config checks


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (("train.select=best_val",), "train.val_split"),
        (("train.val_split=test",), "data.eval_split"),
        (("train.val_split=val", "train.select=best_val", "data.eval_split=val"), "data.eval_split"),
        (("train.val_split=val", "train.select=worst"), "train.select.*'worst'.*best_val"),
        (("train.val_split=val", "train.val_every=0"), "train.val_every"),
    ],
)
def test_bad_selection_configs_fail_before_training(tmp_path, tiny_synthvtt, extra, match):
    from tvr.train import train

    cfg = cfg_for(tiny_synthvtt, tmp_path, "bad", *extra)
    with pytest.raises(ConfigError, match=match):
        check_selection_config(cfg)
    with pytest.raises(ConfigError, match=match):
        train(cfg, progress=False)
    assert not (tmp_path / "bad").exists()  # nothing was written


def test_unknown_select_metric_lists_the_metrics(tmp_path, tiny_synthvtt):
    from tvr.train import train

    cfg = cfg_for(tiny_synthvtt, tmp_path, "metric", "train.epochs=1", "train.val_split=val",
                  "train.select=best_val", "train.select_metric=t2v/R@3",
                  "train.eval_after=false")
    with pytest.raises(ConfigError, match=r"train.select_metric.*t2v/R@3.*t2v/R@1.*v2t/R@1"):
        train(cfg, progress=False)


# ------------------------------------------------------------------ ValSelector (unit)


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))


def run_selector(tmp_path, monkeypatch, values, *, rule="best_val", metric="t2v/R@1",
                 val_every=1):
    """Feed ``values`` as the val metric of consecutive epochs; the weights of epoch e are e."""
    from tvr.checkpoint import WEIGHTS, save_weights

    cfg = ExperimentConfig()
    cfg.data.dataset = "synthvtt"
    cfg.train.val_split, cfg.train.select, cfg.train.select_metric = "val", rule, metric
    cfg.train.val_every = val_every
    sel = ValSelector(cfg, tmp_path)
    sel._records = []
    feed = iter(values)

    def fake_evaluate_model(model, tokenizer, cfg, records, **kw):
        v = next(feed)
        return {"t2v/R@1": v, "t2v/MdR": v, "v2t/R@1": -v, "num_texts": 3}, None

    monkeypatch.setattr("tvr.evaluate.evaluate_model", fake_evaluate_model)
    model = Scalar()
    for epoch in range(len(values)):
        with torch.no_grad():
            model.w.fill_(float(epoch))
        save_weights(model, tmp_path / WEIGHTS)  # what the trainer writes after every epoch
        assert sel.due(epoch, epoch == len(values) - 1)
        sel.evaluate(model, None, epoch, 10 * (epoch + 1), "cpu")
    sel.finish()
    return sel


@pytest.mark.parametrize(
    ("values", "metric", "chosen"),
    [
        ([10.0, 30.0, 20.0], "t2v/R@1", 1),
        ([30.0, 30.0, 20.0], "t2v/R@1", 0),  # ties keep the earlier epoch
        ([10.0, 20.0, 30.0], "t2v/R@1", 2),
        ([4.0, 2.0, 2.0, 3.0], "t2v/MdR", 1),  # lower is better, earliest tie
        ([5.0, 1.0, 3.0], "v2t/R@1", 1),  # fed as -v: -1.0 (epoch 1) is the best
    ],
)
def test_best_val_keeps_the_best_epoch(tmp_path, monkeypatch, values, metric, chosen):
    run_selector(tmp_path, monkeypatch, values, metric=metric)
    last = len(values) - 1
    m = metrics_of(tmp_path)
    sign = -1.0 if metric == "v2t/R@1" else 1.0
    history = [{"epoch": e, "value": sign * v} for e, v in enumerate(values)]
    assert best_epoch(history, lower=metric.endswith("MdR")) == chosen  # the reference agrees
    sel_info = m["selection"]
    assert sel_info["rule"] == "best_val" and sel_info["metric"] == metric
    assert sel_info["epoch"] == chosen and sel_info["step"] == 10 * (chosen + 1)
    assert sel_info["value"] == sign * values[chosen]
    assert [h["value"] for h in sel_info["history"]] == [sign * v for v in values]
    assert m["synthvtt-val"]["t2v/R@1"] == values[chosen]
    kept = load_file(str(tmp_path / "model.safetensors"))["w"]
    assert float(kept) == chosen
    assert not (tmp_path / "best.safetensors").exists()
    if chosen != last:
        assert float(load_file(str(tmp_path / LAST_WEIGHTS))["w"]) == last
        assert sel_info["last_weights"] == LAST_WEIGHTS
    else:
        assert not (tmp_path / LAST_WEIGHTS).exists()
        assert sel_info["last_weights"] == "model.safetensors"
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(len(values)))
    assert all(r["split"] == "val" for r in rows)
    assert "num_texts" not in rows[0]  # only t2v/ and v2t/ metrics go to the log line


def test_select_last_keeps_the_last_epoch(tmp_path, monkeypatch):
    sel = run_selector(tmp_path, monkeypatch, [30.0, 10.0, 20.0], rule="last")
    m = metrics_of(tmp_path)["selection"]
    assert m["rule"] == "last" and m["epoch"] == 2 and m["value"] == 20.0
    assert float(load_file(str(tmp_path / "model.safetensors"))["w"]) == 2
    assert not (tmp_path / LAST_WEIGHTS).exists() and not (tmp_path / "best.safetensors").exists()
    assert sel.chosen["epoch"] == 2


def test_due_epochs():
    cfg = ExperimentConfig()
    cfg.train.val_split, cfg.train.val_every = "val", 3
    sel = ValSelector(cfg, Path("."))
    assert [e for e in range(7) if sel.due(e, e == 6)] == [2, 5, 6]


# ------------------------------------------------------------------ real training


@pytest.fixture(scope="module")
def best_val_run(tmp_path_factory, tiny_synthvtt):
    from tvr.train import train

    out = tmp_path_factory.mktemp("select_runs")
    cfg = cfg_for(tiny_synthvtt, out, "best", "drgi.enable=true", "train.val_split=val",
                  "train.select=best_val")
    return train(cfg, progress=False)


def test_best_val_run_logs_val_rows_with_drgi_info(best_val_run):
    train_rows, val_rows = log_rows(best_val_run)
    assert [r["epoch"] for r in val_rows] == [0, 1, 2]
    assert [r["step"] for r in val_rows] == [STEPS_PER_EPOCH * (e + 1) for e in range(3)]
    for r in val_rows:
        assert 0.0 <= r["t2v/R@1"] <= 100.0 and "v2t/R@1" in r
        info = {k: v for k, v in r.items() if k.startswith("drgi_info/")}
        assert "drgi_info/video/acc" in info and "drgi_info/text/n_base_wrong" in info
        assert info["drgi_info/num_videos"] == 6
    assert len(train_rows) == 3 * STEPS_PER_EPOCH  # log_every=1: the train rows are unchanged
    assert all("split" not in r for r in train_rows)


def test_best_val_run_keeps_the_best_epoch(best_val_run):
    m = metrics_of(best_val_run)
    sel = m["selection"]
    _, val_rows = log_rows(best_val_run)
    assert [h["value"] for h in sel["history"]] == [r["t2v/R@1"] for r in val_rows]
    assert sel["epoch"] == best_epoch(sel["history"])
    chosen_row = val_rows[sel["epoch"]]
    assert m["synthvtt-val"]["t2v/R@1"] == chosen_row["t2v/R@1"]
    assert m["synthvtt-val"]["t2v/MnR"] == pytest.approx(chosen_row["t2v/MnR"])
    # the chosen epoch's information test is the one recorded
    from tvr.drgi_probe import flatten_info

    recorded = flatten_info(m["drgi_info"]["synthvtt-val"])
    logged = {k: v for k, v in chosen_row.items() if k.startswith("drgi_info/")}
    assert recorded == pytest.approx(logged, nan_ok=True)
    assert (best_val_run / LAST_WEIGHTS).exists() == (sel["epoch"] != 2)
    assert not (best_val_run / "best.safetensors").exists()


def test_kept_weights_reproduce_the_recorded_val_and_test_metrics(best_val_run):
    from tvr.drgi_probe import flatten_info, probe_run
    from tvr.evaluate import evaluate_run

    m = metrics_of(best_val_run)
    again = evaluate_run(best_val_run, split="val", write=False, progress=False, device="cpu")
    for key in ("t2v/R@1", "t2v/R@5", "t2v/MnR", "v2t/R@1", "v2t/MnR"):
        assert again[key] == pytest.approx(m["synthvtt-val"][key]), key
    info = probe_run(best_val_run, split="val", write=False, progress=False, device="cpu")
    assert flatten_info(info) == pytest.approx(flatten_info(m["drgi_info"]["synthvtt-val"]),
                                               nan_ok=True)
    # the test split is read once, after training, on the kept weights
    test = evaluate_run(best_val_run, split="test", write=False, progress=False, device="cpu")
    assert test["t2v/R@1"] == m["synthvtt-test"]["t2v/R@1"]
    assert test["t2v/MnR"] == pytest.approx(m["synthvtt-test"]["t2v/MnR"])
    if (best_val_run / LAST_WEIGHTS).exists():  # the last epoch's weights differ from the kept
        a = load_file(str(best_val_run / "model.safetensors"))
        b = load_file(str(best_val_run / LAST_WEIGHTS))
        assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)


def test_select_last_with_val_every(tmp_path, tiny_synthvtt):
    from tvr.train import train

    cfg = cfg_for(tiny_synthvtt, tmp_path, "last", "train.val_split=val", "train.val_every=2",
                  "train.eval_after=false")
    run = train(cfg, progress=False)
    _, val_rows = log_rows(run)
    assert [r["epoch"] for r in val_rows] == [1, 2]  # every 2nd epoch, and always the last
    assert not any(k.startswith("drgi_info/") for k in val_rows[0])  # no DRGI, no info test
    m = metrics_of(run)
    assert m["selection"]["rule"] == "last" and m["selection"]["epoch"] == 2
    assert m["synthvtt-val"]["t2v/R@1"] == val_rows[-1]["t2v/R@1"]
    assert "drgi_info" not in m
    assert not (run / LAST_WEIGHTS).exists()


def test_resume_keeps_the_selection_history(tmp_path, tiny_synthvtt):
    from tvr.train import TrainingInterrupted, train

    cfg = cfg_for(tiny_synthvtt, tmp_path, "resumed", "train.val_split=val",
                  "train.select=best_val", "train.eval_after=false")
    with pytest.raises(TrainingInterrupted):  # dies in epoch 3, after 2 completed epochs
        train(cfg, stop_after_steps=2 * STEPS_PER_EPOCH + 1, progress=False)
    train(cfg, resume=True, progress=False)
    _, val_rows = log_rows(cfg.run_dir)
    assert [r["epoch"] for r in val_rows] == [0, 1, 2]
    sel = metrics_of(cfg.run_dir)["selection"]
    assert [h["epoch"] for h in sel["history"]] == [0, 1, 2]
    assert [h["value"] for h in sel["history"]] == [r["t2v/R@1"] for r in val_rows]
    assert sel["epoch"] == best_epoch(sel["history"])


# ------------------------------------------------------------------ the SynthVTT val split


def test_synthvtt_default_val_split_is_500():
    from tvr.data import synthvtt as sv

    assert inspect.signature(sv.plan).parameters["n_val"].default == 500
    assert inspect.signature(sv.generate).parameters["n_val"].default == 500
    assert sv.cli._parser().parse_args(["--out", "x"]).val == 500


def test_synthvtt_test_split_is_unchanged_by_the_larger_val_split():
    """Only ids move: the test split of the n_val=500 plan is the n_val=250 plan's."""
    from tvr.data import synthvtt as sv

    def test_split(texts: dict[str, str]) -> dict:
        meta = json.loads(texts[sv.META_FILE])
        data = json.loads(texts[sv.DATA_FILE])
        ids = [v for v, x in meta["videos"].items() if x["split"] == "test"]
        pos = {v: i for i, v in enumerate(ids)}
        first_family = meta["videos"][ids[0]]["family"]
        videos = [{**{k: x for k, x in meta["videos"][v].items() if k != "family"},
                   "family": meta["videos"][v]["family"] - first_family} for v in ids]
        text_of = {str(s["sen_id"]): s["caption"] for s in data["sentences"]}
        captions = [{**{k: x for k, x in c.items() if k not in ("video_id", "relevant")},
                     "video": pos[c["video_id"]], "relevant": [pos[r] for r in c["relevant"]],
                     "text": text_of[sen]}
                    for sen, c in meta["captions"].items() if c["split"] == "test"]
        csv_rows = [line.split(",", 3)[3] for line in texts[sv.TEST_CSV].splitlines()[1:]]
        n_val = sum(x["split"] == "val" for x in meta["videos"].values())
        return {"videos": videos, "captions": captions, "csv": csv_rows, "n_val": n_val,
                "first_id": ids[0]}

    new, old = test_split(sv.plan()), test_split(sv.plan(n_val=250))
    assert new["n_val"] == 500 and old["n_val"] == 250
    assert new["first_id"] != old["first_id"]  # the ids did move
    assert len(new["videos"]) == 500
    assert new["videos"] == old["videos"]
    assert new["captions"] == old["captions"]
    assert new["csv"] == old["csv"]
