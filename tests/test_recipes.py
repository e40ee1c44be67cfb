"""Every shipped benchmark recipe starts, at real shape (issue 13).

Each ``configs/<benchmark>/*.yaml`` but SynthVTT's is trained as shipped but for overrides that
make it one step long (2 frames, batch 4, backbone frozen so no 151M-parameter optimiser step)
on a random-weight OpenAI ViT-B/32 (the ``.pt`` archive with OpenAI's BPE file; VATEX's from the
same model as an HF CLIP folder) and a tiny dataset in the benchmark's released layout at
320x240, then evaluated (``train.eval_after``): MSR-VTT 1k-A, multi-caption test splits (MSVD,
VATEX), paragraphs (ActivityNet, DiDeMo) and val selection (MSVD, LSMDC, DiDeMo, VATEX).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from tests.helpers_real_shape import SCENES
from tvr.config import load_config
from tvr.data.sources import source_names

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (REPO / "configs").glob("*/[!_]*.yaml")  # _base.yaml: includes
                 if p.parent.name != "synthvtt")
# Paper lengths (data_and_metrics.md §1): paragraphs 64 words / 64 frames, the rest 32 / 12.
LENGTHS = {"activitynet": (64, 64), "didemo": (64, 64)}
# Test queries of the tiny datasets: 3 test videos, 2 captions each where the test split is
# multi-caption (MSVD, VATEX), one caption or paragraph each otherwise.
MULTI_CAPTION = {"msvd", "vatex"}
# Benchmarks started from the HF folder (the same weights); the others from the .pt archive.
FROM_HF_FOLDER = {"vatex"}


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def short_run(recipe: Path, out: Path, pretrained: Path, tokenizer: Path | None, data: Path,
              *extra: str) -> list[str]:
    """Overrides that make ``recipe`` a one-step run on ``data``."""
    return [
        f"output_root={out}",
        f"data.root={data}",
        f"model.pretrained={pretrained}",
        *([f"model.tokenizer={tokenizer}"] if tokenizer else []),
        "data.num_frames=2",
        "train.batch_size=4",
        "train.epochs=1",
        "train.max_steps=1",
        "train.log_every=1",
        "train.device=cpu",
        "model.freeze_backbone=true",
        *extra,
    ]


def test_every_benchmark_source_has_a_recipe() -> None:
    assert {p.parent.name for p in RECIPES} == set(source_names()) - {"synthvtt"}
    assert len([p for p in RECIPES if p.parent.name == "msrvtt"]) == 7


@pytest.mark.parametrize("recipe", RECIPES, ids=_id)
def test_recipe_keeps_the_paper_protocol(recipe: Path) -> None:
    cfg = load_config(recipe)
    words, frames = LENGTHS.get(recipe.parent.name, (32, 12))
    assert (cfg.data.max_words, cfg.data.num_frames, cfg.data.image_size) == (words, frames, 224)
    assert cfg.data.dataset == recipe.parent.name and cfg.data.eval_split == "test"
    assert cfg.train.epochs == 5 and cfg.train.lr == 1e-4 and cfg.train.clip_lr == 1e-7
    assert cfg.train.batch_size == (300 if recipe.stem == "xclip" else 128)
    assert cfg.train.optim == "bertadam_legacy"
    assert cfg.model.pretrained == "openai/clip-vit-base-patch32"


@pytest.mark.parametrize("recipe", RECIPES, ids=_id)
def test_recipe_offline_says_which_tokenizer_file_to_provide(recipe: Path, tmp_path: Path,
                                                             monkeypatch) -> None:
    from tvr.data.tokenizer import TokenizerError
    from tvr.distributed import DistEnv
    from tvr.train import prepare_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config(recipe, [f"output_root={tmp_path}"])
    with pytest.raises(TokenizerError, match=r"set model.tokenizer to OpenAI's "
                       r"bpe_simple_vocab_16e6.txt.gz .*openai/CLIP repository"):
        prepare_tokenizer(cfg, cfg.run_dir, [], DistEnv())


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=_id)
def test_recipe_starts_on_real_shape(recipe: Path, real_shape, tmp_path: Path) -> None:
    from tvr.data.tokenizer import load_tokenizer
    from tvr.train import train

    dataset = recipe.parent.name
    if dataset in FROM_HF_FOLDER:  # an HF CLIP folder with its tokenizer
        source = (real_shape.hf_folder, None)
    else:  # OpenAI's archive + BPE file
        source = (real_shape.archive, real_shape.bpe)
    cfg = load_config(recipe, short_run(recipe, tmp_path, *source, real_shape.data / dataset))
    run = train(cfg, progress=False)
    try:
        tok = load_tokenizer(run / "tokenizer")
        assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (49408, 49406, 49407)
        lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        steps = [line for line in lines if "loss" in line]
        assert [line["step"] for line in steps] == [1] and math.isfinite(steps[0]["loss"])
        metrics = json.loads((run / "metrics.json").read_text())
        result = metrics[f"{dataset}-test"]
        n_test = len(SCENES) - 1
        queries = 2 * n_test if dataset in MULTI_CAPTION else n_test
        assert result["t2v/N"] == queries
        assert 0 <= result["t2v/R@1"] <= result["t2v/R@5"] == 100.0
        if cfg.train.val_split:
            assert metrics["selection"]["split"] == "val"
            assert any(line.get("split") == "val" for line in lines)
        enc = json.loads((run / "encoder.json").read_text())["config"]["clip"]
        assert enc["vision_config"]["image_size"] == 224 and enc["vision_config"]["patch_size"] == 32
        assert enc["text_config"]["vocab_size"] == 49408
    finally:
        shutil.rmtree(run, ignore_errors=True)  # 600 MB of weights per run
