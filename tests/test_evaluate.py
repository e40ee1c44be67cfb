"""tvr.evaluate's printed summary and CLI: ties are flagged beside the project figures; --qb-norm
adds the figures of tvr.renorm.qb_norm."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tvr import evaluate
from tvr.checkpoint import load_pretrained
from tvr.data.sources import load_split
from tvr.metrics import RANK_RULE, retrieval_metrics
from tvr.renorm import qb_norm

# gt on the diagonal; rows 1 and 2 tie their ground truth (see tests/test_metrics.py)
TIED = np.array(
    [[0.9, 0.1, 0.2, 0.3], [0.5, 0.5, 0.7, 0.1], [0.4, 0.4, 0.4, 0.4], [0.8, 0.6, 0.9, 0.2]],
    dtype=np.float32,
)


def test_summary_without_ties_has_no_warning():
    rng = np.random.default_rng(0)
    text = evaluate.format_metrics(retrieval_metrics(rng.normal(size=(9, 9)), np.arange(9)))
    assert text.splitlines()[0].startswith("t2v: R@1 ")
    assert "WARNING" not in text and "optimistic" not in text


def test_summary_with_ties_shows_both_figures_and_warns():
    text = evaluate.format_metrics(retrieval_metrics(TIED, np.arange(4)), run="runs/x")
    lines = text.splitlines()
    assert lines[0].startswith("t2v: R@1 25.0  R@5 100.0")
    assert lines[1].startswith("t2v (optimistic, ties favour the model): R@1 50.0")
    assert lines[2].startswith("v2t: R@1 ")
    assert lines[-1].startswith("WARNING: runs/x: t2v: 2 of 4 queries tie")


def test_cli_prints_and_logs_the_tie_warning(monkeypatch, capsys, caplog, tmp_path):
    def fake_evaluate_run(run_dir, **kwargs):
        metrics = dict(retrieval_metrics(TIED, np.arange(4)))
        metrics.update(num_texts=4, num_videos=4, rank_rule=RANK_RULE)
        return metrics

    monkeypatch.setattr(evaluate, "evaluate_run", fake_evaluate_run)
    with caplog.at_level(logging.WARNING, logger="tvr.metrics"):
        assert evaluate.main(["--run", str(tmp_path / "tied-run")]) == 0
    out = capsys.readouterr().out
    assert f"WARNING: {tmp_path / 'tied-run'}: t2v: 2 of 4 queries tie" in out
    assert "R@1 25.0 with ties against the model, 50.0 if ties favoured it" in out
    assert any("t2v: 2 of 4 queries tie" in r.getMessage() for r in caplog.records)
    assert "ties count against the model" in RANK_RULE


# ------------------------------------------------------------------ QB-Norm (--qb-norm)


@pytest.fixture(scope="module")
def qb_run(tiny_run_pair, tmp_path_factory) -> Path:
    """A copy of the tiny base run (the CLI writes its metrics.json)."""
    run = tmp_path_factory.mktemp("qb") / "base"
    shutil.copytree(tiny_run_pair.base, run, ignore=shutil.ignore_patterns("analysis"))
    return run


def test_cli_qb_norm_adds_the_figures_of_metrics_qb_norm(qb_run, tiny_run_pair, capsys):
    root = tiny_run_pair.data / "synthvtt"
    args = ["--run", str(qb_run), "--dataset", "synthvtt", "--root", str(root), "--split", "test",
            "--device", "cpu"]
    assert evaluate.main([*args, "--qb-norm"]) == 0
    out = capsys.readouterr().out
    written = json.loads((qb_run / "metrics.json").read_text())["synthvtt-test"]

    # the same computation by hand: the split and the training captions/videos embedded by
    # the run, the banks scored, tvr.renorm.qb_norm applied per direction (k=1, beta=20, theta=1)
    model, tok, cfg = load_pretrained(qb_run)
    model = model.for_inference()
    opts = evaluate.EmbedOptions(num_frames=cfg.data.num_frames, image_size=cfg.data.image_size,
                                 max_words=cfg.data.max_words, progress=False)
    emb = evaluate.embed_split(model, tok, load_split("synthvtt", root, "test"), opts)
    train = load_split("synthvtt", root, "train")
    bank_text, bank_video = evaluate.embed_bank(model, tok, train, opts)
    with torch.no_grad():
        bank_t2v = (bank_text.pooled @ emb.video.pooled.T).numpy()  # factorized seqTransf
        bank_v2t = (bank_video.pooled @ emb.text.pooled.T).numpy()
    t2v_sim = qb_norm(emb.sim, bank_t2v, k=1, beta=20.0, theta=1)
    v2t_sim = qb_norm(emb.sim.T, bank_v2t, k=1, beta=20.0, theta=1).T
    assert not np.allclose(t2v_sim, emb.sim) and not np.allclose(v2t_sim, emb.sim)
    expected = retrieval_metrics(t2v_sim, emb.text_to_video, v2t_sim=v2t_sim)
    for key in ("t2v/R@1", "t2v/R@5", "t2v/MdR", "t2v/MnR", "v2t/R@1", "v2t/MnR", "t2v/ties"):
        assert written[f"qbnorm/{key}"] == pytest.approx(expected[key]), key
    # the plain figures are those of an evaluation without the flag
    plain = evaluate.evaluate_run(qb_run, dataset="synthvtt", root=str(root), split="test",
                                  device="cpu", progress=False, write=False)
    assert {k: written[k] for k in plain if k.startswith(("t2v/", "v2t/"))} == {
        k: v for k, v in plain.items() if k.startswith(("t2v/", "v2t/"))}
    assert not any(k.startswith("qbnorm/") for k in plain)
    assert any(written[f"qbnorm/{k}"] != plain[k] for k in ("t2v/R@1", "t2v/MnR", "v2t/MnR"))
    assert (plain["post_processing"], written["post_processing"]) == ("none", "qb_norm")
    qb = written["qb_norm"]
    assert qb["preset"] == "reference" and qb["bank_split"] == "train"
    assert qb["t2v"] == qb["v2t"] == {"k": 1, "beta": 20.0, "theta": 1}
    assert qb["bank_texts"] == sum(len(r.captions) for r in train) == len(bank_text)
    assert qb["bank_videos"] == len(train) == len(bank_video)
    assert f"t2v (QB-Norm): R@1 {expected['t2v/R@1']:.1f}" in out


def test_cli_qb_norm_presets_and_bank_errors(qb_run, tiny_run_pair):
    root = str(tiny_run_pair.data / "synthvtt")
    metrics = evaluate.evaluate_run(qb_run, dataset="synthvtt", root=root, split="test",
                                    qb_norm="dicosa", qb_bank="val", dsl=True, device="cpu",
                                    progress=False, write=False)
    assert metrics["qb_norm"]["t2v"] == {"k": 1, "beta": 70.0, "theta": 3}
    assert metrics["qb_norm"]["v2t"] == {"k": 1, "beta": 70.0, "theta": 5}
    assert metrics["qb_norm"]["bank_split"] == "val"
    assert metrics["post_processing"] == "dsl+qb_norm"
    with pytest.raises(ValueError, match="qb_bank='test' is the evaluated split"):
        evaluate.evaluate_run(qb_run, dataset="synthvtt", root=root, split="test",
                              qb_norm="reference", qb_bank="test", device="cpu", progress=False,
                              write=False)
    with pytest.raises(SystemExit):
        evaluate.main(["--run", str(qb_run), "--qb-bank", "val"])  # needs --qb-norm
    with pytest.raises(SystemExit):
        evaluate.main(["--run", str(qb_run), "--qb-norm", "nope"])  # not a preset


def test_embed_options_built_once_from_the_data_config():
    from tvr.config import ExperimentConfig

    data = ExperimentConfig().data
    data.num_frames, data.image_size, data.max_words = 5, 48, 20
    data.on_decode_error, data.frame_cache, data.num_workers = "skip", "", 3
    data.frame_sampling, data.decode_threads = "seek", "SLICE"
    opts = evaluate.EmbedOptions.from_data(data, batch_size=7, amp="bf16", progress=False)
    assert (opts.num_frames, opts.image_size, opts.max_words) == (5, 48, 20)
    assert (opts.on_decode_error, opts.num_workers) == ("skip", 3)
    assert opts.frame_cache is None  # "" in the config means no cache
    assert (opts.frame_sampling, opts.decode_threads) == ("seek", "SLICE")
    assert (opts.batch_size, opts.amp, opts.progress, opts.device) == (7, "bf16", False, "cpu")
    # keyword fields replace fields of the options, or build them when none are given
    assert evaluate._resolve_options(opts, {"amp": "off"}) == evaluate.EmbedOptions.from_data(
        data, batch_size=7, amp="off", progress=False)
    assert evaluate._resolve_options(None, {"num_frames": 2, "image_size": 8, "max_words": 4}) \
        == evaluate.EmbedOptions(num_frames=2, image_size=8, max_words=4)
    with pytest.raises(TypeError, match="frames"):
        evaluate._resolve_options(opts, {"frames": 3})
