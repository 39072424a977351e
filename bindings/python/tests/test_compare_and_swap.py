"""compare_and_swap: atomic replace-if-equal."""

from __future__ import annotations

import pytest


def test_swaps_when_equal(cache):
    cache[b"k"] = b"old"
    assert cache.compare_and_swap(b"k", b"old", b"new") is True
    assert cache[b"k"] == b"new"


def test_keeps_when_different(cache):
    cache[b"k"] = b"current"
    assert cache.compare_and_swap(b"k", b"stale", b"new") is False
    assert cache[b"k"] == b"current"


def test_absent_key_raises_keyerror(cache):
    with pytest.raises(KeyError):
        cache.compare_and_swap(b"k", b"a", b"b")
    assert b"k" not in cache


def test_accepts_str_key_and_bytes_like(cache):
    cache["k"] = b"1"
    assert cache.compare_and_swap("k", bytearray(b"1"), memoryview(b"2")) is True
    assert cache["k"] == b"2"


def test_empty_values(cache):
    cache[b"k"] = b""
    assert cache.compare_and_swap(b"k", b"", b"x") is True
    assert cache.compare_and_swap(b"k", b"x", b"") is True
    assert cache[b"k"] == b""
