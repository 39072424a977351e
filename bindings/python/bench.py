#!/usr/bin/env python3
"""Benchmark the mapcache Python binding against dict and a locked cachetools.LRUCache.

    python bindings/python/bench.py [--entries N] [--ops N] [--batch N] [--json PATH]

What is measured (16-byte keys, 32-byte values, uniformly random keys, one thread):

* single get / set: one call per key, timed over a random key sample; the
  figure is nanoseconds per operation *including* the Python loop around it
  (that is what an application pays; the empty loop's cost is printed too);
  single and batch get are also timed on a 10k-entry table that fits in the
  CPU caches (the binding's own cost);
* batch get / set: ``get_many`` / ``set_many`` on batches of ``--batch`` keys,
  nanoseconds per key; the peers do the same work in Python (a list
  comprehension / ``update``), the LRUCache under its lock once per batch;
* memory: resident memory per entry for ``--entries`` entries, each measured
  in a fresh interpreter (RSS after building minus RSS before), against a
  ``dict[bytes, bytes]`` holding the same data; also after ``malloc_trim(0)``
  (heap pages the allocator holds but no longer uses, returned to the OS).

Every timing is the best of ``--repeat`` runs. The goals of issue 4 are
printed next to the figures: single get <= 1 us, batch get <= 150 ns per key,
memory <= half of the dict's. The script reports; it does not fail on a miss.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List

import mapcache

KEY_LEN = 16
VALUE_LEN = 32


def make_data(n: int, seed: int = 42) -> tuple:
    rnd = random.Random(seed)
    keys = [rnd.randbytes(KEY_LEN) for _ in range(n)]
    values = [rnd.randbytes(VALUE_LEN) for _ in range(n)]
    return keys, values


def best_ns(fn: Callable[[], None], ops: int, repeat: int) -> float:
    """Best nanoseconds per op over `repeat` runs of fn (which does `ops` ops)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t0) / ops)
    return best


# ------------------------------------------------------------------ timings


def locked_lru(keys, values):
    """A cachetools.LRUCache holding every key, and the Lock that guards it."""
    from cachetools import LRUCache

    lru = LRUCache(maxsize=len(keys))
    for k, v in zip(keys, values):
        lru[k] = v
    return lru, threading.Lock()


def bench_single(keys, values, sample, repeat) -> Dict[str, Dict[str, float]]:
    n = len(keys)
    out: Dict[str, Dict[str, float]] = {}
    sample_vals = [values[0]] * len(sample)

    def empty():
        for k in sample:
            pass

    out["empty loop"] = {"get": best_ns(empty, len(sample), repeat)}

    c = mapcache.Cache(initial_capacity=n)
    c.set_many(zip(keys, values))
    get = c.__getitem__
    put = c.__setitem__

    def mc_get():
        for k in sample:
            get(k)

    def mc_set():
        for k, v in zip(sample, sample_vals):
            put(k, v)

    out["mapcache.Cache"] = {"get": best_ns(mc_get, len(sample), repeat),
                             "set": best_ns(mc_set, len(sample), repeat)}
    c.close()

    d = dict(zip(keys, values))

    def d_get():
        for k in sample:
            d[k]

    def d_set():
        for k, v in zip(sample, sample_vals):
            d[k] = v

    out["dict"] = {"get": best_ns(d_get, len(sample), repeat),
                   "set": best_ns(d_set, len(sample), repeat)}
    del d

    lru, lock = locked_lru(keys, values)

    def l_get():
        for k in sample:
            with lock:
                lru[k]

    def l_set():
        for k, v in zip(sample, sample_vals):
            with lock:
                lru[k] = v

    out["LRUCache+Lock"] = {"get": best_ns(l_get, len(sample), repeat),
                            "set": best_ns(l_set, len(sample), repeat)}
    return out


