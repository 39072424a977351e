//! How a map is set up: sizing, sharding, the concurrency contract, and what to do
//! when that contract is broken.

use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};

/// With [`Config::shards`] = 0, a bounded cache gets at most one shard per this
/// many entries of capacity: each shard runs its own eviction policy over its
/// share, and a policy over a few dozen entries is a worse cache (a 250-entry
/// cache split into 8 shards of 31 loses hit ratio on every trace we replay).
pub const MIN_ENTRIES_PER_SHARD: usize = 4096;

/// The most shards a map may have.
pub const MAX_SHARDS: usize = 1 << 16;

/// The largest [`Config::initial_capacity`]: 2^30 entries. Sizing a map up front
/// for more is refused with [`Error::InvalidConfig`] rather than attempted (a
/// table for 2^30 entries already reserves about 30 GB of address space; a
/// shard's table of 2 MiB or more is committed as its pages are first touched,
/// and keys land in random buckets, so it is mostly resident after a small
/// fraction of the capacity; smaller shard tables, as with many shards, are
/// committed at creation, 17 to 35 bytes per entry of capacity).
/// A map still grows past it by inserting.
pub const MAX_INITIAL_CAPACITY: usize = 1 << 30;

/// The concurrency contract a map enforces on its writers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Any number of threads may read and write at once. A writer waits for the
    /// other writers of its shard (spinning briefly, then yielding).
    #[default]
    Concurrent,
    /// Go's contract: the host promises that writes never overlap each other or
    /// reads. A writer never waits: a write that overlaps another write, on any
    /// key, fails with [`Error::ConcurrentWrite`] without touching the map, and a
    /// read that is seen to overlap a write fails with
    /// [`Error::ConcurrentReadWrite`]. Both name the two threads involved.
    ///
    /// Overlap is judged by the write flag, which a write holds from finding
    /// its key to publishing the change (a table grow included); the key and
    /// value of an entry over 256 bytes are copied into it before the flag is
    /// taken (smaller ones, from the shard's slab, under it). Two writes
    /// whose flag windows overlap always collide; a write made while another
    /// is still copying a large value in is not seen, so two threads racing
    /// on large values usually go unreported. No report proves nothing.
    Exclusive,
}

/// What an exclusive-mode map does when it detects a broken contract.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MisusePolicy {
    /// Return the error to the caller (the map stays intact).
    #[default]
    Error,
    /// Print the report to stderr and abort the process, as Go does.
    Abort,
}

/// Which rehash engine rebuilds a table when it grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineChoice {
    /// The parallel CPU engine for large tables, the single-threaded one below.
    #[default]
    Auto,
    /// Always the single-threaded reference engine.
    Single,
    /// Always the parallel CPU engine.
    Parallel,
}

/// Whether a map rebuilds its large tables on the GPU (see `docs/ARCHITECTURE.md`,
/// "The GPU engine"). The GPU engine is a plugin, `libmapcache_cuda.so`, loaded at
/// run time with the CUDA driver; [`crate::Map::gpu_status`] says whether it is
/// active and, if not, why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuMode {
    /// Rebuild tables of at least [`Config::gpu_threshold`] entries on the GPU
    /// when the driver, a device and the plugin are there; otherwise, and after
    /// any GPU failure, on the CPU (the table is the same either way).
    #[default]
    Auto,
    /// Never use the GPU (nothing is loaded).
    Off,
    /// Use the GPU for tables of at least the threshold, or fail:
    /// [`crate::Map::new`] returns [`Error::Gpu`] when the engine cannot be
    /// loaded, and a write whose rebuild fails on the GPU returns it (the map is
    /// unchanged).
    Force,
}

/// The default [`Config::gpu_threshold`]: tables sized for at least this many
/// entries are rebuilt on the GPU. Not yet measured (see `docs/bench.md`;
/// `cuda/gpu-check.sh` prints the crossover that should set it).
pub const DEFAULT_GPU_THRESHOLD: usize = 1 << 22;

