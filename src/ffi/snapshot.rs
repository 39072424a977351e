//! Snapshots from C: `mapcache_save` writes a live cache to a file,
//! `mapcache_load` makes a new cache from one and `mapcache_load_into` loads
//! one into a live cache ([`crate::Map::save`], [`crate::Map::load`],
//! [`crate::Map::load_into`]; the file format is docs/FORMAT.md).
//!
//! Paths are NUL-terminated byte strings, passed to the OS as they are (no
//! encoding is assumed). What a call did, and for a failure the byte offset of
//! a corrupt file's fault or the OS's errno, comes back in a report struct
//! versioned by its `struct_size` as `mapcache_stats` is.

use std::ffi::{c_char, c_void, CStr, OsStr};
use std::mem::size_of;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use super::args;
use super::boundary::{self, Fail};
use super::config::{self, mapcache_config};
use super::handle::{self, mapcache_t};
use super::host_struct;
use super::status::{mapcache_status, MAPCACHE_OK};
use crate::{Error, LoadReport, Map, SaveReport};

/// A save's progress callback: called on the saving thread with the bytes
/// written to the file so far, after each block of records (about every MiB)
/// and once at the end with the file's length, so that a host can show a
/// progress bar. `ctx` is the pointer given to `mapcache_save`.
///
/// It runs while no lock of the cache is held: it may call any function on the
/// cache but `mapcache_free`. Keep it short: the calls made between records
/// run while the save holds an epoch pin (it is serializing a shard's
/// entries), so memory that writers of any cache retire meanwhile is freed
/// only after the callback returns. It must return normally (no `longjmp`, no exception or panic
/// unwinding through mapcache's frames).
pub type mapcache_progress_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, bytes_written: u64)>;

/// What `mapcache_save` did, filled when the host passes one. Set
/// `struct_size` to `sizeof(mapcache_save_report)` before the call; fields are
/// only ever appended in later versions. On an error every count is 0 and
/// `os_errno` is set as described; only a `struct_size` out of range and
/// `MAPCACHE_E_INTERNAL` leave the report as it was.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mapcache_save_report {
    /// `sizeof(mapcache_save_report)` as the host knows it, set by the host
    /// (the library reads it, writes only that many bytes, and leaves it as it
    /// was).
    pub struct_size: usize,
    /// Records written: the cache's live entries.
    pub records: u64,
    /// Blocks of records written.
    pub blocks: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Entries found expired during the save and left out.
    pub expired: u64,
    /// `MAPCACHE_E_IO`: the OS's errno for the failed step (e.g. `EACCES`,
    /// `ENOSPC`), 0 when the OS gave none. 0 for every other status.
    pub os_errno: i32,
    /// Reserved: written as 0.
    pub reserved: u32,
}

/// What `mapcache_load` or `mapcache_load_into` did, filled when the host
/// passes one. Set `struct_size` to `sizeof(mapcache_load_report)` before the
/// call; fields are only ever appended in later versions. On an error every
/// count is 0, and `corrupt_offset` or `os_errno` is set as described; only a
/// `struct_size` out of range and `MAPCACHE_E_INTERNAL` leave the report as it
/// was.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mapcache_load_report {
    /// `sizeof(mapcache_load_report)` as the host knows it, set by the host
    /// (the library reads it, writes only that many bytes, and leaves it as it
    /// was).
    pub struct_size: usize,
    /// Records in the file.
    pub records: u64,
    /// Records stored in the cache (inserted or replacing a value). A bounded
    /// cache may have evicted some of them again as later ones arrived.
    pub loaded: u64,
    /// Of those, records that replaced a value: one the cache held
    /// (`mapcache_load_into`) or an earlier record of the same key in the file
    /// (which `mapcache_save` never writes).
    pub replaced: u64,
    /// Records left out because their expiry (wall-clock time) had passed.
    pub expired: u64,
    /// Records left out because their entry is larger than a shard's share of
    /// `max_bytes` (a bounded cache).
    pub too_large: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// `MAPCACHE_E_CORRUPT`: the byte offset in the file of the structure that
    /// failed its check (also named in `mapcache_last_error()`). 0 for every
    /// other status.
    pub corrupt_offset: u64,
    /// `MAPCACHE_E_IO`: the OS's errno for the failed step (e.g. `ENOENT` for a
    /// missing file), 0 when the OS gave none (a path that names no regular
    /// file). 0 for every other status.
    pub os_errno: i32,
    /// Reserved: written as 0.
    pub reserved: u32,
}

