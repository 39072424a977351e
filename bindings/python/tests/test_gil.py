"""The GIL is released while a thread is inside a foreign call.

A background thread timestamps its progress in a tight Python loop while the
main thread runs one long get_many. The foreign call is wrapped so we know
exactly when it started and returned; the background thread must have run
well inside that window. A control runs the same call through PyDLL (which
keeps the GIL) and must show no progress there: this proves the measurement
can tell the two apart.
"""

from __future__ import annotations

import ctypes
import threading
import time

import mapcache
from mapcache import _cache, _lib

MARGIN = 0.03  # seconds trimmed off each end of the window (switch interval is 5 ms)


def _measure(monkeypatch, cache, foreign) -> tuple:
    """Run get_many through `foreign`; return (call seconds, background stamps inside)."""
    window = {}

    def wrapped(*args):
        window["start"] = time.perf_counter()
        try:
            return foreign(*args)
        finally:
            window["end"] = time.perf_counter()

    monkeypatch.setattr(_cache, "_get_many", wrapped)
    stamps: list = []
    stop = threading.Event()
    running = threading.Event()

    def spinner() -> None:
        running.set()
        append, now, is_set = stamps.append, time.perf_counter, stop.is_set
        while not is_set():
            append(now())

    # one-byte values: CPython shares single-byte bytes objects, so even a
    # batch of millions of keys costs little memory on the way back
    keys = [f"key-{i}".encode() for i in range(100_000)]
    cache.set_many({k: b"v" for k in keys})
    batch = keys
    # grow the batch until one call takes long enough to measure
    for _ in range(6):  # at most 6.4M keys
        cache.get_many(batch)
        if window["end"] - window["start"] > 0.25:
            break
        batch = batch * 2
    th = threading.Thread(target=spinner)
    th.start()
    running.wait()
    time.sleep(0.02)
    try:
        values = cache.get_many(batch)
    finally:
        stop.set()
        th.join()
    assert values[0] == b"v" and len(values) == len(batch)
    lo, hi = window["start"] + MARGIN, window["end"] - MARGIN
    inside = sum(1 for s in stamps if lo < s < hi)
    return window["end"] - window["start"], inside


def test_other_threads_run_during_a_long_batch_call(monkeypatch, cache):
    seconds, inside = _measure(monkeypatch, cache, _lib.lib.mapcache_get_many)
    assert seconds > 3 * MARGIN
    assert inside > 1000, f"background thread made {inside} steps during a {seconds:.3f}s call"


def test_control_pydll_keeps_the_gil_and_shows_no_progress(monkeypatch, cache):
    pylib = ctypes.PyDLL(str(mapcache.library_path()))
    fn = pylib.mapcache_get_many
    fn.restype, fn.argtypes = _lib._PROTOTYPES["mapcache_get_many"]
    seconds, inside = _measure(monkeypatch, cache, fn)
    assert seconds > 3 * MARGIN
    assert inside == 0
