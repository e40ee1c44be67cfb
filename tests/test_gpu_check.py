"""benchmarks/gpu_check.sh: without CUDA it stops at once, with exit code 2 and a message
(the checks themselves need a GPU machine and are never run here or in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_refuses_to_run_without_cuda(tmp_path) -> None:
    work = tmp_path / "work"
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--work", str(work)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert proc.returncode == 2, proc.stderr
    assert "gpu_check: no CUDA GPU" in proc.stderr
    assert "only runs on a GPU machine" in proc.stderr
    assert not work.exists()  # stopped before generating data or writing anything


def test_gpu_check_publish_replaces_its_section(tmp_path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Other\n\nkept\n\n## GPU check\n\nold\n")
    report = tmp_path / "gpu_check.md"
    report.write_text("| check | result | figures |\n|---|---|---|\n| AMP training steps | ok | x |\n")
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "publish", str(report),
         "--results", str(results)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    text = results.read_text()
    assert "## Other\n\nkept" in text and "old" not in text
    assert "| AMP training steps | ok | x |" in text