/// The sizes of the first versions (ABI 3): the smallest `struct_size`
/// accepted.
const SAVE_V1_SIZE: usize = size_of::<mapcache_save_report>();
const LOAD_V1_SIZE: usize = size_of::<mapcache_load_report>();

// No implicit padding (64-bit targets only, see `arena`).
const _: () = assert!(SAVE_V1_SIZE == 48);
const _: () = assert!(LOAD_V1_SIZE == 72);

/// ============ 3. SNAPSHOTS ============
///
/// Saves `cache` to a snapshot file at `path`, replacing any file there
/// atomically: the records go to a temporary file in the same directory
/// (`.<name>.<pid>-<id>.tmp`, `<name>` cut short to fit 255 bytes), which is
/// fsynced and renamed over `path`, and the directory is fsynced. A crash at
/// any moment leaves either the previous file or the complete new one; a save
/// that fails leaves the previous file as it was and removes its temporary
/// file (a process killed during a save cannot: its temporary file stays, and
/// no later save removes it, since another process's save may be writing it).
/// Only a regular file is replaced: a `path` that names a directory, a
/// device, a FIFO or a socket is refused before anything is written (the
/// rename would replace it), and a symbolic link is followed (the file it
/// leads to is replaced, in that file's directory; a link that leads to no
/// file, dangling or a loop, is refused). The new file gets the permission
/// bits of the file it replaces (a snapshot kept `0600` stays `0600`; a new
/// one gets the umask's), and its owner and group where the process may set
/// them (root; a group the process is in), else the saver's, as any rename
/// makes them.
///
/// Other threads keep reading and writing during a save: each shard's lock is
/// held only while its slot pointers are copied, never for file I/O. Each
/// key's record holds the value the key had at the moment its shard was
/// copied, a moment during the save (shards are copied one after another, so
/// the file is not one point-in-time image of the whole cache). Entries expired
/// at that moment are left out; the others keep their expiry as absolute
/// wall-clock time, so a cache loaded later honours it.
///
/// `progress` may be NULL; otherwise it is called as `mapcache_progress_fn`
/// says, with `progress_ctx`. `report` may be NULL; otherwise its
/// `struct_size` must be set and it receives what the save did (see
/// `mapcache_save_report`).
///
/// Thread-safety: any thread, concurrently with any call on `cache` but
/// `mapcache_free`; two saves to the same path may run at once (the last
/// rename wins, and each file is complete). In exclusive mode a save is a
/// read, and fails with `MAPCACHE_E_CONCURRENT_READ_WRITE` when another thread
/// writes while a shard is copied.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `path` NULL, `path` empty or naming
///   no file (`/`, or ending in `/`, `/.` or `/..`), or `report->struct_size`
///   out of range: smaller than the first `mapcache_save_report` (48 bytes) or
///   larger than 4096 (nothing was saved).
/// - `MAPCACHE_E_IO`: a file operation failed (examining the target, "stat";
///   creating the temporary file, writing, fsync, rename, fsync of the
///   directory; e.g. a read-only or full directory), or `path` names something
///   a save must not replace (step "stat": a directory, with `EISDIR`; a
///   device, a FIFO, a socket or a link that leads to no file (dangling or a
///   loop), with no errno: the refusal is the library's, though the message
///   quotes what following the link gave, e.g. ENOENT or ELOOP, and a load of
///   the same path reports that errno from its open). The message names the step, the path it worked on and the OS
///   error (for the steps on the temporary file, create, write and fsync,
///   that is the temporary file's path, `.NAME.<pid>-<id>.tmp` beside NAME);
///   `report->os_errno` holds its errno. The previous file at `path` is
///   intact.
/// - `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode), `MAPCACHE_E_NO_MEMORY`,
///   `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`. The previous file is
///   intact.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `report` must be NULL or
/// valid for reading a `size_t` and writing `report->struct_size` bytes (any
/// alignment).
#[no_mangle]
pub unsafe extern "C" fn mapcache_save(
    cache: *mut mapcache_t,
    path: *const c_char,
    progress: mapcache_progress_fn,
    progress_ctx: *mut c_void,
    report: *mut mapcache_save_report,
) -> mapcache_status {
    boundary::run("mapcache_save", || {
        // SAFETY: NULL or readable for its stated size (contract).
        let report_size = unsafe { stated_size(report, SAVE_V1_SIZE, "mapcache_save_report") }?;
        // SAFETY: NULL or NUL-terminated (contract).
        let path_bytes = unsafe { path_region(path) };
        args::no_overlap(&[report_region(report, report_size)], &[path_bytes])?;
        // SAFETY: NULL or NUL-terminated (contract).
        let outcome = unsafe { path_arg(path) }.and_then(|path| {
            handle::with_map(cache, |inner| {
                Ok(match progress {
                    None => inner.map.save(path),
                    Some(callback) => inner.map.save_with_progress(path, |bytes| {
                        // SAFETY: the host's callback and context, called as
                        // mapcache_progress_fn documents.
                        unsafe { callback(progress_ctx, bytes) }
                    }),
                })
            })
            .map_err(Failed::from)
            .and_then(|saved| saved.map_err(Failed::from))
        });
        let written = match &outcome {
            Ok(saved) => of_save(saved, report_size),
            Err(failed) => mapcache_save_report {
                struct_size: report_size.unwrap_or(0),
                os_errno: failed.os_errno,
                ..Default::default()
            },
        };
        if let Some(size) = report_size {
            // SAFETY: non-NULL, writable for `size` bytes (contract).
            unsafe { host_struct::write(report, size, &written) };
        }
        outcome.map(|_| MAPCACHE_OK).map_err(|failed| failed.fail)
    })
}

