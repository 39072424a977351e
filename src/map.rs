//! The public map: hashing to a shard, the read path, and the write path under
//! the write flag of the configured [`Mode`].

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crossbeam_epoch::Guard;

use crate::cache::bounds::{self, Bounds};
use crate::cache::load::{Flights, LoadError, Role};
use crate::cache::read_buffer::Pushed;
use crate::cache::stats::{LoadCounters, ReadCounters, Stats};
use crate::config::{cores, Config, MisusePolicy, Mode};
use crate::error::{Collision, Error, Result};
use crate::gpu::{GpuDispatch, GpuStatus};
use crate::hash::{random_seed, Hasher, KeyHash};
use crate::iter::{Cursor, Iter};
use crate::shard::{Growth, Relief, Shard, Writing};
use crate::sync::epoch;
use crate::sync::thread_id::{self, ThreadId};
use crate::sync::write_flag::{FlagGuard, WriteFlag};
use crate::table::entry::{self, Entry, OwnedEntry, Pending, Trailer};
use crate::table::rehash::{engine_for, RehashEngine};
use crate::table::table::log2_for;

/// Keys [`Map::get_many_with`] looks ahead: enough to keep several misses in
/// flight, few enough that the prefetched lines are still cached when served.
pub const BATCH_LOOKAHEAD: usize = 16;

/// Keys [`Map::get_many_with`] serves under one pin before it re-pins, so that a
/// long batch does not hold back memory reclamation.
pub const BATCH_PIN_SPAN: usize = 64;

/// Counters of table events, for [`Map::table_stats`].
#[derive(Default)]
struct Counters {
    grows: AtomicU64,
    rebuilds: AtomicU64,
    misuses: AtomicU64,
    relief_waits: AtomicU64,
    relief_give_ups: AtomicU64,
}

/// A snapshot of a map's table structure and events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Entries in the map.
    pub entries: usize,
    /// Shards.
    pub shards: usize,
    /// Main buckets, over all shards.
    pub buckets: usize,
    /// Overflow buckets in use, over all shards.
    pub overflow_buckets: usize,
    /// Tables doubled so far.
    pub grows: u64,
    /// Same-size rebuilds so far (overflow compaction).
    pub rebuilds: u64,
    /// Exclusive-mode misuses detected so far.
    pub misuses: u64,
    /// Writes that waited for memory reclamation to catch up (their shard's
    /// retired-but-unfreed bytes were over budget), so far.
    pub relief_waits: u64,
    /// Of those, the waits that ran out of patience (a pin that lasted, see
    /// `docs/ARCHITECTURE.md`, "Reclamation backpressure") and raised the
    /// shard's garbage limit instead.
    pub relief_give_ups: u64,
}

/// A concurrent hash map from byte strings to byte strings.
///
/// Reads never lock: they pin the epoch, walk the key's bucket chain, and copy the
/// value out (or lend it to a closure) before unpinning. Writes take their shard's
/// write flag (concurrent mode) or the map's (exclusive mode, which never waits and
/// reports overlaps instead). `Map` is `Send + Sync`; share it with an `Arc`.
///
/// ```
/// let map = mapcache::Map::new(Default::default())?;
/// assert!(!map.insert(b"k", b"v1")?);
/// assert!(map.insert(b"k", b"v2")?);           // replaced
/// assert_eq!(map.get(b"k")?.as_deref(), Some(&b"v2"[..]));
/// assert_eq!(map.get_with(b"k", |v| v.len())?, Some(2));
/// assert!(map.remove(b"k")?);
/// assert!(map.is_empty());
/// # Ok::<(), mapcache::Error>(())
/// ```
pub struct Map {
    shards: Box<[Shard]>,
    hasher: Hasher,
    mode: Mode,
    misuse_policy: MisusePolicy,
    /// The one flag of exclusive mode: any two overlapping writes collide on it,
    /// whatever shards their keys are in.
    exclusive_flag: WriteFlag,
    /// The configured CPU engine behind the GPU dispatch (`gpu`).
    engine: GpuDispatch,
    /// `log2` of a shard's table after `clear`.
    initial_log2: u32,
    counters: Counters,
    /// Lookup counters, striped by thread (see `cache/stats.rs`).
    reads: ReadCounters,
    /// Load counters of `get_or_load`.
    loads: LoadCounters,
    /// The loads in progress (see `cache/load.rs`).
    flights: Flights,
    config: Config,
}

/// Which contract a detected misuse broke.
#[derive(Clone, Copy)]
enum Misuse {
    Write,
    ReadWrite,
}

