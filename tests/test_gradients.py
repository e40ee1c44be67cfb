"""DRGI's own optimiser group and clip, per-term gradient norms (tvr/gradients.py, tvr/optim.py)
and the partly trainable vision tower (``model.train_vision_layers``, tvr/train.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from tests.conftest import tiny_overrides
from tvr.config import ConfigError, ExperimentConfig, load_config
from tvr.gradients import DRGI_PREFIX, GradClipper, drgi_parameters, term_grad_norms
from tvr.optim import build_optimizer, param_groups

LR = 1e-2
BASE_SCALE = 1e6  # base loss gradient per element: norm >> the global clip 1.0
DRGI_SCALE = 1e-3  # DRGI gradient per element: tiny, but far above Adam's eps (1e-6)


class ToyDRGI(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3, 4))
        self.bias = nn.Parameter(torch.zeros(4))


class ToyModel(nn.Module):
    """Parameter names like a Retriever: ``encoder.*``, ``head.*``, ``objectives.<name>.*``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(4, 4)
        self.head = nn.Linear(4, 4, bias=False)
        self.objectives = nn.ModuleDict({"drgi": ToyDRGI(), "infonce": nn.Linear(2, 2)})

    def terms(self) -> dict[str, torch.Tensor]:
        x = torch.ones(2, 4)
        feats = self.head(self.encoder(x))  # shared by both terms
        own = self.objectives["infonce"]
        base = BASE_SCALE * (feats.sum() + own.weight.sum() + own.bias.sum())
        d = self.objectives["drgi"]
        # some DRGI elements get no gradient at all (mask), the rest DRGI_SCALE each
        mask = torch.ones(3, 4)
        mask[0] = 0.0
        drgi = DRGI_SCALE * ((d.weight * mask).sum() + d.bias.sum()) + 1e-3 * feats.pow(2).sum()
        return {"infonce_loss": base, "drgi_loss": drgi}


def train_cfg(grad_clip=1.0, drgi_clip=-1.0, drgi_lr=0.0) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.train.grad_clip = grad_clip
    cfg.train.weight_decay = 0.0
    cfg.train.lr = 1e-4
    cfg.train.clip_lr = 1e-4
    cfg.add_objective("drgi", clip=drgi_clip, lr=drgi_lr)
    return cfg


def first_step(model: ToyModel, cfg: ExperimentConfig, own: dict[str, float], exempt):
    """One step as the trainer takes it: backward, clip, AdamW step. Returns (before, report)."""
    opt = build_optimizer(model, cfg.train, own)
    clipper = GradClipper(model, cfg, exempt=exempt)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.zero_grad(set_to_none=True)
    sum(model.terms().values()).backward()
    report = clipper.clip() if clipper.active else {}
    opt.step()
    return before, report, clipper


def drgi_moves(model: ToyModel, before: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    d = model.objectives["drgi"]
    dw = (d.weight.detach() - before["objectives.drgi.weight"]).abs()
    db = (d.bias.detach() - before["objectives.drgi.bias"]).abs()
    return dw, db


def pre_clip_grads(model: ToyModel) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    sum(model.terms().values()).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


def norm(tensors) -> float:
    return math.sqrt(sum(float(t.pow(2).sum()) for t in tensors))


def test_drgi_parameters_are_the_objective_ones():
    model = ToyModel()
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in drgi_parameters(model)) == [
        "objectives.drgi.bias", "objectives.drgi.weight"]
    model.objectives["drgi"].bias.requires_grad_(False)
    assert [names[id(p)] for p in drgi_parameters(model)] == ["objectives.drgi.weight"]
    assert drgi_parameters(nn.Linear(2, 2)) == []


