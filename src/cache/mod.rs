//! What makes the map a cache, kept apart from the table (as Caffeine and otter
//! keep their policies apart from their hash tables):
//! - [`load`]: `get_or_load`'s one load per key at a time (singleflight);
//! - [`policy`]: the eviction policy each shard runs (adaptive W-TinyLFU);
//! - [`stats`]: the always-on counters and where each one lives.

pub(crate) mod load;
pub(crate) mod policy;
pub(crate) mod stats;
