"""Importers of foreign CLIP checkpoints onto Hugging Face ``transformers`` ``CLIPModel``.

Two formats are read (data_and_metrics.md §13-14):

* **OpenAI CLIP** (``ViT-B-32.pt`` ...): a TorchScript archive, or a plain state dict saved with
  ``torch.save``. :func:`load_openai_clip_state` reads it, :func:`openai_config_from_state`
  infers the architecture from tensor shapes and :func:`convert_openai_to_hf` renames and
  reshapes the tensors (§13.2). (The inverse mapping, which the tests use to write
  OpenAI-layout files from a tiny HF model, is in ``tests/helpers_importers.py``.)
* **CLIP4Clip family** (``pytorch_model.bin.<epoch>``, also DRL, X-CLIP): the CLIP weights under
  ``clip.`` plus the temporal transformer and head parameters. :func:`load_clip4clip_checkpoint`
  splits the file into an HF CLIP state dict and a *head state* with the project's seqTransf
  naming (below).

Head-state naming (what ``load_clip4clip_checkpoint`` produces; the seqTransf module is built with
exactly these parameter names):

==============================================================  =====================================
CLIP4Clip key                                                   head-state key
==============================================================  =====================================
``frame_position_embeddings.weight`` [P, D]                     ``frame_position.weight``
``transformerClip.resblocks.N.attn.in_proj_weight`` [3D, D]     ``blocks.N.attn.{q,k,v}_proj.weight``
``transformerClip.resblocks.N.attn.in_proj_bias`` [3D]          ``blocks.N.attn.{q,k,v}_proj.bias``
``transformerClip.resblocks.N.attn.out_proj.{weight,bias}``     ``blocks.N.attn.out_proj.{weight,bias}``
``transformerClip.resblocks.N.ln_1.*`` / ``ln_2.*``             ``blocks.N.ln_1.*`` / ``blocks.N.ln_2.*``
``transformerClip.resblocks.N.mlp.c_fc.*`` / ``c_proj.*``       ``blocks.N.mlp.fc1.*`` / ``blocks.N.mlp.fc2.*``
``text_weight_fc.I.*`` / ``video_weight_fc.I.*`` (DRL)          ``text_weight.I.*`` / ``video_weight.I.*``
X-CLIP ``global_mat_weight``, ``word_logit_weight``, ...        unchanged names
==============================================================  =====================================

The temporal blocks' LayerNorms use eps 1e-12 in CLIP4Clip (the CLIP towers use 1e-5); the head
module must be built with that eps to reproduce the reference.

Nothing here unpickles arbitrary objects or runs code from a checkpoint: state dicts are read
with ``torch.load(weights_only=True)``; TorchScript archives are never handed to
``torch.jit.load`` (which runs the archive's compiled code, e.g. an exported ``__setstate__``).
:func:`read_torchscript_state` opens the zip and unpickles ``<archive>/data.pkl`` with a
restricted unpickler that admits only the tensor-rebuild globals, maps the ``__torch__`` module
classes onto inert stand-ins and reads tensor storages from the ``data/`` records. An archive
whose objects carry custom state (an exported ``__setstate__``) is refused; convert it once, in a
trusted environment, to safetensors and import that instead::

    python -c "import sys,torch; from safetensors.torch import save_file; m=torch.jit.load(sys.argv[1], map_location='cpu'); save_file({k: v.contiguous() for k, v in m.state_dict().items()}, sys.argv[2])" ViT-B-32.pt ViT-B-32.safetensors

(:func:`load_openai_clip_state` reads ``.safetensors`` files too.)
"""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

log = logging.getLogger(__name__)

# Non-tensor metadata stored in OpenAI's TorchScript archives.
OPENAI_METADATA_KEYS: tuple[str, ...] = ("input_resolution", "context_length", "vocab_size")

# CLIP4Clip's temporal transformer LayerNorm eps (the CLIP towers use 1e-5).
SEQTRANSF_LAYER_NORM_EPS: float = 1e-12
OPENAI_LAYER_NORM_EPS: float = 1e-5

# X-CLIP's learnable matrices and the axis length each is tied to ("D", "words", "frames").
XCLIP_MATRICES: dict[str, str] = {
    "global_mat_weight": "D",
    "local_mat_weight": "D",
    "word_logit_weight": "words",
    "word_mat_weight": "words",
    "word_mat_weight2": "words",
    "frame_logit_weight": "frames",
    "frame_mat_weight": "frames",
    "frame_mat_weight2": "frames",
}


