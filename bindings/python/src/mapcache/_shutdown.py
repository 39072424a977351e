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
import itertools
import os
import threading
import time
from typing import Optional, Set, Tuple

__all__ = ["GRACE", "token", "enter", "leave", "callbacks_allowed", "SHUTTING_DOWN"]

#: The longest the exit handler waits for the calls in flight (seconds). A
#: loader still running after it may abort the process when it retakes the GIL.
GRACE = 30.0

#: The message of the RuntimeError a loader fails with once the handler runs.
SHUTTING_DOWN = "the interpreter is shutting down: the loader was not run"

# Interrupt safety (a Ctrl-C's KeyboardInterrupt, or any asynchronous
# exception). CPython raises it in the main thread where the eval loop checks
# for pending signals: since 3.10 only at a function's entry, right after a
# call returns, and on a loop's back edge, never between two bytecodes of
# which neither is a call. This module once counted the calls in a
# threading.Condition, and an interrupt that landed inside its Python-level
# __enter__/__exit__ (or between enter() and the caller's ``try``) left the
# lock held for good: every later call on every thread, and the exit handler,
# blocked on it. So there is no lock here at all, and each call's presence is
# one element of a set, changed only by single C calls (set.add,
# set.discard), which either happen entirely or not at all:
#
#     tok = token()             # nothing registered yet
#     try:
#         enter(tok)            # its first statement registers tok
#         ... the library call ...
#     finally:
#         leave(tok)            # set.discard: the finally's first call
#
# An interrupt before enter's add leaves nothing to undo (the discard is a
# no-op); one after it is inside the ``try``; and the finally reaches the
# discard without passing a check point (entering a handler, loading a
# global or an attribute are not ones), so the discard runs whatever lands
# afterwards. ``leave`` is the bound C method itself, not a Python function,
# whose entry would be a check point before the discard. (CPython 3.9 checks
# before nearly every bytecode, so there an interrupt can still land between
# the ``try`` ending and the discard; 3.9 is past its end of life.)
#
# Without a lock, the exit handler and a starting call order themselves like
# this: a call adds its token, then reads _closing; the handler sets
# _closing, then reads the set. With the GIL each of those is one atomic
# step, so a call that read _closing as False had added its token before the
# handler looked, and is waited for.

#: The calls in flight that may run a callback, on any thread: (the thread's
#: ident, a number unique to the call).
_in_flight: Set[Tuple[int, int]] = set()
_numbers = itertools.count(1)
_closing = False
_finalizer: Optional[int] = None  # the thread that runs the exit handler

#: The call ``tok`` (from :func:`token`) has returned (idempotent; a C method:
#: see above).
leave = _in_flight.discard


def token() -> Tuple[int, int]:
    """A fresh token for one call of this thread (registers nothing)."""
    return (threading.get_ident(), next(_numbers))


def _nested(tok: Tuple[int, int]) -> bool:
    """Whether this thread has another call in flight (``tok``'s is nested in it)."""
    me = tok[0]
    return any(t[0] == me and t != tok for t in list(_in_flight))


def enter(tok: Tuple[int, int]) -> None:
    """A library call that may run a Python callback starts on this thread;
    call it first thing inside the ``try`` whose ``finally`` calls
    ``leave(tok)``."""
    _in_flight.add(tok)  # first, so that the exit handler sees it (see above)
    if _closing and tok[0] != _finalizer and not _nested(tok):
        # Exiting, and this is not the exiting thread: a daemon thread that
        # finalization will stop. Park it where it holds no GIL and no library
        # frame (it never returns). A call nested in this thread's call in
        # flight goes on (its callbacks are refused): parking it would hold up
        # the outer call.
        _in_flight.discard(tok)
        threading.Event().wait()


def callbacks_allowed() -> bool:
    """Whether a callback that runs now may call the host's code (called from
    the callback, with the GIL)."""
    return not _closing or threading.get_ident() == _finalizer


def _others_in_flight(me: Optional[int]) -> bool:
    return any(t[0] != me for t in list(_in_flight))


def _quiesce() -> None:
    global _closing, _finalizer
    _finalizer = threading.get_ident()  # before _closing: a call that sees one sees both
    _closing = True
    # Polled (no lock or condition for leave() to notify: see above); each
    # sleep releases the GIL, so the calls in flight go on.
    deadline = time.monotonic() + GRACE
    delay = 0.0005
    while _others_in_flight(_finalizer) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def _after_fork_in_child() -> None:
    # Only the forking thread lives on in the child, so the other threads'
    # calls are not in flight there. It is the thread that will finalize the
    # child, so once exiting it is the exempt one: a fork by another thread
    # than the parent's exiting one (a daemon thread's call in flight during
    # the wait) would otherwise leave the child's only thread with its
    # callbacks refused and its next call parked for good. (In place: ``leave``
    # is the set's own method.)
    global _finalizer
    me = threading.get_ident()
    for t in list(_in_flight):
        if t[0] != me:
            _in_flight.discard(t)
    if _closing:
        _finalizer = me


atexit.register(_quiesce)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