impl Map {
    /// A map configured by `config`.
    ///
    /// Fails with [`Error::InvalidConfig`] for an out-of-range field and
    /// [`Error::OutOfMemory`] when the initial tables cannot be allocated.
    pub fn new(config: Config) -> Result<Map> {
        config.validate()?;
        let shard_count = config.resolved_shards()?;
        let initial_log2 = log2_for(config.sized_for().div_ceil(shard_count));
        let stripes = (cores() * 2).min(16);
        // Reserved first, fallibly: up to 2^16 shards, whose array a memory
        // limit can refuse (an infallible allocation would abort the host).
        let mut shards = Vec::new();
        shards
            .try_reserve_exact(shard_count)
            .map_err(|_| Error::OutOfMemory {
                bytes: shard_count.saturating_mul(std::mem::size_of::<Shard>()),
            })?;
        for i in 0..shard_count {
            let bounds = config.is_bounded().then(|| {
                Bounds::new(
                    Config::share(config.max_entries, shard_count, i),
                    Config::share(config.max_bytes, shard_count, i),
                    stripes,
                )
            });
            shards.push(Shard::new(initial_log2, bounds)?);
        }
        let shards = shards.into_boxed_slice();
        let engine = GpuDispatch::new(
            engine_for(config.engine),
            config.gpu,
            config.gpu_threshold,
            config.gpu_plugin.clone(),
        );
        engine.check()?;
        Ok(Map {
            shards,
            hasher: Hasher::new(
                config.seed.unwrap_or_else(random_seed),
                shard_count.trailing_zeros(),
            ),
            mode: config.mode,
            misuse_policy: config.misuse_policy,
            exclusive_flag: WriteFlag::new(),
            engine,
            initial_log2,
            counters: Counters::default(),
            reads: ReadCounters::new(cores() * 4),
            loads: LoadCounters::default(),
            flights: Flights::new(shard_count)?,
            config,
        })
    }

    /// The configuration the map was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this map's large rebuilds run on the GPU and, if not, why
    /// (`"off"`, "libcuda.so.1 not found ...", "no CUDA device: ...", "plugin not
    /// found at <path>", a CUDA error), with its counts of GPU rebuilds and of
    /// fallbacks to the CPU. Unless the config says [`crate::GpuMode::Off`], it
    /// loads the engine if no rebuild has yet (once per process and plugin path;
    /// a failure is kept and not retried). Loading reads the environment (the
    /// engine's `MAPCACHE_GPU_SOURCE` and `MAPCACHE_CUDA_*`, which nothing
    /// reads again, and the CUDA driver's variables, as it starts); without
    /// this call it happens in [`Map::new`] under [`crate::GpuMode::Force`],
    /// else at the first large rebuild, on a writer's thread. A process that
    /// changes its environment while other threads run (C's `getenv` is not
    /// safe against a concurrent `setenv`) should call this once at start-up.
    pub fn gpu_status(&self) -> GpuStatus {
        self.engine.status()
    }

    #[inline]
    fn shard(&self, hash: KeyHash) -> &Shard {
        &self.shards[self.hasher.shard(hash)]
    }

    /// Builds the report of a detected misuse, and aborts if the policy says so.
    #[cold]
    fn misuse(&self, kind: Misuse, holder: ThreadId, me: ThreadId) -> Error {
        self.counters
            .misuses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let collision = Collision {
            holder: thread_id::name_of(holder),
            collider: thread_id::name_of(me),
        };
        let error = match kind {
            Misuse::Write => Error::ConcurrentWrite(collision),
            Misuse::ReadWrite => Error::ConcurrentReadWrite(collision),
        };
        if self.misuse_policy == MisusePolicy::Abort {
            eprintln!("fatal error: {error}");
            std::process::abort();
        }
        error
    }

    /// Exclusive mode: fails if another thread is writing right now.
    #[inline]
    fn check_no_writer(&self) -> Result<()> {
        match self.exclusive_flag.holder() {
            None => Ok(()),
            Some(holder) => {
                let me = thread_id::current();
                if holder == me {
                    Ok(())
                } else {
                    Err(self.misuse(Misuse::ReadWrite, holder, me))
                }
            }
        }
    }

    /// Takes the flag that serialises writes to `shard` under this map's mode.
    #[inline]
    pub(crate) fn lock_for_write<'a>(&'a self, shard: &'a Shard) -> Result<FlagGuard<'a>> {
        let me = thread_id::current();
        match self.mode {
            Mode::Concurrent => Ok(shard.lock_flag(me)),
            Mode::Exclusive => self
                .exclusive_flag
                .try_lock(me)
                .map_err(|holder| self.misuse(Misuse::Write, holder, me)),
        }
    }

