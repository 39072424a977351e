"""The loader of :meth:`mapcache.Cache.get_or_load`: a Python callable run by the
library through one ctypes callback, and the way its exception reaches every
caller that waited for its load.

The library runs one load per key at a time (singleflight): the first caller
to miss runs the loader, on its own thread, and the callers that miss while it
runs wait inside the library (with the GIL released: the cache's functions are
called through ``ctypes.CDLL``) and get its outcome. The C loader reports a
failure as a non-zero ``int32_t`` status, the same for every waiter. So when a
Python loader raises, the callback keeps the exception in the cache's
:class:`Failures` under a fresh *token* and returns the token as the status;
each caller (the one that ran the loader and every waiter) finds the exception
by the token its call returned, and raises it.

A token is kept while a call that can receive it lasts: the calls of
``get_or_load`` for its key in flight when it was recorded (the one that ran
the loader, and the waiters of that load so far), and those that start before
the library has settled that load (its leader's library call returns), which
may still join it as waiters. So a failure outlives its load by no more than
the longest of those calls, however many later calls overlap: a hot key whose
loader always fails does not pile up exceptions (tokens had been kept until
the key had no call in flight at all, which steady traffic never allows: 1.5
GB of exceptions in 8 s, found by a client written from the docstrings).

That lifetime is Python's own reference counting, not a count of calls kept
by hand: a key's failures form a chain, each call holds the chain from the
place its end was when the call started (and the key's unsettled failures),
and the token table holds the failures weakly. A call lets go by merely
ending, so a KeyboardInterrupt anywhere in it cannot leave a count wrong
(a count that an interrupt skipped had kept a key's failures for good).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _in_call, _lib, _shutdown, _swallowed
from ._bytes import as_bytes
from ._errors import error_for_status

__all__ = ["Failures", "Held", "run_loader", "calls", "new_ctx"]

#: The status the callback returns when even recording the exception failed
#: (out of memory); such a failure has no exception to re-raise.
UNRECORDED = -1

_MAX_TOKEN = (1 << 31) - 1


class _Failure:
    """A loader's exception, with its traceback as it was when it was recorded."""

    __slots__ = ("exc", "traceback", "__weakref__")

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.traceback = exc.__traceback__


class _Link:
    """A place in a key's chain of failures: the failure recorded there (None
    while it is the chain's end) and the next place."""

    __slots__ = ("failure", "next")

    def __init__(self) -> None:
        self.failure: Optional[_Failure] = None
        self.next: Optional[_Link] = None


class _Key:
    """The failures of one key with calls in flight (each of which holds it)."""

    __slots__ = ("end", "unsettled", "__weakref__")

    def __init__(self) -> None:
        self.end = _Link()  # where the next failure goes
        # The failures whose loads the library has not settled yet, by the
        # ctx of the call that ran the loader.
        self.unsettled: Dict[int, _Failure] = {}


#: What :meth:`Failures.enter` gives a call, held for its length: the key's
#: state, the chain from the call's start, and the unsettled failures then.
Held = Tuple[_Key, _Link, List[_Failure]]


def _live(refs: Dict[Any, "weakref.ref[Any]"]) -> Dict[Any, "weakref.ref[Any]"]:
    return {name: r for name, r in refs.items() if r() is not None}


