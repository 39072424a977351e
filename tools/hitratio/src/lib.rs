//! `make hitratio`: the hit ratio of `mapcache::Map` on cache traces, measured by
//! replaying each trace through the library itself (a fresh cache per capacity,
//! starting empty, with the library's default configuration for that capacity),
//! beside an exact LRU computed here and the published anchors that
//! `../shared/traces/README.md` records for the same traces.
//!
//! - [`trace`]: the trace files and their formats.
//! - [`gzip`]: the gzip layer of a trace file, and `--compression`.
//! - [`sniff`]: a trace's format told from its first bytes.
//! - [`listing`]: the formats of the files the traces README lists.
//! - [`markdown`]: a README table's rows, for `anchors` and `listing`.
//! - [`synthetic`]: Zipf workloads, with and without one-pass scans.
//! - [`lru`]: the exact LRU the harness compares against.
//! - [`anchors`]: the anchor tables, parsed from the traces README at run time.
//! - [`cli`]: the command line and `--help`.
//! - [`replay`]: one trace through one cache of one capacity.
//! - [`report`]: the tables, the summary lines and `docs/hitratio.md`.
//! - [`plot`]: one SVG per trace.

pub mod anchors;
pub mod cli;
pub mod gzip;
pub mod listing;
pub mod lru;
pub mod markdown;
pub mod plot;
pub mod replay;
pub mod report;
pub mod sniff;
pub mod synthetic;
pub mod trace;
