"""A daemon thread inside a library call that runs Python code (a save's
progress callable, a get_or_load loader) when the program ends.

CPython (3.8 to 3.13) stops a daemon thread that takes the GIL during
finalization with pthread_exit, a forced unwind; inside a callback that
unwind would cross the library's frames, and the process aborted ("FATAL:
exception not rethrown", status 134). The package's exit handler waits for
such calls to end before finalization starts (mapcache._shutdown).

Each test runs a program whose daemon thread is asleep in a callback (the GIL
released) when the main thread returns. So that the callback wakes only after
finalization has begun, an object freed when its module is cleared
(finalization, after the point from which daemon threads are stopped) keeps
the process alive until the daemon thread has gone; with the exit handler it
has gone before finalization starts, its call complete.
"""

from __future__ import annotations

import textwrap

import pytest

import mapcache
from conftest import run_python

PRELUDE = textwrap.dedent(
    """
    import os, sys, tempfile, threading, time, types
    import mapcache

    class WaitForThread:
        tid = None
        def __del__(self):
            deadline = time.monotonic() + 60
            while os.path.exists(f"/proc/self/task/{self.tid}") and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(1, b"finalized\\n")

    holder = types.ModuleType("_wait_holder")
    holder.obj = WaitForThread()
    sys.modules["_wait_holder"] = holder
    del holder

    def mark_thread():
        sys.modules["_wait_holder"].obj.tid = threading.get_native_id()

    inside = threading.Event()
    cache = mapcache.Cache()
    """
)

SAVE = PRELUDE + textwrap.dedent(
    """
    cache.set_many({b"%d" % i: b"v" * 100 for i in range(30000)})   # several progress calls
    path = os.path.join(tempfile.mkdtemp(), "s.snap")
    os.write(1, path.encode() + b"\\n")

    def progress(n):
        if not inside.is_set():
            inside.set()
            time.sleep(0.5)   # in the callback, the GIL released, as the main thread ends

    def run():
        mark_thread()
        report = cache.save(path, progress=progress)
        os.write(1, b"saved %d\\n" % report.records)

    threading.Thread(target=run, daemon=True).start()
    inside.wait()
    """
)

LOAD = PRELUDE + textwrap.dedent(
    """
    def loader():
        inside.set()
        time.sleep(0.5)   # in the callback, the GIL released, as the main thread ends
        os.write(1, b"loader returned\\n")
        return b"loaded"

    def run():
        mark_thread()
        os.write(1, cache.get_or_load("k", loader) + b"\\n")

    threading.Thread(target=run, daemon=True).start()
    inside.wait()
    """
)


@pytest.mark.parametrize("code, done", [(SAVE, "saved 30000"), (LOAD, "loaded")], ids=["progress", "loader"])
def test_a_daemon_thread_in_a_callback_at_exit_does_not_abort(code, done):
    r = run_python(code)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "FATAL" not in r.stderr, r.stderr
    lines = r.stdout.splitlines()
    # The thread's own line ("saved", "loaded") comes after its call has left
    # the exit handler's count, so finalization may stop the thread before it
    # (harmlessly: it is no longer in a callback). What is certain is the
    # call's work: the loader returned, the save's file is complete.
    assert len(lines) in (2, 3) and lines[-1] == "finalized", r.stdout
    assert lines[1:-1] in ([], [done]), r.stdout
    if code is SAVE:
        loaded = mapcache.Cache.load(lines[0])
        assert len(loaded) == 30000
        loaded.close()
    else:
        assert lines[0] == "loader returned", r.stdout


def test_callbacks_on_other_threads_are_refused_once_exiting():
    # The exit handler, called here by hand: a save in flight on another
    # thread skips its later progress calls, a loader of another thread's call
    # fails with a RuntimeError instead of running, and the exiting thread's
    # own callbacks run as before.
    r = run_python(textwrap.dedent(
        """
        import os, tempfile, threading, time
        import mapcache
        from mapcache import _shutdown

        # Two caches: the loads' entries, stored while the save runs, must not
        # be in its count (the save may or may not see them).
        cache, saved = mapcache.Cache(), mapcache.Cache()
        saved.set_many({b"%d" % i: b"v" * 100 for i in range(30000)})
        path = os.path.join(tempfile.mkdtemp(), "s.snap")
        calls, out = [], []
        started = threading.Barrier(3)

        def wait_for_exit():
            while not _shutdown._closing:
                time.sleep(0.001)

        def progress(n):
            calls.append(n)
            if len(calls) == 1:
                started.wait()
                wait_for_exit()

        def loader():
            started.wait()
            wait_for_exit()
            try:
                cache.get_or_load("inner", lambda: b"ran")
            except RuntimeError as e:
                return str(e).encode()
            return b"inner loader ran"

        def save():
            out.append(saved.save(path, progress=progress).records)

        def load():
            out.append(cache.get_or_load("outer", loader))

        threads = [threading.Thread(target=f, daemon=True) for f in (save, load)]
        for t in threads:
            t.start()
        started.wait()
        _shutdown._quiesce()
        # The calls are over, but each thread appends its result after its
        # call has left the count (and so maybe after _quiesce returned).
        for t in threads:
            t.join(60)
        print(len(calls), sorted(out, key=str))
        print(cache.get_or_load("mine", lambda: b"main thread loads"))
        """
    ))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines() == [
        "1 [30000, b'the interpreter is shutting down: the loader was not run']",
        "b'main thread loads'",
    ], r.stdout


def test_a_fork_during_the_wait_leaves_the_child_its_callbacks():
    # A daemon thread whose loader is in flight forks while the exit handler
    # waits for it: in the child that thread is the only one, the one that
    # will finalize it, so its callbacks run (they were refused as another
    # thread's, and a new call of its own would have parked it for good).
    r = run_python(textwrap.dedent(
        """
        import os, threading, time
        import mapcache
        from mapcache import _shutdown

        cache = mapcache.Cache()
        out = []
        inside = threading.Event()

        def loader():
            inside.set()
            while not _shutdown._closing:
                time.sleep(0.001)
            pid = os.fork()
            if pid == 0:
                try:
                    v = cache.get_or_load("in the child", lambda: b"child loader ran")
                except BaseException as e:
                    v = repr(e).encode()
                os.write(1, v + b"\\n")
                os._exit(0)
            os.waitpid(pid, 0)
            return b"parent"

        t = threading.Thread(target=lambda: out.append(cache.get_or_load("k", loader)), daemon=True)
        t.start()
        inside.wait()
        _shutdown._quiesce()
        t.join(60)
        print(out)
        """
    ))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["child loader ran", "[b'parent']"], r.stdout
