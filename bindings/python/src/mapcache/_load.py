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

A token is kept until no call of ``get_or_load`` for its key is in flight on
that cache: every waiter of a failed load is such a call from before the
failure until it has read its token, so none misses it, and the table holds
only failures of keys being loaded right now.
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


class Failures:
    """One cache's loader exceptions, by token (see the module docstring)."""

    __slots__ = ("_lock", "_in_flight", "_by_token", "_by_key", "_next")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: Dict[bytes, int] = {}  # calls of get_or_load per key
        self._by_token: Dict[int, BaseException] = {}
        self._by_key: Dict[bytes, List[int]] = {}
        self._next = 0

    def enter(self, key: bytes) -> None:
        """A call of get_or_load for ``key`` starts."""
        with self._lock:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def leave(self, key: bytes) -> None:
        """A call for ``key`` is over (it has read its token, if it got one)."""
        with self._lock:
            n = self._in_flight[key] - 1
            if n:
                self._in_flight[key] = n
                return
            del self._in_flight[key]
            for token in self._by_key.pop(key, ()):
                del self._by_token[token]

    def record(self, key: bytes, exc: BaseException) -> int:
        """Keep ``exc``, raised by the loader of ``key``; return its token (> 0)."""
        with self._lock:
            token = self._next
            while True:
                token = token % _MAX_TOKEN + 1
                if token not in self._by_token:
                    break
            self._next = token
            self._by_token[token] = exc
            self._by_key.setdefault(key, []).append(token)
            return token

    def get(self, token: int) -> Optional[BaseException]:
        """The exception kept under ``token``, if any."""
        with self._lock:
            return self._by_token.get(token)

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
            return failures.record(k, exc)
        except BaseException:
            return UNRECORDED


#: The one callback every load goes through (kept alive by this module).
run_loader = _lib.LOADER_FN(_run)
