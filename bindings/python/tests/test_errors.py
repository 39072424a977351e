"""Status codes become exceptions; wrong argument types are TypeError/ValueError."""

from __future__ import annotations

import ctypes
import mmap

import pytest

import mapcache
from mapcache import _errors, _lib

from conftest import run_python

LONG_KEY = b"k" * (mapcache.MAX_KEY_LEN + 1)

ALL = [
    (2, mapcache.InvalidArgumentError, ValueError),
    (3, mapcache.BufferTooSmallError, mapcache.MapCacheError),
    (4, mapcache.KeyTooLongError, ValueError),
    (5, mapcache.ValueTooLongError, ValueError),
    (6, mapcache.ConcurrentWriteError, mapcache.MisuseError),
    (7, mapcache.ConcurrentReadWriteError, mapcache.MisuseError),
    (8, mapcache.OutOfMemoryError, MemoryError),
    (9, mapcache.InvalidHandleError, mapcache.MapCacheError),
    (10, mapcache.InvalidConfigError, ValueError),
    (11, mapcache.InternalError, mapcache.MapCacheError),
    (16, mapcache.GpuError, mapcache.MapCacheError),
]


@pytest.mark.parametrize("status,cls,also", ALL)
def test_every_error_status_has_its_class(status, cls, also):
    exc = _errors.error_for_status(status, "msg")
    assert type(exc) is cls
    assert isinstance(exc, mapcache.MapCacheError)
    assert isinstance(exc, also)
    assert exc.status == status
    assert exc.message == "msg"


def test_unknown_status_falls_back_to_the_base_class():
    exc = _errors.error_for_status(999, "odd")
    assert type(exc) is mapcache.MapCacheError and exc.status == 999


@pytest.mark.parametrize("status", range(12))
def test_library_names_every_status(status):
    assert _lib.status_str(status)


def test_message_defaults_to_the_library_status_name_when_empty():
    exc = _errors.error_for_status(11, "")
    assert str(exc) == _lib.status_str(11)


def test_misuse_message_is_parsed_for_both_labels():
    msg = "concurrent map writes: 'B-thread' collided with a write in progress by 'A-thread'"
    exc = _errors.error_for_status(6, msg)
    assert (exc.holder, exc.collider) == ("A-thread", "B-thread")
    assert exc.labels == ("A-thread", "B-thread")
    msg = "concurrent map read and map write: 'reader' collided with a write in progress by 'thread 42'"
    exc = _errors.error_for_status(7, msg)
    assert (exc.holder, exc.collider) == ("thread 42", "reader")


def test_invalid_argument_from_the_library_carries_its_message():
    # The binding never passes NULL itself; provoke the library directly and
    # check the binding's translation (message from mapcache_last_error()).
    n = ctypes.c_size_t()
    st = _lib.lib.mapcache_len(None, ctypes.byref(n))
    assert st == _lib.E_INVALID_ARG
    exc = _errors.error_for_status(st)
    assert isinstance(exc, mapcache.InvalidArgumentError)
    assert exc.message and exc.message != _lib.status_str(st)


def test_a_panic_inside_the_library_becomes_internal_error():
    # the library's debugging aid panics on purpose; the boundary catches it
    st = _lib.lib.mapcache_debug_panic(b"python test panic")
    assert st == _lib.E_INTERNAL
    exc = _errors.error_for_status(st)
    assert isinstance(exc, mapcache.InternalError)
    assert "python test panic" in exc.message
    with mapcache.Cache() as c:  # the library is still usable
        c[b"k"] = b"v"
        assert c[b"k"] == b"v"


def test_key_too_long_on_every_single_key_call(cache):
    cache[b"k"] = b"v"
    calls = [
        lambda: cache[LONG_KEY],
        lambda: cache.get(LONG_KEY),
        lambda: cache.__setitem__(LONG_KEY, b"v"),
        lambda: cache.set(LONG_KEY, b"v"),
        lambda: cache.__delitem__(LONG_KEY),
        lambda: cache.delete(LONG_KEY),
        lambda: LONG_KEY in cache,
        lambda: cache.setdefault(LONG_KEY, b"v"),
        lambda: cache.compare_and_swap(LONG_KEY, b"v", b"w"),
    ]
    for call in calls:
        with pytest.raises(mapcache.KeyTooLongError) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert info.value.status == 4
    cache[b"k" * mapcache.MAX_KEY_LEN] = b"max is fine"
    assert cache[b"k" * mapcache.MAX_KEY_LEN] == b"max is fine"


def test_value_too_long(cache):
    # 1 GiB + 1 byte of untouched anonymous memory: the library rejects the
    # length before reading any of it, so no physical memory is used.
    with mmap.mmap(-1, mapcache.MAX_VALUE_LEN + 1) as big:
        view = memoryview(big)
        try:
            with pytest.raises(mapcache.ValueTooLongError) as info:
                cache[b"k"] = view
            assert isinstance(info.value, ValueError)
            with pytest.raises(mapcache.ValueTooLongError):
                cache.setdefault(b"k", view)
            cache[b"k"] = b"v"
            with pytest.raises(mapcache.ValueTooLongError):
                cache.compare_and_swap(b"k", b"v", view)
        finally:
            view.release()
    assert cache[b"k"] == b"v"


@pytest.mark.parametrize("bad", [1, 1.0, None, ["k"], object()])
def test_wrong_key_types_are_type_errors(cache, bad):
    for call in (
        lambda: cache[bad],
        lambda: cache.get(bad),
        lambda: cache.__setitem__(bad, b"v"),
        lambda: cache.__delitem__(bad),
        lambda: bad in cache,
        lambda: cache.pop(bad),
        lambda: cache.setdefault(bad, b"v"),
        lambda: cache.compare_and_swap(bad, b"v", b"w"),
    ):
        with pytest.raises(TypeError):
            call()


@pytest.mark.parametrize("bad", ["str", 1, None, [1], object()])
def test_wrong_value_types_are_type_errors(cache, bad):
    cache[b"k"] = b"v"
    for call in (
        lambda: cache.__setitem__(b"k", bad),
        lambda: cache.set(b"k", bad),
        lambda: cache.setdefault(b"new", bad),
        lambda: cache.compare_and_swap(b"k", bad, b"w"),
        lambda: cache.compare_and_swap(b"k", b"v", bad),
    ):
        with pytest.raises(TypeError):
            call()
    assert cache[b"k"] == b"v"
    assert b"new" not in cache


def test_unencodable_str_key_is_a_value_error(cache):
    with pytest.raises(ValueError):  # UnicodeEncodeError: a lone surrogate
        cache["\ud800"] = b"v"


def test_huge_initial_capacity_fails_cleanly():
    # Either the library refuses the size (InvalidConfigError) or the
    # allocation fails (OutOfMemoryError); both are MapCacheErrors, no crash.
    # Run under an address-space limit so the allocation fails on any machine.
    code = """
import resource, mapcache
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
try:
    mapcache.Cache(initial_capacity=2**40)
except mapcache.OutOfMemoryError as exc:
    assert isinstance(exc, MemoryError) and exc.status == 8, exc
    print("OutOfMemoryError", exc)
except mapcache.InvalidConfigError as exc:
    print("InvalidConfigError", exc)
with mapcache.Cache() as c:  # still usable afterwards
    c[b"k"] = b"v"
    assert c[b"k"] == b"v"
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(("OutOfMemoryError", "InvalidConfigError")), proc.stdout
