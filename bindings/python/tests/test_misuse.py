"""Exclusive mode: overlapping writers (or a reader overlapping a writer) are
reported with both threads' labels.

Most tests are deterministic: the library's debugging aid
`mapcache_debug_hold_write` holds a key's write flag on this thread while a
Python callback runs, and the callback makes a second thread try its call.
One test shows the same reports arising from plain threads hammering the cache
(the GIL is released during calls, so their calls do overlap).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, List

import pytest

import mapcache
from mapcache import _lib

from conftest import run_python

HOLDER = "the-holder"
OTHER = "the-other"


def while_write_held(cache: mapcache.Cache, key: bytes, action: Callable[[], object],
                     holder: str = HOLDER, other: str = OTHER) -> BaseException:
    """Hold `key`'s write flag (labelled `holder`) while a thread labelled
    `other` runs `action`; return what `action` raised (fail if nothing)."""
    outcome: List[object] = []

    def in_other_thread() -> None:
        with cache.label(other):
            try:
                outcome.append(("returned", action()))
            except BaseException as exc:  # noqa: BLE001 - inspected by the caller
                outcome.append(("raised", exc))

    def callback(_ctx: object) -> None:
        t = threading.Thread(target=in_other_thread)
        t.start()
        t.join()

    cb = _lib.DEBUG_FN(callback)
    with cache.label(holder):
        st = _lib.lib.mapcache_debug_hold_write(cache._h, key, len(key), cb, None)
    assert st == _lib.OK, _lib.last_error()
    assert len(outcome) == 1
    kind, value = outcome[0]
    assert kind == "raised", f"the call returned {value!r} instead of raising"
    return value  # type: ignore[return-value]


@pytest.fixture
def filled(exclusive):
    exclusive.set_many({f"k{i}".encode(): b"v" for i in range(100)})
    return exclusive


WRITES = {
    "setitem": lambda c: c.__setitem__(b"k1", b"w"),
    "set": lambda c: c.set(b"k1", b"w"),
    "delitem": lambda c: c.__delitem__(b"k1"),
    "delete": lambda c: c.delete(b"k1"),
    "compare_and_swap": lambda c: c.compare_and_swap(b"k1", b"v", b"w"),
    "set_many": lambda c: c.set_many({b"k1": b"w"}),
    "delete_many": lambda c: c.delete_many([b"k1"]),
    "clear": lambda c: c.clear(),
    "update": lambda c: c.update({b"k1": b"w"}),
}


@pytest.mark.parametrize("name", sorted(WRITES))
def test_write_during_a_held_write_raises_concurrent_write_error(filled, name):
    exc = while_write_held(filled, b"k1", lambda: WRITES[name](filled))
    assert isinstance(exc, mapcache.ConcurrentWriteError), repr(exc)
    assert exc.status == _lib.E_CONCURRENT_WRITE
    assert (exc.holder, exc.collider) == (HOLDER, OTHER)
    assert "concurrent map writes" in str(exc)
    assert filled[b"k1"] == b"v"  # nothing was changed
    assert len(filled) == 100


READ_THEN_WRITE = {
    "pop": lambda c: c.pop(b"k1"),
    "setdefault": lambda c: c.setdefault(b"new", b"w"),
}


@pytest.mark.parametrize("name", sorted(READ_THEN_WRITE))
def test_read_then_write_during_a_held_write_reports_misuse(filled, name):
    # pop is a get then a delete; get-or-insert looks before it writes: the
    # library may catch either half (it documents both statuses for them)
    exc = while_write_held(filled, b"k1", lambda: READ_THEN_WRITE[name](filled))
    assert isinstance(exc, (mapcache.ConcurrentWriteError, mapcache.ConcurrentReadWriteError)), repr(exc)
    assert (exc.holder, exc.collider) == (HOLDER, OTHER)
    assert filled[b"k1"] == b"v" and b"new" not in filled


def test_batch_write_reports_the_index_of_the_colliding_key(filled):
    exc = while_write_held(filled, b"k1", lambda: filled.set_many([(b"k1", b"w")]))
    assert isinstance(exc, mapcache.ConcurrentWriteError)
    assert exc.index == 0
    assert (exc.holder, exc.collider) == (HOLDER, OTHER)


READS = {
    "getitem": lambda c: c[b"k1"],
    "get": lambda c: c.get(b"k1"),
    "contains": lambda c: b"k1" in c,
    "get_many": lambda c: c.get_many([b"k1"]),
}


@pytest.mark.parametrize("name", sorted(READS))
def test_read_during_a_held_write_raises_concurrent_read_write_error(filled, name):
    exc = while_write_held(filled, b"k1", lambda: READS[name](filled))
    assert isinstance(exc, mapcache.ConcurrentReadWriteError), repr(exc)
    assert exc.status == _lib.E_CONCURRENT_READ_WRITE
    assert (exc.holder, exc.collider) == (HOLDER, OTHER)
    assert "concurrent map read and map write" in str(exc)


def test_unlabelled_threads_are_named_by_thread_id(filled):
    def write_unlabelled() -> None:
        mapcache.set_thread_label(None)
        filled[b"k1"] = b"w"

    exc = while_write_held(filled, b"k1", write_unlabelled)
    assert isinstance(exc, mapcache.ConcurrentWriteError)
    assert exc.holder == HOLDER
    assert exc.collider is not None and exc.collider.startswith("thread ")


def test_nested_labels_are_reported_and_restored(filled):
    seen = []

    def write() -> None:
        filled[b"k1"] = b"w"

    with filled.label("outer"):
        exc = while_write_held(filled, b"k1", write, holder="inner-holder", other="inner-other")
        seen.append((exc.holder, exc.collider))
        # back to "outer" on this thread: a collision now names it as holder

        def write_plain() -> None:
            filled[b"k2"] = b"w"

        outcome = []

        def other() -> None:
            try:
                write_plain()
            except mapcache.ConcurrentWriteError as e:
                outcome.append(e)

        def callback(_ctx: object) -> None:
            t = threading.Thread(target=other)
            t.start()
            t.join()

        cb = _lib.DEBUG_FN(callback)
        assert _lib.lib.mapcache_debug_hold_write(filled._h, b"k2", 2, cb, None) == 0
        seen.append(outcome[0].holder)
    assert seen == [("inner-holder", "inner-other"), "outer"]


def test_a_label_block_returns_to_the_thread_label(filled):
    def write() -> None:
        filled[b"k1"] = b"w"

    def collide_as_other() -> BaseException:
        # this thread holds; the other thread's label is what the report names
        outcome = []

        def other() -> None:
            try:
                write()
            except mapcache.ConcurrentWriteError as e:
                outcome.append(e)

        def callback(_ctx: object) -> None:
            t = threading.Thread(target=other)
            t.start()
            t.join()

        cb = _lib.DEBUG_FN(callback)
        assert _lib.lib.mapcache_debug_hold_write(filled._h, b"k1", 2, cb, None) == 0
        return outcome[0]

    mapcache.set_thread_label("base")
    try:
        with filled.label("scoped"):
            assert collide_as_other().holder == "scoped"
        assert collide_as_other().holder == "base"
    finally:
        mapcache.set_thread_label(None)
    assert collide_as_other().holder.startswith("thread ")


def test_bad_labels_are_refused(exclusive):
    with pytest.raises(ValueError):
        with exclusive.label("nul\0inside"):
            pass
    with pytest.raises(TypeError):
        with exclusive.label(42):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError):  # MAPCACHE_MAX_LABEL_LEN is 1023 bytes
        with exclusive.label("x" * 1024):
            pass
    with exclusive.label("x" * 1023):
        pass


def test_concurrent_mode_never_reports_misuse(cache):
    # A fixed amount of work from threads released together (a deadline let a
    # thread first scheduled after it do nothing, and then len() was 0).
    keys = [f"k{i}".encode() for i in range(5000)]
    rounds = 30
    start = threading.Barrier(3)
    errors: list = []

    def run() -> None:
        start.wait()
        for _ in range(rounds):
            try:
                cache.set_many({k: b"w" for k in keys})
                cache.get_many(keys)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == len(keys)


HAMMER_BOUND = 120  # seconds; only a build that misses overlaps reaches it


def test_hammering_writers_collide_for_real(exclusive):
    """No debug hook: two threads writing batches at once. With the GIL released
    during each call their calls overlap; the first report must name both.

    Both write until one is caught: an overlap always comes (the two run in the
    library at once, or one is preempted there while it holds the flag), so the
    bound is not a timing assumption."""
    keys = [f"k{i}".encode() for i in range(5000)]
    reported: dict = {}
    unexpected: list = []
    stop = threading.Event()
    deadline = time.monotonic() + HAMMER_BOUND

    def writer(label: str) -> None:
        with exclusive.label(label):
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    exclusive.set_many({k: label.encode() for k in keys})
                except mapcache.ConcurrentWriteError as exc:
                    reported[label] = exc
                    stop.set()
                except Exception as exc:  # noqa: BLE001
                    unexpected.append(exc)
                    stop.set()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("writer-A", "writer-B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert unexpected == []
    assert reported, f"two writers never collided within {HAMMER_BOUND} s"
    for label, exc in reported.items():
        other = "writer-B" if label == "writer-A" else "writer-A"
        assert (exc.holder, exc.collider) == (other, label)


def test_abort_policy_aborts_the_process():
    code = """
