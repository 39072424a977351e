//! Cache statistics, always on, cheap enough that nobody turns them off.
//!
//! Where each counter lives decides what it costs:
//! - Lookups (hits, misses) happen on every read, by any number of threads at
//!   once, and readers must never write a line other threads write. They are
//!   counted in [`ReadCounters`]: stripes of their own cache line pair, picked
//!   by the calling thread's id, so that two threads share a stripe only when
//!   there are more threads than stripes. Summed on read.
//! - Write events (inserts, updates, deletes, evictions, expirations,
//!   rejections) happen under the shard's write flag: they are counted in the
//!   shard's write half, beside the entry count the writer changes anyway
//!   ([`ShardCounters`], a plain load and store each).
//! - Loads are rare and slow (they run the host's loader): plain atomic adds.
//!
//! Each counter is exact: a stripe's counters are atomic adds, a shard's are
//! changed only by the flag's holder. A [`Stats`] taken while operations run is
//! a sum of counters read one after another, not one instant's picture.

use std::time::Duration;

use crate::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a cache's counters, from [`crate::Map::stats`].
///
/// On a quiescent cache the counters add up: `hits + misses` is the number of
/// lookups (every get, each key of a batch get, and the first lookup of each
/// `get_or_load`), and `inserts - evictions - expirations - deletes` is
/// `entries`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found no entry, or an expired one.
    pub misses: u64,
    /// New keys stored (by any write, including loads).
    pub inserts: u64,
    /// Values of present keys replaced (including successful compare-and-swaps).
    pub updates: u64,
    /// Entries removed by `remove` or `clear`.
    pub deletes: u64,
    /// Entries removed by the eviction policy to keep the cache within its
    /// bounds (rejected candidates included).
    pub evictions: u64,
    /// Of the evictions, new entries the policy refused to keep in favour of the
    /// entry they would have displaced (admission rejections).
    pub rejections: u64,
    /// Expired entries removed (on access, by the sweep, or replaced by a write).
    pub expirations: u64,
    /// Loads of [`crate::Map::get_or_load`] whose loader succeeded.
    pub load_successes: u64,
    /// Loads whose loader failed or panicked.
    pub load_failures: u64,
    /// Time spent in loaders, over all loads.
    pub load_time: Duration,
    /// Tables doubled so far.
    pub grows: u64,
    /// Entries held (expired ones not yet removed included).
    pub entries: usize,
    /// Bytes the entries held are charged (see [`crate::Config::max_bytes`]).
    pub bytes: usize,
    /// Exclusive-mode misuses detected.
    pub misuses: u64,
}

impl Stats {
    /// Lookups so far: `hits + misses`.
    pub fn lookups(&self) -> u64 {
        self.hits + self.misses
    }

    /// `hits / lookups`, or 0 before the first lookup.
    pub fn hit_ratio(&self) -> f64 {
        match self.lookups() {
            0 => 0.0,
            lookups => self.hits as f64 / lookups as f64,
        }
    }
}

/// Stripes of lookup counters (see the module docs).
pub(crate) struct ReadCounters {
    stripes: Box<[Stripe]>,
}

#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ReadCounters {
    /// Stripes for `threads` concurrent threads (rounded up to a power of two).
    pub(crate) fn new(threads: usize) -> ReadCounters {
        let count = threads.max(1).next_power_of_two();
        ReadCounters {
            stripes: (0..count).map(|_| Stripe::default()).collect(),
        }
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        let index = crate::sync::thread_id::stripe() & (self.stripes.len() - 1);
        &self.stripes[index]
    }

    /// Counts one lookup.
    #[inline]
    pub(crate) fn record(&self, hit: bool) {
        let stripe = self.stripe();
        let counter = if hit { &stripe.hits } else { &stripe.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `hits` and `misses` lookups at once (a batch).
    #[inline]
    pub(crate) fn record_many(&self, hits: u64, misses: u64) {
        let stripe = self.stripe();
        if hits > 0 {
            stripe.hits.fetch_add(hits, Ordering::Relaxed);
        }
        if misses > 0 {
            stripe.misses.fetch_add(misses, Ordering::Relaxed);
        }
    }

    /// (hits, misses) over all stripes.
    pub(crate) fn sum(&self) -> (u64, u64) {
        self.stripes.iter().fold((0, 0), |(h, m), s| {
            (
                h + s.hits.load(Ordering::Relaxed),
                m + s.misses.load(Ordering::Relaxed),
            )
        })
    }
}

/// One shard's write events, changed only by the holder of its write flag.
#[derive(Default)]
pub(crate) struct ShardCounters {
    pub(crate) inserts: AtomicU64,
    pub(crate) updates: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) rejections: AtomicU64,
    pub(crate) expirations: AtomicU64,
}

impl ShardCounters {
    /// Adds `n` to `counter` (flag holder only: a load and a store, no lock prefix).
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Adds this shard's counts into `stats`.
    pub(crate) fn add_to(&self, stats: &mut Stats) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        stats.inserts += load(&self.inserts);
        stats.updates += load(&self.updates);
        stats.deletes += load(&self.deletes);
        stats.evictions += load(&self.evictions);
        stats.rejections += load(&self.rejections);
        stats.expirations += load(&self.expirations);
    }
}

/// Counters of loads (plain atomic adds: a load is rare next to a lookup).
#[derive(Default)]
pub(crate) struct LoadCounters {
    pub(crate) successes: std::sync::atomic::AtomicU64,
    pub(crate) failures: std::sync::atomic::AtomicU64,
    pub(crate) nanos: std::sync::atomic::AtomicU64,
}

impl LoadCounters {
    /// Counts one finished load that took `took`.
    pub(crate) fn record(&self, ok: bool, took: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let counter = if ok { &self.successes } else { &self.failures };
        counter.fetch_add(1, Relaxed);
        self.nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn add_to(&self, stats: &mut Stats) {
        use std::sync::atomic::Ordering::Relaxed;
        stats.load_successes = self.successes.load(Relaxed);
        stats.load_failures = self.failures.load(Relaxed);
        stats.load_time = Duration::from_nanos(self.nanos.load(Relaxed));
    }
}
