"""The shipped SynthVTT recipes load strictly and follow the val protocol (methods.md §9.8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvr.config import load_config
from tvr.selection import check_selection_config

REPO = Path(__file__).resolve().parents[1]
SYNTHVTT = sorted((REPO / "configs" / "synthvtt").glob("*.yaml"))


def test_there_are_synthvtt_recipes():
    assert len(SYNTHVTT) >= 9  # seven methods and the two demo runs


@pytest.mark.parametrize("path", SYNTHVTT, ids=lambda p: p.stem)
def test_synthvtt_recipes_choose_on_val_and_report_test(path):
    cfg = load_config(path)
    check_selection_config(cfg)
    assert cfg.train.val_split == "val" and cfg.train.select == "best_val"
    assert cfg.data.eval_split == "test"
    if path.stem != "demo-base":  # (the base demo run keeps DRGI off and its defaults)
        assert cfg.drgi.weight == 1.0  # the λ chosen on val (benchmarks/runs/drgi-val)