/// Creates a cache configured by `cfg` holding the snapshot at `path` (a file
/// written by `mapcache_save`, of this or an older format version).
///
/// The file is mapped read-only under a shared advisory lock (`flock`), taken
/// without waiting: while another process holds an exclusive `flock` on it the
/// load fails at once (`MAPCACHE_E_IO`, step "lock", `os_errno` `EWOULDBLOCK`);
/// retry if you coordinate writers with `flock`. The whole file is validated (every length, count and offset against the
/// file's size, every checksum) before the cache is returned; each block is
/// copied out of the mapping before it is checked and used, so a file changed
/// under the load cannot make it use unchecked bytes. Records whose wall-clock
/// expiry has passed are left out. The cache is sized for the snapshot up
/// front (`cfg->initial_capacity` is raised to the file's record count, or to
/// what the file's bytes on the device, or its first 64 MiB if more, can hold
/// where that is less: the holes of a sparse file hold nothing; past that the
/// tables grow as the records come). A
/// bounded cache smaller than the snapshot keeps what its eviction policy
/// keeps as the records arrive in file order. What remains: a process that
/// ignores the advisory lock and truncates the file during the load makes the
/// loading process receive SIGBUS (mapcache's own saves never modify an
/// existing file, they rename a new one over it).
///
/// `cfg`, `out` and ownership: as `mapcache_new` (on any error `*out` is NULL).
/// `report` may be NULL; otherwise its `struct_size` must be set and it
/// receives what the load did (see `mapcache_load_report`).
/// Thread-safety: any thread.
///
/// Returns:
/// - `MAPCACHE_OK`: `*out` is the new cache.
/// - `MAPCACHE_E_INVALID_ARG`: `out` or `path` NULL, `path` empty,
///   `report->struct_size` out of range: smaller than the first
///   `mapcache_load_report` (72 bytes) or larger than 4096.
/// - `MAPCACHE_E_CORRUPT`: the file is damaged, truncated, appended to, not a
///   snapshot, or of a newer format version. The message says what was wrong
///   and at which byte offset; `report->corrupt_offset` holds the offset.
/// - `MAPCACHE_E_IO`: the file could not be opened, examined, locked or
///   mapped, the steps the message names "open", "stat" (fstat), "lock" and
///   "mmap" (e.g. it does not exist: "open", errno `ENOENT`), or `path` names
///   no regular file; the message names the step and the path,
///   `report->os_errno` holds the errno.
///   A directory fails at "open" with `EISDIR`; anything else that is no
///   regular file (a FIFO, a device, a socket) fails at "open" with
///   `os_errno` 0 and the message "snapshot open of <path>: not a regular
///   file (a FIFO)" (or "a character device", "a block device", "a socket").
/// - `MAPCACHE_E_INVALID_CONFIG`, `MAPCACHE_E_GPU`, `MAPCACHE_E_NO_MEMORY`,
///   `MAPCACHE_E_INTERNAL`: as `mapcache_new`.
///
/// `path` is opened with `O_NONBLOCK` and checked with fstat(2) before
/// anything is read from it, so a path naming a FIFO or a device fails at once
/// (`MAPCACHE_E_IO`, above) rather than waiting in open(2) for a writer.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `cfg` as for `mapcache_new`;
/// `out` must be NULL or valid for writing one pointer; `report` as for
/// `mapcache_save`.
#[no_mangle]
pub unsafe extern "C" fn mapcache_load(
    path: *const c_char,
    cfg: *const mapcache_config,
    out: *mut *mut mapcache_t,
    report: *mut mapcache_load_report,
) -> mapcache_status {
    boundary::run("mapcache_load", || {
        let out_given = args::out(out, "out");
        // Before `*out` is first written (NULL, so that every error leaves it
        // NULL): an `out` inside an input or the report would change it.
        // SAFETY: NULL or readable for its stated size (contract).
        let report_size = unsafe { stated_size(report, LOAD_V1_SIZE, "mapcache_load_report") };
        // SAFETY: NULL or NUL-terminated; NULL or readable for its first field
        // (contract).
        let inputs = unsafe { [path_region(path), config::region(cfg)] };
        let overlap = args::no_overlap(
            &[
                args::Region::scalar(out, "out"),
                report_region(report, report_size.as_ref().ok().copied().flatten()),
            ],
            &inputs,
        );
        if out_given.is_ok() {
            // SAFETY: out is non-null and, by the contract, writable.
            unsafe { args::put(out, ptr::null_mut()) };
        }
        overlap?;
        let report_size = report_size?;
        // A NULL `out` still gets its report written (zeros), as every failure.
        let outcome = out_given.map_err(Failed::from).and_then(|()| {
            // SAFETY: NULL or NUL-terminated (contract).
            unsafe { path_arg(path) }
        });
        let outcome = outcome.and_then(|path| {
            // SAFETY: cfg is NULL or readable for its struct_size bytes
            // (contract).
            let (config, mode) = unsafe { config::read(cfg) }?;
            let (map, loaded) = Map::load_with_report(path, config).map_err(Failed::from)?;
            let handle = handle::register(map, mode)?;
            Ok((handle, loaded))
        });
        // SAFETY: as above.
        unsafe { finish_load(outcome, report, report_size) }.map(|handle| {
            // SAFETY: as above.
            unsafe { args::put(out, handle) };
            MAPCACHE_OK
        })
    })
}

