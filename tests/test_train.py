"""Training end to end on a tiny SynthVTT: train -> checkpoint -> load -> evaluate, resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import tiny_overrides
from tvr.checkpoint import load_pretrained
from tvr.config import load_config
from tvr.evaluate import evaluate_run
from tvr.evaluate import main as evaluate_main
from tvr.train import TrainingInterrupted, train
from tvr.train import main as train_main


@pytest.mark.parametrize("head", ["meanp", "seqtransf", "wti"])
def test_train_checkpoint_evaluate(tmp_path, tiny_synthvtt, head):
    extra = ["drgi.enable=true"] + (["cdcr.enable=true"] if head == "wti" else [])
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, f"r-{head}",
                                           f"model.head={head}", *extra))
    run = train(cfg, progress=False)
    for name in ("config.json", "encoder.json", "model.safetensors", "train_state.pt",
                 "log.jsonl", "metrics.json"):
        assert (run / name).is_file(), name
    assert (run / "tokenizer").is_dir()
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 2 * (16 * 5 // 8)  # 2 epochs of 80 pairs, batch 8
    assert "drgi_loss" in lines[-1] and "infonce_loss" in lines[-1]
    metrics = json.loads((run / "metrics.json").read_text())["synthvtt-test"]
    assert metrics["num_texts"] == 8 and metrics["num_videos"] == 8
    assert 1 <= metrics["t2v/MnR"] <= 8

    # The checkpoint reloads on CPU and gives the same metrics again.
    model, tok, cfg2 = load_pretrained(run)
    assert cfg2 == cfg
    again = evaluate_run(run, split="test", progress=False, write=False)
    assert again["t2v/R@1"] == metrics["t2v/R@1"]
    assert again["t2v/MnR"] == pytest.approx(metrics["t2v/MnR"])


def test_cli_train_then_evaluate(tmp_path, tiny_synthvtt, capsys):
    args = tiny_overrides(tiny_synthvtt, tmp_path, "cli", "train.epochs=1", "train.eval_after=false")
    assert train_main(args) == 0
    assert evaluate_main(["--run", str(tmp_path / "cli"), "--split", "val", "--dsl"]) == 0
    out = capsys.readouterr().out
    assert "t2v:" in out and "R@1" in out
    metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert "synthvtt-val" in metrics and "dsl/t2v/R@1" in metrics["synthvtt-val"]


def test_resume_after_interruption(tmp_path, tiny_synthvtt):
    base = tiny_overrides(tiny_synthvtt, tmp_path, "x", "train.epochs=3", "train.eval_after=false")
    steps_per_epoch = 16 * 5 // 8

    full = train(load_config(None, base[:] + ["name=full"]), progress=False)

    cfg = load_config(None, base + ["name=killed"])
    with pytest.raises(TrainingInterrupted):
        train(cfg, stop_after_steps=steps_per_epoch + 3, progress=False)  # dies mid-epoch 2
    state = torch.load(cfg.run_dir / "train_state.pt", weights_only=True)
    assert state["epoch"] == 0 and state["step"] == steps_per_epoch  # lost only epoch 2's work
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, progress=False)
    train(cfg, resume=True, progress=False)
    state = torch.load(cfg.run_dir / "train_state.pt", weights_only=True)
    assert state["step"] == 3 * steps_per_epoch
    # Same data order and schedule: the resumed run ends with the uninterrupted run's weights.
    a = load_file(str(full / "model.safetensors"))
    b = load_file(str(cfg.run_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize(
    ("head", "extra"),
    [
        ("xclip", []),
        ("tcmgc", []),
        ("gare", []),
        ("dmae", ["negnce.enable=true", "tpmcl.enable=true"]),
    ],
)
def test_seed_methods_train_with_drgi(tmp_path, tiny_synthvtt, head, extra):
    """Each seed method trains with DRGI and evaluates (cross heads scored in blocks)."""
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, f"m-{head}", f"model.head={head}",
                                           "drgi.enable=true", "train.epochs=1", *extra))
    run = train(cfg, progress=False)
    last = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()][-1]
    assert last["drgi_loss"] > 0 and all(
        v == v for v in last.values() if isinstance(v, float)  # no NaN
    )
    metrics = json.loads((run / "metrics.json").read_text())["synthvtt-test"]
    assert metrics["num_videos"] == 8 and 1 <= metrics["t2v/MnR"] <= 8
