"""The caches whose library call this thread is inside, while that call runs
the host's Python code: a ``get_or_load`` loader, a save's progress callback.

The C contract forbids ``mapcache_free`` on a cache from inside such a
callback of a call on that cache (the call is still using it), so
:meth:`mapcache.Cache.close` asks :func:`call_here` first and refuses. The
mark is per thread: the library runs these callbacks on the calling thread,
so Python code that runs on this thread while the call is marked is its
callback (or a signal handler, a finaliser... run inside it, for which the
same holds), and a call on another thread never blocks a close here.

A mark is one entry of :data:`marks`, set and removed by single C-level dict
operations, so that a KeyboardInterrupt cannot leave one behind (it had, when
this was a context manager with Python-level ``__enter__``/``__exit__``: an
interrupt in either, or between the mark and the ``try``, left the thread
marked for good, and ``close()`` refused from then on). The pattern, for the
reasons given in :mod:`mapcache._shutdown`::

    tok = token()
    try:
        marks[tok] = (handle, what)   # a store: no check point in it
        ...
    finally:
        marks.pop(tok, None)          # the finally's first call
"""

from __future__ import annotations

import itertools
import threading
from typing import Dict, Optional, Tuple

__all__ = ["marks", "token", "call_here"]

#: (thread ident, a number unique to the mark) -> (handle's int value, what
#: the call is), in the order they were made (innermost last on a thread).
marks: Dict[Tuple[int, int], Tuple[int, str]] = {}
_numbers = itertools.count(1)


def token() -> Tuple[int, int]:
    """A fresh key for one mark of this thread (marks nothing)."""
    return (threading.get_ident(), next(_numbers))


def call_here(handle: int) -> Optional[str]:
    """What call this thread is inside on the cache ``handle`` (so code running
    now is its callback), or None."""
    me = threading.get_ident()
    for (tid, _), (h, what) in reversed(list(marks.items())):
        if tid == me and h == handle:
            return what
    return None