def test_own_group_holds_exactly_the_drgi_parameters():
    model = ToyModel()
    cfg = train_cfg().train
    cfg.weight_decay = 0.2
    groups = param_groups(model, cfg, {DRGI_PREFIX: LR})
    by_name = {g["group"]: g for g in groups}
    assert set(by_name) == {"backbone/decay", "backbone/no_decay", "new/decay", "new/no_decay",
                            "drgi/decay", "drgi/no_decay"}
    d = model.objectives["drgi"]
    assert by_name["drgi/decay"]["params"] == [d.weight]
    assert by_name["drgi/no_decay"]["params"] == [d.bias]
    assert by_name["drgi/decay"]["lr"] == by_name["drgi/no_decay"]["lr"] == LR
    assert by_name["drgi/decay"]["weight_decay"] == 0.2
    assert by_name["drgi/no_decay"]["weight_decay"] == 0.0
    drgi_ids = {id(p) for p in drgi_parameters(model)}
    for name, g in by_name.items():
        if not name.startswith("drgi/"):
            assert not drgi_ids & {id(p) for p in g["params"]}, name
    # every trainable parameter is in exactly one group
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    # without own groups DRGI sits in the "new" group at train.lr
    plain = {g["group"]: g for g in param_groups(model, cfg)}
    assert set(plain) == {"backbone/decay", "backbone/no_decay", "new/decay", "new/no_decay"}
    assert any(p is d.weight for p in plain["new/decay"]["params"])


def test_under_the_global_clip_drgi_updates_starve():
    """drgi.clip=-1: DRGI's gradients are scaled with the base's huge norm, fall below Adam's
    eps, and AdamW's first step moves DRGI by far less than lr (shared/notes/drgi_feasibility.md)."""
    model = ToyModel()
    cfg = train_cfg(drgi_clip=-1.0, drgi_lr=0.0)
    before, report, _ = first_step(model, cfg, {}, exempt=[])
    assert report["grad_norm"] > 1e6 and "drgi_grad_norm" not in report
    dw, db = drgi_moves(model, before)
    assert float(dw.max()) < 1e-2 * cfg.train.lr
    assert float(db.max()) < 1e-2 * cfg.train.lr
    assert float(dw[1:].min()) > 0  # it does move, just by almost nothing


def test_own_group_unclipped_moves_drgi_by_lr():
    """drgi.clip=0 and drgi.lr=1e-2: DRGI is exempt from the global clip, and Adam's first step
    is +-lr on every element with a gradient, while the global group is still clipped."""
    model = ToyModel()
    grads = pre_clip_grads(model)
    cfg = train_cfg(drgi_clip=0.0, drgi_lr=LR)
    exempt = drgi_parameters(model)
    before, report, clipper = first_step(model, cfg, {DRGI_PREFIX: LR}, exempt=exempt)
    dw, db = drgi_moves(model, before)
    torch.testing.assert_close(dw[1:], torch.full((2, 4), LR), rtol=2e-3, atol=0)
    torch.testing.assert_close(db, torch.full((4,), LR), rtol=2e-3, atol=0)
    assert (dw[0] == 0).all()  # no gradient, no weight decay: no move
    # the reports: pre-clip norms of both groups
    main_names = [n for n, _ in model.named_parameters() if not n.startswith(DRGI_PREFIX)]
    assert report["grad_norm"] == pytest.approx(norm(grads[n] for n in main_names), rel=1e-5)
    assert report["drgi_grad_norm"] == pytest.approx(
        norm(grads[n] for n in ("objectives.drgi.weight", "objectives.drgi.bias")), rel=1e-5)
    # the global group was clipped to 1 and the DRGI group left alone
    assert norm(p.grad for p in clipper.main) == pytest.approx(1.0, rel=1e-4)
    assert norm(p.grad for p in clipper.own) == pytest.approx(report["drgi_grad_norm"], rel=1e-6)
    enc = model.encoder.weight.detach() - before["encoder.weight"]
    assert float(enc.abs().max()) == pytest.approx(1e-4, rel=1e-2)  # clipped, but > eps: ~lr


