//! # mapcache
//!
//! An embedded, in-process key/value cache engine: a Go-style bucketed hash table
//! (8-slot buckets, tophash bytes, overflow chains), sharded, with lock-free reads
//! through epoch reclamation (crossbeam-epoch), writers serialised per shard by a
//! write flag, and Go's concurrent-misuse detection made exact: in
//! [`Mode::Exclusive`] an overlapping write fails with an error naming both
//! threads instead of crashing the process.
//!
//! A map becomes a cache with a bound ([`Config::max_entries`],
//! [`Config::max_bytes`]): past it, an adaptive W-TinyLFU policy chooses what to
//! evict. Entries can expire ([`Config::default_ttl`], [`Map::insert_with_ttl`],
//! measured on [`Config::clock`]), misses can be filled by a loader that runs
//! once per key however many threads miss at once ([`Map::get_or_load`]), and
//! [`Map::stats`] counts hits, misses, evictions, expirations and loads, always.
//!
//! ```
//! use std::time::Duration;
//! let cache = mapcache::Map::new(mapcache::Config {
//!     max_entries: 10_000,
//!     default_ttl: Duration::from_secs(300),
//!     ..Default::default()
//! })?;
//! let user = cache.get_or_load(b"user:42", || {
//!     // Runs once, however many threads miss on user:42 at the same time.
//!     Ok::<_, std::io::Error>(b"{\"name\": \"Ada\"}".to_vec())
//! })?;
//! assert_eq!(cache.get(b"user:42")?.as_deref(), Some(&user[..]));
//! let stats = cache.stats();
//! assert_eq!((stats.misses, stats.hits, stats.load_successes), (1, 1, 1));
//! # Ok::<(), mapcache::Error>(())
//! ```
//!
//! Layers, bottom up:
//! - `table`: one shard's table: [`entry`](table::entry) (one block holding
//!   header, key and value), [`slab`](table::slab) (the blocks of small entries),
//!   [`retire`](table::retire) (unlinked entries on their way to the epoch),
//!   [`bucket`](table::bucket), the table operations, and the rehash engines that
//!   rebuild a table off to the side.
//! - `sync`: the write flag, thread identity and labels, the loom seam.
//! - `cache`: what makes the map a cache, kept apart from the table: bounds and
//!   charges, the eviction policy (a pure data structure over node indexes), the
//!   readers' hit buffer, the loader's singleflight, the statistics.
//! - `shard`: a table behind an epoch pointer, with its flag and count; growth;
//!   eviction and expiry under the flag.
//! - [`Map`]: hashing, the read path, the write path under a [`Mode`].
//!
//! See `docs/ARCHITECTURE.md` for the design and the measurements behind it.

#![warn(missing_docs)]

mod cache;
mod clock;
mod config;
mod error;
pub mod ffi;
#[doc(hidden)]
pub mod gpu;
mod hash;
mod iter;
mod map;
mod shard;
mod snapshot;
mod sync;
mod table;

pub use cache::load::LoadError;
pub use cache::stats::Stats;
pub use clock::Clock;
pub use config::{
    Config, EngineChoice, GpuMode, MisusePolicy, Mode, DEFAULT_GPU_THRESHOLD, MAX_INITIAL_CAPACITY,
    MAX_SHARDS, MIN_ENTRIES_PER_SHARD,
};
pub use error::{Collision, Error, Result};
pub use gpu::GpuStatus;
pub use iter::{Cursor, Iter};
pub use map::{Map, Pinned, TableStats, BATCH_LOOKAHEAD, BATCH_PIN_SPAN};
pub use snapshot::{LoadReport, SaveReport};
pub use sync::thread_id::{clear_thread_label, set_thread_label, thread_label};
#[doc(hidden)]
pub use sync::write_flag::FlagGuard;

/// Bytes of the bucket arrays that all maps of the process hold as mappings of
/// their own (arrays of 2 MiB or more are mapped from the kernel, not taken from
/// the global allocator): for memory measurements made with a counting global
/// allocator, which does not see them.
#[doc(hidden)]
pub fn mapped_table_bytes() -> usize {
    table::table::MAPPED_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs a few rounds of the library's epoch collection on this thread, so that
/// garbage every pin has moved past (old tables, old values) is freed now: for
/// measurements of steady-state memory. Maps never need it.
#[doc(hidden)]
pub fn collect_garbage() {
    sync::epoch::collect();
}

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 65_535;
/// The longest value accepted, in bytes (1 GiB).
pub const MAX_VALUE_LEN: usize = 1 << 30;
