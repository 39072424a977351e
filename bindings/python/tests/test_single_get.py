"""The two paths of a single get (``cache[key]`` / ``get()``): one call of
mapcache_get_object that returns the finished ``bytes`` (CPython), and the
buffered mapcache_get_value path (other interpreters, a library without the
function, keys over MAX_KEY_LEN). Both must give the same answers."""

from __future__ import annotations

import platform
import sys
import threading

import pytest

import mapcache
from mapcache import _cache, _lib

SIZES = [0, 1, 31, 32, 255, 256, 257, 1023, 1024, 1025, 70_000, (1 << 20) + 3]


def paths(cache):
    """(getitem, get) of each path, bound to ``cache``."""
    fast = (cache.__getitem__, cache.get)
    buffered = (lambda k: _cache.Cache._getitem_buffered(cache, k),
                lambda k, d=None: _cache.Cache._get_buffered_default(cache, k, d))
    return [fast, buffered]


def test_cpython_uses_get_object():
    if platform.python_implementation() != "CPython":
        pytest.skip("mapcache_get_object needs the CPython API")
    assert _lib.get_object is not None
    assert _lib.MAKE_BYTES and _lib.MISS_INT
    assert _cache.Cache.__getitem__ is not _cache.Cache._getitem_buffered


@pytest.mark.parametrize("size", SIZES)
def test_values_of_every_size_on_both_paths(cache, size):
    value = bytes(i % 251 for i in range(size))
    cache[b"k"] = value
    for getitem, get in paths(cache):
        got = getitem(b"k")
        assert got == value and type(got) is bytes
        assert get(b"k") == value
        assert get("k") == value  # str keys are UTF-8 encoded


def test_absent_keys_on_both_paths(cache):
    cache[b"present"] = b"v"
    marker = object()
    for getitem, get in paths(cache):
        with pytest.raises(KeyError) as info:
            getitem(b"absent")
        assert info.value.args == (b"absent",)
        assert get(b"absent") is None
        assert get(b"absent", marker) is marker
        assert get(b"", marker) is marker


def test_key_length_limits_on_both_paths(cache):
    at_max = b"m" * mapcache.MAX_KEY_LEN
    cache[at_max] = b"max"
    too_long = b"m" * (mapcache.MAX_KEY_LEN + 1)
    for getitem, get in paths(cache):
        assert getitem(at_max) == b"max"
        for call in (getitem, get):
            with pytest.raises(mapcache.KeyTooLongError) as info:
                call(too_long)
            assert str(mapcache.MAX_KEY_LEN + 1) in str(info.value)


def test_a_bytes_subclass_cannot_lie_about_its_length(cache):
    # The length passed to C (a 32-bit one for mapcache_get_object) must be the
    # buffer's: a subclass's __len__ is not trusted.
    class Liar(bytes):
        def __len__(self) -> int:
            return (1 << 32) + 1

    cache[b"k"] = b"v"
    for getitem, get in paths(cache):
        assert getitem(Liar(b"k")) == b"v"
        assert get(Liar(b"nope")) is None
    cache[Liar(b"k2")] = Liar(b"v2")
    assert cache[b"k2"] == b"v2"
    cache.set_many({Liar(b"k3"): Liar(b"v3"), b"k4": Liar(b"v4")})
    assert cache.get_many([Liar(b"k3"), b"k4", Liar(b"k2")]) == [b"v3", b"v4", b"v2"]


def test_closed_cache_on_both_paths():
    c = mapcache.Cache()
    c[b"k"] = b"v"
    got = paths(c)
    c.close()
    for getitem, get in got:
        with pytest.raises(mapcache.CacheClosedError):
            getitem(b"k")
        with pytest.raises(mapcache.CacheClosedError):
            get(b"k")


def test_exclusive_mode_gets(exclusive):
    exclusive[b"k"] = b"v"
    for getitem, get in paths(exclusive):
        assert getitem(b"k") == b"v"
        assert get(b"nope") is None


def test_no_reference_is_leaked():
    if not hasattr(sys, "getrefcount") or platform.python_implementation() != "CPython":
        pytest.skip("reference counts are CPython's")
    c = mapcache.Cache()
    try:
        c[b"k"] = b"a value"
        v = c[b"k"]
        before = sys.getrefcount(v)
        for _ in range(1000):
            assert c[b"k"] == v
            assert c.get(b"absent", v) is v
        assert sys.getrefcount(v) == before
        # the results are new objects with one reference, the caller's
        assert sys.getrefcount(c[b"k"]) == sys.getrefcount(b"x" * 1 + b"yz")
    finally:
        c.close()


def test_threads_share_one_cache_and_getter():
    c = mapcache.Cache()
    try:
        keys = [f"key-{i}".encode() for i in range(2000)]
        c.set_many({k: k * 3 for k in keys})
        errors = []

        def reader(seed: int) -> None:
            try:
                for i in range(20_000):
                    k = keys[(i * 7 + seed) % len(keys)]
                    if c[k] != k * 3 or c.get(k + b"!") is not None:
                        errors.append(k)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    finally:
        c.close()
