//! What makes the map a cache, kept apart from the table (as Caffeine and otter
//! keep their policies apart from their hash tables):
//! - [`bounds`]: a bounded shard's budgets, policy and hit buffer, and what an
//!   entry is charged;
//! - [`policy`]: the eviction policy each shard runs (adaptive W-TinyLFU), a
//!   pure data structure over node indexes;
//! - [`read_buffer`]: readers' hits on their way to the policy;
//! - [`load`]: `get_or_load`'s one load per key at a time (singleflight);
//! - [`stats`]: the always-on counters and where each one lives.

pub(crate) mod bounds;
pub(crate) mod load;
pub(crate) mod policy;
pub(crate) mod read_buffer;
pub(crate) mod stats;
