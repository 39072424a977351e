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
//! One idea per file: `status` (codes), `last_error`, `boundary` (panics, failures),
//! `args` (argument checks), `arena` (handle memory), `version`, `config`, `handle`
//! (new/free), `ops` (single-key calls), `batch`, `iter`, `label`, `debug`.

// The C names (`mapcache_t`, `mapcache_status`, ...) are the contract.
#![allow(non_camel_case_types)]

mod arena;
mod args;
pub mod batch;
mod boundary;
pub mod config;
pub mod debug;
pub mod handle;
pub mod iter;
pub mod label;
pub mod last_error;
pub mod ops;
pub mod status;
pub mod version;

pub use batch::{mapcache_delete_many, mapcache_get_many, mapcache_put_many};
pub use config::*;
pub use debug::{mapcache_debug_fn, mapcache_debug_hold_write, mapcache_debug_panic};
pub use handle::{mapcache, mapcache_free, mapcache_new, mapcache_t};
pub use iter::{
    mapcache_iter, mapcache_iter_free, mapcache_iter_new, mapcache_iter_next, mapcache_iter_t,
};
pub use label::{mapcache_set_thread_label, MAPCACHE_MAX_LABEL_LEN};
pub use last_error::mapcache_last_error;
pub use ops::*;
pub use status::*;
pub use version::*;
