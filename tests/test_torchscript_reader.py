"""Tests for tvr.models.torchscript_reader: TorchScript archives read without torch.jit.load.

OpenAI's ``.pt`` files are TorchScript archives; the reader takes their tensors without running
any code from the archive, and refuses archives whose pickles name anything else.
"""

from __future__ import annotations

import pickle
import zipfile

import pytest
import torch
from torch import nn

from tests.helpers_importers import (
    IMAGE,
    EvilModule,
    FakeTokenizer,
    embeddings,
    encoder_cfg,
    no_jit_load,
    save_torchscript,
)
from tvr.models.importers import CheckpointImportError
from tvr.models.loading import build_encoder
from tvr.models.openai_clip import (
    load_openai_clip_state,
)
from tvr.models.torchscript_reader import read_torchscript_state


def test_torchscript_archive_read_without_torch_jit_load(tiny_clip, openai_sd, tmp_path,
                                                         monkeypatch):
    path = tmp_path / "ViT-tiny.pt"
    half = {k: (v.half() if k.startswith("visual.") else v) for k, v in openai_sd.items()}
    save_torchscript({**half, "input_resolution": torch.tensor(IMAGE)}, path)
    want = dict(torch.jit.load(str(path)).state_dict())  # our own file: the reference reader
    monkeypatch.setattr(torch.jit, "load", no_jit_load)
    got = read_torchscript_state(path)
    assert set(got) == set(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    encoder = build_encoder(encoder_cfg(path), FakeTokenizer()).encoder
    for got_emb, want_emb in zip(embeddings(encoder.clip), embeddings(tiny_clip)):
        assert torch.allclose(got_emb, want_emb, atol=5e-3, rtol=1e-2)


@pytest.mark.parametrize("nested", [False, True])
def test_malicious_torchscript_refused_without_running_code(openai_sd, tmp_path, monkeypatch,
                                                            nested):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if nested:  # an OpenAI-layout archive with one booby-trapped submodule
        root = nn.Module()
        root.register_parameter("logit_scale", nn.Parameter(openai_sd["logit_scale"].clone()))
        root.add_module("visual", EvilModule(str(target)))
        torch.jit.script(root).save(str(path))
    else:
        torch.jit.script(EvilModule(str(target))).save(str(path))
    assert not target.exists()
    with monkeypatch.context() as m:
        m.setattr(torch.jit, "load", no_jit_load)
        with pytest.raises(CheckpointImportError, match=r"evil.pt: .*__setstate__.*safetensors"):
            load_openai_clip_state(path)
        with pytest.raises(CheckpointImportError, match="evil.pt"):
            build_encoder(encoder_cfg(path), FakeTokenizer())
    assert not target.exists()
    torch.jit.load(str(path))  # control: the archive really is malicious
    assert target.exists()


def test_torchscript_with_foreign_global_refused(tmp_path):
    target = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(target), "w"))

    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bad/data.pkl", pickle.dumps(Payload(), protocol=2))
        zf.writestr("bad/constants.pkl", pickle.dumps((), protocol=2))
        zf.writestr("bad/code/__torch__.py", "")
    with pytest.raises(CheckpointImportError, match=r"bad.pt: .*open' is not allowed"):
        load_openai_clip_state(path)
    assert not target.exists()
