"""app/components/sidebar.py: which runs count as DRGI runs, from their config.json of either
shape (the committed demo runs are in the earlier one)."""

from __future__ import annotations

import json
from pathlib import Path

from app.components.sidebar import _has_drgi

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, name: str, cfg: dict) -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps(cfg))
    return run


def test_drgi_runs_of_both_config_shapes(tmp_path):
    assert _has_drgi(ROOT / "checkpoints" / "demo-drgi")  # old shape: drgi.enable
    assert not _has_drgi(ROOT / "checkpoints" / "demo-base")
    new = {"head": {"name": "seqtransf"}, "objectives": [{"name": "infonce"}, {"name": "drgi"}]}
    assert _has_drgi(_run(tmp_path, "new", new))
    assert not _has_drgi(_run(tmp_path, "plain", {**new, "objectives": [{"name": "infonce"}]}))
    assert not _has_drgi(_run(tmp_path, "broken", {"objectives": "drgi"}))