/// Loads the snapshot at `path` into the live `cache`: each record overwrites
/// the value of the key it names, as a put would; keys the snapshot does not
/// name are left alone. The file is validated whole first (see
/// `mapcache_load`): a bad file fails with `MAPCACHE_E_CORRUPT` and the cache
/// is unchanged. Only an allocation failure while the records are stored
/// (`MAPCACHE_E_NO_MEMORY`) leaves the records stored until then.
///
/// `report` may be NULL; otherwise its `struct_size` must be set and it
/// receives what the load did (see `mapcache_load_report`).
///
/// Thread-safety: any thread, concurrently with any call on `cache` but
/// `mapcache_free`: each shard takes its records in chunks of a few thousand
/// under its lock, and lets a writer that waits for the shard go first
/// between chunks, so that writer waits about one chunk, not the whole load
/// (several waiting writers each get in at one chunk's end). In exclusive mode
/// the load is one write: it fails with `MAPCACHE_E_CONCURRENT_WRITE` if
/// another thread is writing, before changing anything.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `path` NULL, `path` empty,
///   `report->struct_size` out of range: smaller than the first
///   `mapcache_load_report` (72 bytes) or larger than 4096.
/// - `MAPCACHE_E_CORRUPT`, `MAPCACHE_E_IO`: as `mapcache_load`; the cache is
///   unchanged.
/// - `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode; unchanged),
///   `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// As for `mapcache_load`.
#[no_mangle]
pub unsafe extern "C" fn mapcache_load_into(
    cache: *mut mapcache_t,
    path: *const c_char,
    report: *mut mapcache_load_report,
) -> mapcache_status {
    boundary::run("mapcache_load_into", || {
        // SAFETY: NULL or readable for its stated size (contract).
        let report_size = unsafe { stated_size(report, LOAD_V1_SIZE, "mapcache_load_report") }?;
        // SAFETY: NULL or NUL-terminated (contract).
        let path_bytes = unsafe { path_region(path) };
        args::no_overlap(&[report_region(report, report_size)], &[path_bytes])?;
        // SAFETY: NULL or NUL-terminated (contract).
        let outcome = unsafe { path_arg(path) }.and_then(|path| {
            handle::with_map(cache, |inner| Ok(inner.map.load_into(path)))
                .map_err(Failed::from)
                .and_then(|loaded| loaded.map_err(Failed::from))
                .map(|loaded| ((), loaded))
        });
        // SAFETY: as above.
        unsafe { finish_load(outcome, report, report_size) }.map(|()| MAPCACHE_OK)
    })
}

