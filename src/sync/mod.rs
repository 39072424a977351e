//! Concurrency building blocks: the atomics the table is made of (swapped for
//! loom's under `--cfg loom`), the library's private epoch collector, per-thread
//! identity and labels, the write flag that serialises the writers of a shard
//! (or of the whole map in exclusive mode), and the scoped worker threads of the
//! bulk jobs.

pub(crate) mod atomic;
pub(crate) mod epoch;
pub(crate) mod scoped;
pub(crate) mod thread_id;
pub(crate) mod write_flag;