/// A map's configuration. Start from `Config::default()` and set what you need:
///
/// ```
/// let map = mapcache::Map::new(mapcache::Config {
///     initial_capacity: 100_000,
///     mode: mapcache::Mode::Exclusive,
///     ..Default::default()
/// })?;
/// # Ok::<(), mapcache::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Entries to size the tables for up front (0: start small and grow); at most
    /// [`MAX_INITIAL_CAPACITY`]. A bounded cache sizes them for no more than
    /// its bounds can hold: `max_entries`, and `max_bytes` over the smallest
    /// entry's charge.
    pub initial_capacity: usize,
    /// Number of shards: 0 picks one from the core count; otherwise a power of two
    /// up to [`MAX_SHARDS`]. Writers of different shards never wait for each other.
    pub shards: usize,
    /// The concurrency contract (see [`Mode`]).
    pub mode: Mode,
    /// What exclusive mode does on misuse (see [`MisusePolicy`]).
    pub misuse_policy: MisusePolicy,
    /// The rehash engine (see [`EngineChoice`]).
    pub engine: EngineChoice,
    /// Whether large rebuilds run on the GPU (see [`GpuMode`]).
    pub gpu: GpuMode,
    /// The smallest table, in entries it is sized for (6.5 per bucket, the load
    /// factor), that [`GpuMode::Auto`] and [`GpuMode::Force`] rebuild on the GPU;
    /// 0 means [`DEFAULT_GPU_THRESHOLD`].
    pub gpu_threshold: usize,
    /// Where the GPU plugin is (a relative path is the working directory's when
    /// the map is made); `None`: `libmapcache_cuda.so` in the directory of
    /// `libmapcache.so` (or of the executable the core is linked into).
    pub gpu_plugin: Option<std::path::PathBuf>,
    /// The hash seed; `None` draws a random one, so that no caller can predict
    /// which keys share a bucket. Set it only for reproducible tests.
    pub seed: Option<u64>,
    /// Most entries the cache holds (0: no bound on the count). Past it, the
    /// eviction policy chooses what to drop. Split over the shards (which the
    /// automatic shard count keeps at [`MIN_ENTRIES_PER_SHARD`] or more each);
    /// the shares add up to exactly this.
    pub max_entries: usize,
    /// Most bytes the entries may occupy (0: no bound), each entry charged its
    /// full footprint: its memory block (rounding included), its share of the
    /// bucket slots and its policy metadata (see `docs/ARCHITECTURE.md`). The
    /// cache never holds more than this plus one entry per shard, and refuses an
    /// entry larger than a shard's share with [`Error::TooLarge`].
    pub max_bytes: usize,
    /// Time-to-live of entries written without one of their own
    /// ([`crate::Map::insert`] and the other writes; [`crate::Map::insert_with_ttl`]
    /// sets its own). Zero: they never expire. A load ([`crate::Map::load`],
    /// [`crate::Map::load_into`]) gives each entry the expiry its record was
    /// saved with instead, whatever this is: a record saved without one (an
    /// entry that was to live for ever) never expires after the load.
    pub default_ttl: Duration,
    /// The clock TTLs are measured against (the system's monotonic clock by
    /// default; [`Clock::manual`] for tests).
    pub clock: Clock,
}

impl Config {
    /// What a bounded cache charges its smallest entry (with a deadline when
    /// `default_ttl` gives every entry one).
    fn smallest_charge(&self) -> usize {
        crate::cache::bounds::smallest_charge(!self.default_ttl.is_zero())
    }

    /// The entries the tables are sized for up front: `initial_capacity`,
    /// but no more than the bounds can hold (`max_entries`; `max_bytes` over
    /// the smallest entry's charge). A cache that can hold ten entries had
    /// reserved tables for 2^30 when asked to.
    pub(crate) fn sized_for(&self) -> usize {
        let with_deadline = !self.default_ttl.is_zero();
        crate::cache::bounds::most_entries(self.max_entries, self.max_bytes, with_deadline)
            .map_or(self.initial_capacity, |most| {
                self.initial_capacity.min(most)
            })
    }

    /// Checks every field: [`Error::InvalidConfig`] naming the first one out of
    /// range.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.initial_capacity > MAX_INITIAL_CAPACITY {
            return Err(Error::InvalidConfig(format!(
                "initial_capacity = {} is larger than MAX_INITIAL_CAPACITY ({MAX_INITIAL_CAPACITY})",
                self.initial_capacity
            )));
        }
        let shards = self.resolved_shards()?;
        if self.max_entries > 0 && self.max_entries < shards {
            return Err(Error::InvalidConfig(format!(
                "max_entries = {} is smaller than the shard count ({shards}): a shard could hold nothing; \
                 use fewer shards (or 0, automatic)",
                self.max_entries
            )));
        }
        if self.max_bytes > 0 {
            let share = self.max_bytes / shards;
            let smallest = self.smallest_charge();
            if share < smallest {
                return Err(Error::InvalidConfig(format!(
                    "max_bytes = {} gives each of the {shards} shards {share} bytes, less than \
                     the smallest entry's charge ({smallest} bytes): no shard could hold anything",
                    self.max_bytes
                )));
            }
        }
        Ok(())
    }

    /// Whether the cache has a bound (entries or bytes), and so an eviction policy.
    pub(crate) fn is_bounded(&self) -> bool {
        self.max_entries > 0 || self.max_bytes > 0
    }

    /// Shard `index`'s share of `total` over `shards` shards: the shares add up
    /// to `total` exactly (the first `total % shards` shards get one more).
    pub(crate) fn share(total: usize, shards: usize, index: usize) -> usize {
        total / shards + usize::from(index < total % shards)
    }

    /// The shard count this config resolves to.
    pub(crate) fn resolved_shards(&self) -> Result<usize> {
        match self.shards {
            0 => {
                let cores = cores();
                let auto = (cores * 4).next_power_of_two().min(256);
                if !self.is_bounded() {
                    return Ok(auto);
                }
                // A bounded cache: no shard smaller than MIN_ENTRIES_PER_SHARD.
                let by_entries = match self.max_entries {
                    0 => usize::MAX,
                    n => n,
                };
                let by_bytes = match self.max_bytes {
                    0 => usize::MAX,
                    // The bytes a typical entry is charged (an estimate
                    // shared with the readers' draining, see there).
                    n => n / crate::cache::bounds::TYPICAL_CHARGE,
                };
                let capacity = by_entries.min(by_bytes);
                let fit = (capacity / MIN_ENTRIES_PER_SHARD).max(1);
                // The largest power of two not above `fit`.
                let fit = 1usize << (usize::BITS - 1 - fit.leading_zeros());
                Ok(auto.min(fit))
            }
            n if n.is_power_of_two() && n <= MAX_SHARDS => Ok(n),
            n => Err(Error::InvalidConfig(format!(
                "shards must be 0 (automatic) or a power of two up to {MAX_SHARDS}, not {n}"
            ))),
        }
    }
}

