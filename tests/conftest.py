"""Shared fixtures: a tiny SynthVTT dataset and a tiny trained run pair, built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import tests.plugins.toy  # noqa: F401  (a plug-in method: the registry-parametrised tests cover it)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Put back ``sys.modules["__main__"]`` after each test: an ``AppTest`` run leaves its
    script module there (``AppTest.from_function`` writes that script to a temporary file),
    and a later ``multiprocessing`` spawn pool re-runs ``__main__``'s file in every worker,
    which then dies at start (a NameError in the script) and is respawned for ever: SynthVTT's
    parallel generation test hung until its timeout."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


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


@pytest.fixture(scope="module")
def tiny_clip():
    """The importer tests' tiny random HF ``CLIPModel`` (tests/helpers_importers.py), in eval mode."""
    from tests.helpers_importers import tiny_random_clip

    return tiny_random_clip()


@pytest.fixture(scope="module")
def openai_sd(tiny_clip):
    """:func:`tiny_clip`'s weights under OpenAI CLIP names."""
    from tests.helpers_importers import convert_hf_to_openai

    return convert_hf_to_openai(tiny_clip.state_dict())


@pytest.fixture()
def clip4clip_file(openai_sd, tmp_path):
    """A DRL-style CLIP4Clip checkpoint of :func:`openai_sd`: ``(path, state dict)``."""
    import torch

    from tests.helpers_importers import make_clip4clip_state

    state = make_clip4clip_state(openai_sd)
    path = tmp_path / "pytorch_model.bin.4"
    torch.save(state, path)
    return path, state


class RealShape(NamedTuple):
    """What a user brings, at real shape (tests/helpers_real_shape.py), built once per session.

    Attributes:
        archive: a random-weight OpenAI CLIP ViT-B/32 archive (``ViT-B-32.pt``, fp16).
        bpe: a made-up ``bpe_simple_vocab_16e6.txt.gz`` of OpenAI's size (49,408 ids).
        hf_folder: the same model as a Hugging Face CLIP folder, tokenizer files included.
        data: a folder holding a tiny dataset per benchmark (``data / "msrvtt"``, ...) in the
            released layouts, 320x240 videos.
    """

    archive: Path
    bpe: Path
    hf_folder: Path
    data: Path


@pytest.fixture(scope="session")
def real_shape(tmp_path_factory) -> Iterator[RealShape]:
    """The random-weight ViT-B/32 archive, its BPE file and HF folder, and tiny benchmark data
    (about 1 GB on disk, 20-40 s to build)."""
    import shutil

    from tests.helpers_real_shape import WRITERS, VideoBank, write_openai_bpe, write_vit_b32_archive
    from tvr.data.clip_bpe import convert_openai_bpe
    from tvr.models.loading import load_encoder

    top = tmp_path_factory.mktemp("real_shape")
    archive = write_vit_b32_archive(top / "downloads" / "ViT-B-32.pt")
    bpe = write_openai_bpe(top / "downloads")
    hf_folder = load_encoder(archive).encoder.save_pretrained(top / "clip-hf")
    tokenizer = convert_openai_bpe(bpe, top / "tokenizer")
    for f in tokenizer.iterdir():
        shutil.copy(f, hf_folder / f.name)
    bank = VideoBank(top / "bank")
    for name, write in WRITERS.items():
        write(top / "data" / name, bank)
    yield RealShape(archive, bpe, hf_folder, top / "data")
    shutil.rmtree(top, ignore_errors=True)  # about 1 GB
