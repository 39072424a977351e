"""Exceptions that escape a ctypes callback before its own ``try`` runs.

ctypes cannot carry an exception raised in a callback back through the
foreign call: it reports it to :data:`sys.unraisablehook` ("Exception ignored
on calling ctypes callback function") and returns to the library as if the
callback had returned, with whatever its result slot held. The package's
callbacks (the loader of ``get_or_load``, the progress callable of ``save``)
catch every exception their body raises and hand it to the call that ran
them, so only one raised before the body's first statement escapes: an
asynchronous exception, above all the ``KeyboardInterrupt`` of a Ctrl-C,
which Python raises where it checks for signals, and a function's entry is
such a place. Without this module that ``KeyboardInterrupt`` was printed and
lost: ``get_or_load`` raised a ``LoaderError`` naming a meaningless status,
and ``save`` returned as if nothing had happened.

At import this module chains a hook in front of :data:`sys.unraisablehook`
(whatever was installed before still gets every other report). The hook
keeps an exception that escaped one of the package's callbacks for the
thread it ran on (a callback runs on the thread of the foreign call that
called it), and that call raises it once the library has returned
(:func:`take`). A hook installed after import that does not chain to this
one (pytest's, during a test) gets such reports instead, and the calls then
behave as they did before.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, List, Optional

#: The package's callbacks (the Python functions ctypes calls).
_callbacks: List[Callable[..., Any]] = []
_local = threading.local()


def watch(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn`` as a callback of the package whose escaping exceptions
    :func:`take` returns; returns ``fn``."""
    _callbacks.append(fn)
    return fn


def _ours(unraisable: Any) -> bool:
    """Whether the report is of an exception escaping one of our callbacks:
    ctypes names the callback as the report's object (Python 3.11) or in its
    message (3.12 and later)."""
    obj = getattr(unraisable, "object", None)
    if any(obj is fn for fn in _callbacks):
        return True
    message = getattr(unraisable, "err_msg", None) or ""
    return "ctypes callback" in message and any(repr(fn) in message for fn in _callbacks)


def _chain(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def hook(unraisable: Any) -> None:
        exc = getattr(unraisable, "exc_value", None)
        if exc is not None and _ours(unraisable):
            keep(exc)  # the first one is the cause
            return
        previous(unraisable)

    hook.__wrapped__ = previous  # type: ignore[attr-defined]
    return hook


def keep(exc: BaseException) -> None:
    """Keep ``exc`` for this thread's call to raise (a callback whose body
    could not hand it over otherwise), unless one is kept already."""
    if getattr(_local, "exc", None) is None:
        _local.exc = exc


def take() -> Optional[BaseException]:
    """The exception that escaped one of the package's callbacks on this thread
    since the last call, if one did; forgotten once returned."""
    exc = getattr(_local, "exc", None)
    _local.exc = None
    return exc


sys.unraisablehook = _chain(sys.unraisablehook)