@pytest.mark.parametrize("own_clip", [1e-4, 1.0])
def test_own_group_with_its_own_clip(own_clip):
    model = ToyModel()
    grads = pre_clip_grads(model)
    pre = norm(grads[n] for n in ("objectives.drgi.weight", "objectives.drgi.bias"))
    cfg = train_cfg(drgi_clip=own_clip, drgi_lr=LR)
    clipper = GradClipper(model, cfg, exempt=drgi_parameters(model))
    sum(model.terms().values()).backward()
    report = clipper.clip()
    assert report["drgi_grad_norm"] == pytest.approx(pre, rel=1e-5)
    after = norm(p.grad for p in clipper.own)
    assert after == pytest.approx(min(pre, own_clip), rel=1e-3)  # torch adds 1e-6 to the norm
    if own_clip > pre:  # below the clip: untouched
        torch.testing.assert_close(model.objectives["drgi"].weight.grad,
                                   grads["objectives.drgi.weight"])
    assert norm(p.grad for p in clipper.main) == pytest.approx(1.0, rel=1e-4)


def test_clipper_groups_and_activity():
    model = ToyModel()
    ids = {id(p) for p in drgi_parameters(model)}
    under = GradClipper(model, train_cfg(drgi_clip=-1.0), exempt=[])
    assert len(under.main) == len(list(model.parameters())) and under.own == []
    own = GradClipper(model, train_cfg(drgi_clip=0.0), exempt=drgi_parameters(model))
    assert {id(p) for p in own.own} == ids and not ids & {id(p) for p in own.main}
    assert not GradClipper(model, train_cfg(grad_clip=0.0), exempt=[]).active
    no_global = GradClipper(model, train_cfg(grad_clip=0.0, drgi_clip=0.0),
                            exempt=drgi_parameters(model))
    assert no_global.active
    sum(model.terms().values()).backward()
    report = no_global.clip()
    assert set(report) == {"drgi_grad_norm"}  # no global clip: the base grads are untouched
    assert norm([model.encoder.weight.grad]) > 1e6


def test_term_grad_norms_match_manual_autograd():
    model = ToyModel()
    terms = model.terms()
    shared = [p for n, p in model.named_parameters() if n.startswith(("encoder.", "head."))]
    g_drgi = torch.autograd.grad(terms["drgi_loss"], shared, retain_graph=True)
    g_base = torch.autograd.grad(terms["infonce_loss"], shared, retain_graph=True)
    got = term_grad_norms(model, terms)
    assert got["grad_shared_drgi"] == pytest.approx(norm(g_drgi), rel=1e-6)
    assert got["grad_shared_base"] == pytest.approx(norm(g_base), rel=1e-6)
    assert got["grad_shared_ratio"] == pytest.approx(norm(g_drgi) / norm(g_base), rel=1e-6)
    assert 0 < got["grad_shared_drgi"] < got["grad_shared_base"]
    # no .grad accumulated, and the graph is still usable for the step's own backward
    assert all(p.grad is None for p in model.parameters())
    sum(terms.values()).backward()
    assert model.encoder.weight.grad is not None


