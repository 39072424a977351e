#!/usr/bin/env python3
"""A short tour of the mapcache Python binding: one cache shared by a thread pool.

Run with `make demo-python` (or `python bindings/python/examples/demo.py` once
the package is installed and libmapcache is built).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import mapcache

WORKERS = 4
ITEMS_PER_WORKER = 25_000


def main() -> None:
    print(f"libmapcache {mapcache.library_version()} (ABI {mapcache.abi_version()}) "
          f"loaded from {mapcache.library_path()}")

    with mapcache.Cache(initial_capacity=WORKERS * ITEMS_PER_WORKER) as cache:
        # 1. A pool of workers fills the cache in batches and counts hits on a
        #    shared counter with compare-and-swap (no Python lock anywhere).
        cache["hits"] = (0).to_bytes(8, "little")

        def worker(w: int) -> int:
            with cache.label(f"worker-{w}"):
                batch = {f"user:{w}:{i}": f"profile of {w}/{i}".encode()
                         for i in range(ITEMS_PER_WORKER)}
                cache.set_many(batch)                      # one foreign call
                values = cache.get_many(list(batch))       # one foreign call
                assert values == list(batch.values())
                while True:                                # lock-free counter
                    old = cache["hits"]
                    new = (int.from_bytes(old, "little") + len(values)).to_bytes(8, "little")
                    if cache.compare_and_swap("hits", old, new):
                        return len(values)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            done = sum(pool.map(worker, range(WORKERS)))
        elapsed = time.perf_counter() - t0
        hits = int.from_bytes(cache["hits"], "little")
        print(f"{WORKERS} threads stored and read back {done:,} entries in {elapsed * 1000:.0f} ms; "
              f"shared counter = {hits:,} (expected {WORKERS * ITEMS_PER_WORKER:,})")
        print(f"len(cache) = {len(cache):,}; cache['user:2:7'] = {cache['user:2:7']!r}")

        # 2. Mapping behaviour.
        print(f"'user:0:0' in cache -> {'user:0:0' in cache}; "
              f"cache.get('nobody') -> {cache.get('nobody')}; "
              f"setdefault('config', b'v1') -> {cache.setdefault('config', b'v1')!r}; "
              f"again with b'v2' -> {cache.setdefault('config', b'v2')!r}")
        removed = cache.delete_many(f"user:3:{i}" for i in range(ITEMS_PER_WORKER))
        print(f"delete_many removed {removed:,} entries of worker 3; len = {len(cache):,}")

    # 3. Exclusive mode: the host promises one writer at a time; breaking the
    #    promise is reported with both threads' labels instead of corrupting data.
    with mapcache.Cache(mode="exclusive") as excl:
        keys = [f"k{i}" for i in range(5000)]
        caught: list = []
        stop = threading.Event()

        def writer(name: str) -> None:
            with excl.label(name):
                while not stop.is_set():
                    try:
                        excl.set_many({k: b"v" for k in keys})
                    except mapcache.ConcurrentWriteError as exc:
                        caught.append(exc)
                        stop.set()

        threads = [threading.Thread(target=writer, args=(n,)) for n in ("ingest", "refresher")]
        for t in threads:
            t.start()
        stop.wait(30)
        stop.set()
        for t in threads:
            t.join()
        if caught:
            exc = caught[0]
            print(f"exclusive mode caught misuse: {type(exc).__name__}: {exc}")
            print(f"  holder={exc.holder!r} collider={exc.collider!r}")
        else:
            print("exclusive mode: no overlapping writes happened within 30 s")

    try:
        excl["k"] = b"v"
    except mapcache.CacheClosedError as exc:
        print(f"using a closed cache raises {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