/// A failed call, with the detail its report carries.
struct Failed {
    fail: Fail,
    corrupt_offset: u64,
    os_errno: i32,
}

impl From<Fail> for Failed {
    fn from(fail: Fail) -> Failed {
        Failed {
            fail,
            corrupt_offset: 0,
            os_errno: 0,
        }
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        let (corrupt_offset, os_errno) = match &error {
            Error::Corrupt { offset, .. } => (*offset, 0),
            Error::Io { errno, .. } => (0, errno.unwrap_or(0)),
            _ => (0, 0),
        };
        Failed {
            fail: Fail::from(error),
            corrupt_offset,
            os_errno,
        }
    }
}

/// The report's stated size: `None` for a NULL `report`.
///
/// # Safety
/// `report` must be NULL or valid for reading a `size_t`.
unsafe fn stated_size<T>(
    report: *const T,
    first: usize,
    name: &'static str,
) -> Result<Option<usize>, Fail> {
    if report.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and readable for its first field (contract).
    unsafe { host_struct::stated_size(report.cast(), first, name, "report") }.map(Some)
}

/// The bytes of the path argument, its NUL included, for the overlap checks
/// (nothing when NULL).
///
/// # Safety
/// `path` must be NULL or point to a NUL-terminated string.
unsafe fn path_region(path: *const c_char) -> args::Region {
    let len = if path.is_null() {
        0
    } else {
        // SAFETY: non-NULL and NUL-terminated (contract).
        unsafe { CStr::from_ptr(path) }.to_bytes_with_nul().len()
    };
    args::Region::of(path.cast::<u8>(), len, "path")
}

/// The host's report struct of `size` bytes (nothing when NULL).
fn report_region<T>(report: *mut T, size: Option<usize>) -> args::Region {
    args::Region::of(
        report.cast_const().cast::<u8>(),
        size.unwrap_or(0),
        "report",
    )
}

/// The path argument: a non-empty NUL-terminated byte string.
///
/// # Safety
/// `path` must be NULL or point to a NUL-terminated string.
unsafe fn path_arg<'a>(path: *const c_char) -> Result<&'a Path, Failed> {
    if path.is_null() {
        return Err(Fail::arg("path is NULL").into());
    }
    // SAFETY: non-NULL and NUL-terminated (contract).
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if bytes.is_empty() {
        return Err(Fail::arg("path is empty").into());
    }
    Ok(Path::new(OsStr::from_bytes(bytes)))
}

/// Writes a load's report (what it did, or a failure's detail) and passes on
/// its outcome.
///
/// # Safety
/// `report` must be valid for writing `size` bytes when `size` is `Some`.
unsafe fn finish_load<T>(
    outcome: Result<(T, LoadReport), Failed>,
    report: *mut mapcache_load_report,
    size: Option<usize>,
) -> Result<T, Fail> {
    let struct_size = size.unwrap_or(0);
    let (written, result) = match outcome {
        Ok((value, loaded)) => (of_load(&loaded, struct_size), Ok(value)),
        Err(failed) => (
            mapcache_load_report {
                struct_size,
                corrupt_offset: failed.corrupt_offset,
                os_errno: failed.os_errno,
                ..Default::default()
            },
            Err(failed.fail),
        ),
    };
    if let Some(size) = size {
        // SAFETY: writable for `size` bytes (contract).
        unsafe { host_struct::write(report, size, &written) };
    }
    result
}

fn of_save(saved: &SaveReport, struct_size: Option<usize>) -> mapcache_save_report {
    mapcache_save_report {
        struct_size: struct_size.unwrap_or(0),
        records: saved.records,
        blocks: saved.blocks,
        bytes: saved.bytes,
        expired: saved.expired_skipped,
        os_errno: 0,
        reserved: 0,
    }
}

