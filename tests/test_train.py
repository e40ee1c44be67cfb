"""Training end to end on a tiny SynthVTT: train -> checkpoint -> load -> evaluate, resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import tiny_overrides
from tvr.checkpoint import CheckpointError, load_pretrained
from tvr.config import ConfigError, load_config
from tvr.evaluate import evaluate_run
from tvr.evaluate import main as evaluate_main
from tvr.train import TrainingInterrupted, train
from tvr.train import main as train_main


@pytest.mark.parametrize("head", ["meanp", "seqtransf", "wti"])
def test_train_checkpoint_evaluate(tmp_path, tiny_synthvtt, head):
    extra = ["drgi.enable=true"] + (["cdcr.enable=true"] if head == "wti" else [])
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, f"r-{head}",
                                           f"model.head={head}", *extra))
    run = train(cfg, progress=False)
    for name in ("config.json", "encoder.json", "model.safetensors", "train_state.pt",
                 "log.jsonl", "metrics.json"):
        assert (run / name).is_file(), name
    assert (run / "tokenizer").is_dir()
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 2 * (16 * 5 // 8)  # 2 epochs of 80 pairs, batch 8
    assert "drgi_loss" in lines[-1] and "infonce_loss" in lines[-1]
    metrics = json.loads((run / "metrics.json").read_text())["synthvtt-test"]
    assert metrics["num_texts"] == 8 and metrics["num_videos"] == 8
    assert 1 <= metrics["t2v/MnR"] <= 8

    # The checkpoint reloads on CPU and gives the same metrics again.
    model, tok, cfg2 = load_pretrained(run)
    assert cfg2 == cfg
    again = evaluate_run(run, split="test", progress=False, write=False)
    assert again["t2v/R@1"] == metrics["t2v/R@1"]
    assert again["t2v/MnR"] == pytest.approx(metrics["t2v/MnR"])


def test_cli_train_then_evaluate(tmp_path, tiny_synthvtt, capsys):
    args = tiny_overrides(tiny_synthvtt, tmp_path, "cli", "train.epochs=1", "train.eval_after=false")
    assert train_main(args) == 0
    assert evaluate_main(["--run", str(tmp_path / "cli"), "--split", "val", "--dsl"]) == 0
    out = capsys.readouterr().out
    assert "t2v:" in out and "R@1" in out
    metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert "synthvtt-val" in metrics and "dsl/t2v/R@1" in metrics["synthvtt-val"]


def test_resume_after_interruption(tmp_path, tiny_synthvtt):
    base = tiny_overrides(tiny_synthvtt, tmp_path, "x", "train.epochs=3", "train.eval_after=false")
    steps_per_epoch = 16 * 5 // 8

    full = train(load_config(None, base[:] + ["name=full"]), progress=False)

    cfg = load_config(None, base + ["name=killed"])
    with pytest.raises(TrainingInterrupted):
        train(cfg, stop_after_steps=steps_per_epoch + 3, progress=False)  # dies mid-epoch 2
    state = torch.load(cfg.run_dir / "train_state.pt", weights_only=True)
    assert state["epoch"] == 0 and state["step"] == steps_per_epoch  # lost only epoch 2's work
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, progress=False)
    train(cfg, resume=True, progress=False)
    state = torch.load(cfg.run_dir / "train_state.pt", weights_only=True)
    assert state["step"] == 3 * steps_per_epoch
    # The killed run logged steps 11-13 of epoch 2; the resumed run logs them again, once.
    steps = [json.loads(x)["step"] for x in (cfg.run_dir / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 3 * steps_per_epoch + 1))
    # Same data order and schedule: the resumed run ends with the uninterrupted run's weights.
    a = load_file(str(full / "model.safetensors"))
    b = load_file(str(cfg.run_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def _killed_run(tmp_path, tiny_synthvtt, name, *extra):
    """A 3-epoch run killed mid-epoch 2 (train_state.pt of epoch 0); returns its config."""
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, name, "train.epochs=3",
                                           "train.eval_after=false", *extra))
    with pytest.raises(TrainingInterrupted):
        train(cfg, stop_after_steps=16 * 5 // 8 + 3, progress=False)
    return cfg


def _folder_bytes(run_dir):
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def test_resume_refuses_weights_newer_than_train_state(tmp_path, tiny_synthvtt, monkeypatch):
    """Killed between writing model.safetensors and train_state.pt at the end of epoch 2:
    the weights are epoch 2's, the state epoch 1's. Resuming would train epoch 2 twice."""
    import tvr.train as train_mod

    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, "k", "train.epochs=3",
                                           "train.eval_after=false"))
    real = train_mod.save_train_state

    def killed_at_epoch_1(path, state):
        if state["epoch"] == 1:
            raise TrainingInterrupted("killed after the weights of epoch 1 were written")
        real(path, state)

    monkeypatch.setattr(train_mod, "save_train_state", killed_at_epoch_1)
    with pytest.raises(TrainingInterrupted):
        train(cfg, progress=False)
    monkeypatch.setattr(train_mod, "save_train_state", real)
    before = _folder_bytes(cfg.run_dir)
    with pytest.raises(CheckpointError) as exc:
        train(cfg, resume=True, progress=False)
    msg = str(exc.value)
    assert "model.safetensors (step 20, epoch 1)" in msg
    assert "train_state.pt (step 10, epoch 0)" in msg
    assert _folder_bytes(cfg.run_dir) == before  # nothing rewritten


def test_resume_refuses_a_changed_config_before_writing(tmp_path, tiny_synthvtt):
    cfg = _killed_run(tmp_path, tiny_synthvtt, "c")
    before = _folder_bytes(cfg.run_dir)
    for override, key in (("model.head=meanp", "head.name"), ("drgi.enable=true", "objectives.drgi"), ("train.lr=0.01", "train.lr"),
                          ("train.epochs=4", "train.epochs")):
        changed = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, "c", "train.epochs=3",
                                                   "train.eval_after=false", override))
        with pytest.raises(ConfigError) as exc:
            train(changed, resume=True, progress=False)
        assert key in str(exc.value) and "config.json" in str(exc.value)
        assert _folder_bytes(cfg.run_dir) == before  # config.json and log untouched
    # Keys that only change how the run executes may differ.
    ok = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, "c", "train.epochs=3",
                                          "train.eval_after=false", "train.log_every=2"))
    train(ok, resume=True, progress=False)
    assert json.loads((cfg.run_dir / "config.json").read_text())["train"]["log_every"] == 2


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.batch_size=0", "train.batch_size=0"),
        ("train.epochs=0", "train.epochs=0"),
        ("train.log_every=0", "train.log_every=0"),
        ("name=../../escaped", "name='../../escaped'"),
        ("name={tmp}/abs-run", "expected a plain folder name"),
        ("name=a/b", "name='a/b'"),
        ("model.pretrained=/nonexistent/clip-folder", "does not exist"),
        ("model.pretrained=weights/missing.pt", "does not exist"),
    ],
)
def test_bad_training_values_are_refused_before_writing(tmp_path, tiny_synthvtt, override,
                                                        needle):
    out = tmp_path / "a" / "b"
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, out, "r", "train.epochs=1",
                                           override.format(tmp=tmp_path)))
    with pytest.raises(ConfigError) as exc:
        train(cfg, progress=False)
    assert needle in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere


@pytest.mark.parametrize(("tokenizer", "needle"), [
    ("", "is a checkpoint file, which holds no tokenizer: set model.tokenizer to OpenAI's "
         "bpe_simple_vocab_16e6.txt.gz"),
    ("{tmp}/downloads/bpe_simple_vocab_16e6.txt.gz", "does not exist (expected OpenAI's BPE"),
])
def test_archive_without_tokenizer_is_refused_before_writing(tmp_path, tiny_synthvtt,
                                                             tokenizer, needle):
    archive = tmp_path / "downloads" / "ViT-B-32.pt"
    archive.parent.mkdir()
    archive.write_bytes(b"")
    out = tmp_path / "runs"
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, out, "r", f"model.pretrained={archive}",
                                           f"model.tokenizer={tokenizer.format(tmp=tmp_path)}"))
    with pytest.raises(ConfigError) as exc:
        train(cfg, progress=False)
    assert needle in str(exc.value) and "openai/CLIP repository" in str(exc.value)
    assert not out.exists()  # nothing written


def test_prepare_tokenizer_takes_a_hub_ids_tokenizer_when_online(tmp_path, monkeypatch):
    import tvr.data.tokenizer as tokenizer_module
    from tvr.distributed import DistEnv
    from tvr.train import prepare_tokenizer

    asked = []
    monkeypatch.setattr(tokenizer_module, "load_tokenizer", lambda name: asked.append(name) or name)
    cfg = load_config(None, ["model.pretrained=openai/clip-vit-base-patch32"])
    assert prepare_tokenizer(cfg, tmp_path / "run", [], DistEnv()) == "openai/clip-vit-base-patch32"
    assert asked == ["openai/clip-vit-base-patch32"]


def test_prepare_tokenizer_names_a_missing_pretrained_path(tmp_path):
    from tvr.distributed import DistEnv
    from tvr.train import prepare_tokenizer

    cfg = load_config(None, [f"model.pretrained={tmp_path / 'nope'}"])
    with pytest.raises(ValueError, match=r"model.pretrained=.*nope.* does not exist"):
        prepare_tokenizer(cfg, tmp_path / "run", [], DistEnv())


def test_prepare_tokenizer_converts_openai_bpe_once(tmp_path):
    from tests.helpers_bpe import made_up_merges, write_bpe_file
    from tvr.distributed import DistEnv
    from tvr.train import prepare_tokenizer

    bpe = write_bpe_file(tmp_path / "bpe_simple_vocab_16e6.txt.gz",
                         made_up_merges(["a man plays guitar"], 64))
    archive = tmp_path / "ViT-B-32.pt"
    archive.write_bytes(b"")  # only its existence matters here
    cfg = load_config(None, [f"model.pretrained={archive}", f"model.tokenizer={bpe}"])
    tok = prepare_tokenizer(cfg, tmp_path / "run", [], DistEnv())
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.json").is_file()
    assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (512 + 64 + 2, 576, 577)
    bpe.unlink()  # once converted, the run reads its own copy
    again = prepare_tokenizer(cfg, tmp_path / "run", [], DistEnv())
    assert again.hf("a man plays")["input_ids"] == tok.hf("a man plays")["input_ids"]


@pytest.mark.parametrize("kind", ["archive", "hf_folder", "hub_offline"])
def test_prepare_tokenizer_says_which_file_is_missing(tmp_path, kind, monkeypatch):
    from tvr.data.tokenizer import TokenizerError
    from tvr.distributed import DistEnv
    from tvr.train import prepare_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if kind == "archive":
        pretrained = tmp_path / "ViT-B-32.pt"
        pretrained.write_bytes(b"")
    elif kind == "hf_folder":
        pretrained = tmp_path / "clip"
        pretrained.mkdir()
        (pretrained / "config.json").write_text("{}")
    else:
        pretrained = "openai/clip-vit-base-patch32"
    cfg = load_config(None, [f"model.pretrained={pretrained}"])
    with pytest.raises(TokenizerError) as exc:
        prepare_tokenizer(cfg, tmp_path / "run", [], DistEnv())
    msg = str(exc.value)
    assert f"model.pretrained={str(pretrained)!r}" in msg
    assert "model.tokenizer" in msg and "bpe_simple_vocab_16e6.txt.gz" in msg
    assert "openai/CLIP repository at clip/bpe_simple_vocab_16e6.txt.gz" in msg
    assert "tokenizer.json or vocab.json + merges.txt" in msg
    assert not (tmp_path / "run").exists()


def test_hub_ids_are_not_local_paths():
    from tvr.run_checks import looks_like_local_path

    assert not looks_like_local_path("openai/clip-vit-base-patch32")  # hub ids stay allowed
    assert not looks_like_local_path("bert-base-uncased")
    assert looks_like_local_path("./clip") and looks_like_local_path("a/b/c")


@pytest.mark.parametrize(
    ("value", "hub"),
    [
        ("openai/clip-vit-base-patch32", True),
        ("bert-base-uncased", True),
        ("org/_name", True),  # "_" may start a part on the hub
        ("org/name-", False),  # "-" and "." may not end one
        ("org/.name", False),
        ("a--b", False),  # nor may "--" or ".." appear
        ("a..b", False),
        ("a" * 97, False),  # at most 96 characters
        ("a/b/c", False),
        ("~/clip", False),
    ],
)
def test_one_hub_id_rule_for_config_checks_and_backbone(value, hub, monkeypatch):
    """The hub's own rule (huggingface_hub's validate_repo_id) decides, in run_checks and in the
    backbone loader alike: a name that is no hub id is a missing local path."""
    from tvr.models.backbone import BackboneNotFoundError
    from tvr.models.loading import load_encoder
    from tvr.run_checks import is_hub_id, looks_like_local_path

    assert is_hub_id(value) is hub
    assert looks_like_local_path(value) is not hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = "HF_HUB_OFFLINE" if hub else "not an existing Hugging Face CLIP folder"
    with pytest.raises(BackboneNotFoundError, match=expected):
        load_encoder(value)


@pytest.mark.parametrize(
    ("head", "extra"),
    [
        ("xclip", []),
        ("tcmgc", []),
        ("gare", []),
        ("dmae", ["negnce.enable=true", "tpmcl.enable=true"]),
    ],
)
def test_seed_methods_train_with_drgi(tmp_path, tiny_synthvtt, head, extra):
    """Each seed method trains with DRGI and evaluates (cross heads scored in blocks)."""
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, f"m-{head}", f"model.head={head}",
                                           "drgi.enable=true", "train.epochs=1", *extra))
    run = train(cfg, progress=False)
    last = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()][-1]
    assert last["drgi_loss"] > 0 and all(
        v == v for v in last.values() if isinstance(v, float)  # no NaN
    )
    metrics = json.loads((run / "metrics.json").read_text())["synthvtt-test"]
    assert metrics["num_videos"] == 8 and 1 <= metrics["t2v/MnR"] <= 8


# ----------------------------------------------------------------------------- frozen video cache
def test_cached_frozen_video_features_train_the_same_model(tmp_path, tiny_synthvtt):
    """A frozen vision tower's cached features give the run that encodes frames every step."""
    common = ("model.freeze_vision=true", "drgi.enable=true", "train.eval_after=false",
              "train.epochs=1")
    runs = {}
    for cached in (False, True):
        cfg = load_config(None, tiny_overrides(
            tiny_synthvtt, tmp_path, f"c-{cached}", *common,
            f"train.cache_video_features={str(cached).lower()}"))
        run = train(cfg, progress=False)
        runs[cached] = (load_file(str(run / "model.safetensors")),
                        [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()])
    (w_plain, log_plain), (w_cached, log_cached) = runs[False], runs[True]
    assert [r["step"] for r in log_plain] == [r["step"] for r in log_cached]
    for a, b in zip(log_plain, log_cached):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
    assert w_plain.keys() == w_cached.keys()
    for key in w_plain:
        torch.testing.assert_close(w_cached[key], w_plain[key], rtol=1e-4, atol=1e-5, msg=key)
    vision = [k for k in w_plain if "vision_model" in k]
    assert vision  # the frozen tower is saved and unchanged

