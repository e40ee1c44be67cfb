"""The ``drgi`` config section (methods.md §9.3 defaults, §9.9 variants), its checks and the
objective's traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.objectives.drgi`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tvr.config.coerce import ConfigError
from tvr.config.traits import declare_objective
from tvr.registry import register


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"config key {key!r}: got {value!r}, expected one of {', '.join(choices)}"
        )


def check_drgi_config(d: Any) -> None:
    """Validate the ``drgi`` section; the error names the key."""
    _check_choice("drgi.mode", d.mode, ("cross", "intra"))
    _check_choice("drgi.nodes", d.nodes, ("tokens", "factors"))
    _check_choice("drgi.activation", d.activation, ("elu", "prelu"))
    _check_choice("drgi.factor_video", d.factor_video, ("mean", "text_conditioned"))
    _check_choice("drgi.attention", d.attention, ("gat", "gatv2"))
    _check_choice("drgi.root", d.root, ("none", "free", "weight"))
    _check_choice("drgi.readout", d.readout, ("mean", "attention"))
    _check_choice("drgi.score", d.score, ("summary", "tokens"))
    _check_choice("drgi.summary", d.summary, ("readout", "pooled"))
    _check_choice("drgi.negatives", d.negatives, ("hardest", "random", "semihard", "curriculum"))
    checks = (
        ("drgi.hidden", d.hidden, d.hidden >= 1, ">= 1"),
        ("drgi.heads", d.heads, d.heads >= 0, ">= 0"),
        ("drgi.neg_topm", d.neg_topm, d.neg_topm >= 1, ">= 1"),
        ("drgi.attn_dropout", d.attn_dropout, 0.0 <= d.attn_dropout < 1.0, "in [0, 1)"),
        ("drgi.attn_temperature", d.attn_temperature, d.attn_temperature > 0, "> 0"),
        ("drgi.graph_topk", d.graph_topk, d.graph_topk >= 0, ">= 0 (0 = complete graph)"),
        ("drgi.semihard_k", d.semihard_k, d.semihard_k >= 1, ">= 1"),
        ("drgi.weight_warmup", d.weight_warmup, d.weight_warmup >= 0, ">= 0"),
        ("drgi.lr", d.lr, d.lr >= 0, ">= 0 (0 = train.lr)"),
        ("drgi.clip", d.clip, d.clip >= 0 or d.clip == -1, "-1, 0 or a positive norm"),
        ("drgi.curriculum", list(d.curriculum),
         0 <= d.curriculum[0] <= d.curriculum[1], "[a, b] with 0 <= a <= b"),
    )
    for key, value, ok, expected in checks:
        if not ok:
            raise ConfigError(f"config key {key!r}: got {value}, expected {expected}")
    if d.score == "tokens" and d.mode != "cross":
        raise ConfigError("config key 'drgi.score': 'tokens' scores one modality's nodes "
                          "against the other's, so it needs drgi.mode=cross")
    if d.nodes == "factors" and (d.global_node or d.summary == "pooled" or d.score == "tokens"):
        raise ConfigError("drgi.nodes=factors already builds its nodes from the pooled vector: "
                          "drgi.global_node, drgi.summary=pooled and drgi.score=tokens need "
                          "drgi.nodes=tokens")
    if d.readout == "attention" and (d.summary == "pooled" or d.score == "tokens"):
        raise ConfigError("config key 'drgi.readout': 'attention' would train nothing here: "
                          "with drgi.summary=pooled or drgi.score=tokens no summary is read out")
    if d.summary == "pooled" and d.score == "tokens":
        raise ConfigError("config key 'drgi.summary': 'pooled' has no effect with "
                          "drgi.score=tokens (nodes are scored against nodes, not a summary)")
    if d.negatives != "hardest" and d.neg_topm != 1:
        raise ConfigError(f"config key 'drgi.neg_topm': got {d.neg_topm}; drgi.negatives="
                          f"{d.negatives} draws one negative per anchor, so it must be 1")


@register("section", "drgi")
@dataclass
class DRGIConfig:
    mode: str = "cross"  # cross | intra
    nodes: str = "tokens"  # tokens | factors
    hidden: int = 64  # GAT output width
    heads: int = 0  # GAT heads (0 = 1 for tokens, 8 for factors)
    factor_k: int = 8  # chunks per global vector in factor mode
    factor_video: str = "mean"  # mean | text_conditioned
    l2norm_inputs: bool = True  # L2-normalise node features before the GAT
    activation: str = "elu"  # elu | prelu
    attn_dropout: float = 0.0  # dropout on attention coefficients
    neg_topm: int = 1  # hardest negatives per anchor used as corrupted graphs
    exclude_same_video: bool = True  # never mine a negative from the anchor's own video
    weight: float = 0.1  # lambda_drgi
    # --- variants (methods.md §9.9); the defaults are the §9.3 definition ---
    attention: str = "gat"  # gat | gatv2 (dynamic attention, W shared)
    root: str = "none"  # none | free (h_i = act(z_i + sum_j a_ij z_j)) | weight (own W_r)
    attn_temperature: float = 1.0  # attention logits are divided by this before the softmax
    learn_temperature: bool = False  # learn log(tau), starting at attn_temperature
    graph_topk: int = 0  # 0 = complete graph; k: each node attends to its k most similar + itself
    readout: str = "mean"  # mean | attention (learned query pooling, +hidden params)
    score: str = "summary"  # summary (h^T U s) | tokens (max over the other modality's nodes)
    global_node: bool = False  # the pooled retrieval embedding joins each graph as a node
    summary: str = "readout"  # readout | pooled (the projected pooled embedding is the summary)
    negatives: str = "hardest"  # hardest | random | semihard | curriculum
    semihard_k: int = 8  # semihard: a random one of the k hardest candidates
    curriculum: tuple[int, int] = (0, 0)  # steps: random before [0], semihard before [1], then hardest
    shuffle_corruption: bool = False  # extra negative: the anchor's graph with nodes drawn from the batch
    weight_warmup: int = 0  # lambda ramps linearly from 0 over this many steps
    lr: float = 0.0  # learning rate of DRGI's own parameter group (0 = train.lr)
    clip: float = -1.0  # -1: under the global train.grad_clip; 0: exempt, unclipped; >0: own clip norm
    # sanity mode: DRGI reads detached features, so only its own parameters learn (can the
    # discriminator separate the hard negatives at all, on features it cannot change?)
    detach_inputs: bool = False


DRGI = declare_objective("drgi", "tvr.objectives.drgi", section="drgi", order=90)
