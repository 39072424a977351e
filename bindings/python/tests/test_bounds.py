"""A bounded cache: ``max_entries`` and ``max_bytes`` hold after every write."""

from __future__ import annotations

import random

import pytest

import mapcache


def test_the_entry_bound_holds_after_every_write():
    with mapcache.Cache(max_entries=100) as c:
        for i in range(3000):
            c[b"k%d" % i] = b"value"
            assert len(c) <= 100, f"after write {i + 1}"
            assert c.stats().entries <= 100
        s = c.stats()
        assert s.inserts == 3000
        assert s.evictions == 3000 - s.entries > 0


def test_the_byte_bound_holds_after_every_write_of_mixed_sizes():
    bound, biggest = 64 * 1024, 2000
    rng = random.Random(7)
    with mapcache.Cache(max_bytes=bound) as c:
        for i in range(3000):
            c[b"k%d" % rng.randrange(1500)] = b"v" * rng.randrange(biggest)
            # One shard at this size: the bound plus at most one entry.
            assert c.stats().bytes <= bound + biggest + 512, f"after write {i + 1}"
        s = c.stats()
        assert s.evictions > 0
        assert s.inserts - s.evictions - s.expirations - s.deletes == s.entries


def test_an_entry_larger_than_the_budget_is_refused():
    with mapcache.Cache(max_bytes=4096) as c:
        with pytest.raises(mapcache.TooLargeError):
            c[b"huge"] = b"x" * 8192
        with pytest.raises(ValueError):  # TooLargeError is a ValueError
            c.set(b"huge", b"x" * 8192, ttl=1)
        assert b"huge" not in c


def test_bounds_and_clock_are_in_the_config():
    with mapcache.Cache(max_entries=10, max_bytes=1 << 20, default_ttl=1.5, manual_clock=True) as c:
        cfg = c.config
        assert (cfg["max_entries"], cfg["max_bytes"]) == (10, 1 << 20)
        assert (cfg["default_ttl"], cfg["manual_clock"]) == (1.5, True)


def test_more_shards_than_entries_is_an_invalid_config():
    with pytest.raises(mapcache.InvalidConfigError, match="max_entries"):
        mapcache.Cache(shards=8, max_entries=4)


@pytest.mark.parametrize("kwargs", [{"max_entries": -1}, {"max_bytes": 2**64}])
def test_bounds_out_of_range_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        mapcache.Cache(**kwargs)
