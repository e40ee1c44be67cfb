"""analysis.tensor_file: safetensors tensors as read-only memory maps."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from analysis.tensor_file import TensorFileError, memmap_tensor, read_header


@pytest.fixture
def st_file(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    tensors = {
        "tokens": rng.standard_normal((7, 5, 3)).astype(np.float32),
        "half": rng.standard_normal((4, 6)).astype(np.float16),
        "mask": rng.random((7, 5)) > 0.5,
        "ids": rng.integers(0, 1000, (7, 5)).astype(np.int64),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    path = tmp_path / "t.safetensors"
    save_file(tensors, str(path), metadata={"format": "np"})
    return path, tensors


def test_every_tensor_maps_to_the_same_values(st_file) -> None:
    path, tensors = st_file
    for key, ref in tensors.items():
        arr = memmap_tensor(path, key)
        assert arr.dtype == ref.dtype and arr.shape == ref.shape, key
        np.testing.assert_array_equal(np.asarray(arr), ref)
        assert not arr.flags.writeable
    row = memmap_tensor(path, "tokens")[3]
    np.testing.assert_array_equal(row, tensors["tokens"][3])
    assert isinstance(memmap_tensor(path, "tokens"), np.memmap)
    assert memmap_tensor(path, "absent") is None


def _rewrite_header(path: Path, change) -> None:
    start, header = read_header(path)
    data = path.read_bytes()[start:]
    change(header)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda h: h["tokens"].update(dtype="BF16"), "no numpy dtype"),
        (lambda h: h["tokens"].update(shape=[7, 5, 4]), "does not hold shape"),
        (lambda h: h["tokens"].update(data_offsets=[0, 10**9]), "does not hold shape|ends at"),
        (lambda h: h["tokens"].update(shape="x"), "malformed entry"),
    ],
)
def test_malformed_entries_name_file_and_tensor(st_file, change, match) -> None:
    path, _ = st_file
    _rewrite_header(path, change)
    with pytest.raises(TensorFileError, match=match) as e:
        memmap_tensor(path, "tokens")
    assert str(path) in str(e.value) and "'tokens'" in str(e.value)


def test_truncated_files_are_named(tmp_path: Path, st_file) -> None:
    path, _ = st_file
    data = path.read_bytes()
    short = tmp_path / "short.safetensors"
    short.write_bytes(data[:5])
    with pytest.raises(TensorFileError, match="shorter than"):
        memmap_tensor(short, "tokens")
    short.write_bytes(data[:20])
    with pytest.raises(TensorFileError, match="header cut short"):
        memmap_tensor(short, "tokens")
    short.write_bytes(data[:-8])  # the last tensor's bytes cut
    _, header = read_header(path)
    last = max(header, key=lambda k: header[k]["data_offsets"][1])
    with pytest.raises(TensorFileError, match="ends at byte"):
        memmap_tensor(short, last)
    short.write_bytes(struct.pack("<Q", 4) + b"nope")
    with pytest.raises(TensorFileError, match="not JSON"):
        memmap_tensor(short, "tokens")
