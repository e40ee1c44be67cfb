"""How many bytes of process memory a loaded bundle holds (for byte-bounded caches).

Arrays memory-mapped from the bundle's files count nothing: their pages live in the page
cache, shared by every process and session and dropped under memory pressure. Arrays read into
memory (``.npz`` files, JSON lists, anything derived and cached) count their bytes; strings
count ``sys.getsizeof``. A buffer shared by several views counts once (a string listed twice in
a list of strings counts twice).

:func:`resident_bytes` walks an object graph (seconds for the word labels of 59,800 captions),
so a bundle does it once per part: its eager attributes when it is loaded, and each lazy
attribute (:class:`measured_property`) when that attribute first loads; the sum is kept in a
ledger (:func:`ledger_bytes`) that a cache can read on every hit for free.
"""

from __future__ import annotations

import mmap
import sys
import threading
from dataclasses import fields, is_dataclass
from functools import cached_property
from typing import Any

import numpy as np

LEDGER = "_resident_ledger"  # instance attribute: {part name: bytes}
_LEDGER_LOCK = threading.Lock()


def _mapped(arr: np.ndarray) -> bool:
    """True when ``arr``'s data lies in a memory-mapped file."""
    a: Any = arr
    while a is not None:
        if isinstance(a, np.memmap | mmap.mmap):
            return True
        a = getattr(a, "base", None)
    return False


def _owner(arr: np.ndarray) -> Any:
    a = arr
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


SAMPLE_ABOVE = 4096  # a longer list or tuple of objects is measured on a sample ...
SAMPLE = 1024  # ... of this many evenly spaced items, scaled to its length


def resident_bytes(obj: Any) -> int:
    """Bytes of process memory held by ``obj`` and what it refers to (see the module doc).

    Walks numpy arrays, torch tensors, strings, bytes, dicts, lists, tuples, sets, dataclasses
    and objects' ``__dict__``; memory-mapped arrays count 0. A list or tuple of more than
    :data:`SAMPLE_ABOVE` objects (not strings: those are summed directly) is an estimate: its
    :data:`SAMPLE` evenly spaced items are walked and their bytes scaled by
    ``len / SAMPLE`` (the SynthVTT ground truth of 59,800 captions: ~0.1 s instead of ~3 s,
    for a byte-bounded cache's accounting).
    """
    seen: set[int] = set()
    total = 0.0
    stack: list[tuple[Any, float]] = [(obj, 1.0)]
    while stack:
        x, weight = stack.pop()
        if x is None or isinstance(x, bool | int | float | complex):
            continue
        if isinstance(x, np.ndarray):
            if _mapped(x):
                continue
            owner = _owner(x)
            if id(owner) not in seen:
                seen.add(id(owner))
                total += weight * int(owner.nbytes)
            continue
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, str | bytes | bytearray):
            total += weight * sys.getsizeof(x)
        elif isinstance(x, dict):
            stack.extend((k, weight) for k in x)
            stack.extend((v, weight) for v in x.values())
        elif isinstance(x, list | tuple | set | frozenset):
            if x and all(type(e) is str for e in x):  # fast path: captions, word labels
                total += weight * sum(map(sys.getsizeof, x))  # per occurrence, not deduplicated
            elif isinstance(x, list | tuple) and len(x) > SAMPLE_ABOVE:
                step = len(x) / SAMPLE
                scaled = weight * len(x) / SAMPLE
                stack.extend((x[int(i * step)], scaled) for i in range(SAMPLE))
            else:
                stack.extend((e, weight) for e in x)
        elif type(x).__module__.startswith("torch") and hasattr(x, "untyped_storage"):
            total += weight * int(x.untyped_storage().nbytes())
        elif is_dataclass(x) and not isinstance(x, type):
            stack.extend((getattr(x, f.name), weight) for f in fields(x))
        elif hasattr(x, "__dict__") and not isinstance(x, type):
            stack.extend((v, weight) for v in vars(x).values())
    return int(round(total))


def charge(obj: Any, part: str, value: Any) -> None:
    """Record ``resident_bytes(value)`` as ``obj``'s ``part`` in its ledger (once per part:
    a second charge of the same part is ignored)."""
    size = resident_bytes(value)
    with _LEDGER_LOCK:
        ledger = obj.__dict__.setdefault(LEDGER, {})
        ledger.setdefault(part, size)


def ledger_bytes(obj: Any) -> int:
    """The bytes recorded in ``obj``'s ledger (0 without one); O(parts), walks nothing."""
    return sum(obj.__dict__.get(LEDGER, {}).values())


class measured_property(cached_property):  # noqa: N801 - used like cached_property
    """A :class:`functools.cached_property` that charges its value's resident bytes to the
    instance's ledger when it first loads (see :func:`charge`)."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, owner)
        if self.attrname not in instance.__dict__.get(LEDGER, {}):
            charge(instance, self.attrname, value)
        return value


def mapping_of(arr: Any) -> mmap.mmap | None:
    """The ``mmap`` under a memory-mapped numpy array (or a view of one), None otherwise."""
    a: Any = arr
    while a is not None:
        if isinstance(a, mmap.mmap):
            return a
        found = getattr(a, "_mmap", None)  # numpy.memmap keeps its mmap here
        if isinstance(found, mmap.mmap):
            return found
        a = getattr(a, "base", None)
    return None


def release_pages(arrays: Any) -> int:
    """Unmap the resident pages of the memory-mapped arrays among ``arrays`` from this process
    (``madvise(MADV_DONTNEED)``; their files stay in the page cache, and the next read of a row
    maps it again); returns how many mappings were released. Read-only mappings only, so no
    data is lost; a no-op where ``madvise`` is missing."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    done: set[int] = set()
    for arr in arrays:
        m = mapping_of(arr) if isinstance(arr, np.ndarray) else None
        if m is None or id(m) in done or advice is None:
            continue
        try:
            m.madvise(advice)
        except (OSError, ValueError):  # closed, or refused by the OS: nothing to release
            continue
        done.add(id(m))
    return len(done)
