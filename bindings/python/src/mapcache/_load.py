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

A token is kept until every call that can receive it has finished: the calls
of ``get_or_load`` for its key in flight when it was recorded (the one that ran
the loader, and the waiters of that load so far), and those that start before
the library has settled that load (its leader's library call returns), which
may still join it as waiters. Each call notes, as it starts, how many failures
its key has had and which are not settled yet; as it ends, it lets go of
those and of every token recorded since, and a token that the last of its
calls has let go of is dropped. So a failure outlives its load by no more than
the longest of those calls, however many later calls overlap: a hot key whose
loader always fails does not pile up exceptions (tokens had been kept until
the key had no call in flight at all, which steady traffic never allows: 1.5
GB of exceptions in 8 s, found by a client written from the docstrings).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _lib, _shutdown, _swallowed
from ._bytes import as_bytes
from ._errors import error_for_status
from ._in_call import InCall

__all__ = ["Failures", "run_loader", "register", "unregister"]

#: The status the callback returns when even recording the exception failed
#: (out of memory); such a failure has no exception to re-raise.
UNRECORDED = -1

_MAX_TOKEN = (1 << 31) - 1


class _KeyFailures:
    """The failures of one key with calls in flight."""

    __slots__ = ("in_flight", "recorded", "held", "unsettled")

    def __init__(self) -> None:
        self.in_flight = 0  # calls of get_or_load for the key, now
        self.recorded = 0  # failures of the key recorded so far
        # By the failure's number (its ``recorded`` when it came): its token
        # and how many of the calls that may receive it have yet to end.
        self.held: Dict[int, List[int]] = {}
        # The numbers of the failures whose loads the library has not settled
        # yet, by the ctx of the call that ran the loader.
        self.unsettled: Dict[int, int] = {}


class Failures:
    """One cache's loader exceptions, by token (see the module docstring)."""

    __slots__ = ("_lock", "_keys", "_by_token", "_next")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: Dict[bytes, _KeyFailures] = {}
        self._by_token: Dict[int, Tuple[BaseException, Any]] = {}
        self._next = 0

    def enter(self, key: bytes) -> Tuple[int, List[int]]:
        """A call of get_or_load for ``key`` starts; returns what it passes
        to :meth:`leave`: the failures recorded so far, and those it may
        still receive of them (not settled yet)."""
        with self._lock:
            k = self._keys.get(key)
            if k is None:
                k = self._keys[key] = _KeyFailures()
            k.in_flight += 1
            joined = list(k.unsettled.values())
            for number in joined:
                k.held[number][1] += 1
            return k.recorded, joined

    def leave(self, key: bytes, entered: Tuple[int, List[int]]) -> None:
        """A call for ``key`` that :meth:`enter` gave ``entered`` is over (it
        has read its token, if it got one)."""
        since, joined = entered
        with self._lock:
            k = self._keys[key]
            k.in_flight -= 1
            for number in joined + [n for n in k.held if n >= since]:
                held = k.held[number]
                held[1] -= 1
                if held[1] == 0:
                    del k.held[number]
                    del self._by_token[held[0]]
            if k.in_flight == 0:
                del self._keys[key]

    def settled(self, key: bytes, ctx: int) -> None:
        """The library call of ``ctx`` (a call for ``key``, in flight) has
        returned: a failure its loader recorded can have no new waiters."""
        with self._lock:
            self._keys[key].unsettled.pop(ctx, None)

    def record(self, key: bytes, exc: BaseException, ctx: int) -> int:
        """Keep ``exc``, raised by the loader of ``key`` that the call of
        ``ctx`` (in flight) runs, with its traceback as it is now; return its
        token (> 0)."""
        with self._lock:
            token = self._next
            while True:
                token = token % _MAX_TOKEN + 1
                if token not in self._by_token:
                    break
            self._next = token
            self._by_token[token] = (exc, exc.__traceback__)
            k = self._keys[key]
            k.held[k.recorded] = [token, k.in_flight]
            k.unsettled[ctx] = k.recorded
            k.recorded += 1
            return token

    def get(self, token: int) -> Optional[BaseException]:
        """The exception kept under ``token``, if any, with the traceback it
        had when the loader raised it (so that each caller's raise adds only
        its own frames to it, not every earlier caller's)."""
        with self._lock:
            kept = self._by_token.get(token)
        if kept is None:
            return None
        exc, traceback = kept
        return exc.with_traceback(traceback)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_token)


# The loads running now, by the ctx value passed to the library: (the loader,
# the key as passed to C, the cache's Failures, the cache's handle). A call
# registers its loader before it calls the library and removes it after, so
# the callback, which runs during that call on the same thread, always finds it.
_calls: Dict[int, Tuple[Callable[[], Any], bytes, Failures, int]] = {}
_ids = itertools.count(1)


def register(loader: Callable[[], Any], key: bytes, failures: Failures, handle: int) -> int:
    """Register a call's loader on the cache ``handle`` (its int value); return
    its ctx value."""
    ctx = next(_ids)
    _calls[ctx] = (loader, key, failures, handle)
    return ctx


def unregister(ctx: int) -> None:
    _calls.pop(ctx, None)


#: Tests only: called at the loader callback's entry, before its ``try``, where
#: an asynchronous exception (a Ctrl-C's KeyboardInterrupt) can escape it.
_entry_hook: Optional[Callable[[], None]] = None


@_swallowed.watch
def _run(ctx: Optional[int], key: Optional[int], key_len: int, result: Optional[int]) -> int:
    """The ``mapcache_loader_fn`` (called by the library, with the GIL taken by ctypes)."""
    if _entry_hook is not None:
        _entry_hook()
    call = _calls.get(ctx or 0)
    if call is None:  # cannot happen: the call registered it (see register)
        return UNRECORDED
    loader, k, failures, handle = call
    try:
        if not _shutdown.callbacks_allowed():  # exiting: end the call soon (see _shutdown)
            raise RuntimeError(_shutdown.SHUTTING_DOWN)
        # Marked for close(), which must not free the cache under its load.
        with InCall(handle, "a get_or_load loader"):
            value = loader()
        value = as_bytes(value, "a loader must return a bytes-like value")
        st = _lib.lib.mapcache_load_result_set(result, value, len(value))
        if st:
            raise error_for_status(st)
        return 0
    except BaseException as exc:  # every exception reaches the caller and the waiters
        try:
            return failures.record(k, exc, ctx or 0)
        except BaseException:
            return UNRECORDED


#: The one callback every load goes through (kept alive by this module).
run_loader = _lib.LOADER_FN(_run)
