"""Experiment configuration: nested dataclasses <- YAML <- dotted CLI overrides.

Loading is strict: an unknown key or a value of the wrong type raises :class:`ConfigError`
naming the dotted key, the file it came from and what was expected.

Configs compose: a file may overlay others with a top-level ``include:`` (a dataset/recipe base,
then a small per-method overlay); see :func:`config_layers`.

Example:
    >>> cfg = load_config("configs/synthvtt/seqtransf.yaml", ["train.epochs=3", "drgi.enable=true"])
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value that does not fit the schema."""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    dataset: str = "synthvtt"  # source registry name (msrvtt, msvd, lsmdc, activitynet, ...)
    root: str = "data/synthvtt"  # dataset root folder (annotations + videos)
    train_split: str = "train"  # split used for training
    eval_split: str = "test"  # split used by evaluation after training
    num_frames: int = 12  # frames sampled uniformly per clip (T)
    image_size: int = 224  # frames are resized (short side) and centre-cropped to this
    max_words: int = 32  # text length in tokens incl. SOT/EOT and padding (L)
    on_decode_error: str = "raise"  # raise | skip: what a corrupt video does to the run
    frame_cache: str = ""  # folder for the on-disk cache of sampled frames ("" = off)
    num_workers: int = 0  # DataLoader workers
    source_options: dict[str, Any] = field(default_factory=dict)  # passed to the source parser


@dataclass
class ClipConfig:
    """Size of a from-scratch Hugging Face CLIP (used when ``model.pretrained`` is empty)."""

    embed_dim: int = 512  # joint projection dim (D)
    text_width: int = 512  # text transformer hidden size
    text_layers: int = 12  # text transformer depth
    text_heads: int = 8  # text attention heads
    vision_width: int = 768  # vision transformer hidden size
    vision_layers: int = 12  # vision transformer depth
    vision_heads: int = 12  # vision attention heads
    patch_size: int = 32  # ViT patch size
    vocab_size: int = 49408  # text vocabulary (overridden by the run's tokenizer)
    max_positions: int = 77  # text positions


@dataclass
class ModelConfig:
    encoder: str = "hf_clip"  # encoder registry name
    pretrained: str = ""  # HF CLIP folder or hub id, an OpenAI .pt, a CLIP4Clip .bin, or a run dir
    # tokenizer folder, hub id, or OpenAI's bpe_simple_vocab_16e6.txt.gz (converted once into the
    # run's tokenizer/); "" = the pretrained model's own
    tokenizer: str = ""
    clip: ClipConfig = field(default_factory=ClipConfig)  # architecture when built from scratch
    head: str = "seqtransf"  # similarity head registry name
    init_logit_scale: float = 4.6052  # ln(100), CLIP's starting inverse temperature
    max_logit_scale: float = 4.6052  # logit_scale is clamped to this after every step
    freeze_backbone: bool = False  # train only new modules (heads, objectives)
    freeze_vision: bool = False  # keep the (pretrained) vision tower fixed; the text tower trains
    # With freeze_vision: still train the last k vision blocks (+ post-layernorm and projection)
    train_vision_layers: int = 0


@dataclass
class SeqTransfConfig:
    layers: int = 4  # temporal transformer blocks (CLIP4Clip: 4)
    heads: int = 8  # attention heads (width / 64 for CLIP)
    max_frames: int = 77  # rows of the frame position table
    init_from_text: bool = True  # copy text-tower blocks 0..layers-1 when widths match


@dataclass
class WTIConfig:
    arch: int = 2  # token-weight MLP depth: 1 linear, 2 or 3 layer MLP (DRL wti_arch)
    weighted: bool = True  # False = DRL's "TI" ablation (plain means)
    temporal: bool = True  # run seqTransf over frames before token interaction (DRL default)
    masked_max: bool = False  # True: padding left out of the max-sims (DRL: padded sims are 0)


@dataclass
class InfoNCEConfig:
    weight: float = 1.0  # loss weight
    mask_same_video: bool = False  # drop same-video off-diagonal pairs from the softmax