def test_term_grad_norms_count_the_elements_drgi_dominates():
    """Adam steps each element on its own: the share of shared elements where DRGI's gradient
    is the larger one, however small its norm ratio."""

    class Split(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(3, 2)  # row 0 read by the base loss, row 1 by DRGI only
            self.objectives = nn.ModuleDict({"drgi": nn.Linear(1, 1)})

    model = Split()
    out = model.encoder(torch.ones(1, 3))[0]
    terms = {"infonce_loss": 1e3 * out[0], "drgi_loss": 1e-6 * out[1]}
    got = term_grad_norms(model, terms)
    assert got["grad_shared_ratio"] < 1e-8
    assert got["grad_shared_dominant"] == pytest.approx(4 / 8)  # row 1 (3) + bias[1], of 8


def test_term_grad_norms_sum_every_other_term_and_skip_non_shared():
    model = ToyModel()
    terms = model.terms()
    x = torch.ones(1, 4)
    terms["cdcr_loss"] = model.encoder(x).pow(2).sum()
    shared = [p for n, p in model.named_parameters() if n.startswith(("encoder.", "head."))]
    base = terms["infonce_loss"] + terms["cdcr_loss"]
    g_base = torch.autograd.grad(base, shared, retain_graph=True)
    assert term_grad_norms(model, terms)["grad_shared_base"] == pytest.approx(norm(g_base),
                                                                              rel=1e-6)
    # a DRGI term that reaches no shared parameter: norm 0
    d = model.objectives["drgi"]
    only_own = {"infonce_loss": terms["infonce_loss"], "drgi_loss": d.weight.sum()}
    got = term_grad_norms(model, only_own)
    assert got["grad_shared_drgi"] == 0.0 and got["grad_shared_ratio"] == 0.0
    assert term_grad_norms(model, {"infonce_loss": terms["infonce_loss"]}) == {}
    assert term_grad_norms(model, {"drgi_loss": terms["drgi_loss"]}) == {}


def test_training_logs_the_own_group_and_term_norms(tmp_path, tiny_synthvtt):
    """The trainer wires drgi.lr / drgi.clip: log lines report both groups' norms."""
    from tvr.train import train

    cfg = load_config(None, tiny_overrides(
        tiny_synthvtt, tmp_path, "own", "drgi.enable=true", "drgi.clip=0", "drgi.lr=1e-2",
        "train.epochs=1", "train.eval_after=false", "train.log_every=2"))
    run = train(cfg, progress=False)
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert rows
    for row in rows:
        for key in ("grad_norm", "drgi_grad_norm", "grad_shared_drgi", "grad_shared_base",
                    "grad_shared_ratio"):
            assert key in row and math.isfinite(row[key]) and row[key] >= 0, key
        assert "drgi_acc" in row and "drgi_entropy_text" in row  # log steps are diagnosed


# ------------------------------------------------------------------ train_vision_layers


class FakeTokenizer:
    vocab, bos_token_id, eos_token_id, pad_token_id = 50, 48, 49, 49

    def __len__(self) -> int:
        return self.vocab


def vision_cfg(**model) -> ExperimentConfig:
    from tvr.models.backbone import tiny_clip_config

    cfg = ExperimentConfig()
    cfg.model.clip = tiny_clip_config(50, layers=2, max_positions=16)
    cfg.set_head("meanp")
    cfg.data.image_size, cfg.data.max_words, cfg.data.num_frames = 32, 8, 3
    for k, v in model.items():
        setattr(cfg.model, k, v)
    return cfg


def vision_names(model: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in model.named_parameters()
            if n.startswith(("encoder.clip.vision_model.", "encoder.clip.visual_projection."))}


def test_train_vision_layers_unfreezes_only_the_tail():
    from tvr.train import build_model

    model = build_model(vision_cfg(freeze_vision=True, train_vision_layers=1), FakeTokenizer())
    names = vision_names(model)
    tail = ("encoder.clip.vision_model.encoder.layers.1.", "encoder.clip.vision_model.post_layernorm.",
            "encoder.clip.visual_projection.")
    assert any(n.startswith(tail[0]) for n in names)
    for n, trainable in names.items():
        assert trainable == n.startswith(tail), n
    # the text tower and the rest still train
    assert all(p.requires_grad for n, p in model.named_parameters()
               if n.startswith("encoder.clip.text_model."))
    # a vision tower that trains cannot be cached
    from tvr.models.frozen_video import check_frozen

    with pytest.raises(ValueError, match="frozen vision tower"):
        check_frozen(model)
    # both blocks: everything after the embeddings / pre-norm
    model2 = build_model(vision_cfg(freeze_vision=True, train_vision_layers=2), FakeTokenizer())
    for n, trainable in vision_names(model2).items():
        frozen = n.startswith(("encoder.clip.vision_model.embeddings.",
                               "encoder.clip.vision_model.pre_layrnorm."))
        assert trainable != frozen, n
    # 0: the whole tower frozen
    model0 = build_model(vision_cfg(freeze_vision=True), FakeTokenizer())
    assert not any(vision_names(model0).values())


def test_train_vision_layers_errors():
    from tvr.train import build_model

    with pytest.raises(ConfigError, match="model.train_vision_layers.*freeze_vision"):
        build_model(vision_cfg(train_vision_layers=1), FakeTokenizer())
    with pytest.raises(ValueError, match=r"train_vision_layers=3.*2 blocks"):
        build_model(vision_cfg(freeze_vision=True, train_vision_layers=3), FakeTokenizer())