def test_cache_video_features_needs_a_frozen_tower(tmp_path, tiny_synthvtt):
    cfg = load_config(None, tiny_overrides(tiny_synthvtt, tmp_path, "nf",
                                           "train.cache_video_features=true"))
    with pytest.raises(ValueError, match="model.freeze_vision=true"):
        train(cfg, progress=False)


def test_cached_features_skip_undecodable_videos(tmp_path, tiny_synthvtt):
    import shutil

    from tests.test_dataset import StubTokenizer
    from tvr.data.dataset import PairDataset, SkippedItem
    from tvr.data.sources import load_split
    from tvr.data.video import FrameSampler
    from tvr.models.features import TokenFeatures
    from tvr.models.frozen_video import encode_frozen_videos

    root = tmp_path / "synthvtt"
    shutil.copytree(tiny_synthvtt, root)
    records = load_split("synthvtt", root, "train")
    records[1].video_path.write_bytes(b"not a video")
    ds = PairDataset(records, FrameSampler(4, 32), StubTokenizer(), 16, on_decode_error="skip")

    class MeanColour(torch.nn.Module):  # a known, fixed "tower": mean colour per frame
        def encode_video(self, video, mask):
            tokens = video.mean(dim=(3, 4))  # [B, T, 3]
            return TokenFeatures(tokens, mask, tokens.mean(1))

    feats = encode_frozen_videos(MeanColour(), ds, batch_size=3, device=torch.device("cpu"),
                                 progress=False)
    assert len(feats) == len({r.video_id for r in records})
    assert list(feats.unavailable) == [ds.video_index[1]]
    video, _, _ = FrameSampler(4, 32)(records[0].video_path)
    torch.testing.assert_close(feats.tokens[ds.video_index[0]], video.mean(dim=(2, 3)))
    ds.use_cached_videos(feats.unavailable)
    first_bad = ds.captions.index(records[1].captions[0])
    assert isinstance(ds[first_bad], SkippedItem)
    item = ds[0]
    assert "video" not in item and item["video_index"] == ds.video_index[0]
    with pytest.raises(KeyError, match="failed to decode"):
        feats.lookup(torch.tensor([ds.video_index[1]]))
