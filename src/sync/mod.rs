//! Concurrency building blocks: the atomics the table is made of (swapped for
//! loom's under `--cfg loom`), the library's private epoch collector, per-thread
//! identity and labels, and the write flag that serialises the writers of a shard
//! (or of the whole map in exclusive mode).

pub(crate) mod atomic;
pub(crate) mod epoch;
pub(crate) mod thread_id;
pub(crate) mod write_flag;
