"""``mapcache.Stats``: a snapshot of a cache's always-on counters (``mapcache_stats_get``)."""

from __future__ import annotations

from dataclasses import dataclass

from . import _lib

__all__ = ["Stats"]


@dataclass(frozen=True)
class Stats:
    """A cache's counters, from :meth:`mapcache.Cache.stats`, each counted from
    the cache's creation.

    On a cache no other thread is using they add up: ``hits + misses`` is the
    number of lookups (every get, each key of :meth:`~mapcache.Cache.get_many`,
    the lookup of :meth:`~mapcache.Cache.setdefault`, and the first lookup of
    each :meth:`~mapcache.Cache.get_or_load`; ``in``, iteration and
    :meth:`~mapcache.Cache.compare_and_swap` are not lookups), and
    ``inserts - evictions - expirations - deletes`` is ``entries``. While other
    threads use the cache, the counters are read one after another, not at one
    instant.

    Attributes:
        hits: lookups that found a live entry.
        misses: lookups that found no entry, or an expired one.
        inserts: new keys stored, by any write (loads included).
        updates: values of present keys replaced (successful compare-and-swaps
            included).
        deletes: entries removed by ``del``, :meth:`~mapcache.Cache.delete`,
            :meth:`~mapcache.Cache.delete_many` or :meth:`~mapcache.Cache.clear`.
        evictions: entries removed by the eviction policy to keep a bounded
            cache within its bounds (``rejections`` included).
        rejections: of the evictions, new entries the policy refused to keep
            in favour of the entry they would have displaced, decided as they
            leave the admission window, as a rule at a later write than their
            own (see :meth:`~mapcache.Cache.set`).
        expirations: expired entries removed (on access, by the sweep, or
            replaced by a write).
        load_successes: loads of :meth:`~mapcache.Cache.get_or_load` whose
            loader returned a value.
        load_failures: loads whose loader raised.
        load_time: seconds spent in loaders, over all loads.
        grows: tables doubled so far.
        entries: entries held (expired ones not yet removed included).
        bytes: bytes the entries held are charged (see ``max_bytes``).
        misuses: exclusive-mode misuses detected.
    """

    hits: int = 0
    misses: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    evictions: int = 0
    rejections: int = 0
    expirations: int = 0
    load_successes: int = 0
    load_failures: int = 0
    load_time: float = 0.0
    grows: int = 0
    entries: int = 0
    bytes: int = 0
    misuses: int = 0

    @property
    def lookups(self) -> int:
        """``hits + misses``."""
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float:
        """``hits / lookups``, or 0.0 before the first lookup."""
        lookups = self.lookups
        return self.hits / lookups if lookups else 0.0

    @classmethod
    def _of(cls, raw: "_lib.mapcache_stats") -> "Stats":
        """From the C struct the library filled."""
        return cls(
            hits=raw.hits,
            misses=raw.misses,
            inserts=raw.inserts,
            updates=raw.updates,
            deletes=raw.deletes,
            evictions=raw.evictions,
            rejections=raw.rejections,
            expirations=raw.expirations,
            load_successes=raw.load_successes,
            load_failures=raw.load_failures,
            load_time=raw.load_time_ns / 1e9,
            grows=raw.grows,
            entries=raw.entries,
            bytes=raw.bytes,
            misuses=raw.misuses,
        )
