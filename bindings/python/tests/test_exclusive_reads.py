"""Exclusive mode: len() and every step of an iteration are reads, and report a
write in flight on another thread (ConcurrentReadWriteError naming both)."""

import pytest

import mapcache
from mapcache import _lib

from test_misuse import HOLDER, OTHER, while_write_held

ITERATION_READS = {
    "len": len,
    "iter": lambda c: list(c),
    "keys": lambda c: list(c.keys()),
    "items": lambda c: list(c.items()),
    "values": lambda c: list(c.values()),
}


@pytest.mark.parametrize("name", sorted(ITERATION_READS))
def test_len_and_iteration_during_a_held_write_raise(exclusive, name):
    exclusive.set_many({f"k{i}".encode(): b"v" for i in range(100)})
    exc = while_write_held(exclusive, b"k1", lambda: ITERATION_READS[name](exclusive))
    assert isinstance(exc, mapcache.ConcurrentReadWriteError), repr(exc)
    assert exc.status == _lib.E_CONCURRENT_READ_WRITE
    assert (exc.holder, exc.collider) == (HOLDER, OTHER)
    # With no write in flight the same read is whole.
    assert len(exclusive) == 100
    assert len(list(exclusive.items())) == 100
