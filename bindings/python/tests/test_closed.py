"""A closed cache raises CacheClosedError on every use; it never crashes."""

from __future__ import annotations

import threading

import pytest

import mapcache


def closed_cache() -> mapcache.Cache:
    c = mapcache.Cache()
    c[b"k"] = b"v"
    c.close()
    return c


CALLS = {
    "getitem": lambda c: c[b"k"],
    "get": lambda c: c.get(b"k"),
    "setitem": lambda c: c.__setitem__(b"k", b"v"),
    "set": lambda c: c.set(b"k", b"v"),
    "delitem": lambda c: c.__delitem__(b"k"),
    "delete": lambda c: c.delete(b"k"),
    "contains": lambda c: b"k" in c,
    "len": lambda c: len(c),
    "clear": lambda c: c.clear(),
    "pop": lambda c: c.pop(b"k"),
    "setdefault": lambda c: c.setdefault(b"k", b"v"),
    "cas": lambda c: c.compare_and_swap(b"k", b"v", b"w"),
    "get_many": lambda c: c.get_many([b"k"]),
    "get_many_empty": lambda c: c.get_many([]),
    "set_many": lambda c: c.set_many({b"k": b"v"}),
    "set_many_empty": lambda c: c.set_many({}),
    "delete_many": lambda c: c.delete_many([b"k"]),
    "delete_many_empty": lambda c: c.delete_many([]),
    "iter": lambda c: list(c),
    "items": lambda c: list(c.items()),
    "values": lambda c: list(c.values()),
    "update": lambda c: c.update({b"k": b"v"}),
    "enter": lambda c: c.__enter__(),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_call_on_a_closed_cache_raises(name):
    c = closed_cache()
    with pytest.raises(mapcache.CacheClosedError) as info:
        CALLS[name](c)
    assert isinstance(info.value, mapcache.InvalidHandleError)
    assert isinstance(info.value, mapcache.MapCacheError)


def test_close_is_idempotent_and_reported():
    c = mapcache.Cache()
    assert not c.closed
    c.close()
    c.close()
    assert c.closed


def test_context_manager_closes():
    with mapcache.Cache() as c:
        c[b"k"] = b"v"
        assert c[b"k"] == b"v"
    assert c.closed
    with pytest.raises(mapcache.CacheClosedError):
        c[b"k"]


def test_context_manager_closes_on_exception():
    with pytest.raises(RuntimeError):
        with mapcache.Cache() as c:
            raise RuntimeError("boom")
    assert c.closed


def test_iterator_outliving_its_cache_raises():
    c = mapcache.Cache()
    c.set_many({str(i): b"v" for i in range(100)})
    it = iter(c.items())
    next(it)
    c.close()
    with pytest.raises(mapcache.InvalidHandleError):
        for _ in it:
            pass


def test_close_while_other_threads_hammer_never_crashes():
    # Threads keep calling while the main thread closes the cache: each call
    # either works or raises an InvalidHandleError (CacheClosedError); the
    # interpreter survives.
    for _ in range(20):
        c = mapcache.Cache()
        c.set_many({str(i): b"v" * 10 for i in range(1000)})
        outcomes: list = []
        start = threading.Barrier(5)

        def worker() -> None:
            start.wait()
            keys = [str(i) for i in range(1000)]
            while True:
                try:
                    c.get_many(keys)
                    c[b"x"] = b"y"
                    c.get(b"x")
                except mapcache.InvalidHandleError:
                    outcomes.append("closed")
                    return
                except Exception as exc:  # anything else is a failure
                    outcomes.append(exc)
                    return

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        start.wait()
        c.close()
        for t in threads:
            t.join(120)  # each call after close() raises at once; never reached
            assert not t.is_alive(), "a thread kept calling a closed cache"
        assert outcomes == ["closed"] * 4


def test_init_on_a_live_cache_is_refused_and_leaves_it_live():
    c = mapcache.Cache()
    c[b"k"] = b"v"
    # A second __init__ would drop the live handle without freeing it.
    with pytest.raises(TypeError, match="live cache"):
        c.__init__(max_entries=10)
    with pytest.raises(TypeError, match="live cache"):
        c.__init__(shards=3)  # a bad config changes nothing either
    assert c[b"k"] == b"v"
    c.close()
    c.__init__()  # a closed one may be made again
    assert len(c) == 0
    c.close()


def test_close_does_not_wait_for_a_call_in_flight_on_another_thread():
    # What close() documents: it returns at once; a call another thread had
    # already started completes on the cache as it was, or raises
    # CacheClosedError (never anything else, never a crash); every call
    # started after close() returned raises CacheClosedError.
    import threading

    c = mapcache.Cache()
    inside, closed = threading.Event(), threading.Event()
    out = []

    def loader():
        inside.set()
        assert closed.wait(60)
        return b"loaded"

    def run():
        try:
            out.append(c.get_or_load(b"k", loader))
        except mapcache.CacheClosedError as e:
            out.append(e)

    t = threading.Thread(target=run)
    t.start()
    assert inside.wait(60)
    c.close()  # returns while the loader still runs: it waits for `closed`
    closed.set()
    t.join(60)
    assert not t.is_alive()
    assert out == [b"loaded"] or isinstance(out[0], mapcache.CacheClosedError), out
    with pytest.raises(mapcache.CacheClosedError):
        c.get_or_load(b"k", lambda: b"v")
    with pytest.raises(mapcache.CacheClosedError):
        c[b"k"]