class CheckpointImportError(ValueError):
    """A foreign checkpoint that cannot be read or mapped; the message names file and key."""


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        missing: target keys (HF names, or head-state names) that no source key filled.
        unexpected: source keys that were not mapped anywhere, by their original name.
        converted: target keys that were written.
        notes: human-readable remarks (dropped metadata, eps of imported blocks, dtype casts).
        config: the ``transformers.CLIPConfig`` inferred from the CLIP tensors, when there were any.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: Any = None

    @property
    def ok(self) -> bool:
        """True when nothing is missing and nothing was left unmapped."""
        return not self.missing and not self.unexpected

    def summary(self) -> str:
        """One line: counts plus the first few missing/unexpected names."""

        def head(names: list[str]) -> str:
            shown = ", ".join(names[:5])
            return shown + (f", ... (+{len(names) - 5})" if len(names) > 5 else "")

        parts = [f"converted {len(self.converted)}"]
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {head(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {head(self.unexpected)}")
        return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


def _is_torchscript_archive(path: Path) -> bool:
    """A TorchScript zip holds compiled code (``*/code/``) or ``constants.pkl``; torch.save does not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any("/code/" in n or n.endswith("/constants.pkl") for n in names)


def _torch_load_state(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` and unwrap a ``{"state_dict": ...}`` container."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, ...)
        raise CheckpointImportError(
            f"{path}: cannot be read as a weights-only torch state dict ({type(exc).__name__}: "
            f"{exc})"
        ) from exc
    # A training container ({"state_dict": {...}, "epoch": 3}) holds no tensors at its top level.
    for wrapper in ("state_dict", "model"):
        if (
            isinstance(obj, dict)
            and isinstance(obj.get(wrapper), dict)
            and not any(isinstance(v, Tensor) for v in obj.values())
        ):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise CheckpointImportError(
            f"{path}: expected a state dict (a mapping of names to tensors), got "
            f"{type(obj).__name__}"
        )
    return obj


# Storage classes a TorchScript data.pkl names (``torch.<Name>``) and the dtype each holds.
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class _StorageType:
    """Inert stand-in for ``torch.<X>Storage`` in a TorchScript pickle: just the dtype."""

    name: str
    dtype: torch.dtype


class _ScriptObject:
    """Inert stand-in for a ``__torch__.*`` class instance (a scripted module or class).

    Unpickling only records the class name and the state ``BUILD`` passes; no code of the archive
    runs (its TorchScript ``__setstate__``, if any, is never called).
    """

    qualname: str = "__torch__.?"

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state


def _build_list(items: Any, *_: Any) -> list[Any]:
    """Pure stand-in for ``torch.jit._pickle.build_*list`` / ``restore_type_tag``."""
    return items if not isinstance(items, list | tuple) else list(items)


_JIT_PICKLE_HELPERS: frozenset[str] = frozenset(
    {"build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "restore_type_tag"}
)


def _rebuild_tensor_v2(
    storage: Tensor,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> Tensor:
    """Safe replacement for ``torch._utils._rebuild_tensor_v2``: a view of a 1-D storage."""
    if not isinstance(storage, Tensor):
        raise pickle.UnpicklingError(
            f"tensor record refers to a {type(storage).__name__}, expected a storage"
        )
    if (
        not isinstance(storage_offset, int)
        or not isinstance(size, tuple | list)
        or not isinstance(stride, tuple | list)
        or len(size) != len(stride)
        or not all(isinstance(v, int) and v >= 0 for v in (*size, *stride))
    ):
        raise pickle.UnpicklingError(
            f"malformed tensor record: offset={storage_offset!r} size={size!r} stride={stride!r}"
        )
    numel = math.prod(size)
    if numel and storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage):
        raise pickle.UnpicklingError(
            f"tensor record size={tuple(size)} stride={tuple(stride)} offset={storage_offset} "
            f"reaches past its storage of {len(storage)} elements"
        )
    if not numel:
        return torch.empty(tuple(size), dtype=storage.dtype)
    return storage.as_strided(tuple(size), tuple(stride), storage_offset)


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickler for a TorchScript ``data.pkl`` that can build tensors and nothing else.

    Globals admitted: ``torch._utils._rebuild_tensor_v2`` (replaced by a pure re-implementation),
    ``collections.OrderedDict``, ``torch.<X>Storage`` (a dtype tag), the list helpers of
    ``torch.jit._pickle`` (pure stand-ins) and ``__torch__.*`` classes (inert
    :class:`_ScriptObject` subclasses). Any other global raises ``UnpicklingError``. Persistent
    ids ``("storage", <X>Storage, key, location, numel)`` are read from ``<prefix>/data/<key>``.
    """

    def __init__(self, file: Any, zf: zipfile.ZipFile, prefix: str, source: Path) -> None:
        super().__init__(file)
        self._zf = zf
        self._prefix = prefix
        self._source = source
        self._storages: dict[str, Tensor] = {}
        self._classes: dict[str, type[_ScriptObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module == "torch.jit._pickle" and name in _JIT_PICKLE_HELPERS:
            return _build_list
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if qualname not in self._classes:
                self._classes[qualname] = type(name, (_ScriptObject,), {"qualname": qualname})
            return self._classes[qualname]
        raise pickle.UnpicklingError(
            f"global '{module}.{name}' is not allowed (only tensor records and scripted modules "
            f"are read)"
        )

    def persistent_load(self, pid: Any) -> Tensor:
        if (
            not isinstance(pid, tuple)
            or len(pid) != 5
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
            or not isinstance(pid[4], int)
        ):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            record = f"{self._prefix}data/{key}"
            try:
                raw = self._zf.read(record)
            except KeyError:
                raise pickle.UnpicklingError(f"tensor record {record!r} is missing") from None
            itemsize = torch.empty(0, dtype=storage_type.dtype).element_size()
            if len(raw) != numel * itemsize:
                raise pickle.UnpicklingError(
                    f"tensor record {record!r} holds {len(raw)} bytes, expected {numel} x "
                    f"{itemsize} ({storage_type.name})"
                )
            self._storages[key] = (
                torch.frombuffer(bytearray(raw), dtype=storage_type.dtype)
                if numel
                else torch.empty(0, dtype=storage_type.dtype)
            )
        return self._storages[key]


def _collect_module_tensors(
    obj: _ScriptObject, prefix: str, out: dict[str, Tensor], path: Path, seen: set[int]
) -> None:
    """Tensor attributes of a scripted module tree, dotted like ``state_dict()``."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    state = obj.__dict__.get("_state", {})
    if not isinstance(state, dict):
        raise CheckpointImportError(
            f"{path}: TorchScript object {prefix.rstrip('.') or '<root>'} (class "
            f"{obj.qualname}) stores custom state (an exported __setstate__); its tensors cannot "
            f"be read without running the archive's code, which this importer never does. "
            f"Convert the file to safetensors in a trusted environment (see "
            f"tvr.models.importers) and import that"
        )
    for name, value in state.items():
        if isinstance(value, Tensor):
            out[prefix + str(name)] = value
        elif isinstance(value, _ScriptObject):
            _collect_module_tensors(value, f"{prefix}{name}.", out, path, seen)


def read_torchscript_state(path: str | Path) -> dict[str, Tensor]:
    """The parameters and buffers of a TorchScript archive, read without running its code.

    Keys are dotted as ``ScriptModule.state_dict()`` would give them (``visual.conv1.weight``,
    ``transformer.resblocks.0.attn.in_proj_weight``, ...). Non-tensor attributes (ints, bools,
    None) are skipped; tensors keep their stored dtype.

    Raises:
        CheckpointImportError: not a TorchScript zip, a global outside the tensor-rebuild set, an
            object with custom state (exported ``__setstate__``), or malformed tensor records;
            the message names the file.
    """
    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except (OSError, zipfile.BadZipFile) as exc:
        raise CheckpointImportError(f"{p}: not a readable zip archive ({exc})") from exc
    with zf:
        pickles = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointImportError(
                f"{p}: expected exactly one '<archive>/data.pkl' in the TorchScript zip, found "
                f"{pickles or 'none'}"
            )
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in zf.namelist() and zf.read(byteorder).strip() not in (b"", b"little"):
            raise CheckpointImportError(
                f"{p}: tensors stored {zf.read(byteorder).decode(errors='replace')!r}-endian; "
                f"only little-endian archives are supported"
            )
        try:
            with zf.open(pickles[0]) as fh:
                root = _TorchScriptUnpickler(fh, zf, prefix, p).load()
        except CheckpointImportError:
            raise
        except Exception as exc:  # UnpicklingError, EOFError, ValueError, ... from bad bytes
            raise CheckpointImportError(
                f"{p}: cannot read the TorchScript archive {pickles[0]} safely "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    if not isinstance(root, _ScriptObject):
        raise CheckpointImportError(
            f"{p}: {pickles[0]} holds a {type(root).__name__}, expected a scripted module"
        )
    out: dict[str, Tensor] = {}
    _collect_module_tensors(root, "", out, p, set())
    return out


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise CheckpointImportError(f"checkpoint file {p} does not exist")
    return p


def load_openai_clip_state(path: str | Path) -> dict[str, Tensor]:
    """Read an OpenAI CLIP checkpoint (TorchScript archive, state dict or ``.safetensors``).

    TorchScript archives are read by :func:`read_torchscript_state`, which never runs their code.

    The metadata entries ``input_resolution``, ``context_length`` and ``vocab_size`` are dropped,
    as is a ``module.`` prefix. Tensors keep their stored dtype (fp16 in OpenAI's archives).

    Raises:
        CheckpointImportError: missing or unreadable file, or a file that holds no tensors.
    """
    p = _check_file(path)
    sd: dict[str, Any]
    if _is_torchscript_archive(p):
        sd = dict(read_torchscript_state(p))  # never torch.jit.load: that runs archive code
    elif p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = dict(load_file(str(p), device="cpu"))
        except Exception as exc:  # safetensors raises SafetensorError, OSError, ...
            raise CheckpointImportError(
                f"{p}: cannot be read as safetensors ({type(exc).__name__}: {exc})"
            ) from exc
    else:
        sd = _torch_load_state(p)
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name in OPENAI_METADATA_KEYS:
            continue
        if not isinstance(value, Tensor):
            raise CheckpointImportError(
                f"{p}: entry {key!r} is a {type(value).__name__}, expected a tensor"
            )
        out[name] = value
    if not out:
        raise CheckpointImportError(f"{p}: holds no tensors")
    return out


# --------------------------------------------------------------------------------------------
# OpenAI <-> Hugging Face
# --------------------------------------------------------------------------------------------

_BLOCK_RE = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")

# Per-block parameters that map one-to-one (OpenAI suffix -> HF suffix).
_BLOCK_SIMPLE: dict[str, str] = {
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}

# Top-level keys (OpenAI -> HF, transpose?).
_TOP_LEVEL: dict[str, tuple[str, bool]] = {
    "token_embedding.weight": ("text_model.embeddings.token_embedding.weight", False),
    "positional_embedding": ("text_model.embeddings.position_embedding.weight", False),
    "ln_final.weight": ("text_model.final_layer_norm.weight", False),
    "ln_final.bias": ("text_model.final_layer_norm.bias", False),
    "text_projection": ("text_projection.weight", True),
    "visual.conv1.weight": ("vision_model.embeddings.patch_embedding.weight", False),
    "visual.class_embedding": ("vision_model.embeddings.class_embedding", False),
    "visual.positional_embedding": ("vision_model.embeddings.position_embedding.weight", False),
    "visual.ln_pre.weight": ("vision_model.pre_layrnorm.weight", False),
    "visual.ln_pre.bias": ("vision_model.pre_layrnorm.bias", False),
    "visual.ln_post.weight": ("vision_model.post_layernorm.weight", False),
    "visual.ln_post.bias": ("vision_model.post_layernorm.bias", False),
    "visual.proj": ("visual_projection.weight", True),
    "logit_scale": ("logit_scale", False),
}


def _count_blocks(sd: Mapping[str, Tensor], prefix: str) -> int:
    pat = re.compile(rf"^{re.escape(prefix)}(\d+)\.attn\.in_proj_weight$")
    idx = {int(m.group(1)) for k in sd if (m := pat.match(k))}
    if idx and idx != set(range(len(idx))):
        raise CheckpointImportError(
            f"blocks under {prefix!r} are not numbered 0..N-1: found {sorted(idx)}"
        )
    return len(idx)


def _require(sd: Mapping[str, Tensor], key: str, what: str) -> Tensor:
    if key not in sd:
        raise CheckpointImportError(
            f"cannot infer the CLIP architecture: key {key!r} ({what}) is missing"
        )
    return sd[key]


def openai_config_from_state(
    sd: Mapping[str, Tensor],
    *,
    text_heads: int | None = None,
    vision_heads: int | None = None,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> Any:
    """Infer a ``transformers.CLIPConfig`` from an OpenAI-format ViT state dict (§13.1).

    Widths, depths, patch size, image size (from the vision position table), context length,
    vocabulary and projection dim come from tensor shapes. Heads are ``width // 64`` as in
    OpenAI's code unless given (shapes cannot tell them apart). The activation is ``quick_gelu``
    and LayerNorm eps 1e-5. Special-token ids default to CLIP's convention (the last two ids are
    ``<|startoftext|>`` and ``<|endoftext|>``, padding with ``<|endoftext|>``); callers with a
    tokenizer should pass its ids.

    Raises:
        CheckpointImportError: a ResNet CLIP (not supported), a missing key, or inconsistent
        shapes; the message names the key.
    """
    from transformers import CLIPConfig

    if any(k.startswith(("visual.layer1.", "visual.attnpool.")) for k in sd):
        raise CheckpointImportError(
            "this is a ResNet CLIP (visual.layer1 / visual.attnpool keys); only ViT CLIP "
            "checkpoints can be mapped onto transformers CLIPModel"
        )
    conv1 = _require(sd, "visual.conv1.weight", "patch embedding")
    vpos = _require(sd, "visual.positional_embedding", "vision position table")
    tproj = _require(sd, "text_projection", "text projection")
    vproj = _require(sd, "visual.proj", "visual projection")
    tok = _require(sd, "token_embedding.weight", "token embedding")
    tpos = _require(sd, "positional_embedding", "text position table")

    vision_width, patch = int(conv1.shape[0]), int(conv1.shape[-1])
    grid = math.isqrt(int(vpos.shape[0]) - 1)
    if grid * grid + 1 != vpos.shape[0]:
        raise CheckpointImportError(
            f"visual.positional_embedding has {vpos.shape[0]} rows; expected grid*grid + 1"
        )
    text_width = int(tok.shape[1])
    embed_dim = int(tproj.shape[1])
    if tuple(vproj.shape) != (vision_width, embed_dim) or tproj.shape[0] != text_width:
        raise CheckpointImportError(
            f"projection shapes disagree: text_projection {tuple(tproj.shape)}, visual.proj "
            f"{tuple(vproj.shape)}, text width {text_width}, vision width {vision_width}"
        )
    text_layers = _count_blocks(sd, "transformer.resblocks.")
    vision_layers = _count_blocks(sd, "visual.transformer.resblocks.")
    if text_layers == 0 or vision_layers == 0:
        raise CheckpointImportError(
            f"found {text_layers} text and {vision_layers} vision blocks; both towers need >= 1 "
            "(keys transformer.resblocks.N.attn.in_proj_weight / visual.transformer...)"
        )
    text_mlp = int(_require(sd, "transformer.resblocks.0.mlp.c_fc.weight", "text MLP").shape[0])
    vision_mlp = int(
        _require(sd, "visual.transformer.resblocks.0.mlp.c_fc.weight", "vision MLP").shape[0]
    )
    t_heads = text_heads or max(text_width // 64, 1)
    v_heads = vision_heads or max(vision_width // 64, 1)
    for name, width, heads in (("text", text_width, t_heads), ("vision", vision_width, v_heads)):
        if width % heads:
            raise CheckpointImportError(f"{name} width {width} is not divisible by {heads} heads")
    vocab = int(tok.shape[0])
    eos = vocab - 1 if eos_token_id is None else eos_token_id
    bos = vocab - 2 if bos_token_id is None else bos_token_id
    pad = eos if pad_token_id is None else pad_token_id
    logit_scale = float(sd["logit_scale"]) if "logit_scale" in sd else math.log(1 / 0.07)
    return CLIPConfig(
        text_config=dict(
            vocab_size=vocab,
            hidden_size=text_width,
            intermediate_size=text_mlp,
            num_hidden_layers=text_layers,
            num_attention_heads=t_heads,
            max_position_embeddings=int(tpos.shape[0]),
            hidden_act="quick_gelu",
            layer_norm_eps=OPENAI_LAYER_NORM_EPS,
            projection_dim=embed_dim,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
        ),
        vision_config=dict(
            hidden_size=vision_width,
            intermediate_size=vision_mlp,
            num_hidden_layers=vision_layers,
            num_attention_heads=v_heads,
            image_size=grid * patch,
            patch_size=patch,
            num_channels=int(conv1.shape[1]),
            hidden_act="quick_gelu",
            layer_norm_eps=OPENAI_LAYER_NORM_EPS,
            projection_dim=embed_dim,
        ),
        projection_dim=embed_dim,
        logit_scale_init_value=logit_scale,
    )


def _split_in_proj(t: Tensor, key: str) -> tuple[Tensor, Tensor, Tensor]:
    if t.shape[0] % 3:
        raise CheckpointImportError(f"{key}: first dim {t.shape[0]} is not divisible by 3 (q,k,v)")
    q, k, v = t.chunk(3, dim=0)
    return q.contiguous(), k.contiguous(), v.contiguous()


def _map_block_key(
    key: str, value: Tensor, prefix: str, rest: str, attn: str, simple: Mapping[str, str]
) -> list[tuple[str, Tensor]] | None:
    """Target (name, tensor) pairs for one parameter ``rest`` of a transformer block.

    The fused ``attn.in_proj_*`` is split into ``{prefix}{attn}.{q,k,v}_proj.*``; the other
    parameters are renamed one-to-one by ``simple``; ``None`` when ``rest`` is unknown.
    """
    if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
        kind = "weight" if rest.endswith("weight") else "bias"
        q, k, v = _split_in_proj(value, key)
        return [(f"{prefix}{attn}.{p}_proj.{kind}", t) for p, t in zip("qkv", (q, k, v))]
    if rest in simple:
        return [(prefix + simple[rest], value)]
    return None


def _map_openai_key(key: str, value: Tensor) -> list[tuple[str, Tensor]] | None:
    """HF (name, tensor) pairs for one OpenAI key, or None when the key is unknown."""
    if key in _TOP_LEVEL:
        name, transpose = _TOP_LEVEL[key]
        return [(name, value.t().contiguous() if transpose else value)]
    m = _BLOCK_RE.match(key)
    if m is None:
        return None
    tower = "vision_model" if m.group(1) else "text_model"
    prefix = f"{tower}.encoder.layers.{m.group(2)}."
    return _map_block_key(key, value, prefix, m.group(3), "self_attn", _BLOCK_SIMPLE)


def _expected_hf_shapes(config: Any) -> dict[str, torch.Size]:
    """Parameter names and shapes of ``CLIPModel(config)``, built on the meta device (no memory)."""
    from transformers import CLIPModel

    with torch.device("meta"):
        model = CLIPModel(config)
    return {k: v.shape for k, v in model.state_dict().items()}


def _to_fp32(t: Tensor) -> Tensor:
    return t.float() if t.is_floating_point() else t


def convert_openai_to_hf(
    sd: Mapping[str, Tensor], config: Any | None = None
) -> tuple[dict[str, Tensor], ImportReport]:
    """Map an OpenAI-format ViT CLIP state dict onto ``CLIPModel`` names (§13.2).

    ``attn.in_proj_*`` is split into q, k, v (in that order along dim 0); ``text_projection``
    and ``visual.proj`` are transposed (HF uses bias-free Linear layers); ``visual.ln_pre`` maps
    to HF's ``pre_layrnorm``. Every floating tensor is cast to fp32.

    Args:
        sd: OpenAI key names (no ``module.``/``clip.`` prefix).
        config: the target ``CLIPConfig``; inferred with :func:`openai_config_from_state` if None.

    Returns:
        ``(hf_state_dict, report)``: ``report.missing`` names HF keys nothing filled,
        ``report.unexpected`` the OpenAI keys that were not mapped; ``report.config`` holds the
        config used.

    Raises:
        CheckpointImportError: when a mapped tensor's shape does not fit the target config.
    """
    config = config if config is not None else openai_config_from_state(sd)
    expected = _expected_hf_shapes(config)
    report = ImportReport(config=config)
    out: dict[str, Tensor] = {}
    cast = False
    for key, value in sd.items():
        pairs = _map_openai_key(key, value)
        if pairs is None:
            report.unexpected.append(key)
            continue
        for name, tensor in pairs:
            if name not in expected:
                report.unexpected.append(key)
                break
            if tensor.shape != expected[name]:
                raise CheckpointImportError(
                    f"{key} -> {name}: shape {tuple(tensor.shape)} does not fit the target "
                    f"{tuple(expected[name])}"
                )
            cast = cast or (tensor.is_floating_point() and tensor.dtype != torch.float32)
            out[name] = _to_fp32(tensor).contiguous()
            report.converted.append(name)
    report.missing = [k for k in expected if k not in out]
    if cast:
        report.notes.append("floating tensors cast to fp32")
    return out, report


# --------------------------------------------------------------------------------------------
# CLIP4Clip family
# --------------------------------------------------------------------------------------------

_SEQ_BLOCK_RE = re.compile(r"^transformerClip\.resblocks\.(\d+)\.(.+)$")
_SEQ_BLOCK_SIMPLE: dict[str, str] = {
    "attn.out_proj.weight": "attn.out_proj.weight",
    "attn.out_proj.bias": "attn.out_proj.bias",
    "ln_1.weight": "ln_1.weight",
    "ln_1.bias": "ln_1.bias",
    "ln_2.weight": "ln_2.weight",
    "ln_2.bias": "ln_2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}
_WEIGHT_FC_RE = re.compile(r"^(text|video)_weight_fc\.(\d+)\.(weight|bias)$")


def _map_head_key(key: str, value: Tensor) -> list[tuple[str, Tensor]] | None:
    """Head-state (name, tensor) pairs for one non-CLIP CLIP4Clip key, or None if unknown."""
    if key == "frame_position_embeddings.weight":
        return [("frame_position.weight", value)]
    m = _SEQ_BLOCK_RE.match(key)
    if m:
        return _map_block_key(
            key, value, f"blocks.{m.group(1)}.", m.group(2), "attn", _SEQ_BLOCK_SIMPLE
        )
    m = _WEIGHT_FC_RE.match(key)
    if m:
        return [(f"{m.group(1)}_weight.{m.group(2)}.{m.group(3)}", value)]
    if key in XCLIP_MATRICES:
        return [(key, value)]
    return None


def _check_xclip_shapes(
    path: Path,
    head: Mapping[str, Tensor],
    expect_frames: int | None,
    expect_words: int | None,
) -> None:
    expected = {"frames": expect_frames, "words": expect_words}
    for key, axis in XCLIP_MATRICES.items():
        if key not in head:
            continue
        shape = tuple(head[key].shape)
        n = expected.get(axis)
        if n is not None and shape != (n, n):
            raise CheckpointImportError(
                f"{path}: X-CLIP matrix {key!r} has shape {shape}, but the configured "
                f"{'N_f (data.num_frames)' if axis == 'frames' else 'N_w (data.max_words)'} is "
                f"{n}; X-CLIP checkpoints only fit the text and frame lengths they were "
                "trained with"
            )


def load_clip4clip_checkpoint(
    path: str | Path,
    *,
    expect_frames: int | None = None,
    expect_words: int | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor], ImportReport]:
    """Read a CLIP4Clip-family checkpoint (``pytorch_model.bin.<epoch>``; DRL, X-CLIP too).

    Steps (data_and_metrics.md §14): drop a ``module.`` prefix; cast to fp32; strip ``clip.``
    and map the CLIP weights through :func:`convert_openai_to_hf`; map the temporal transformer,
    frame position table, DRL token-weight MLPs and X-CLIP matrices into the head state (names in
    the module docstring). Keys of other heads (seqLSTM, tightTransf, the 3-D patch
    ``clip.visual.conv2.weight``) are reported as unexpected.

    Args:
        path: the checkpoint file, read with ``torch.load(weights_only=True)``.
        expect_frames: N_f the run uses; X-CLIP frame matrices must be N_f x N_f and the frame
            position table needs at least N_f rows.
        expect_words: N_w the run uses; X-CLIP word matrices must be N_w x N_w.

    Returns:
        ``(hf_clip_state, head_state, report)``; ``report.config`` is the inferred CLIPConfig,
        ``report.missing`` lists CLIP keys (HF names) absent from the file.

    Raises:
        CheckpointImportError: unreadable file, no CLIP weights, or a shape that does not fit
        the expected frame/word counts.
    """
    p = _check_file(path)
    raw = _torch_load_state(p)
    clip_sd: dict[str, Tensor] = {}
    head: dict[str, Tensor] = {}
    report = ImportReport()
    cast = False
    for key, value in raw.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if not isinstance(value, Tensor):
            report.unexpected.append(name)
            continue
        cast = cast or (value.is_floating_point() and value.dtype != torch.float32)
        value = _to_fp32(value)
        if name.startswith("clip."):
            clip_sd[name[len("clip.") :]] = value
            continue
        pairs = _map_head_key(name, value)
        if pairs is None:
            report.unexpected.append(name)
            continue
        for target, tensor in pairs:
            head[target] = tensor.contiguous()
            report.converted.append(target)
    if not clip_sd:
        raise CheckpointImportError(
            f"{p}: no 'clip.*' keys; this does not look like a CLIP4Clip-family checkpoint "
            "(an OpenAI CLIP file should end in .pt)"
        )
    for key in OPENAI_METADATA_KEYS:
        clip_sd.pop(key, None)
    try:
        hf_sd, clip_report = convert_openai_to_hf(clip_sd)
    except CheckpointImportError as exc:
        raise CheckpointImportError(f"{p}: {exc}") from exc
    report.config = clip_report.config
    report.converted = clip_report.converted + report.converted
    report.missing = clip_report.missing
    report.unexpected = [f"clip.{k}" for k in clip_report.unexpected] + report.unexpected
    if cast:
        report.notes.append("fp16/bf16 tensors cast to fp32")
    if any(k.startswith("blocks.") for k in head):
        report.notes.append(
            f"temporal transformer blocks imported; they use LayerNorm eps "
            f"{SEQTRANSF_LAYER_NORM_EPS:g} (CLIP towers: {OPENAI_LAYER_NORM_EPS:g})"
        )
    if "clip.visual.conv2.weight" in report.unexpected:
        report.notes.append("3-D patch embedding (clip.visual.conv2.weight) is not supported")
    _check_xclip_shapes(p, head, expect_frames, expect_words)
    pos = head.get("frame_position.weight")
    if expect_frames is not None and pos is not None and pos.shape[0] < expect_frames:
        raise CheckpointImportError(
            f"{p}: frame_position_embeddings has {pos.shape[0]} rows, fewer than the "
            f"{expect_frames} frames the run samples"
        )
    if report.unexpected:
        log.warning("%s: unmapped keys: %s", p, ", ".join(report.unexpected))
    return hf_sd, head, report


# --------------------------------------------------------------------------------------------
# Building and checking
# --------------------------------------------------------------------------------------------


def _skip_weight_init() -> contextlib.AbstractContextManager:
    """``transformers``' ``no_init_weights`` (tensors allocated, not initialised) when it exists."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # an older transformers: initialise, then overwrite
        return contextlib.nullcontext()
    return no_init_weights()


def clip_model_from_hf_state(
    hf_sd: Mapping[str, Tensor], config: Any, *, source: str = "checkpoint", **model_kwargs: Any
) -> Any:
    """Build ``CLIPModel(config)`` and load ``hf_sd`` strictly.

    Args:
        hf_sd: HF-named fp32 tensors (from :func:`convert_openai_to_hf` or a CLIP4Clip import).
        config: the ``CLIPConfig``.
        source: the file the weights came from, for error messages.
        model_kwargs: e.g. ``attn_implementation="eager"`` (set on the config before building).

    Raises:
        CheckpointImportError: naming missing or unexpected keys.
    """
    from transformers import CLIPModel

    attn = model_kwargs.pop("attn_implementation", None)
    if model_kwargs:
        raise TypeError(f"unexpected arguments {sorted(model_kwargs)}")
    if attn is not None:
        config._attn_implementation = attn
    with _skip_weight_init():  # every weight is loaded next: random init is wasted (~4 s at B/32)
        model = CLIPModel(config)
    result = model.load_state_dict(dict(hf_sd), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise CheckpointImportError(
            f"{source}: CLIP weights do not fit the model: missing {missing}, unexpected "
            f"{list(result.unexpected_keys)}"
        )
    return model.eval()