class Failures:
    """One cache's loader exceptions, by token (see the module docstring)."""

    __slots__ = ("_lock", "_keys", "_by_token", "_next", "_sweep_keys", "_sweep_tokens")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Both by weak reference: a key's state lives while a call of the key
        # holds it, a failure while a call that may receive it does. Plain
        # references without callbacks (a WeakValueDictionary's is Python
        # code, run wherever the last holder lets go: an interrupt there was
        # "ignored", lost); the dead ones are swept out as the tables grow.
        self._keys: Dict[bytes, "weakref.ref[_Key]"] = {}
        self._by_token: Dict[int, "weakref.ref[_Failure]"] = {}
        self._next = 0
        self._sweep_keys = self._sweep_tokens = 64

    def enter(self, key: bytes) -> Held:
        """A call of get_or_load for ``key`` starts; it holds what this returns
        until it ends (and lets go of it by dropping it). The library call of
        the call's ctx, once it returns, settles the call's own load:
        ``held[0].unsettled.pop(ctx, None)``."""
        with self._lock:
            r = self._keys.get(key)
            k = None if r is None else r()
            if k is None:
                if len(self._keys) >= self._sweep_keys:
                    self._keys = _live(self._keys)
                    self._sweep_keys = max(64, 2 * len(self._keys))
                k = _Key()
                self._keys[key] = weakref.ref(k)
            return k, k.end, list(k.unsettled.values())

    def record(self, key: bytes, exc: BaseException, ctx: int) -> int:
        """Keep ``exc``, raised by the loader of ``key`` that the call of
        ``ctx`` (in flight) runs, with its traceback as it is now; return its
        token (> 0)."""
        failure = _Failure(exc)
        end = _Link()
        with self._lock:
            k = self._keys[key]()  # alive: the call of ctx holds it
            assert k is not None
            if len(self._by_token) >= self._sweep_tokens:
                self._by_token = _live(self._by_token)
                self._sweep_tokens = max(64, 2 * len(self._by_token))
            token = self._next
            while True:
                token = token % _MAX_TOKEN + 1
                r = self._by_token.get(token)
                if r is None or r() is None:
                    break
            self._next = token
            # No call between these stores (so no place for an interrupt):
            # the chain is never left half linked.
            link = k.end
            link.failure = failure
            link.next = end
            k.end = end
            k.unsettled[ctx] = failure
            self._by_token[token] = weakref.ref(failure)
            return token

    def get(self, token: int) -> Optional[BaseException]:
        """The exception kept under ``token``, if any, with the traceback it
        had when the loader raised it (so that each caller's raise adds only
        its own frames to it, not every earlier caller's)."""
        with self._lock:
            r = self._by_token.get(token)
        kept = None if r is None else r()
        if kept is None:
            return None
        return kept.exc.with_traceback(kept.traceback)

    def __len__(self) -> int:
        """How many exceptions are kept now."""
        with self._lock:
            refs = list(self._by_token.values())
        return sum(1 for r in refs if r() is not None)


# The loads running now, by the ctx value passed to the library: (the loader,
# the key as passed to C, the cache's Failures, the cache's handle). A call
# registers its loader (``calls[ctx] = ...``, one store) before it calls the
# library and removes it after (``calls.pop(ctx, None)``, first in a
# ``finally``: see mapcache._shutdown), so the callback, which runs during
# that call on the same thread, always finds it.
calls: Dict[int, Tuple[Callable[[], Any], bytes, Failures, int]] = {}
_ids = itertools.count(1)


def new_ctx() -> int:
    """A fresh ctx value for one call (registers nothing)."""
    return next(_ids)


#: Tests only: called at the loader callback's entry, before its ``try``, where
#: an asynchronous exception (a Ctrl-C's KeyboardInterrupt) can escape it.
_entry_hook: Optional[Callable[[], None]] = None


@_swallowed.watch
def _run(ctx: Optional[int], key: Optional[int], key_len: int, result: Optional[int]) -> int:
    """The ``mapcache_loader_fn`` (called by the library, with the GIL taken by ctypes)."""
    if _entry_hook is not None:
        _entry_hook()
    # The ``try`` comes first: from here on every exception, a Ctrl-C's
    # included, is the loader's outcome. Only the function's entry (a check
    # point for pending signals) lies before it: see mapcache._swallowed.
    failures = None
    try:
        loader, k, failures, handle = calls[ctx or 0]  # cannot fail: the call registered it
        if not _shutdown.callbacks_allowed():  # exiting: end the call soon (see _shutdown)
            raise RuntimeError(_shutdown.SHUTTING_DOWN)
        # Marked for close(), which must not free the cache under its load.
        mark = _in_call.token()
        try:
            _in_call.marks[mark] = (handle, "a get_or_load loader")
            value = loader()
        finally:
            _in_call.marks.pop(mark, None)
        value = as_bytes(value, "a loader must return a bytes-like value")
        st = _lib.lib.mapcache_load_result_set(result, value, len(value))
        if st:
            raise error_for_status(st)
        return 0
    except BaseException as exc:  # every exception reaches the caller and the waiters
        if failures is None:  # not even registered: the caller raises it
            _swallowed.keep(exc)
            return UNRECORDED
        try:
            return failures.record(k, exc, ctx or 0)
        except BaseException as lost:  # out of memory, or an interrupt here
            _swallowed.keep(lost)
            return UNRECORDED


#: The one callback every load goes through (kept alive by this module).
run_loader = _lib.LOADER_FN(_run)
