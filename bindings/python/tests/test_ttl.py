"""TTL: ``set(..., ttl=)``, ``default_ttl`` and the manual clock, on every read path.

No test sleeps: the caches use ``manual_clock=True`` and move it with
``advance_clock``.
"""

from __future__ import annotations

import math

import pytest

import mapcache

#: One key per read path, so that each path meets an expired entry that no
#: other call has removed yet.
PATHS = ["getitem", "get", "get_many", "contains", "keys", "items", "values", "cas",
         "setdefault", "get_or_load", "pop"]


def read_paths(c: mapcache.Cache) -> dict:
    """What each read path saw of its key: True where it saw the entry."""
    loads = []
    seen = {}
    try:
        c[b"getitem"]
        seen["getitem"] = True
    except KeyError:
        seen["getitem"] = False
    seen["get"] = c.get(b"get") is not None
    seen["get_many"] = c.get_many([b"get_many"]) != [None]
    seen["contains"] = b"contains" in c
    seen["keys"] = b"keys" in list(c.keys())
    seen["items"] = any(k == b"items" for k, _ in c.items())
    seen["values"] = b"values-v" in list(c.values())
    try:
        seen["cas"] = c.compare_and_swap(b"cas", b"v", b"w")
    except KeyError:
        seen["cas"] = False
    seen["setdefault"] = c.setdefault(b"setdefault", b"new") == b"v"
    seen["get_or_load"] = c.get_or_load(b"get_or_load", lambda: loads.append(1) or b"new") == b"v"
    seen["pop"] = c.pop(b"pop", None) is not None
    return seen


def put_paths(c: mapcache.Cache, ttl: float) -> None:
    for k in PATHS:
        c.set(k.encode(), b"values-v" if k == "values" else b"v", ttl=ttl)


def test_an_entry_lives_until_its_ttl_on_every_read_path():
    with mapcache.Cache(manual_clock=True) as c:
        put_paths(c, ttl=0.1)
        c.advance_clock(0.099)
        assert read_paths(c) == {k: True for k in PATHS}
        put_paths(c, ttl=0.1)
        c.advance_clock(0.1)
        assert read_paths(c) == {k: False for k in PATHS}
        # setdefault and get_or_load stored new values (no TTL: never expire).
        c.advance_clock(1e9)
        assert c[b"setdefault"] == b"new"
        assert c[b"get_or_load"] == b"new"
        assert b"getitem" not in c
        s = c.stats()
        assert s.inserts - s.evictions - s.expirations - s.deletes == s.entries


def test_ttl_zero_never_expires_and_none_takes_the_default():
    with mapcache.Cache(manual_clock=True, default_ttl=0.05) as c:
        c.set(b"forever", b"v", ttl=0)
        c.set(b"default", b"v")
        c[b"item"] = b"v"
        c.set_many({b"batch": b"v"})
        c.setdefault(b"setdefault", b"v")
        c.set(b"long", b"v", ttl=10)
        c.advance_clock(0.049)
        assert all(k in c for k in (b"forever", b"default", b"item", b"batch", b"setdefault", b"long"))
        c.advance_clock(0.001)
        assert b"forever" in c and b"long" in c
        assert not any(k in c for k in (b"default", b"item", b"batch", b"setdefault"))
        c.advance_clock(math.inf)  # saturates: the end of time
        assert b"forever" in c and b"long" not in c


def test_a_write_moves_the_deadline():
    with mapcache.Cache(manual_clock=True) as c:
        c.set(b"k", b"v", ttl=1)
        c.advance_clock(0.5)
        c.set(b"k", b"w", ttl=1)
        c.advance_clock(0.75)
        assert c[b"k"] == b"w"
        c.set(b"k", b"x", ttl=0)
        c.advance_clock(100)
        assert c[b"k"] == b"x"


def test_ttls_are_rounded_up_to_whole_milliseconds():
    with mapcache.Cache(manual_clock=True) as c:
        c.set(b"tiny", b"v", ttl=1e-7)  # 1 ms, never "0 = forever"
        c.set(b"tenth", b"v", ttl=0.1)  # exactly 100 ms, not 101
        c.advance_clock(0.0004)  # rounds to 0 ms
        assert b"tiny" in c
        c.advance_clock(0.001)
        assert b"tiny" not in c
        c.advance_clock(0.098)
        assert b"tenth" in c
        c.advance_clock(0.001)
        assert b"tenth" not in c


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan])
def test_negative_or_nan_times_are_value_errors(bad):
    with mapcache.Cache(manual_clock=True) as c:
        with pytest.raises(ValueError):
            c.set(b"k", b"v", ttl=bad)
        assert b"k" not in c
        with pytest.raises(ValueError):
            c.advance_clock(bad)
    with pytest.raises(ValueError):
        mapcache.Cache(default_ttl=bad)


@pytest.mark.parametrize("bad", ["1", b"1", True, [1]])
def test_times_of_the_wrong_type_are_type_errors(bad):
    with mapcache.Cache(manual_clock=True) as c:
        with pytest.raises(TypeError):
            c.set(b"k", b"v", ttl=bad)
        with pytest.raises(TypeError):
            c.advance_clock(bad)
    with pytest.raises(TypeError):
        mapcache.Cache(default_ttl=bad)
    with pytest.raises(TypeError):
        mapcache.Cache(manual_clock=1)


def test_the_system_clock_cannot_be_advanced(cache):
    with pytest.raises(mapcache.InvalidArgumentError, match="MAPCACHE_CLOCK_SYSTEM"):
        cache.advance_clock(1)


def test_set_with_a_ttl_returns_none_and_without_one_whether_it_replaced(cache):
    assert cache.set(b"k", b"v") is False
    assert cache.set(b"k", b"w") is True
    assert cache.set(b"k", b"x", ttl=5) is None
    assert cache[b"k"] == b"x"


def test_a_closed_cache_refuses_the_cache_calls():
    c = mapcache.Cache(manual_clock=True)
    c.close()
    with pytest.raises(mapcache.CacheClosedError):
        c.set(b"k", b"v", ttl=1)
    with pytest.raises(mapcache.CacheClosedError):
        c.advance_clock(1)
    with pytest.raises(mapcache.CacheClosedError):
        c.stats()
    with pytest.raises(mapcache.CacheClosedError):
        c.get_or_load(b"k", lambda: b"v")


def test_small_clock_steps_add_up_to_whole_milliseconds():
    """The clock moves in whole milliseconds; each move rounds the running
    total of the moves asked for, so steps smaller than half a millisecond
    are not each lost to rounding (the clock had never moved)."""
    with mapcache.Cache(manual_clock=True) as c:
        c.set(b"k", b"v", ttl=0.005)
        for _ in range(11):  # 4.4 ms asked: the clock at 4 ms
            c.advance_clock(0.0004)
        assert b"k" in c
        c.advance_clock(0.0004)  # 4.8 ms asked: 5 ms
        assert b"k" not in c
        c.advance_clock(math.inf)  # the end, however far asked for after
        c.advance_clock(1.0)
