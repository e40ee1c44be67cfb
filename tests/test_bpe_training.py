"""Tests for tvr.data.bpe_training: training a BPE tokenizer folder (refusals, determinism)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvr.data.bpe_training import train_bpe_tokenizer
from tvr.data.tokenizer import load_tokenizer


def test_train_refuses_to_overwrite(tmp_path: Path) -> None:
    out = train_bpe_tokenizer(["a red circle"], tmp_path / "tok", vocab_size=200)
    with pytest.raises(FileExistsError, match="tok"):
        train_bpe_tokenizer(["a blue square"], out, vocab_size=200)
    train_bpe_tokenizer(["a blue square"], out, vocab_size=200, overwrite=True)
    assert load_tokenizer(out).unknown_words("a blue circle") == ["circle"]
    with pytest.raises(ValueError, match="no non-empty"):
        train_bpe_tokenizer(["", "  "], tmp_path / "t2")
    with pytest.raises(ValueError, match="vocab_size 10 is too small"):
        train_bpe_tokenizer(["a"], tmp_path / "t3", vocab_size=10)


def test_bpe_ids_are_deterministic_across_processes(tmp_path):
    """The trainer's base-symbol ids follow hash order; ours must not (a run's ids are data)."""
    import subprocess
    import sys

    script = (
        "import sys; from tvr.data.bpe_training import train_bpe_tokenizer as t; "
        "t(['a red circle moves left', 'then a blue square grows', 'x, y; z!'] * 3, sys.argv[1])"
    )
    outs = []
    for i in range(2):
        out = tmp_path / f"tok{i}"
        subprocess.run([sys.executable, "-c", script, str(out)], check=True)
        outs.append((out / "vocab.json").read_text())
    assert json.loads(outs[0]) == json.loads(outs[1])