@dataclass
class CDCRConfig:
    enable: bool = False  # add DRL's channel decorrelation regulariser (WTI head only)
    weight: float = 0.001  # lambda_cdcr
    alpha_diag: float = 0.11  # alpha_1: weight of (C_cc - 1)^2
    alpha_offdiag: float = 0.0  # alpha_2: weight of C_cd^2, c != d


@dataclass
class DRGIConfig:
    enable: bool = False  # add the DRGI objective (training only)
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


@dataclass
class XCLIPConfig:
    mask_padding: bool = False  # True: padded words/frames leave every softmax and sum (code: no mask)
    attention_temperature: float = 0.01  # tau_a of every attention-over-similarity softmax


@dataclass
class TCMGCConfig:
    keep_rate: float = 0.1  # rho of similarity reorganisation: k = floor(data.max_words * rho)
    softmax_lambda: float = 100.0  # lambda_s of interactive similarity aggregation (ISA)
    lsa_scale: float = 100.0  # scale of the grains inside the LSA softmax (code: logit scale)
    dropout: float = 0.3  # dropout on the residual Linear of the language-video attention
    mask_padding: bool = True  # False = code: padded words/frames enter LVA, SR and ISA
    sdr: bool = True  # add the similarity decorrelation loss (only with model.head=tcmgc)
    sdr_weight: float = 0.5  # weight of L_sdr (sdr_loss_weight)


@dataclass
class GAREConfig:
    temp: float = 3.0  # temperature of text-conditioned frame pooling (script 3, argparse 5)
    side: str = "text"  # text | video: which side of the pair the increment Delta is added to
    masked_softmax: bool = False  # True: pool over real frames only (code: mask after softmax)
    gap_masked_mean: bool = True  # False = code: the gap's frame mean includes padded frames
    psi_identity_init: bool = False  # True = paper: psi's Linears start as identity (code: N(0,.02))
    zero_init_delta: bool = False  # zero psi's output Linear so Delta = 0 at the first step
    dropout: float = 0.3  # dropout on psi's residual Linear
    rerank_topk: int = 0  # inference: 0 = exhaustive; K = rescore each text's meanP top-K only
    regularize: bool = True  # add the gare_reg objective (only with model.head=gare)
    beta: float = 1e-4  # weight of the video-anchored relaxed VIB (code 1e-4, paper 0.07)
    alpha: float = 2.0  # sharpness of the directional-diversity kernel
    lambda_dir: float = 0.01  # weight of the directional-diversity term
    lambda_eps: float = 0.01  # weight of the trust-region (norm-diversity) term
    lambda_low: float = 0.5  # trust-region floor of L_eps
    trust_region: str = "clamp"  # clamp (paper: max(L_eps, -lambda_low)) | hard_cut (code)


@dataclass
class DMAEConfig:
    interaction: str = "att_wti"  # wti | ti (sentence-frame) | att_wti | att_ti (+ word-frame)
    wti_arch: int = 1  # depth of the token-weight MLPs (1 linear, 2 or 3 layers)
    nfc: bool = True  # visual attention enhancement (nearest-frame correction of the max)
    nfc_weight: float = 0.5  # weight of the nearest-frame term
    masked_max: bool = False  # True: padding left out of the maxima (code: padded sims are 0)
    # True: L2-normalise the seqTransf output frames, so scores are cosines (new work; the code
    # keeps them unnormalised, which saturates NegNCE's fixed scale 100 when the temporal module
    # does not keep unit norms, e.g. the demo backbone's pretrained one)
    normalize_frames: bool = False


@dataclass
class NegNCEConfig:
    enable: bool = False  # use NegNCE instead of InfoNCE as the contrastive loss
    weight: float = 1.0  # loss weight
    scale: float = 100.0  # fixed inverse temperature of the softmax
    margin: float = 0.0  # m of the hard-negative condition
    hard_weight: float = 0.5  # weight of the hard-negative term
    exclude_same_video: bool = True  # same-video pairs are never hard negatives
    mask_same_video: bool = False  # also drop same-video off-diagonal pairs from the softmax


