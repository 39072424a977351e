//! The C ABI: the `extern "C"` surface of `libmapcache.so` / `libmapcache.a`.
//!
//! `include/mapcache.h` is generated from these files by cbindgen (`make header`,
//! checked by `tests/header.rs`); the doc comments here are the header's, so they
//! state ownership, thread-safety and every status each function returns.
//! docs/C_API.md gives the overview.
//!
//! Every entry point:
//! - runs inside `boundary::run`, so no panic crosses into the host (it becomes
//!   `MAPCACHE_E_INTERNAL`), and every error status leaves a message for
//!   `mapcache_last_error()`;
//! - checks each pointer and length before making a reference of it (`args`);
//! - resolves handles through never-freed arenas (`arena`), by decoding the
//!   pointer value (slot and generation), so a freed (however long ago) or
//!   foreign handle is rejected without undefined behaviour.
//!
//! One idea per file: `config`, `handle` (new/free), `ops` (single-key calls),
//! `ttl` (a put with its own TTL, the manual clock), `load` (get-or-load and
//! the loader's result), `stats` (counters), `snapshot` (save and load),
//! `batch`, `iter`, `label`, `last_error`, `status` (codes), `version`, `debug`
//! (test hooks, feature `debug-hooks`, on by default); and, private, `arena`
//! (handle memory), `args` (argument checks), `boundary` (panics, failures),
//! `host_struct` (out-structs versioned by their `struct_size`).

// The C names (`mapcache_t`, `mapcache_status`, ...) are the contract.
#![allow(non_camel_case_types)]

// The order of the public modules is the order of the header's sections:
// cbindgen emits items in the order it parses them (`sort_by = "None"`). Each
// section is its own group, so that rustfmt does not sort them by name.

// Lifecycle.
pub mod config;
pub mod handle;

// Single-key calls.
pub mod ops;

// The cache calls, at the end of the single-key section: a put with its own
// TTL and the manual clock,
pub mod ttl;

// the load of a missing key,
pub mod load;

// and the counters.
pub mod stats;

// Snapshots.
pub mod snapshot;

// Batch calls.
pub mod batch;

// Iteration.
pub mod iter;

// Labels and errors.
pub mod label;
pub mod last_error;
pub mod status;

// Versioning.
pub mod version;

// The GPU engine's status.
pub mod gpu;

// Debug hooks: declared by the header only under `MAPCACHE_TESTING`.
#[cfg(feature = "debug-hooks")]
pub mod debug;

mod arena;
mod args;
mod boundary;
mod host_struct;

pub use batch::{mapcache_delete_many, mapcache_get_many, mapcache_put_many};
pub use config::*;
#[cfg(feature = "debug-hooks")]
pub use debug::{
    mapcache_debug_fn, mapcache_debug_hold_write, mapcache_debug_load_waiters, mapcache_debug_panic,
};
pub use gpu::{mapcache_gpu_info, mapcache_gpu_status, MAPCACHE_GPU_REASON_LEN};
pub use handle::{mapcache, mapcache_free, mapcache_new, mapcache_t};
pub use iter::{
    mapcache_iter, mapcache_iter_free, mapcache_iter_new, mapcache_iter_next, mapcache_iter_t,
};
pub use label::{mapcache_set_thread_label, MAPCACHE_MAX_LABEL_LEN};
pub use last_error::mapcache_last_error;
pub use load::{
    mapcache_get_or_load, mapcache_load_result, mapcache_load_result_set,
    mapcache_load_result_set_error, mapcache_loader_fn,
};
pub use ops::*;
pub use snapshot::{
    mapcache_load, mapcache_load_into, mapcache_load_report, mapcache_progress_fn, mapcache_save,
    mapcache_save_report,
};
pub use stats::{mapcache_stats, mapcache_stats_get};
pub use status::*;
pub use ttl::{mapcache_clock_advance, mapcache_put_ttl};
pub use version::*;
