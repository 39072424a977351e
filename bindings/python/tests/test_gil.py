"""The GIL is released while a thread is inside a foreign call, and kept by a
``PyDLL`` call (the control that shows the probe can tell the two apart).

No clock is read. The probe is a second Python thread that asks the library,
in a loop, whether an exclusive-mode cache's write flag is held: it calls
``mapcache_contains`` through ``ctypes.PyDLL``, so each probe runs from start
to end with the probing thread holding the GIL, and sees the flag held
(``MAPCACHE_E_CONCURRENT_READ_WRITE``) only if it ran while another thread had
the flag. The flag is taken and released inside one foreign call of the main
thread. So a probe that sees the flag held proves that the probing thread held
the GIL while the main thread was inside that call; and while the main thread
keeps the GIL for a whole call, no probe can see the flag held.

- The binding's way (``ctypes.CDLL``): the main thread calls
  ``mapcache_debug_hold_write``, whose callback is libc's ``flockfile`` on a
  stream that the probing thread has locked: the call holds the flag and waits
  inside the library until the probing thread unlocks the stream, which it
  does once a probe has seen the flag. The call returns only if another
  Python thread ran while it was inside the library; if it kept the GIL it
  would never return, so that test runs in a child interpreter with a time
  limit that only a broken build reaches.
- The control (``ctypes.PyDLL``): a long ``set_many`` made through ``PyDLL``
  takes and releases the flag for each key while keeping the GIL; the probe,
  spinning throughout, never sees it. The same ``set_many`` through the
  binding's ``CDLL`` is seen by the probe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys
import threading
import time
from ctypes import addressof, c_bool, c_void_p
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

import mapcache
from mapcache import _cache, _lib

from conftest import run_python

KEY = b"k0"  # a key of the cache; the flag's scope is the whole cache anyway
BATCH = 200_000  # keys per set_many: a call of tens of milliseconds or more
FIND_BOUND = 120.0  # seconds: a bound for an event that always happens, never reached


def _pydll_function(name: str) -> Any:
    """`name` from the library, called through PyDLL (the GIL stays held)."""
    fn = ctypes.PyDLL(str(mapcache.library_path()))[name]
    fn.restype, fn.argtypes = _lib._PROTOTYPES[name]
    return fn


def _libc() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    for name in ("flockfile", "funlockfile", "tmpfile", "fclose"):
        if not hasattr(libc, name):
            pytest.skip(f"libc has no {name}")
    libc.tmpfile.restype = c_void_p
    libc.tmpfile.argtypes = []
    libc.fclose.argtypes = [c_void_p]
    libc.flockfile.restype = libc.funlockfile.restype = None
    libc.flockfile.argtypes = libc.funlockfile.argtypes = [c_void_p]
    return libc


class Probe(threading.Thread):
    """Probes `cache`'s write flag in a loop, each probe with the GIL held.

    `before` runs on this thread before the first probe. `seen` counts the
    probes that found the flag held; `on_seen` runs on this thread after the
    first of them (or on the way out if none did). `errors` collects anything
    unexpected.
    """

    def __init__(self, cache: mapcache.Cache, before: Optional[Callable[[], None]] = None,
                 on_seen: Optional[Callable[[], None]] = None):
        super().__init__()
        self.handle = cache._h
        self.before = before
        self.on_seen = on_seen
        self.probes = 0
        self.seen = 0
        self.errors: List[str] = []
        self.running = threading.Event()  # set after the first probe
        self.stop = threading.Event()
        self._contains = _pydll_function("mapcache_contains")

    def run(self) -> None:
        found = c_bool()
        out = addressof(found)
        contains, handle = self._contains, self.handle
        if self.before is not None:
            self.before()
        try:
            while not self.stop.is_set():
                st = contains(handle, KEY, len(KEY), out)
                self.probes += 1
                if st == _lib.E_CONCURRENT_READ_WRITE:
                    self.seen += 1
                    if self.seen == 1 and self.on_seen is not None:
                        self.on_seen()
                elif st != _lib.OK:
                    self.errors.append(f"probe: status {st}: {_lib.last_error()}")
                    return
                if self.probes == 1:
                    self.running.set()
        finally:
            self.running.set()
            if self.on_seen is not None and self.seen == 0:
                self.on_seen()  # never leave the main thread waiting on us


def _call_inside_the_library_until_probed() -> None:
    """The main thread's CDLL call waits inside the library until the probe has
    seen its flag (run in a child interpreter by the test below)."""
    libc = _libc()
    stream = libc.tmpfile()
    assert stream, "tmpfile() failed"
    cache = mapcache.Cache(mode="exclusive")
    cache[KEY] = b"v"
    locked = threading.Event()

    def lock() -> None:  # on the probing thread, before its first probe
        libc.flockfile(stream)
        locked.set()

    probe = Probe(cache, before=lock, on_seen=lambda: libc.funlockfile(stream))
    probe.start()
    locked.wait()
    # flockfile is `void (FILE *)`, called as the hook's `void (*)(void *ctx)`
    # with the stream as ctx: the same calling convention. A C function, so no
    # Python runs (and no GIL is taken) inside the call.
    wait_for_unlock = _lib.DEBUG_FN(ctypes.cast(libc.flockfile, c_void_p).value)
    # Holds the flag, then blocks in flockfile until the probing thread, having
    # seen the flag held, unlocks the stream: only possible if this call let it run.
    st = _lib.lib.mapcache_debug_hold_write(cache._h, KEY, len(KEY), wait_for_unlock, stream)
    if st == _lib.OK:
        libc.funlockfile(stream)  # flockfile returned holding the stream's lock
    probe.stop.set()
    probe.join()
    libc.fclose(stream)
    cache.close()
    assert st == _lib.OK, _lib.last_error()
    assert probe.errors == []
    assert probe.seen >= 1
    print(f"returned after the probe saw the flag held ({probe.seen} of {probe.probes} probes)")


def test_another_thread_runs_while_a_call_waits_inside_the_library():
    _libc()  # skips where libc lacks the stream locks
    if not hasattr(_lib.lib, "mapcache_debug_hold_write"):
        pytest.skip("library built without mapcache_debug_hold_write")
    here = str(Path(__file__).resolve().parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); "
        "import test_gil; test_gil._call_inside_the_library_until_probed()"
    )
    try:
        proc = run_python(code)
    except subprocess.TimeoutExpired as exc:  # the call never returned
        pytest.fail(f"the CDLL call never let the probing thread run (it kept the GIL?): {exc!r}")
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    assert "returned after the probe saw the flag held" in proc.stdout


def _set_many_watched(cache: mapcache.Cache, rounds_until_seen: bool) -> Probe:
    """Long set_many calls on `cache` while a Probe spins: one call, or (with
    `rounds_until_seen`) calls until the probe has seen the flag held."""
    probe = Probe(cache)
    probe.start()
    items = {f"key-{i}".encode(): b"v" for i in range(BATCH)}
    try:
        probe.running.wait()
        deadline = time.monotonic() + FIND_BOUND
        cache.set_many(items)
        while rounds_until_seen and probe.seen == 0 and time.monotonic() < deadline:
            cache.set_many(items)
    finally:
        probe.stop.set()
        probe.join()
    assert probe.errors == []
    assert len(cache) == BATCH  # every key was written: the calls did hold the flag
    return probe


def test_other_threads_run_during_a_long_batch_call(exclusive):
    # Through the binding's CDLL the probe runs while set_many holds the flag.
    # It always happens (the spinning probe only needs to be scheduled during
    # one call); the bound is never reached on a working build.
    assert _cache._put_many is _lib.lib.mapcache_put_many
    probe = _set_many_watched(exclusive, rounds_until_seen=True)
    assert probe.seen > 0, f"no probe saw a set_many in {FIND_BOUND:.0f} s ({probe.probes} probes)"


def test_control_pydll_keeps_the_gil_and_shows_no_progress(monkeypatch, exclusive):
    # The same set_many through PyDLL: the GIL is held from before the flag is
    # first taken until after it is last released, so no probe can see it held.
    monkeypatch.setattr(_cache, "_put_many", _pydll_function("mapcache_put_many"))
    probe = _set_many_watched(exclusive, rounds_until_seen=False)
    assert probe.seen == 0
    assert probe.probes > 0


def test_every_call_but_the_single_get_releases_the_gil():
    # What the tests above show for two functions, for every foreign function
    # the binding calls: ctypes releases the GIL around a call unless the
    # function object comes from a PyDLL (flag FUNCFLAG_PYTHONAPI).
    foreign = {
        name: fn for name, fn in vars(_cache).items() if isinstance(fn, ctypes._CFuncPtr)
    }
    assert "_get_many" in foreign and "_put_many" in foreign
    keeps = sorted(n for n, fn in foreign.items() if fn._flags_ & ctypes._FUNCFLAG_PYTHONAPI)
    expected = ["_get_object"] if _lib.get_object is not None else []
    assert keeps == expected
    if sys.implementation.name == "cpython":
        assert expected == ["_get_object"]