@dataclass
class TPMCLConfig:
    enable: bool = False  # add triplet partial margin learning (only with model.head=dmae)
    weight: float = 1.0  # loss weight
    threshold: float = 0.6  # tokens are masked while their cumulative weight is below this
    margin: float = 0.6  # margin between full and partial positive scores
    video_global: bool = False  # add the code's 4th triplet (t, v_g) vs (t, v'_g)
    normalize_partial: bool = False  # True: L2-normalise t'_g like t_g (code: unnormalised)


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training pairs
    batch_size: int = 128  # global batch (split across ranks)
    optim: str = "adamw"  # adamw | bertadam_legacy
    lr: float = 1e-4  # learning rate of new modules (heads, objectives, temporal modules)
    clip_lr: float = 1e-6  # learning rate of the backbone
    weight_decay: float = 0.2  # decoupled; biases and norms are exempt
    betas: tuple[float, float] = (0.9, 0.98)  # Adam betas
    eps: float = 1e-6  # Adam epsilon
    warmup: float = 0.1  # warm-up fraction of total steps, then cosine
    grad_clip: float = 1.0  # global grad-norm clip (0 = off)
    amp: str = "auto"  # auto (bf16/fp16 on CUDA) | off
    seed: int = 0  # seeds python, numpy and torch
    log_every: int = 10  # steps between JSONL log lines
    eval_after: bool = True  # evaluate eval_split after the last epoch
    max_steps: int = 0  # stop after this many optimiser steps (0 = full schedule)
    device: str = "auto"  # auto | cpu | cuda
    # With a frozen vision tower: encode each training video once and train from the cached
    # frame features (tvr/models/frozen_video.py); same result, no per-step decoding.
    cache_video_features: bool = False
    val_split: str = ""  # split evaluated during training ("" = none), e.g. val
    val_every: int = 1  # epochs between val evaluations (the last epoch is always evaluated)
    select: str = "last"  # last | best_val: which epoch's weights the run keeps as model.safetensors
    select_metric: str = "t2v/R@1"  # val metric that best_val maximises (MdR/MnR are minimised)


@dataclass
class ExperimentConfig:
    name: str = "run"  # run name; the run folder is output_root/name
    output_root: str = "checkpoints"  # where run folders are created
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    seqtransf: SeqTransfConfig = field(default_factory=SeqTransfConfig)
    wti: WTIConfig = field(default_factory=WTIConfig)
    infonce: InfoNCEConfig = field(default_factory=InfoNCEConfig)
    cdcr: CDCRConfig = field(default_factory=CDCRConfig)
    drgi: DRGIConfig = field(default_factory=DRGIConfig)
    xclip: XCLIPConfig = field(default_factory=XCLIPConfig)
    tcmgc: TCMGCConfig = field(default_factory=TCMGCConfig)
    gare: GAREConfig = field(default_factory=GAREConfig)
    dmae: DMAEConfig = field(default_factory=DMAEConfig)
    negnce: NegNCEConfig = field(default_factory=NegNCEConfig)
    tpmcl: TPMCLConfig = field(default_factory=TPMCLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_root) / self.name


# --------------------------------------------------------------------------------------------
# Strict conversion
# --------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, origin: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    where = f" in {origin}" if origin else ""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}{where}: expected a mapping, got {value!r}")
        return _build(tp, value, key, origin)
    org = typing.get_origin(tp)
    args = typing.get_args(tp)
    if org in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, arg, key, origin)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            f"config key {key!r}{where}: expected {_type_name(tp)}, got {value!r}"
        )
    if org is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(
                f"config key {key!r}{where}: expected a list of {len(args)} values, got {value!r}"
            )
        return tuple(_coerce(v, a, f"{key}[{i}]", origin) for i, (v, a) in enumerate(zip(value, args)))
    if org is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r}{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]", origin) for i, v in enumerate(value)]
    if org is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r}{where}: expected a string, got {value!r}")
    raise ConfigError(f"config key {key!r}{where}: unsupported type {_type_name(tp)}")