import threading, mapcache
from mapcache import _lib
c = mapcache.Cache(mode="exclusive", misuse_policy="abort")
def other():
    c[b"k"] = b"v"   # collides with the held flag: the process aborts here
    print("still alive")
def hold(_ctx):
    t = threading.Thread(target=other); t.start(); t.join()
cb = _lib.DEBUG_FN(hold)
_lib.lib.mapcache_debug_hold_write(c._h, b"k", 1, cb, None)
print("returned")
"""
    proc = run_python(code)
    assert proc.returncode == -6, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "still alive" not in proc.stdout
    assert "concurrent map writes" in proc.stderr


def test_debug_hook_refuses_concurrent_mode(cache):
    cb = _lib.DEBUG_FN(lambda ctx: None)
    st = _lib.lib.mapcache_debug_hold_write(cache._h, b"k", 1, cb, None)
    assert st == _lib.E_INVALID_ARG


def test_labels_are_read_back_whole_or_not_at_all():
    # From the message: a newline in a label is kept; a label holding the
    # message's own words makes the split ambiguous, so both are None
    # rather than wrong.
    make = mapcache.ConcurrentWriteError
    e = make("mapcache_put: concurrent map writes: 'line\nbreak' collided with a write in "
             "progress by 'it's'")
    assert (e.holder, e.collider) == ("it's", "line\nbreak")
    e = make("concurrent map writes: 'a' collided with a write in progress by 'b' collided "
             "with a write in progress by 'c'")
    assert (e.holder, e.collider) == (None, None)
    assert make("something else").labels == (None, None)
