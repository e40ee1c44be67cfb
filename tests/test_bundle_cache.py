"""The byte-bounded bundle cache of the app (app/bundle_cache.py, app/resources.py)."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import numpy as np
import pytest

from analysis.bundle.memory import resident_bytes
from app.bundle_cache import ByteBoundedCache


class Item:
    """A value whose size can grow after it is cached (as a bundle's lazy arrays do)."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size


def cache(max_bytes: int, max_entries: int = 8) -> tuple[ByteBoundedCache, list[str]]:
    loads: list[str] = []
    return ByteBoundedCache(max_bytes, max_entries, lambda v: v.size), loads


def get(c: ByteBoundedCache, loads: list[str], name: str, size: int) -> Item:
    def load() -> Item:
        loads.append(name)
        return Item(name, size)

    return c.get(name, load)


def test_hits_do_not_reload_and_the_byte_bound_drops_least_recently_used():
    c, loads = cache(100)
    a = get(c, loads, "a", 40)
    get(c, loads, "b", 40)
    assert get(c, loads, "a", 40) is a and loads == ["a", "b"]  # a hit, now most recent
    get(c, loads, "c", 40)  # 120 > 100: b (least recently used) goes, a stays
    assert c.cached_keys() == ["a", "c"] and c.total_bytes() == 80
    get(c, loads, "b", 40)
    assert loads == ["a", "b", "c", "b"] and c.cached_keys() == ["c", "b"]


def test_growth_is_read_on_each_hit_and_the_requested_value_is_kept():
    # size_of is read on every hit (a bundle's is its ledger, kept as lazy arrays load)
    c, loads = cache(100)
    a = get(c, loads, "a", 10)
    get(c, loads, "b", 10)
    a.size = 95  # lazy arrays loaded since
    get(c, loads, "a", 10)
    assert c.cached_keys() == ["a"] and c.total_bytes() == 95
    big = get(c, loads, "huge", 500)  # alone above the bound: kept, everything else dropped
    assert c.cached_keys() == ["huge"] and big.size == 500


def test_entry_bound_and_bad_bounds():
    c, loads = cache(10**9, max_entries=2)
    for name in "abc":
        get(c, loads, name, 1)
    assert c.cached_keys() == ["b", "c"]
    with pytest.raises(ValueError, match="max_bytes=0"):
        ByteBoundedCache(0, 1, len)


def test_concurrent_requests_load_once():
    c, loads = cache(100)
    threads = [threading.Thread(target=get, args=(c, loads, "a", 1)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["a"]


def test_resident_bytes_counts_loaded_arrays_not_memory_maps(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1000, 100), dtype=np.float32))
    mapped = np.load(path, mmap_mode="r")
    loaded = np.ones((100, 100), dtype=np.float64)

    class Holder:
        def __init__(self) -> None:
            self.mapped = mapped
            self.rows = np.asarray(mapped[:10])  # a view of the map: still mapped
            self.loaded = loaded
            self.view = loaded[:50]  # the same buffer: counted once
            self.nested = [loaded, (np.arange(10, dtype=np.int64), None, 3)]

    assert resident_bytes(Holder()) == 80_000 + 80
    assert resident_bytes({"a": "x" * 1000}) > 1000  # strings count


def test_resident_bytes_of_a_long_list_of_objects_is_a_sampled_estimate(monkeypatch):
    import analysis.bundle.memory as memory

    @dataclass
    class Item:
        tokens: np.ndarray
        name: str

    rng = np.random.default_rng(0)
    items = [Item(np.zeros(int(n), dtype=np.float64), f"item {i}")
             for i, n in enumerate(rng.integers(10, 200, 20_000))]
    sampled = resident_bytes(items)
    monkeypatch.setattr(memory, "SAMPLE_ABOVE", 10**9)  # walk every item
    exact = resident_bytes(items)
    assert exact == sum(it.tokens.nbytes + sys.getsizeof(it.name) for it in items)
    assert abs(sampled - exact) < 0.03 * exact  # within 3 %
    shared = np.zeros(1000)  # one buffer referenced by every item counts once, not per item
    assert resident_bytes([Item(shared, "") for _ in range(10_000)]) < 2 * shared.nbytes + 10**6


def test_the_apps_bundle_loader_goes_through_the_byte_bound(tiny_run_pair, monkeypatch):
    import streamlit as st

    from analysis.bundle import bundle_dir_for
    from app import resources
    from app.state import AppRoots

    roots = AppRoots(tiny_run_pair.checkpoints.resolve(), tiny_run_pair.data.resolve())
    base, drgi = (bundle_dir_for(r, tiny_run_pair.dataset, tiny_run_pair.split)
                  for r in (tiny_run_pair.base, tiny_run_pair.drgi))
    st.cache_resource.clear()
    try:
        first = resources.load_bundle(roots, base)
        assert resources.load_bundle(roots, base) is first  # a hit
        cache = resources.bundle_cache()
        assert len(cache.cached_keys()) == 1 and cache.total_bytes() == first.resident_bytes() > 0
        cache.max_bytes = first.resident_bytes() + 1  # room for one bundle only
        second = resources.load_bundle(roots, drgi)
        assert [k[0] for k in cache.cached_keys()] == [str(drgi.resolve())]
        assert resources.load_bundle(roots, base) is not first  # dropped, loaded again
        assert second.path != first.path
    finally:
        st.cache_resource.clear()


def test_loads_of_different_keys_run_side_by_side_and_a_failed_load_is_retried():
    # "a" loads until "b" has loaded: a cache that loaded under its lock would never finish
    c = ByteBoundedCache(100, 8, lambda v: 1)
    b_loaded = threading.Event()
    got: dict[str, object] = {}

    def load_a():
        assert b_loaded.wait(10), "b's load waited for a's"
        return "A"

    t = threading.Thread(target=lambda: got.setdefault("a", c.get("a", load_a)))
    t.start()
    assert c.get("b", lambda: b_loaded.set() or "B") == "B"
    t.join(10)
    assert got == {"a": "A"} and sorted(c.cached_keys()) == ["a", "b"]

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk hiccup")
        return "C"

    with pytest.raises(OSError, match="hiccup"):
        c.get("c", flaky)
    assert c.get("c", flaky) == "C" and len(calls) == 2