def bench_small(keys, values, ops, batch, repeat) -> Dict[str, float]:
    """Single and batch get on a table that fits in the CPU caches (10k
    entries): the binding's own cost, without the memory latency of a large table."""
    keys, values = keys[:10_000], values[:10_000]
    rnd = random.Random(2)
    sample = [keys[rnd.randrange(len(keys))] for _ in range(ops)]
    c = mapcache.Cache()
    c.set_many(zip(keys, values))
    get = c.__getitem__
    d = dict(zip(keys, values))

    def mc_get():
        for k in sample:
            get(k)

    def d_get():
        for k in sample:
            d[k]

    batches = [sample[i:i + batch] for i in range(0, len(sample) - batch + 1, batch)]
    get_many = c.get_many

    def mc_batch():
        for b in batches:
            get_many(b)

    out = {"mapcache.Cache": best_ns(mc_get, ops, repeat), "dict": best_ns(d_get, ops, repeat),
           "mapcache.Cache batch": best_ns(mc_batch, batch * len(batches), repeat)}
    c.close()
    return out


def bench_batch(keys, values, sample, batch, repeat) -> Dict[str, Dict[str, float]]:
    n = len(keys)
    batches = [sample[i:i + batch] for i in range(0, len(sample) - batch + 1, batch)]
    ops = batch * len(batches)
    value_of = dict(zip(keys, values))
    wbatches = [{k: value_of[k] for k in b} for b in batches]
    out: Dict[str, Dict[str, float]] = {}

    c = mapcache.Cache(initial_capacity=n)
    c.set_many(zip(keys, values))
    get_many, set_many = c.get_many, c.set_many
    assert get_many(batches[0]) == [value_of[k] for k in batches[0]]

    def mc_get():
        for b in batches:
            get_many(b)

    def mc_set():
        for b in wbatches:
            set_many(b)

    out["mapcache.Cache"] = {"get": best_ns(mc_get, ops, repeat), "set": best_ns(mc_set, ops, repeat)}
    c.close()

    d = dict(zip(keys, values))

    def d_get():
        for b in batches:
            dg = d.get
            [dg(k) for k in b]

    def d_set():
        for b in wbatches:
            d.update(b)

    out["dict"] = {"get": best_ns(d_get, ops, repeat), "set": best_ns(d_set, ops, repeat)}
    del d

    lru, lock = locked_lru(keys, values)

    def l_get():
        for b in batches:
            with lock:
                lg = lru.get
                [lg(k) for k in b]

    def l_set():
        for b in wbatches:
            with lock:
                lru.update(b)

    out["LRUCache+Lock"] = {"get": best_ns(l_get, ops, repeat), "set": best_ns(l_set, ops, repeat)}
    return out


# ------------------------------------------------------------------- memory


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(kind: str, n: int) -> None:
    """Runs in a fresh interpreter: print resident bytes per entry for `kind`."""
    rnd = random.Random(7)
    gc.collect()
    keep = []
    chunk = 10_000
    if kind == "dict":
        before = rss_bytes()
        d: Dict[bytes, bytes] = {}
        for _ in range(0, n, chunk):
            for _ in range(chunk):
                d[rnd.randbytes(KEY_LEN)] = rnd.randbytes(VALUE_LEN)
        keep.append(d)
        count = len(d)
    elif kind.startswith("mapcache"):
        pre = n if kind == "mapcache-presized" else 0
        before = rss_bytes()
        c = mapcache.Cache(initial_capacity=pre)
        for _ in range(0, n, chunk):
            c.set_many([(rnd.randbytes(KEY_LEN), rnd.randbytes(VALUE_LEN)) for _ in range(chunk)])
        gc.collect()
        keep.append(c)
        count = len(c)
    elif kind == "lru":
        from cachetools import LRUCache

        before = rss_bytes()
        lru = LRUCache(maxsize=n)
        for _ in range(0, n, chunk):
            for _ in range(chunk):
                lru[rnd.randbytes(KEY_LEN)] = rnd.randbytes(VALUE_LEN)
        keep.append(lru)
        count = len(lru)
    else:
        raise SystemExit(f"unknown kind {kind}")
    after = rss_bytes()
    trimmed = after
    try:  # give free heap pages back to the OS (glibc), to see what is live
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
        trimmed = rss_bytes()
    except (OSError, AttributeError):
        pass
    print(json.dumps({"kind": kind, "entries": count,
                      "bytes_per_entry": (after - before) / count,
                      "trimmed_bytes_per_entry": (trimmed - before) / count}))


