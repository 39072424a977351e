"""``Cache.stats()``: a frozen dataclass of counters that add up exactly on one thread."""

from __future__ import annotations

import dataclasses

import pytest

import mapcache


def test_a_new_cache_counts_nothing(cache):
    s = cache.stats()
    assert s == mapcache.Stats()
    assert s.hit_ratio == 0.0 and s.lookups == 0
    assert isinstance(s.load_time, float)


def test_stats_are_frozen(cache):
    s = cache.stats()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.hits = 5  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(s)] == [
        "hits", "misses", "inserts", "updates", "deletes", "evictions", "rejections",
        "expirations", "load_successes", "load_failures", "load_time", "grows", "entries",
        "bytes", "misuses",
    ]


def test_the_counters_add_up_on_one_thread():
    with mapcache.Cache(manual_clock=True) as c:
        for i in range(100):  # 100 inserts
            c[b"k%d" % i] = b"value"
        for i in range(10):  # 10 updates
            c[b"k%d" % i] = b"other"
        for i in range(150):  # 100 hits, 50 misses
            c.get(b"k%d" % i)
        c.get_many([b"k1", b"k2", b"none"])  # 2 hits, 1 miss
        for i in range(90, 100):  # 10 deletes
            del c[b"k%d" % i]
        assert b"k1" in c  # not a lookup
        assert c.compare_and_swap(b"k1", b"other", b"third")  # an update, not a lookup
        c.get_or_load(b"L", lambda: b"loaded")  # 1 miss, 1 insert, 1 load
        c.get_or_load(b"L", lambda: b"unused")  # 1 hit
        with pytest.raises(ZeroDivisionError):
            c.get_or_load(b"F", lambda: bytes(1 // 0))  # 1 miss, 1 failed load
        c.set(b"t", b"v", ttl=0.005)  # 1 insert
        c.advance_clock(0.005)
        assert c.get(b"t") is None  # 1 miss

        s = c.stats()
        assert s.hits == 100 + 2 + 1
        assert s.misses == 50 + 1 + 1 + 1 + 1
        assert s.lookups == s.hits + s.misses
        assert s.hit_ratio == pytest.approx(s.hits / s.lookups)
        assert s.inserts == 100 + 1 + 1
        assert s.updates == 10 + 1
        assert s.deletes == 10
        assert (s.load_successes, s.load_failures) == (1, 1)
        assert s.load_time >= 0.0
        assert (s.evictions, s.rejections, s.misuses) == (0, 0, 0)
        assert s.inserts - s.evictions - s.expirations - s.deletes == s.entries == len(c)
        assert s.bytes > 0
        c.clear()  # counts as deletes
        s = c.stats()
        assert s.entries == 0 and s.bytes == 0
        assert s.inserts - s.evictions - s.expirations - s.deletes == 0


def test_misuses_are_counted(exclusive):
    """A write that collides with a held write flag is one misuse."""
    import threading

    from mapcache import _lib

    errors = []

    def writer() -> None:
        try:
            exclusive[b"other"] = b"v"
        except mapcache.ConcurrentWriteError as exc:
            errors.append(exc)

    def hold(_ctx: object) -> None:  # runs while the flag is held
        t = threading.Thread(target=writer)
        t.start()
        t.join()

    callback = _lib.DEBUG_FN(hold)
    assert _lib.lib.mapcache_debug_hold_write(exclusive._h, b"k", 1, callback, None) == 0
    assert len(errors) == 1
    assert exclusive.stats().misuses == 1