fn of_load(loaded: &LoadReport, struct_size: usize) -> mapcache_load_report {
    mapcache_load_report {
        struct_size,
        records: loaded.records,
        loaded: loaded.loaded,
        replaced: loaded.replaced,
        expired: loaded.expired,
        too_large: loaded.too_large,
        bytes: loaded.bytes,
        corrupt_offset: 0,
        os_errno: 0,
        reserved: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::path::PathBuf;

    use super::*;
    use crate::ffi::status::{MAPCACHE_E_INVALID_ARG, MAPCACHE_E_IO};

    /// A host's report of `T`, at byte `offset` of a buffer filled with 0xAB
    /// (`offset` 1: misaligned), its `struct_size` set.
    fn host<T>(offset: usize) -> Vec<u8> {
        let mut buf = vec![0xAB; offset + size_of::<T>() + 16];
        buf[offset..offset + size_of::<usize>()].copy_from_slice(&size_of::<T>().to_ne_bytes());
        buf
    }

    fn read<T: Copy>(buf: &[u8], offset: usize) -> T {
        assert!(offset + size_of::<T>() <= buf.len());
        // SAFETY: in bounds (checked); T is a plain-integer report.
        unsafe { buf.as_ptr().add(offset).cast::<T>().read_unaligned() }
    }

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mapcache-ffi-snapshot-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn c_path(path: &std::path::Path) -> CString {
        CString::new(path.as_os_str().as_bytes()).unwrap()
    }

    #[test]
    fn a_failed_load_writes_its_report_even_when_out_is_null() {
        let mut buf = host::<mapcache_load_report>(0);
        // SAFETY: a valid path, NULL config and out, a report of its size.
        let st = unsafe {
            mapcache_load(
                c"/nonexistent".as_ptr(),
                ptr::null(),
                ptr::null_mut(),
                buf.as_mut_ptr().cast(),
            )
        };
        assert_eq!(st, MAPCACHE_E_INVALID_ARG);
        let report: mapcache_load_report = read(&buf, 0);
        assert_eq!(
            report,
            mapcache_load_report {
                struct_size: LOAD_V1_SIZE,
                ..Default::default()
            },
            "the report of a failed call holds zeros"
        );
    }

    #[test]
    fn reports_may_be_misaligned() {
        let dir = dir("misaligned");
        let path = c_path(&dir.join("c.snap"));
        let mut cache = ptr::null_mut();
        // SAFETY: NULL config, valid out-pointer.
        assert_eq!(
            unsafe { handle::mapcache_new(ptr::null(), &mut cache) },
            MAPCACHE_OK
        );
        // SAFETY: a live cache and valid arguments.
        assert_eq!(
            unsafe {
                crate::ffi::ops::mapcache_put(
                    cache,
                    b"k".as_ptr(),
                    1,
                    b"v".as_ptr(),
                    1,
                    ptr::null_mut(),
                )
            },
            MAPCACHE_OK
        );
        let mut saved = host::<mapcache_save_report>(1);
        // SAFETY: the report is writable for its struct_size at any alignment.
        let st = unsafe {
            mapcache_save(
                cache,
                path.as_ptr(),
                None,
                ptr::null_mut(),
                saved.as_mut_ptr().add(1).cast(),
            )
        };
        assert_eq!(st, MAPCACHE_OK);
        let report: mapcache_save_report = read(&saved, 1);
        assert_eq!((report.struct_size, report.records), (SAVE_V1_SIZE, 1));
        assert!(saved[1 + SAVE_V1_SIZE..].iter().all(|&b| b == 0xAB));
        let mut loaded = host::<mapcache_load_report>(3);
        // SAFETY: as above.
        let st =
            unsafe { mapcache_load_into(cache, path.as_ptr(), loaded.as_mut_ptr().add(3).cast()) };
        assert_eq!(st, MAPCACHE_OK);
        let report: mapcache_load_report = read(&loaded, 3);
        assert_eq!((report.records, report.replaced), (1, 1));
        let missing = c_path(&dir.join("missing.snap"));
        // SAFETY: as above.
        let st = unsafe {
            mapcache_load_into(cache, missing.as_ptr(), loaded.as_mut_ptr().add(3).cast())
        };
        assert_eq!(st, MAPCACHE_E_IO);
        let report: mapcache_load_report = read(&loaded, 3);
        assert_eq!((report.records, report.os_errno), (0, libc::ENOENT));
        // SAFETY: the cache is live and not used again.
        unsafe { handle::mapcache_free(cache) };
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