/// The cores this process may use, asked once: `available_parallelism` reads
/// cgroup files (about 7 system calls), which made a default `Map::new` cost
/// 48-90 us against under 1 us for one shard and the single engine.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::bounds::{Bounds, READER_DRAIN_MAX_ENTRIES, TYPICAL_CHARGE};
    use crate::table::table::{log2_for, MAX_LOG2};

    /// A byte bound is turned into a number of entries with one estimate,
    /// TYPICAL_CHARGE, by both places that do it: the shard count (one shard
    /// per MIN_ENTRIES_PER_SHARD entries) and the readers' draining (up to
    /// READER_DRAIN_MAX_ENTRIES entries a shard). Each threshold falls exactly
    /// where that estimate puts it (the shard count divided by 96 bytes once,
    /// the draining by 128).
    #[test]
    fn a_byte_bound_counts_its_entries_with_one_estimate() {
        let shards = |max_bytes| {
            Config {
                max_bytes,
                ..Config::default()
            }
            .resolved_shards()
            .unwrap()
        };
        let two = 2 * MIN_ENTRIES_PER_SHARD * TYPICAL_CHARGE;
        assert_eq!(shards(two - 1), 1);
        let auto = (cores() * 4).next_power_of_two().min(256);
        assert_eq!(shards(two), auto.min(2));
        let drains = |max_bytes| Bounds::new(0, max_bytes, 1).readers_drain;
        assert!(drains(READER_DRAIN_MAX_ENTRIES * TYPICAL_CHARGE));
        assert!(!drains((READER_DRAIN_MAX_ENTRIES + 1) * TYPICAL_CHARGE));
        assert_eq!(TYPICAL_CHARGE, crate::cache::bounds::charge(64));
    }

    #[test]
    fn a_bounded_cache_sizes_its_tables_for_no_more_than_its_bounds_hold() {
        let ask = |max_entries, max_bytes| Config {
            initial_capacity: MAX_INITIAL_CAPACITY,
            shards: 1,
            max_entries,
            max_bytes,
            ..Config::default()
        };
        assert_eq!(ask(0, 0).sized_for(), MAX_INITIAL_CAPACITY);
        assert_eq!(ask(10, 0).sized_for(), 10);
        let smallest = ask(0, 9_000).smallest_charge();
        assert_eq!(ask(0, 9_000).sized_for(), 9_000 / smallest);
        assert_eq!(ask(5, 9_000).sized_for(), 5);
        // The map itself: a table of a few buckets, not 2^27 (28 GiB).
        let map = crate::Map::new(ask(10, 0)).unwrap();
        let guard = crate::sync::epoch::pin();
        assert!(map.shards()[0].table(&guard).buckets().len() <= 4);
    }

    #[test]
    fn initial_capacity_has_a_limit_named_in_the_error() {
        let at_limit = Config {
            initial_capacity: MAX_INITIAL_CAPACITY,
            shards: 1,
            ..Config::default()
        };
        assert!(at_limit.validate().is_ok());
        for capacity in [MAX_INITIAL_CAPACITY + 1, 1 << 62, usize::MAX] {
            let config = Config {
                initial_capacity: capacity,
                ..Config::default()
            };
            let Err(Error::InvalidConfig(message)) = config.validate() else {
                panic!("initial_capacity {capacity} was accepted");
            };
            assert_eq!(
                message,
                format!(
                    "initial_capacity = {capacity} is larger than MAX_INITIAL_CAPACITY (1073741824)"
                )
            );
        }
        let bad_shards = Config {
            shards: 3,
            ..Config::default()
        };
        assert!(matches!(
            bad_shards.validate(),
            Err(Error::InvalidConfig(m)) if m.contains("shards")
        ));
    }

    #[test]
    fn the_limit_is_below_the_largest_table() {
        // With one shard the whole capacity lands in one table: its size must be
        // what the capacity needs, not the silent cap at MAX_LOG2.
        assert!(log2_for(MAX_INITIAL_CAPACITY) < MAX_LOG2);
    }
}
