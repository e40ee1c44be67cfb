"""Paired arms: enabling DRGI changes nothing in the base model's training but DRGI's own
gradient. Its initialisation and its random negatives draw from their own random stream, so a
head with dropout (TC-MGC, GARE) sees the same dropout masks with and without DRGI, and a
same-seed base / DRGI difference measures DRGI, not a reshuffled dropout stream."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_overrides
from tvr.checkpoint import load_weights
from tvr.config import load_config
from tvr.train import train

HEADS_WITH_DROPOUT = {"tcmgc": "tcmgc.dropout=0.3", "gare": "gare.dropout=0.3"}


def _trained(tmp_path, root, head: str, *extra: str) -> dict[str, torch.Tensor]:
    name = f"{head}-{len(extra)}"
    cfg = load_config(None, tiny_overrides(
        root, tmp_path, name, f"model.head={head}", HEADS_WITH_DROPOUT[head], "train.epochs=1",
        "train.eval_after=false", *extra))
    return load_weights(train(cfg, progress=False) / "model.safetensors", device="cpu")


@pytest.mark.parametrize("extra", [(), ("drgi.negatives=random", "drgi.shuffle_corruption=true")],
                         ids=["hardest", "random+shuffle"])
@pytest.mark.parametrize("head", sorted(HEADS_WITH_DROPOUT))
def test_drgi_at_weight_zero_trains_the_base_model_bit_for_bit(tmp_path, tiny_synthvtt, head,
                                                                extra):
    base = _trained(tmp_path, tiny_synthvtt, head)
    drgi = _trained(tmp_path, tiny_synthvtt, head, "drgi.enable=true", "drgi.weight=0.0", *extra)
    shared = sorted(k for k in base if not k.startswith("objectives.drgi."))
    assert shared and all(k in drgi for k in shared)
    changed = [k for k in shared if not torch.equal(base[k], drgi[k])]
    assert changed == [], f"{len(changed)} of {len(shared)} base tensors differ, e.g. {changed[:3]}"
