"""Contracts of every registered head and objective, parametrised over the registry: a method
registered anywhere (a test package included) gets these tests without being listed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.helpers_heads import (
    SMALL_LAMBDA,
    make_text,
    make_video,
    plugin_modules,
    seed_cfg,
    step_outputs,
)
from tvr.config import ExperimentConfig, section_class, section_names_all
from tvr.models.heads import build_head
from tvr.models.heads.base import SimilarityHead
from tvr.objectives import Objective, build_objectives
from tvr.registry import get, names

HEADS = names("head")
OBJECTIVES = names("objective")


def _head(name: str, seed: int = 0) -> SimilarityHead:
    torch.manual_seed(seed)
    head = build_head(seed_cfg(name, SMALL_LAMBDA if name == "tcmgc" else None), 16)
    return head.eval()  # dropout off: score and score_outputs must agree exactly


@pytest.mark.parametrize("name", HEADS)
def test_head_scores_every_pair(name):
    head = _head(name)
    assert isinstance(head, SimilarityHead)
    text, video = make_text(5), make_video(3)
    et, ev = head.embed_text(text), head.embed_video(video)
    scores = head.score(et, ev)
    assert scores.shape == (5, 3) and torch.isfinite(scores).all()
    torch.testing.assert_close(head(text, video), scores)
    torch.testing.assert_close(head.score_outputs(et, ev)["sim"], scores)


@pytest.mark.parametrize("name", HEADS)
def test_head_declared_capabilities_hold(name):
    head = _head(name)
    cls = type(head)
    assert cls.coarse in ("pooled", "token_mean")
    text, video = make_text(4), make_video(4)
    et, ev = head.embed_text(text), head.embed_video(video)
    scores = head.score(et, ev)
    if cls.factorized:
        torch.testing.assert_close(scores, et.pooled @ ev.pooled.T)
    if cls.needs_token_weights:
        assert et.weights is not None and ev.weights is not None
    if cls.coarse == "token_mean":  # the weighted token means bound the score from below
        assert cls.needs_token_weights
        coarse_t = torch.einsum("bn,bnd->bd", et.weights * et.mask, et.tokens)
        coarse_v = torch.einsum("bn,bnd->bd", ev.weights * ev.mask, ev.tokens)
        assert (coarse_t @ coarse_v.T <= scores + 1e-5).all()
    if cls.token_scores:
        assert head.token_similarity(et, ev).shape == (4, et.tokens.shape[1], ev.tokens.shape[1])
        assert head.word_contributions(et, ev).shape == (4, et.tokens.shape[1])
    else:
        with pytest.raises(NotImplementedError, match="token-level"):
            head.token_similarity(et, ev)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_declarations_name_real_config_keys(name):
    cls = get("objective", name)
    assert issubclass(cls, Objective)
    assert cls.section in section_names_all(), f"{name}.section={cls.section!r} is no section"
    fields = {f.name: f.type for f in dataclasses.fields(section_class(cls.section))}
    assert fields.get("weight") in (float, "float"), f"{name}: its section has no float weight"
    for head in (cls.owner_head, cls.needs_head):
        assert head is None or head in HEADS
    assert cls.replaces is None or cls.replaces in OBJECTIVES


@pytest.mark.parametrize(("kind", "name"), [*(("head", h) for h in HEADS),
                                           *(("objective", o) for o in OBJECTIVES)])
def test_declared_traits_match_the_class(kind, name):
    """What the config reads of a method without importing it (tvr.config.traits) is what its
    class declares; every built-in (a class in tvr) has a declaration, naming its module."""
    from tvr.config.traits import HEAD_TRAITS, OBJECTIVE_TRAITS, method, method_module

    cls = get(kind, name)
    declared = names(HEAD_TRAITS if kind == "head" else OBJECTIVE_TRAITS)
    if cls.__module__.split(".")[0] == "tvr":
        assert name in declared, f"built-in {kind} {name!r} has no declaration in tvr.config.methods"
    if name not in declared:
        assert method(kind, name) is cls  # a plug-in's traits are its class attributes
        return
    traits = method(kind, name)
    assert method_module(kind, name) == cls.__module__
    fields = ("section", "with_objectives") if kind == "head" else (
        "section", "owner_head", "replaces", "order")
    for field in fields:
        assert getattr(traits, field) == getattr(cls, field), f"{kind} {name}: {field}"


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_trains_with_its_head(name):
    """Listed, the objective is built, returns finite scalar losses, and backpropagates."""
    cls = get("objective", name)
    head_name = cls.owner_head or cls.needs_head or "seqtransf"
    cfg = seed_cfg(head_name, SMALL_LAMBDA if head_name == "tcmgc" else None)
    cfg.add_objective(name, **({"hidden": 8} if name == "drgi" else {}))
    objectives = build_objectives(cfg, 16)
    assert name in objectives
    torch.manual_seed(0)
    head = build_head(cfg, 16)
    text, video = make_text(6), make_video(6)
    text.tokens.requires_grad_(True)
    outputs = {**step_outputs(head, text, video), "head": head}  # as Retriever.forward
    result = objectives[name](outputs, {})
    losses = {k: v for k, v in result.items() if k.endswith("_loss")}
    assert losses, f"{name} returned no *_loss term: {sorted(result)}"
    for key, value in result.items():
        assert torch.as_tensor(value).dim() == 0 and torch.isfinite(torch.as_tensor(value)), key
    sum(losses.values()).backward()
    params = [*objectives[name].parameters(), *head.parameters()]
    assert text.tokens.grad is not None or any(p.grad is not None for p in params)


def _using(section: str) -> tuple[ExperimentConfig, str]:
    """A config that uses ``section`` (as its head's, an objective's, or a module's) and the
    dotted key prefix of its settings in the config."""
    from tvr.config import head_section, objective_section

    cfg = ExperimentConfig(plugins=plugin_modules())
    heads = [h for h in HEADS if head_section(h) == section]
    objectives = [o for o in OBJECTIVES if objective_section(o) == section]
    if heads:
        cfg.set_head(heads[0])
        return cfg, "head"
    if objectives:
        owner = get("objective", objectives[0]).owner_head
        if owner:
            cfg.set_head(owner)
        cfg.add_objective(objectives[0])
        return cfg, f"objectives.{objectives[0]}"
    return cfg, section


@pytest.mark.parametrize("name", section_names_all())
def test_section_is_a_strict_dataclass_with_defaults(name):
    """Every registered section builds from defaults, round-trips, and refuses unknown keys."""
    from tvr.config import ConfigError, from_dict, to_dict

    cls = section_class(name)
    assert dataclasses.is_dataclass(cls)
    cfg, key = _using(name)
    assert isinstance(getattr(cfg, name), cls)
    data = to_dict(cfg)
    assert from_dict(data) == cfg
    with pytest.raises(ConfigError, match=rf"unknown config key '{key}\.no_such_key'"):
        from_dict(_with_bad_key(data, key))


def _with_bad_key(data: dict, key: str) -> dict:
    import copy

    data = copy.deepcopy(data)
    if key == "head":
        data["head"]["no_such_key"] = 1
    elif key.startswith("objectives."):
        entry = next(e for e in data["objectives"] if e["name"] == key.split(".", 1)[1])
        entry["no_such_key"] = 1
    else:
        data[key]["no_such_key"] = 1
    return data
