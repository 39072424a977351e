"""Keeping the library's Python callbacks out of interpreter finalization.

A ``get_or_load`` loader and a save's progress callable run inside a library
call, on ctypes callbacks, with the library's (Rust) frames below them on the
thread's stack. CPython 3.8 to 3.13 ends a daemon thread that takes the GIL
once the interpreter is finalizing with ``pthread_exit``, a forced unwind;
through the library's frames that is an unwind the C ABI forbids (callbacks
"must return normally"), and the library's panic guard, which cannot let it
pass, aborts the process ("FATAL: exception not rethrown"). A daemon thread
inside such a call when the program ends would take the GIL there again: in
the callback's first line (ctypes takes it to call Python), or whenever the
callable releases and retakes it (a sleep, I/O, the eval loop's switch
interval).

So no such call may be in flight once finalization starts. Each one is
counted for its whole length (:func:`enter`, :func:`leave`), and an
:mod:`atexit` handler, which runs before finalization while every thread can
still run, waits for the count to drop to zero (at most :data:`GRACE`
seconds): meanwhile the callbacks of other threads no longer call the host's
code (:func:`callbacks_allowed`: a progress callable is skipped, a loader
fails at once with a RuntimeError), so that their calls end soon, and a new
call from another thread (not nested in one of its calls in flight) parks
that thread for good (it is a daemon thread about to be stopped; a parked
thread never retakes the GIL). The thread that
runs the handler, which finalization never stops, goes on as before.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Optional

__all__ = ["GRACE", "enter", "leave", "callbacks_allowed", "SHUTTING_DOWN"]

#: The longest the exit handler waits for the calls in flight (seconds). A
#: loader still running after it may abort the process when it retakes the GIL.
GRACE = 30.0

#: The message of the RuntimeError a loader fails with once the handler runs.
SHUTTING_DOWN = "the interpreter is shutting down: the loader was not run"

_cond = threading.Condition(threading.Lock())
_in_flight = 0  # calls that may run a callback, on any thread
_closing = False
_finalizer: Optional[int] = None  # the thread that runs the exit handler


class _Local(threading.local):
    def __init__(self) -> None:
        self.in_flight = 0  # this thread's share of _in_flight


_local = _Local()


def _exempt() -> bool:
    return not _closing or threading.get_ident() == _finalizer


def enter() -> None:
    """A library call that may run a Python callback starts on this thread."""
    global _in_flight
    with _cond:
        # A call nested in this thread's call in flight goes on (its callbacks
        # are refused): parking it would hold up the outer call.
        if _exempt() or _local.in_flight:
            _in_flight += 1
            _local.in_flight += 1
            return
    # Exiting, and this is not the exiting thread: a daemon thread that
    # finalization will stop. Park it where it holds no GIL and no library
    # frame (it never returns).
    threading.Event().wait()


def leave() -> None:
    """The call :func:`enter` counted has returned."""
    global _in_flight
    with _cond:
        _in_flight -= 1
        _local.in_flight -= 1
        if _closing:
            _cond.notify_all()


def callbacks_allowed() -> bool:
    """Whether a callback that runs now may call the host's code (called from
    the callback, with the GIL)."""
    return _exempt()


def _quiesce() -> None:
    global _closing, _finalizer
    with _cond:
        _closing = True
        _finalizer = threading.get_ident()
        # The waiting releases the GIL, so the calls in flight go on.
        _cond.wait_for(lambda: _in_flight == _local.in_flight, timeout=GRACE)


def _after_fork_in_child() -> None:
    # Only the forking thread lives on in the child (and another thread may
    # have held the lock at the fork). It is the thread that will finalize
    # the child, so once exiting it is the exempt one: a fork by another
    # thread than the parent's exiting one (a daemon thread's call in flight
    # during the wait) would otherwise leave the child's only thread with
    # its callbacks refused and its next call parked for good.
    global _cond, _in_flight, _finalizer
    _cond = threading.Condition(threading.Lock())
    _in_flight = _local.in_flight
    if _closing:
        _finalizer = threading.get_ident()


atexit.register(_quiesce)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
