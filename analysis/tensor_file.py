"""Read-only memory maps of the tensors in a safetensors file.

``safetensors``' own ``get_tensor`` copies a whole tensor into memory: reading one caption's
word features ``text_tokens[q]`` from a bundle pulled all of ``[Nt, L, D]`` (3.9 GB at MSR-VTT
full size and ViT-B/32 width). The safetensors layout is an 8-byte little-endian header length,
a JSON header (per tensor: ``dtype``, ``shape``, ``data_offsets`` relative to the end of the
header) and the raw little-endian bytes, so each tensor can be a ``numpy.memmap`` view: indexing
a row reads only that row's pages, and every session of the app shares the page cache.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

# safetensors dtype names -> little-endian numpy dtypes (bf16 has no numpy dtype)
DTYPES: dict[str, str] = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "BOOL": "?", "U16": "<u2", "U32": "<u4", "U64": "<u8",
}
_MAX_HEADER = 100 * 1024 * 1024  # the format's own limit


class TensorFileError(ValueError):
    """A safetensors file whose header cannot be mapped (message names the file and field)."""


def read_header(path: str | Path) -> tuple[int, dict[str, Any]]:
    """``(data_start, header)`` of a safetensors file; ``header`` maps names to entries.

    Raises:
        TensorFileError: a short file, an oversized or non-JSON header.
        OSError: the file cannot be read.
    """
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise TensorFileError(f"{path}: shorter than a safetensors header (8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise TensorFileError(f"{path}: header length {n} exceeds {_MAX_HEADER} bytes")
        raw = f.read(n)
    if len(raw) != n:
        raise TensorFileError(f"{path}: header cut short ({len(raw)} of {n} bytes)")
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise TensorFileError(f"{path}: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise TensorFileError(f"{path}: header is not a JSON object")
    header.pop("__metadata__", None)
    return 8 + n, header


def memmap_tensor(path: str | Path, key: str) -> np.ndarray | None:
    """The tensor ``key`` of the safetensors file at ``path`` as a read-only memory map.

    Returns None when the file has no tensor ``key``.

    Raises:
        TensorFileError: a malformed entry (unknown dtype such as BF16, shape and byte range
            that disagree, a range beyond the end of the file).
        OSError: the file cannot be read.
    """
    path = Path(path)
    start, header = read_header(path)
    entry = header.get(key)
    if entry is None:
        return None
    where = f"{path}: tensor {key!r}"
    try:
        dtype = np.dtype(DTYPES[entry["dtype"]])
        shape = tuple(int(s) for s in entry["shape"])
        begin, end = (int(o) for o in entry["data_offsets"])
    except KeyError as exc:
        raise TensorFileError(f"{where}: no numpy dtype or missing field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise TensorFileError(f"{where}: malformed entry {entry!r} ({exc})") from None
    count = int(np.prod(shape, dtype=np.int64))
    if end - begin != count * dtype.itemsize or begin < 0:
        raise TensorFileError(
            f"{where}: byte range [{begin}, {end}) does not hold shape {shape} of {dtype}"
        )
    size = path.stat().st_size
    if start + end > size:
        raise TensorFileError(f"{where}: ends at byte {start + end} but the file has {size}")
    if count == 0:  # numpy cannot map zero bytes
        empty = np.zeros(shape, dtype=dtype)
        empty.setflags(write=False)
        return empty
    return np.memmap(path, dtype=dtype, mode="r", offset=start + begin, shape=shape)
