"""README's "Your own checkpoints and data", followed command by command (issue 13).

The README's bash block is read from the README itself and run in-process, in a fresh folder
laid out as the README says: ``downloads/`` with a random-weight OpenAI ViT-B/32 archive and a
made-up OpenAI-size ``bpe_simple_vocab_16e6.txt.gz``, ``data/msrvtt/`` in CLIP4Clip's layout
with 320x240 videos, and ``configs/`` (the repository's). Each ``python -m`` line calls that
module's ``main``; training gets the overrides that make a run one step long, export the PCA
map only (UMAP is covered elsewhere). ``python -m app`` becomes an AppTest of every page at
the URL the README gives.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import pytest
import streamlit as st

from app.main import PAGES
from tests.helpers_app import app_test, assert_no_errors

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Your own checkpoints and data"
# Appended to the README's commands so each run is a single short step (tests/test_recipes.py).
EXTRA = {
    "tvr.train": ["data.num_frames=2", "train.batch_size=4", "train.epochs=1", "train.max_steps=1",
                  "train.device=cpu", "model.freeze_backbone=true", "drgi.hidden=16"],
    "tvr.evaluate": ["--device", "cpu"],
    "analysis.export": ["--projection", "pca", "--device", "cpu", "--quiet"],
}


def readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1]
    return body.split("\n## ", 1)[0]


def readme_commands() -> list[list[str]]:
    """The ``python -m`` lines of the section's bash block, split as a shell would."""
    section = readme_section()
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the section has no bash block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def readme_url_params() -> dict[str, str]:
    url = re.search(r"http://127\.0\.0\.1:8501/\?\S+", readme_section())
    assert url, "the section gives no app URL"
    return dict(parse_qsl(urlparse(url.group(0).rstrip(".")).query))


def readme_files() -> list[str]:
    block = re.search(r"```text\n(.*?)```", readme_section(), re.S)
    assert block, "the section has no file listing"
    return [line.split()[0] for line in block.group(1).splitlines() if line.strip()]


def test_readme_section_is_well_formed() -> None:
    commands = readme_commands()
    assert [c[:3] for c in commands] == [["python", "-m", m] for m in (
        "tvr.train", "tvr.train", "tvr.evaluate", "analysis.export", "analysis.export", "app")]
    assert readme_url_params() == {"base": "msrvtt-seqtransf", "drgi": "msrvtt-seqtransf-drgi",
                                   "split": "msrvtt-test"}
    assert "downloads/ViT-B-32.pt" in readme_files()


@pytest.mark.slow
def test_readme_own_data_end_to_end(real_shape, tmp_path: Path, monkeypatch) -> None:
    # the folder the README describes
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "ViT-B-32.pt").symlink_to(real_shape.archive)
    (tmp_path / "downloads" / real_shape.bpe.name).symlink_to(real_shape.bpe)
    shutil.copytree(real_shape.data / "msrvtt", tmp_path / "data" / "msrvtt")
    (tmp_path / "configs").symlink_to(REPO / "configs")
    for listed in readme_files():
        if "<" not in listed:
            assert (tmp_path / listed).exists(), f"README lists {listed}, the test lacks it"
    monkeypatch.chdir(tmp_path)

    ran = []
    for argv in readme_commands():
        module = argv[2]
        if module == "app":
            continue
        main = importlib.import_module(module).main
        assert main(argv[3:] + EXTRA[module]) == 0, argv
        ran.append(module)
    assert ran.count("tvr.train") == 2

    checkpoints = tmp_path / "checkpoints"
    base, drgi = checkpoints / "msrvtt-seqtransf", checkpoints / "msrvtt-seqtransf-drgi"
    for run in (base, drgi):
        assert (run / "tokenizer" / "tokenizer.json").is_file()  # converted from the BPE file
        assert (run / "analysis" / "msrvtt-test" / "meta.json").is_file()
    assert "drgi" in [o["name"] for o in json.loads((drgi / "config.json").read_text())["objectives"]]
    assert json.loads((base / "metrics.json").read_text())["msrvtt-test"]["t2v/N"] == 3

    # python -m app: every page at the README's URL
    monkeypatch.setenv("DRGI_LAB_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("DRGI_LAB_DATA", str(tmp_path / "data"))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = app_test(**readme_url_params()).run()
        assert_no_errors(at)
        assert at.selectbox(key="base").value == "msrvtt-seqtransf"
        assert at.selectbox(key="drgi").value == "msrvtt-seqtransf-drgi"
        for page, *_ in PAGES[1:]:
            at.switch_page(page).run()
            assert_no_errors(at)
            assert len(at.main.children) > 0, page
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
        shutil.rmtree(checkpoints, ignore_errors=True)  # 2 x 600 MB of weights