    pub(crate) fn growth(&self) -> Growth<'_> {
        Growth {
            engine: &self.engine,
            grows: &self.counters.grows,
            rebuilds: &self.counters.rebuilds,
            clock: &self.config.clock,
        }
    }

    /// The read path: finds `key` and hands its entry to `f` while pinned.
    #[inline]
    fn read<R>(
        &self,
        key: &[u8],
        lookup: bool,
        f: impl FnOnce(*const Entry) -> R,
    ) -> Result<Option<R>> {
        self.read_in(None, key, lookup, f)
    }

    /// The read path under `guard` if given (a [`Pinned`] view), else under a pin
    /// of its own: finds `key` and hands its entry to `f` while pinned. An
    /// expired entry is absent. A `lookup` (a read of the value: the gets, not
    /// `contains_key`) is counted as a hit or a miss, and a hit is reported to
    /// the shard's eviction policy.
    #[inline]
    fn read_in<R>(
        &self,
        guard: Option<&Guard>,
        key: &[u8],
        lookup: bool,
        f: impl FnOnce(*const Entry) -> R,
    ) -> Result<Option<R>> {
        entry::check_key(key)?;
        let hash = self.hasher.hash(key);
        // The checks of `checked_read`, written out: routing this path through
        // it measured 28% slower through a pinned view (182-187 against 238-240
        // ns per get hit, alternating runs) and 6-8% per call.
        let exclusive = self.mode == Mode::Exclusive;
        if exclusive {
            self.check_no_writer()?;
        }
        let shard = self.shard(hash);
        shard.prefetch(hash);
        // One call site for `find`, so that it is inlined into every read.
        let found = {
            let own;
            let guard = match guard {
                Some(guard) => guard,
                None => {
                    own = epoch::pin();
                    &own
                }
            };
            match shard.table(guard).find(hash, key) {
                // SAFETY: the entry is live while `guard` is pinned.
                Some(entry) if !unsafe { self.expired(entry) } => {
                    if lookup {
                        // SAFETY: as above.
                        unsafe { self.note_hit(shard, hash, entry) };
                    }
                    Some(f(entry))
                }
                Some(_) => {
                    self.reclaim_expired(shard, hash, key);
                    None
                }
                None => None,
            }
        };
        if lookup {
            self.reads.record(found.is_some());
        }
        if exclusive {
            self.check_no_writer()?;
        }
        Ok(found)
    }

    /// Reports a hit on `entry` to its shard's policy (through the hit buffer).
    /// When the reader's stripe is full, a small shard's reader drains the
    /// buffer if it can and records the hit again, so that a single-threaded
    /// reader loses no hit; a large shard's reader drops it (see
    /// `cache::bounds::READER_DRAIN_MAX_ENTRIES`).
    ///
    /// # Safety
    /// `entry` is live (the caller is pinned).
    #[inline]
    unsafe fn note_hit(&self, shard: &Shard, hash: KeyHash, entry: *const Entry) {
        // SAFETY: forwarded contract.
        if unsafe { shard.note_hit(hash, entry) } == Pushed::Full
            && shard.bounds().is_some_and(|bounds| bounds.readers_drain)
        {
            self.drain_reads_now(shard);
            // SAFETY: forwarded contract.
            unsafe { shard.note_hit(hash, entry) };
        }
    }

    /// A reader whose hit buffer stripe is full replays the shard's hits into its
    /// policy, if it can take the shard's flag without waiting (concurrent mode
    /// only: in exclusive mode a reader never takes a flag, and the next write
    /// drains instead).
    #[cold]
    fn drain_reads_now(&self, shard: &Shard) {
        if self.mode != Mode::Concurrent {
            return;
        }
        if let Ok(held) = shard.flag.try_lock(thread_id::current()) {
            // SAFETY: `held` is the shard's own flag, which serialises its
            // writers in concurrent mode.
            unsafe { Writing::new(shard, &held) }.drain_reads_forced();
        }
    }

    /// A reader that found `key` expired removes it, if it can take the shard's
    /// flag without waiting (concurrent mode only; otherwise the sweep or the
    /// next write of the key does).
    #[cold]
    fn reclaim_expired(&self, shard: &Shard, hash: KeyHash, key: &[u8]) {
        if self.mode != Mode::Concurrent {
            return;
        }
        if let Ok(held) = shard.flag.try_lock(thread_id::current()) {
            let guard = epoch::pin();
            // SAFETY: as in `drain_reads_now`.
            unsafe { Writing::new(shard, &held) }.remove_if_expired(
                hash,
                key,
                &self.config.clock,
                &guard,
            );
        }
    }

    /// Whether `entry` has expired on the map's clock (read only for entries
    /// with a deadline).
    ///
    /// # Safety
    /// `entry` is live (the caller is pinned, or holds the flag).
    #[inline]
    unsafe fn expired(&self, entry: *const Entry) -> bool {
        // SAFETY: forwarded contract.
        unsafe { entry::expired(entry, || self.config.clock.now_nanos()) }
    }

    /// A read-only view that keeps this thread pinned, for a burst of lookups.
    ///
    /// Every plain read pins and unpins the epoch, and pinning is a full memory
    /// fence: it keeps back-to-back lookups from overlapping their cache misses.
    /// Lookups through a `Pinned` skip it. The price: while the view lives, no
    /// memory retired by writers (old values, old tables) can be freed, by any
    /// thread. Hold it for a loop of reads, not across blocking calls; call
    /// [`Pinned::repin`] now and then in a long loop.
    ///
    /// ```
    /// let map = mapcache::Map::new(Default::default())?;
    /// map.insert(b"a", b"1")?;
    /// let view = map.pin();
    /// let mut buf = Vec::new();
    /// for key in [&b"a"[..], b"b"] {
    ///     if view.get_into(key, &mut buf)? {
    ///         assert_eq!(buf, b"1");
    ///     }
    /// }
    /// # Ok::<(), mapcache::Error>(())
    /// ```
    pub fn pin(&self) -> Pinned<'_> {
        Pinned {
            map: self,
            guard: epoch::pin(),
        }
    }

    /// A copy of the value of `key`, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// Copies the value of `key` into `buf` (replacing its contents), reusing its
    /// allocation; `Ok(false)` when absent (then `buf` is left as it was).
    pub fn get_into(&self, key: &[u8], buf: &mut Vec<u8>) -> Result<bool> {
        self.get_with(key, |value| {
            buf.clear();
            buf.extend_from_slice(value);
        })
        .map(|found| found.is_some())
    }

    /// Lends the value of `key` to `f` without copying it; `f` runs while the
    /// epoch is pinned, so keep it short. `Ok(None)` when absent.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        // SAFETY: `read` calls the closure while pinned, with a live entry.
        self.read(key, true, |entry| {
            f(unsafe { entry::value_after_key(entry, key.len()) })
        })
    }

    /// Looks up many keys in one pass: calls `f(i, result)` for the `i`-th key,
    /// in order, lending the value (zero-copy, while pinned) or `None` when
    /// absent, or the error a single [`Map::get_with`] of that key would give.
    ///
    /// Faster per key than single gets: it pins once per [`BATCH_PIN_SPAN`] keys
    /// instead of once per key, and runs a software pipeline over a window of
    /// [`BATCH_LOOKAHEAD`] keys: a key's bucket is prefetched when it enters the
    /// window, its entry halfway through, and it is served when it leaves, so the
    /// cache misses of several keys overlap instead of following one another.
    pub fn get_many_with<'k, I>(&self, keys: I, mut f: impl FnMut(usize, Result<Option<&[u8]>>))
    where
        I: IntoIterator<Item = &'k [u8]>,
    {
        // A ring of the keys whose buckets are being fetched, oldest first: key
        // `i` sits at `i % RING`; `None` marks a key over the length limit.
        const RING: usize = BATCH_LOOKAHEAD + 1;
        let mut ring: [(&'k [u8], Option<KeyHash>); RING] = [(&[], None); RING];
        let mut guard = epoch::pin();
        let (mut hits, mut misses) = (0u64, 0u64);
        let mut serve = |guard: &mut Guard, i: usize, key: &[u8], hash: Option<KeyHash>| {
            if i % BATCH_PIN_SPAN == BATCH_PIN_SPAN - 1 {
                // Let the epoch move on during a long batch.
                guard.repin();
            }
            let Some(hash) = hash else {
                return f(i, Err(Error::KeyTooLong { len: key.len() }));
            };
            // In exclusive mode each key is a read checked before and after its
            // lookup, as a single get is.
            let shard = self.shard(hash);
            let found = match self.checked_read(|| {
                // SAFETY: a found entry is live while `guard` is pinned.
                shard
                    .table(guard)
                    .find(hash, key)
                    .filter(|&entry| !unsafe { self.expired(entry) })
            }) {
                Ok(found) => found,
                Err(error) => return f(i, Err(error)),
            };
            match found {
                Some(entry) => {
                    // SAFETY: the entry is live while `guard` is pinned.
                    unsafe { self.note_hit(shard, hash, entry) };
                    hits += 1;
                }
                None => misses += 1,
            }
            match found {
                // SAFETY: the entry is live while `guard` is pinned.
                Some(entry) => f(
                    i,
                    Ok(Some(unsafe { entry::value_after_key(entry, key.len()) })),
                ),
                None => f(i, Ok(None)),
            }
        };
        let mut count = 0;
        for key in keys {
            let hash = (key.len() <= crate::MAX_KEY_LEN).then(|| self.hasher.hash(key));
            if let Some(hash) = hash {
                self.shard(hash).prefetch(hash);
            }
            // Halfway through the window the bucket has arrived: start fetching
            // the entries its matching slots point to.
            if count >= BATCH_LOOKAHEAD / 2 {
                if let (_, Some(hash)) = ring[(count - BATCH_LOOKAHEAD / 2) % RING] {
                    self.shard(hash).table(&guard).prefetch_entry(hash);
                }
            }
            if count >= BATCH_LOOKAHEAD {
                let oldest = count - BATCH_LOOKAHEAD;
                let (key, hash) = ring[oldest % RING];
                serve(&mut guard, oldest, key, hash);
            }
            ring[count % RING] = (key, hash);
            count += 1;
        }
        for i in count.saturating_sub(BATCH_LOOKAHEAD)..count {
            let (key, hash) = ring[i % RING];
            serve(&mut guard, i, key, hash);
        }
        self.reads.record_many(hits, misses);
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
        self.read(key, false, |_| ()).map(|found| found.is_some())
    }

    /// The write path: takes the flag for `hash`'s shard, runs `op` pinned, then
    /// (flag released, unpinned) lets the shard relieve its garbage.
    #[inline]
    fn write<R>(
        &self,
        hash: KeyHash,
        op: impl FnOnce(&Writing<'_>, &Guard) -> Result<R>,
    ) -> Result<R> {
        self.write_then(hash, op, |result, _| result)
    }

    /// As [`Map::write`], and then `finish` with `op`'s result after the flag
    /// is released but before the pin is: for work on what `op` found (a copy
    /// of a present value) that must not hold up the shard's other writers.
    #[inline]
    fn write_then<R, T>(
        &self,
        hash: KeyHash,
        op: impl FnOnce(&Writing<'_>, &Guard) -> Result<R>,
        finish: impl FnOnce(R, &Guard) -> T,
    ) -> Result<T> {
        let shard = self.shard(hash);
        let result = {
            let held = self.lock_for_write(shard)?;
            let guard = epoch::pin();
            // SAFETY: `lock_for_write` took the flag that serialises this
            // shard's writers under the map's mode.
            let result = op(&unsafe { Writing::new(shard, &held) }, &guard);
            drop(held);
            result.map(|found| finish(found, &guard))
        };
        match shard.relieve_garbage() {
            Relief::NotNeeded | Relief::Pinned => {}
            Relief::Relieved => Self::count(&self.counters.relief_waits),
            Relief::GaveUp => {
                Self::count(&self.counters.relief_waits);
                Self::count(&self.counters.relief_give_ups);
            }
        }
        result
    }

    /// The write path of an operation that stores a new entry for `key` and
    /// `value`: makes the entry (a large one before the flag is taken, so that the
    /// critical section stays short; a small one from the shard's slab under the
    /// flag, see `Pending`), then runs `op` with it and `finish` as
    /// [`Map::write_then`] does.
    #[inline]
    fn write_entry<R, T>(
        &self,
        hash: KeyHash,
        key: &[u8],
        value: &[u8],
        trailer: Trailer,
        op: impl FnOnce(&Writing<'_>, OwnedEntry<'_>, &Guard) -> Result<R>,
        finish: impl FnOnce(R, &Guard) -> T,
    ) -> Result<T> {
        let shard = self.shard(hash);
        if let Some(bounds) = shard.bounds() {
            let bytes = bounds::charge(entry::footprint_for(key.len(), value.len(), trailer));
            if bounds.max_bytes > 0 && bytes > bounds.max_bytes {
                return Err(Error::TooLarge {
                    bytes,
                    limit: bounds.max_bytes,
                });
            }
        }
        let pending = Pending::new(shard.slab(), key, value, trailer)?;
        self.write_then(
            hash,
            |shard, guard| {
                let new = shard.make_entry(pending)?;
                op(shard, new, guard)
            },
            finish,
        )
    }

    /// Sets `key` to `value`; `Ok(true)` when it replaced a value. The entry
    /// gets the configured [`Config::default_ttl`].
    ///
    /// In a bounded map ([`Config::max_entries`], [`Config::max_bytes`]) a new
    /// key is not always kept. It enters the eviction policy's admission
    /// window (the shard's most recent new entries) and stays there at first,
    /// so a `get` right after finds it; when later inserts push it out of the
    /// window the policy keeps it or refuses it in favour of the entry it would
    /// displace, which [`Map::stats`]' `rejections` (and `evictions`) count:
    /// a rejection counted during an insert is, as a rule, of an earlier new
    /// key. The exception is an entry heavier than the whole window (which
    /// starts at 1% of the shard's share of the bounds and adapts, down to
    /// almost nothing: with `max_bytes`, ordinary entries can be): it meets
    /// the policy at once, may be refused, and a `get` right after then
    /// misses. Either way the insert returns `Ok(false)`: the value was stored,
    /// and perhaps evicted.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool> {
        self.insert_with_ttl(key, value, self.config.default_ttl)
    }

    /// The trailer of an entry written now with time-to-live `ttl` (zero: none).
    #[inline]
    fn trailer(&self, ttl: Duration) -> Trailer {
        Trailer {
            deadline: (!ttl.is_zero()).then(|| self.config.clock.deadline(ttl)),
            node: self.config.is_bounded(),
        }
    }

    /// Sets `key` to `value`, expiring `ttl` from now on the map's clock
    /// ([`Duration::ZERO`]: never, whatever the default); `Ok(true)` when it
    /// replaced a live value. An expired entry is never returned by any call.
    pub fn insert_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<bool> {
        entry::check_lengths(key, value)?;
        let hash = self.hasher.hash(key);
        self.write_entry(
            hash,
            key,
            value,
            self.trailer(ttl),
            |shard, new, guard| shard.upsert(&self.growth(), hash, key, new, guard),
            |replaced, _| replaced,
        )
    }

    /// Inserts `value` if `key` is absent (`Ok(None)`); otherwise changes nothing
    /// and returns a copy of the present value.
    pub fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        entry::check_lengths(key, value)?;
        let hash = self.hasher.hash(key);
        self.write_entry(
            hash,
            key,
            value,
            self.trailer(self.config.default_ttl),
            |shard, new, guard| shard.insert_if_absent(&self.growth(), hash, key, new, guard),
            // The copy (of up to 1 GiB) is made after the flag is released: the
            // entry stays live while this thread is pinned, even if another
            // writer replaces it meanwhile.
            // SAFETY: the entry was linked when found, under this pin.
            |present, _| present.map(|entry| unsafe { entry::value(entry) }.to_vec()),
        )
    }

    /// The value of `key`, inserting `f()` first if it is absent. `f` runs without
    /// any lock held (it may use the map); if another thread inserts the key
    /// meanwhile, its value wins and is returned.
    pub fn get_or_insert_with<V: AsRef<[u8]>>(
        &self,
        key: &[u8],
        f: impl FnOnce() -> V,
    ) -> Result<Vec<u8>> {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let value = f();
        Ok(self
            .insert_if_absent(key, value.as_ref())?
            .unwrap_or_else(|| value.as_ref().to_vec()))
    }

    /// The value of `key`; on a miss, `load()` computes it, and it is stored
    /// (with the default TTL) and returned.
    ///
    /// Concurrent misses on one key run one load: the first caller runs `load`,
    /// the others wait for it and get the same value, or the same error
    /// ([`Error::Load`]), and an error caches nothing (the next call loads
    /// again). `load` runs with no lock or write flag held, so it may read and
    /// write the map, this key included; a `get_or_load` of this same key from
    /// inside `load` (on its thread) fails with [`Error::InvalidArgument`]
    /// rather than wait for itself, and loaders that wait for each other's
    /// keys on different threads (K1's loader asking for K2 while K2's asks
    /// for K1) deadlock, as any two locks taken in opposite orders would. If
    /// another write stores the key while `load` runs,
    /// that value is kept and returned instead of the loaded one. A panicking
    /// loader's panic continues in its own caller once the waiters have been
    /// given an error that says so ([`LoadError::is_panic`]).
    ///
    /// ```
    /// let map = mapcache::Map::new(Default::default())?;
    /// let v = map.get_or_load(b"user:1", || Ok::<_, std::io::Error>(b"alice".to_vec()))?;
    /// assert_eq!(v, b"alice");
    /// let failed = map.get_or_load(b"user:2", || Err::<Vec<u8>, _>("database down"));
    /// assert!(matches!(failed, Err(mapcache::Error::Load(_))));
    /// assert_eq!(map.stats().load_failures, 1);
    /// # Ok::<(), mapcache::Error>(())
    /// ```
    pub fn get_or_load<V, E>(
        &self,
        key: &[u8],
        load: impl FnOnce() -> std::result::Result<V, E>,
    ) -> Result<Vec<u8>>
    where
        V: AsRef<[u8]>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let hash = self.hasher.hash(key);
        let mut leader = match self.flights.join(self.hasher.shard(hash), key) {
            Role::Waited(outcome) => return outcome,
            Role::Leader(leader) => leader,
        };
        // A load that finished between this caller's miss and its joining
        // stored its value: serve it instead of loading again.
        let present = self.read(key, false, |entry| {
            // SAFETY: `read` lends a live, unexpired entry while pinned.
            unsafe { entry::value(entry) }.to_vec()
        });
        match present {
            Ok(Some(value)) => {
                leader.finish(&Ok(value.clone()));
                return Ok(value);
            }
            Ok(None) => {}
            // An exclusive-mode misuse: the waiters get it too, not a panic report.
            Err(error) => {
                leader.finish(&Err(error.clone()));
                return Err(error);
            }
        }
        let started = Instant::now();
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load));
        let took = started.elapsed();
        let outcome = match loaded {
            Ok(Ok(value)) => {
                self.loads.record(true, took);
                let value = value.as_ref();
                self.insert_if_absent(key, value)
                    .map(|present| present.unwrap_or_else(|| value.to_vec()))
            }
            Ok(Err(error)) => {
                self.loads.record(false, took);
                Err(Error::Load(LoadError::new(error)))
            }
            Err(payload) => {
                self.loads.record(false, took);
                leader.panicked(&*payload);
                drop(leader);
                std::panic::resume_unwind(payload);
            }
        };
        leader.finish(&outcome);
        outcome
    }

    /// Callers of [`Map::get_or_load`] waiting for the load of `key` now (0 when
    /// none runs): for tests that must know every caller has joined a load
    /// before letting its loader return.
    #[doc(hidden)]
    pub fn debug_load_waiters(&self, key: &[u8]) -> usize {
        let hash = self.hasher.hash(key);
        self.flights.waiters(self.hasher.shard(hash), key)
    }

    /// Replaces the value of `key` with `new` if it equals `expected`.
    /// `Some(true)`: swapped; `Some(false)`: the value differed; `None`: absent
    /// (or expired). The new value gets the configured [`Config::default_ttl`],
    /// as every write but [`Map::insert_with_ttl`] does.
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        expected: &[u8],
        new: &[u8],
    ) -> Result<Option<bool>> {
        entry::check_lengths(key, new)?;
        let hash = self.hasher.hash(key);
        self.write_entry(
            hash,
            key,
            new,
            self.trailer(self.config.default_ttl),
            |shard, new, guard| {
                Ok(shard.compare_and_swap(&self.growth(), hash, key, expected, new, guard))
            },
            |swapped, _| swapped,
        )
    }

    /// Removes `key`; `Ok(true)` when it was present.
    pub fn remove(&self, key: &[u8]) -> Result<bool> {
        entry::check_key(key)?;
        let hash = self.hasher.hash(key);
        self.write(hash, |shard, guard| {
            Ok(shard.remove(&self.growth(), hash, key, guard))
        })
    }

    /// Removes every entry. Shard by shard: a concurrent reader may see some
    /// shards cleared and others not yet.
    pub fn clear(&self) -> Result<()> {
        // Each pin is taken after the flag it works under: a thread waiting for
        // a flag must not hold the epoch back meanwhile.
        match self.mode {
            Mode::Exclusive => {
                let me = thread_id::current();
                let held = self
                    .exclusive_flag
                    .try_lock(me)
                    .map_err(|holder| self.misuse(Misuse::Write, holder, me))?;
                let guard = epoch::pin();
                for shard in self.shards.iter() {
                    // SAFETY: in exclusive mode the map's flag serialises every
                    // shard's writers.
                    unsafe { Writing::new(shard, &held) }.clear(self.initial_log2, &guard)?;
                }
            }
            Mode::Concurrent => {
                for shard in self.shards.iter() {
                    let held = shard.lock_flag(thread_id::current());
                    let guard = epoch::pin();
                    // SAFETY: in concurrent mode the shard's own flag serialises
                    // its writers.
                    unsafe { Writing::new(shard, &held) }.clear(self.initial_log2, &guard)?;
                }
            }
        }
        Ok(())
    }

    /// Entries in the map (a sum over shards, exact when no write is in flight).
    ///
    /// It never checks exclusive mode's contract; [`Map::try_len`] does.
    pub fn len(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }

    /// As [`Map::len`], and in [`Mode::Exclusive`] a read like any other: it fails
    /// with [`Error::ConcurrentReadWrite`] when it sees another thread's write in
    /// flight (the write flag is checked before and after the count).
    pub fn try_len(&self) -> Result<usize> {
        self.checked_read(|| self.len())
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An iterator over copies of the entries, weakly consistent: a key present
    /// for the whole iteration is yielded exactly once, no key is yielded twice
    /// (even across grows and clears), and keys inserted or removed meanwhile may
    /// or may not appear. No lock or pin is held between items.
    ///
    /// Items are `Err` only in [`Mode::Exclusive`], when a step of the iteration
    /// saw another thread's write in flight ([`Error::ConcurrentReadWrite`]); the
    /// entries of that step are not yielded, and the iterator ends after the error.
    pub fn iter(&self) -> Iter<'_> {
        Iter::new(self)
    }

    /// Visits the next batch of entries (one bucket chain's worth) at `cursor`,
    /// lending each key and value to `f` while pinned, and advances the cursor.
    /// Returns `Ok(false)`, without calling `f`, once the cursor has passed the
    /// end. The building block of [`Map::iter`], for iterators that must not
    /// borrow the map (the C cursor).
    ///
    /// In [`Mode::Exclusive`] each step is a read: it fails with
    /// [`Error::ConcurrentReadWrite`] when another thread's write is in flight
    /// before or after it. When the check before the step fails, nothing is
    /// lent and the cursor stays (the next call retries the step); when the
    /// check after it fails, the cursor has moved past the step, and what `f`
    /// was lent during it overlapped the write: discard it.
    pub fn scan(&self, cursor: &mut Cursor, f: impl FnMut(&[u8], &[u8])) -> Result<bool> {
        self.checked_read(|| cursor.advance(&self.shards, &self.hasher, &self.config.clock, f))
    }

    /// Runs `read`, and in exclusive mode checks before and after it that no other
    /// thread's write is in flight.
    #[inline]
    pub(crate) fn checked_read<R>(&self, read: impl FnOnce() -> R) -> Result<R> {
        let exclusive = self.mode == Mode::Exclusive;
        if exclusive {
            self.check_no_writer()?;
        }
        let result = read();
        if exclusive {
            self.check_no_writer()?;
        }
        Ok(result)
    }

    #[cold]
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The cache's counters: lookups, writes, evictions, expirations, loads
    /// (see [`Stats`]). Always on; cheap to read (a sum over shards and stripes).
    pub fn stats(&self) -> Stats {
        let load = |counter: &AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        let (hits, misses) = self.reads.sum();
        let mut stats = Stats {
            hits,
            misses,
            grows: load(&self.counters.grows),
            misuses: load(&self.counters.misuses),
            ..Stats::default()
        };
        for shard in self.shards.iter() {
            shard.counters().add_to(&mut stats);
            stats.entries += shard.len();
            stats.bytes += shard.charged_bytes();
        }
        self.loads.add_to(&mut stats);
        stats
    }

    /// The structure of the tables and the events so far.
    pub fn table_stats(&self) -> TableStats {
        let guard = epoch::pin();
        let load = |counter: &AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        let mut stats = TableStats {
            shards: self.shards.len(),
            grows: load(&self.counters.grows),
            rebuilds: load(&self.counters.rebuilds),
            misuses: load(&self.counters.misuses),
            relief_waits: load(&self.counters.relief_waits),
            relief_give_ups: load(&self.counters.relief_give_ups),
            ..TableStats::default()
        };
        for shard in self.shards.iter() {
            let table = shard.table(&guard);
            stats.entries += shard.len();
            stats.buckets += table.buckets().len();
            stats.overflow_buckets += table.overflow_count();
        }
        stats
    }

    /// Takes and holds the write flag that a write of `key` would take, until the
    /// returned guard is dropped: a debugging aid that reproduces an overlapping
    /// write deterministically (tests of misuse reports use it). In exclusive mode
    /// it fails like a write would if another thread holds the flag.
    #[doc(hidden)]
    pub fn debug_hold_write_flag(&self, key: &[u8]) -> Result<FlagGuard<'_>> {
        let hash = self.hasher.hash(key);
        self.lock_for_write(self.shard(hash))
    }
}

