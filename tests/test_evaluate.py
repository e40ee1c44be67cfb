"""tvr.evaluate's printed summary and CLI: ties are flagged beside the project figures."""

from __future__ import annotations

import logging

import numpy as np

from tvr import evaluate
from tvr.metrics import RANK_RULE, retrieval_metrics

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