def bench_memory(n: int) -> Dict[str, Dict[str, float]]:
    out = {}
    for kind in ("dict", "LRUCache", "mapcache", "mapcache-presized"):
        arg = "lru" if kind == "LRUCache" else kind
        proc = subprocess.run([sys.executable, __file__, "--memory-child", arg, "--entries", str(n)],
                              capture_output=True, text=True, check=True)
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ------------------------------------------------------------------- report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries in each map (default 1M)")
    ap.add_argument("--ops", type=int, default=200_000, help="operations per timing run")
    ap.add_argument("--batch", type=int, default=1000, help="keys per batch call")
    ap.add_argument("--repeat", type=int, default=5, help="timing runs; the best is kept")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.entries)
        return 0

    print(f"mapcache {mapcache.library_version()} (ABI {mapcache.abi_version()}) from {mapcache.library_path()}")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.entries:,} entries, {KEY_LEN}-byte keys, {VALUE_LEN}-byte values, "
          f"best of {args.repeat}; load average at start {os.getloadavg()[0]:.2f}\n")
    keys, values = make_data(args.entries)
    rnd = random.Random(1)
    sample = [keys[rnd.randrange(len(keys))] for _ in range(args.ops)]

    single = bench_single(keys, values, sample, args.repeat)
    small = bench_small(keys, values, args.ops, args.batch, args.repeat)
    batch = bench_batch(keys, values, sample, args.batch, args.repeat)
    del keys, values, sample
    gc.collect()
    memory = bench_memory(args.entries)

    print(f"{'ns per key':<18}{'get':>10}{'set':>10}{'batch get':>12}{'batch set':>12}")
    for name in ("mapcache.Cache", "dict", "LRUCache+Lock"):
        s, b = single[name], batch[name]
        print(f"{name:<18}{s['get']:>10.0f}{s['set']:>10.0f}{b['get']:>12.0f}{b['set']:>12.0f}")
    print(f"{'(empty loop)':<18}{single['empty loop']['get']:>10.0f}")
    print(f"(batches of {args.batch} keys)")
    print(f"10k entries (cache-resident): single get mapcache.Cache "
          f"{small['mapcache.Cache']:.0f} ns, dict {small['dict']:.0f} ns; "
          f"batch get mapcache.Cache {small['mapcache.Cache batch']:.0f} ns/key\n")
    print(f"{'bytes per entry':<18}{'resident':>10}{'after malloc_trim':>20}")
    for name, v in memory.items():
        print(f"{name:<18}{v['bytes_per_entry']:>10.1f}{v['trimmed_bytes_per_entry']:>20.1f}")
    print("(mapcache: table grown from empty; mapcache-presized: initial_capacity=entries)")
    ratio = memory["mapcache"]["bytes_per_entry"] / memory["dict"]["bytes_per_entry"]
    print(f"load average at end {os.getloadavg()[0]:.2f} (other work on the machine inflates every figure)")
    print()
    goals = [
        ("single get <= 1000 ns", single["mapcache.Cache"]["get"], single["mapcache.Cache"]["get"] <= 1000),
        ("batch get <= 150 ns/key", batch["mapcache.Cache"]["get"], batch["mapcache.Cache"]["get"] <= 150),
        ("memory <= 0.5 x dict", ratio, ratio <= 0.5),
    ]
    for what, value, ok in goals:
        print(f"goal {what:<26} measured {value:>8.2f}  {'met' if ok else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"single": single, "single_10k": small, "batch": batch, "memory": memory,
                       "entries": args.entries, "batch_size": args.batch}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
