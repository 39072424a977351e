"""The caches whose library call this thread is inside, while that call runs
the host's Python code: a ``get_or_load`` loader, a save's progress callback.

The C contract forbids ``mapcache_free`` on a cache from inside such a
callback of a call on that cache (the call is still using it), so
:meth:`mapcache.Cache.close` asks :func:`call_here` first and refuses. The
mark is per thread: the library runs these callbacks on the calling thread,
so Python code that runs on this thread while the call is marked is its
callback (or a signal handler, a finaliser... run inside it, for which the
same holds), and a call on another thread never blocks a close here.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional, Tuple

__all__ = ["InCall", "call_here"]


class _Marks(threading.local):
    def __init__(self) -> None:
        #: (handle's int value, what the call is), innermost last
        self.calls: List[Tuple[int, str]] = []


_marks = _Marks()


class InCall:
    """``with InCall(handle, what):`` marks ``handle`` as used by this thread's
    call ``what`` (e.g. "a get_or_load loader") for the block."""

    __slots__ = ("_mark",)

    def __init__(self, handle: int, what: str) -> None:
        self._mark = (handle, what)

    def __enter__(self) -> "InCall":
        _marks.calls.append(self._mark)
        return self

    def __exit__(self, *exc: Any) -> None:
        _marks.calls.remove(self._mark)


def call_here(handle: int) -> Optional[str]:
    """What call this thread is inside on the cache ``handle`` (so code running
    now is its callback), or None."""
    for h, what in reversed(_marks.calls):
        if h == handle:
            return what
    return None