/// What the snapshot module (`src/snapshot/`, which adds its own `impl Map`)
/// needs of the map's parts.
impl Map {
    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub(crate) fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Counts a write's wait for memory reclamation, as the write path does.
    pub(crate) fn count_relief(&self, relief: Relief) {
        match relief {
            Relief::NotNeeded | Relief::Pinned => {}
            Relief::Relieved => Self::count(&self.counters.relief_waits),
            Relief::GaveUp => {
                Self::count(&self.counters.relief_waits);
                Self::count(&self.counters.relief_give_ups);
            }
        }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // Each shard frees its table, entries and garbage (its `Drop`); the
        // shards are dropped first, so that what follows can collect after them.
        drop(std::mem::take(&mut self.shards));
        // The shards freed their garbage themselves; what the epoch still holds
        // for them is small (deferred closures naming their memory shells, in
        // sealed bags). Pass this thread's bag on and collect a few rounds, so
        // that, when no other thread is pinned, those go back now too.
        epoch::collect();
    }
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("len", &self.len())
            .field("shards", &self.shards.len())
            .field("mode", &self.mode)
            .field("engine", &self.engine.name())
            .finish()
    }
}

/// A read-only view of a [`Map`] that keeps the calling thread pinned (see
/// [`Map::pin`]). Not `Send`: a pin belongs to its thread.
pub struct Pinned<'m> {
    map: &'m Map,
    guard: Guard,
}

impl Pinned<'_> {
    /// As [`Map::get_with`].
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        // SAFETY: `read_in` calls the closure under `self.guard`, with a live entry.
        self.map.read_in(Some(&self.guard), key, true, |entry| {
            f(unsafe { entry::value_after_key(entry, key.len()) })
        })
    }

    /// As [`Map::get_into`].
    pub fn get_into(&self, key: &[u8], buf: &mut Vec<u8>) -> Result<bool> {
        self.get_with(key, |value| {
            buf.clear();
            buf.extend_from_slice(value);
        })
        .map(|found| found.is_some())
    }

    /// As [`Map::get`].
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// As [`Map::contains_key`].
    pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
        self.map
            .read_in(Some(&self.guard), key, false, |_| ())
            .map(|found| found.is_some())
    }

    /// Lets the epoch move on (cheaply: no fence), so that memory retired since
    /// the view was made can be freed. Call it every few thousand lookups.
    pub fn repin(&mut self) {
        self.guard.repin();
    }
}
