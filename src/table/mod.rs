//! The Go-style table of one shard: buckets of eight slots with tophash bytes,
//! entries in single immutable allocations, overflow chains, and the rehash
//! engines that rebuild a table off to the side when it grows.

pub(crate) mod bucket;
pub(crate) mod entry;
pub(crate) mod reclaim;
pub mod rehash;
pub(crate) mod retire;
pub(crate) mod slab;
pub(crate) mod sums;
#[allow(clippy::module_inception)]
pub(crate) mod table;
