"""A safe reader of TorchScript archives (OpenAI's ``ViT-B-32.pt`` and the like).

``torch.jit.load`` runs the archive's compiled code (e.g. an exported ``__setstate__``), so it is
never used. :func:`read_torchscript_state` opens the zip and unpickles ``<archive>/data.pkl``
with a restricted unpickler that admits only the tensor-rebuild globals, maps the ``__torch__``
module classes onto inert stand-ins and reads tensor storages from the ``data/`` records. An
archive whose objects carry custom state (an exported ``__setstate__``) is refused; convert it
once, in a trusted environment, to safetensors and import that instead::

    python -c "import sys,torch; from safetensors.torch import save_file; m=torch.jit.load(sys.argv[1], map_location='cpu'); save_file({k: v.contiguous() for k, v in m.state_dict().items()}, sys.argv[2])" ViT-B-32.pt ViT-B-32.safetensors

(:func:`tvr.models.openai_clip.load_openai_clip_state` reads ``.safetensors`` files too.)
"""

from __future__ import annotations

import math
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tvr.models.importers import CheckpointImportError


def is_torchscript_archive(path: Path) -> bool:
    """A TorchScript zip holds compiled code (``*/code/``) or ``constants.pkl``; torch.save does not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any("/code/" in n or n.endswith("/constants.pkl") for n in names)



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
            f"tvr.models.torchscript_reader) and import that"
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

