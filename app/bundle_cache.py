"""A process-wide LRU cache of loaded bundles bounded in bytes (and in entries).

``st.cache_resource`` bounds a cache by its number of entries only, and a bundle's cost varies
by orders of magnitude (500 one-caption videos against MSR-VTT full). This cache charges each
bundle :meth:`analysis.bundle.Bundle.resident_bytes` (memory-mapped tensors count nothing,
arrays read into memory count their bytes), read again on every hit because lazy attributes
grow a bundle as pages use it (the bundle keeps that figure up to date as each part loads, so
reading it costs nothing), and drops the least recently used bundles while the total exceeds
``max_bytes``. The bundle just requested is never dropped, even alone above the
bound. Thread-safe (Streamlit runs sessions in threads): a key is loaded once however many
sessions ask for it at the same time, and loads of different keys run side by side (the
warm-up thread loading one run's bundle never holds up a page loading the other's).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)


class ByteBoundedCache:
    """LRU of ``key -> value`` with a total byte bound.

    Args:
        max_bytes: the most bytes the cached values may hold together (> 0).
        max_entries: the most values kept (> 0).
        size_of: bytes a value holds now (called on insert and on every hit, so it must be
            cheap: a recorded figure, not a walk of the value).
    """

    def __init__(self, max_bytes: int, max_entries: int, size_of: Callable[[Any], int]) -> None:
        if int(max_bytes) <= 0 or int(max_entries) <= 0:
            raise ValueError(f"max_bytes={max_bytes!r}, max_entries={max_entries!r}: expected "
                             "positive integers")
        self.max_bytes = int(max_bytes)
        self.max_entries = int(max_entries)
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self._loading: dict[Hashable, threading.Event] = {}  # keys being loaded now

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The value of ``key``, loaded with ``load()`` on a miss (outside the cache's lock; a
        second request for the same key waits for that load); then evicts down to the bounds
        (least recently used first, never ``key``). A failed load raises in the thread that
        ran it; a request that waited for it tries again."""
        while True:
            with self._lock:
                if key in self._items:
                    value = self._items[key][0]
                    self._items.move_to_end(key)
                    self._items[key] = (value, int(self._size_of(value)))
                    self._evict(keep=key)
                    return value
                pending = self._loading.get(key)
                if pending is None:
                    pending = self._loading[key] = threading.Event()
                    break
            pending.wait()  # another thread loads it: then a hit, or our turn after a failure
        try:
            value = load()
            with self._lock:
                self._items[key] = (value, int(self._size_of(value)))
                self._evict(keep=key)
            return value
        finally:
            with self._lock:
                del self._loading[key]
            pending.set()

    def _evict(self, keep: Hashable) -> None:
        while len(self._items) > 1 and (len(self._items) > self.max_entries
                                        or self.total_bytes() > self.max_bytes):
            oldest = next(k for k in self._items if k != keep)
            _, size = self._items.pop(oldest)
            logger.info("bundle cache: dropped %s (%.1f MB) to stay under %.1f MB / %d entries",
                        oldest, size / 1e6, self.max_bytes / 1e6, self.max_entries)
        if self.total_bytes() > self.max_bytes:
            logger.warning("bundle cache: %s alone holds %.1f MB, above the %.1f MB bound", keep,
                           self._items[keep][1] / 1e6, self.max_bytes / 1e6)

    def total_bytes(self) -> int:
        """Bytes of the cached values, as measured when each was last requested."""
        with self._lock:
            return sum(size for _, size in self._items.values())

    def cached_keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
