"""Shared fixtures: a tiny SynthVTT dataset and a tiny trained run pair, built once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_synthvtt(tmp_path_factory) -> Path:
    """A SynthVTT dataset small enough to train on in seconds (32 px, 16/6/8 videos)."""
    from tvr.data.synthvtt import generate

    root = tmp_path_factory.mktemp("synthvtt") / "synthvtt"
    generate(root, seed=3, n_train=16, n_val=6, n_test=8, size=32, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def default_synthvtt(tmp_path_factory) -> Path:
    """SynthVTT at its default parameters, as ``python -m tvr.demo`` generates it (15-60 s)."""
    from tvr.data.synthvtt import generate

    root = tmp_path_factory.mktemp("synthvtt-default") / "synthvtt"
    generate(root, progress=False)
    return root


def tiny_overrides(root: Path, out: Path, name: str, *extra: str) -> list[str]:
    """Dotted overrides for a from-scratch tiny CLIP trained on ``root``."""
    return [
        f"name={name}",
        f"output_root={out}",
        "data.dataset=synthvtt",
        f"data.root={root}",
        "data.num_frames=4",
        "data.image_size=32",
        "data.max_words=16",
        "model.clip.embed_dim=16",
        "model.clip.text_width=32",
        "model.clip.text_layers=1",
        "model.clip.text_heads=2",
        "model.clip.vision_width=32",
        "model.clip.vision_layers=1",
        "model.clip.vision_heads=2",
        "model.clip.patch_size=16",
        "model.clip.max_positions=16",
        "seqtransf.layers=1",
        "seqtransf.heads=2",
        "seqtransf.max_frames=8",
        "drgi.hidden=8",
        "train.epochs=2",
        "train.batch_size=8",
        "train.lr=1e-3",
        "train.clip_lr=1e-3",
        "train.log_every=1",
        "train.device=cpu",
        *extra,
    ]


class TinyRunPair(NamedTuple):
    """Two tiny trained runs with exported bundles, laid out like the app's roots.

    Attributes:
        checkpoints: the checkpoints root (holds ``base`` and ``drgi``).
        data: the data root (holds the SynthVTT dataset at ``data / "synthvtt"``).
        base: run folder of a seqTransf baseline.
        drgi: run folder of seqTransf + DRGI.
        dataset, split: the exported bundle's dataset and split (``synthvtt``, ``test``).
    """

    checkpoints: Path
    data: Path
    base: Path
    drgi: Path
    dataset: str
    split: str


@pytest.fixture(scope="session")
def tiny_run_pair(tmp_path_factory) -> TinyRunPair:
    """A tiny seqTransf run and a tiny seqTransf+DRGI run (1 epoch each) on a tiny SynthVTT,
    each with a ``synthvtt-test`` bundle (PCA projection only), for the app's tests."""
    from analysis.export import ExportOptions, export_bundle
    from tvr.config import load_config
    from tvr.data.synthvtt import generate
    from tvr.train import train

    top = tmp_path_factory.mktemp("app_roots")
    data, checkpoints = top / "data", top / "checkpoints"
    root = data / "synthvtt"
    generate(root, seed=3, n_train=16, n_val=6, n_test=8, size=32, workers=1, progress=False)
    runs = {}
    for name, extra in (("base", ()), ("drgi", ("drgi.enable=true",))):
        cfg = load_config(None, tiny_overrides(root, checkpoints, name, "model.head=seqtransf",
                                               "train.epochs=1", "train.eval_after=false",
                                               *extra))
        runs[name] = train(cfg, progress=False)
        export_bundle(runs[name], dataset="synthvtt", root=root, split="test",
                      options=ExportOptions(projections=("pca",), device="cpu"), progress=False)
    return TinyRunPair(checkpoints, data, runs["base"], runs["drgi"], "synthvtt", "test")


@pytest.fixture(scope="module")
def app_env(tiny_run_pair):
    """Point the app (tests/test_app*.py) at the tiny run pair and start from empty caches."""
    import streamlit as st

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRGI_LAB_CHECKPOINTS", str(tiny_run_pair.checkpoints))
        mp.setenv("DRGI_LAB_DATA", str(tiny_run_pair.data))
        st.cache_resource.clear()
        st.cache_data.clear()
        yield tiny_run_pair
    st.cache_resource.clear()
    st.cache_data.clear()
