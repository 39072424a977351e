"""A KeyboardInterrupt (a Ctrl-C) that lands anywhere in the package's own
code around a library call that runs Python callbacks (get_or_load, save)
leaves no state behind: no lock held, no call counted in flight
(mapcache._shutdown), no "inside a call" mark (mapcache._in_call), no
registered callback, no kept loader failure; close() works and later calls
on every thread go on. (A lock of mapcache._shutdown left held had blocked
every later get_or_load, and interpreter exit; a mark left set had made
close() refuse for good.)

Deterministic, not a timing race: a profile function (sys.setprofile) raises
the KeyboardInterrupt at the n-th event of the call, for every n until the
call completes without reaching it. Its events are where CPython raises a
pending signal's exception, and a little more: a Python function's entry
("call"), right after a call returns ("return", "c_return"), and a C
function that can wait, and so run a signal handler, failing before it
acquired or did anything ("c_call" of acquire, wait, sleep...; a C function
that cannot wait, such as a lock's release, does not run one). Each run is in a fresh
interpreter, where the package's sys.unraisablehook is in place (pytest
replaces it during a test).
"""

from __future__ import annotations

import textwrap

from conftest import run_python

CODE = textwrap.dedent(
    """
    import gc, os, sys, tempfile, threading, time
    import mapcache
    from mapcache import _in_call, _load, _shutdown, _snapshot

    EVENTS = ("call", "return", "c_call", "c_return")
    WAITING = ("acquire", "__enter__", "wait", "wait_for", "sleep", "join")
    path = os.path.join(tempfile.mkdtemp(), "s.snap")

    def inject(n, fn):
        # Run fn() with a KeyboardInterrupt raised at the n-th event outside
        # this driver (whose code is "<string>"); return whether it was.
        seen = [0]

        def prof(frame, event, arg):
            if event == "c_call" and getattr(arg, "__name__", None) not in WAITING:
                return
            if event in EVENTS and frame.f_code.co_filename != "<string>":
                seen[0] += 1
                if seen[0] == n:
                    raise KeyboardInterrupt(n)  # (the profile function is then unset)

        sys.setprofile(prof)
        try:
            fn()
        except (KeyboardInterrupt, ValueError):  # ValueError: the failing loader's
            pass
        finally:
            sys.setprofile(None)
        return seen[0] >= n

    def leftovers(c):
        gc.collect()
        out = []
        if _shutdown._in_flight:
            out.append(("in flight", sorted(_shutdown._in_flight)))
        if _in_call.marks:
            out.append(("marks", list(_in_call.marks.values())))
        if _load.calls or _snapshot.calls:
            out.append(("callbacks", list(_load.calls), list(_snapshot.calls)))
        f = c._failures
        if f._lock.locked():
            out.append("failures lock held")
        if len(f):
            out.append(("failures kept", len(f)))
        live = [k for k, r in f._keys.items() if r() is not None]
        if live:
            out.append(("keys held", live))
        return out

    def probe():
        # Another thread's calls go on (within a generous bound: a lock left
        # held blocks them for ever).
        done = []

        def run():
            with mapcache.Cache() as other:
                other[b"x"] = b"1"
                done.append(other.get_or_load(b"probe", lambda: b"p"))
                other.save(path + ".probe", progress=lambda n: None)
                done.append(True)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(60)
        return done == [b"p", True]

    def fail():
        raise ValueError("backend down")

    SCENARIOS = {
        "load": (None, lambda c: c.get_or_load(b"k", lambda: b"v")),
        "load that fails": (None, lambda c: c.get_or_load(b"k", fail)),
        "hit": (b"v", lambda c: c.get_or_load(b"k", lambda: b"other")),
        "save with progress": (b"v", lambda c: c.save(path, progress=lambda n: None)),
        "save": (b"v", lambda c: c.save(path)),
    }

    for name, (present, call) in SCENARIOS.items():
        n = 0
        while True:
            n += 1
            c = mapcache.Cache()
            if present is not None:
                c[b"k"] = present
            fired = inject(n, lambda: call(c))
            bad = leftovers(c)
            if bad:
                print(f"{name}: after an interrupt at event {n}: {bad}")
                os._exit(1)
            try:
                c.close()
            except Exception as e:
                print(f"{name}: after an interrupt at event {n}: close() raised {e!r}")
                os._exit(1)
            if not probe():
                print(f"{name}: after an interrupt at event {n}: another thread's calls hang")
                os._exit(1)
            if not fired:
                break
        print(name, "ok", n > 10)

    t0 = time.monotonic()
    _shutdown._quiesce()
    print("quiesce waited", time.monotonic() - t0 < 5)
    """
)


def test_an_interrupt_anywhere_in_the_bookkeeping_leaves_nothing_behind():
    r = run_python(CODE)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == [
        "load ok True",
        "load that fails ok True",
        "hit ok True",
        "save with progress ok True",
        "save ok True",
        "quiesce waited True",
    ], (r.stdout, r.stderr)
