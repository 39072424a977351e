"""Eight threads hammering one cache; the outcome is checked exactly."""

from __future__ import annotations

import threading

import mapcache

THREADS = 8
ROUNDS = 1500
COUNTERS = 4


def test_eight_threads_hammer_one_cache():
    c = mapcache.Cache(shards=4)
    for j in range(COUNTERS):
        c[f"counter{j}"] = (0).to_bytes(8, "little")
    errors: list = []
    start = threading.Barrier(THREADS)
    cas_failures = [0] * THREADS

    def worker(t: int) -> None:
        try:
            with c.label(f"worker-{t}"):
                start.wait()
                for i in range(ROUNDS):
                    key = f"t{t}-k{i}"
                    value = f"{t}:{i}".encode() * (1 + i % 5)
                    c[key] = value
                    if c[key] != value:  # own keys: nobody else writes them
                        errors.append(("read-back", t, i))
                    # shared counters: read-modify-write with a CAS retry loop
                    ck = f"counter{i % COUNTERS}"
                    while True:
                        old = c[ck]
                        new = (int.from_bytes(old, "little") + 1).to_bytes(8, "little")
                        if c.compare_and_swap(ck, old, new):
                            break
                        cas_failures[t] += 1
                    # get-or-insert race on a shared key: all see the first value
                    first = c.setdefault(f"shared{i % 50}", f"by-{t}".encode())
                    if not first.startswith(b"by-"):
                        errors.append(("setdefault", t, i, first))
                    if i % 100 == 99:  # batches: write 10, read 10, delete 5 of them
                        batch = {f"t{t}-b{i}-{j}": bytes([t, j]) for j in range(10)}
                        c.set_many(batch)
                        if c.get_many(list(batch)) != list(batch.values()):
                            errors.append(("batch", t, i))
                        if c.delete_many(list(batch)[:5]) != 5:
                            errors.append(("delete_many", t, i))
                    if i % 3 == 0:
                        del c[key]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(("exception", t, repr(exc)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert errors == []
    total = sum(int.from_bytes(c[f"counter{j}"], "little") for j in range(COUNTERS))
    assert total == THREADS * ROUNDS  # no lost update
    kept = [i for i in range(ROUNDS) if i % 3 != 0]
    batches = ROUNDS // 100
    assert len(c) == COUNTERS + 50 + THREADS * (len(kept) + 5 * batches)
    for t in range(THREADS):
        got = c.get_many([f"t{t}-k{i}" for i in range(ROUNDS)])
        for i, v in enumerate(got):
            assert v == (None if i % 3 == 0 else f"{t}:{i}".encode() * (1 + i % 5))
    assert len({c[f"shared{k}"] for k in range(50)} - {f"by-{t}".encode() for t in range(THREADS)}) == 0
    assert sorted(c.keys()) == sorted(k for k, _ in c.items())
    c.close()


def test_per_thread_buffers_are_not_shared():
    # each thread reads values of its own sizes (growing its own buffers) while
    # the others do the same; a shared buffer would hand back mixed-up bytes.
    c = mapcache.Cache()
    sizes = [1 << (10 + t) for t in range(THREADS)]  # 1 KiB .. 128 KiB
    for t, size in enumerate(sizes):
        c[f"big{t}"] = bytes([t]) * size
        c[f"small{t}"] = bytes([t]) * 3
    errors: list = []
    start = threading.Barrier(THREADS)

    def reader(t: int) -> None:
        start.wait()
        want_big, want_small = bytes([t]) * sizes[t], bytes([t]) * 3
        for _ in range(200):
            if c[f"big{t}"] != want_big or c.get(f"small{t}") != want_small:
                errors.append(t)
                return
            if c.get_many([f"small{t}", f"big{t}"]) != [want_small, want_big]:
                errors.append(t)
                return

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    c.close()


def test_concurrent_pops_return_each_item_once_and_popitem_keyerror_means_empty():
    """Eight threads popping the same keys, and eight emptying the cache with
    popitem: every item comes out exactly once (two pops had both returned
    one value: a get, then a delete whose result was ignored), and popitem
    raises KeyError only once nothing is left (it had raised it when another
    thread took the item it had picked)."""
    for pop_kind in ("pop", "popitem"):
        c = mapcache.Cache(shards=4)
        keys = [f"k{i}".encode() for i in range(4000)]
        for k in keys:
            c[k] = k + b"=v"
        got: list = [[] for _ in range(THREADS)]
        early_keyerrors = [0]
        start = threading.Barrier(THREADS)

        def worker(t: int) -> None:
            start.wait()
            if pop_kind == "pop":
                for k in keys:
                    v = c.pop(k, None)
                    if v is not None:
                        got[t].append((k, v))
                return
            while True:
                try:
                    got[t].append(c.popitem())
                except KeyError:
                    if len(c) != 0:
                        early_keyerrors[0] += 1
                    return

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        items = [item for per in got for item in per]
        assert sorted(items) == sorted((k, k + b"=v") for k in keys), pop_kind
        assert early_keyerrors == [0], pop_kind
        assert len(c) == 0