def _build(cls: type[T], data: dict[str, Any], prefix: str, origin: str) -> T:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in known:
            where = f" in {origin}" if origin else ""
            raise ConfigError(
                f"unknown config key {key!r}{where}; known keys here: {', '.join(sorted(known))}"
            )
        kwargs[k] = _coerce(v, hints[k], key, origin)
    return cls(**kwargs)


def from_dict(data: dict[str, Any], cls: type[T] = ExperimentConfig, origin: str = "") -> T:  # type: ignore[assignment]
    """Build ``cls`` from a nested dict, strictly (unknown keys and wrong types raise)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin or 'config'}: expected a mapping at the top level, got {data!r}")
    return _build(cls, data, "", origin)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able nested dicts (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` into (["a","b","c"], value); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected the form key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return ``data`` with each ``key.sub=value`` override merged in."""
    out = dict(data)
    for text in overrides:
        parts, value = parse_override(text)
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        out = _merge(out, nested)
    return out


INCLUDE_KEY = "include"  # top-level key of a config file: the file(s) it overlays


def _read_mapping(path: Path, included_from: Path | None) -> dict[str, Any]:
    """One YAML/JSON file as a dict (empty file -> {})."""
    via = f" (included from {included_from})" if included_from is not None else ""
    if not path.is_file():
        raise ConfigError(f"config file {path}{via} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}{via} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}{via}: expected a mapping at the top level")
    return loaded


def config_layers(
    path: str | Path, _chain: tuple[Path, ...] = ()
) -> list[tuple[str, dict[str, Any]]]:
    """The files a config file is composed of, base first: ``[(file, its keys), ...]``.

    A file may name the files it overlays under the top-level key ``include`` (a path or a
    list of paths, relative to the file's folder); their keys are merged first, in order, then
    the file's own (mappings merge key by key, any other value replaces). Includes nest; a cycle
    is an error.

    Raises:
        ConfigError: a missing or unreadable file, a bad ``include`` value, or a cycle.
    """
    p = Path(path)
    data = _read_mapping(p, _chain[-1] if _chain else None)
    includes = data.pop(INCLUDE_KEY, [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise ConfigError(
            f"config key {INCLUDE_KEY!r} in {p}: expected a file name or a list of file names, "
            f"got {includes!r}"
        )
    layers: list[tuple[str, dict[str, Any]]] = []
    chain = (*_chain, p.resolve())
    for name in includes:
        target = p.parent / name
        if target.resolve() in chain:
            raise ConfigError(
                f"config file {p} includes {target}, which includes it back: "
                + " -> ".join(str(c) for c in (*chain, target.resolve()))
            )
        layers += config_layers(target, chain)
    layers.append((str(p), data))
    return layers


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an :class:`ExperimentConfig` from YAML (or JSON), its includes, and dotted overrides.

    Every file of the composition (:func:`config_layers`) is checked on its own first, so an
    unknown key or a wrong type names the file that holds it.

    Raises:
        ConfigError: unknown key, wrong type, unreadable file; the message names the key and file.
    """
    data: dict[str, Any] = {}
    origin = ""
    if path is not None:
        layers = config_layers(path)
        for file, layer in layers:
            from_dict(layer, ExperimentConfig, file)  # strict, naming this file
            data = _merge(data, layer)
        origin = str(path)
        if len(layers) > 1:
            origin += " (with " + ", ".join(file for file, _ in layers[:-1]) + ")"
    if overrides:
        data = apply_overrides(data, overrides)
        origin = f"{origin} + overrides" if origin else "overrides"
    return from_dict(data, ExperimentConfig, origin)


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as JSON, atomically."""
    from tvr.io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(to_dict(cfg), indent=2) + "\n")
