//! Errors, and the misuse reports that name both threads of a collision.

use std::fmt;

use crate::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// The two threads of a detected misuse, by label (see [`crate::set_thread_label`]),
/// or by default name when unlabelled: a spawned Rust thread's std name if it has
/// one, else `thread <os tid>` (always so for the process's main thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collision {
    /// The thread that was writing.
    pub holder: String,
    /// The thread that ran into that write (the caller that gets the error).
    pub collider: String,
}

/// Everything a map operation can fail with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The key is longer than [`MAX_KEY_LEN`].
    KeyTooLong {
        /// The key's length.
        len: usize,
    },
    /// The value is longer than [`MAX_VALUE_LEN`].
    ValueTooLong {
        /// The value's length.
        len: usize,
    },
    /// Exclusive mode: this write overlapped another thread's write. Nothing was
    /// changed.
    ConcurrentWrite(Collision),
    /// Exclusive mode: this read overlapped another thread's write.
    ConcurrentReadWrite(Collision),
    /// An allocation failed; nothing was changed.
    OutOfMemory {
        /// The size of the allocation that failed.
        bytes: usize,
    },
    /// A [`crate::Config`] field is out of range; the message names it.
    InvalidConfig(String),
    /// An argument is out of range (a negative or unrepresentable time, a
    /// manual-clock operation on the system clock); the message names it.
    InvalidArgument(String),
    /// The entry's footprint is larger than a shard's byte budget (see
    /// [`crate::Config::max_bytes`]): it could never be held. Nothing was changed.
    TooLarge {
        /// The bytes the entry would be charged.
        bytes: usize,
        /// The byte budget of the shard it belongs to.
        limit: usize,
    },
    /// The loader of [`crate::Map::get_or_load`] failed (or panicked); every
    /// caller that waited for that load gets the same error, and nothing was
    /// cached.
    Load(crate::cache::load::LoadError),
    /// A snapshot file is not one this library can load: damaged, truncated,
    /// not a snapshot at all, or of a newer format version (see
    /// `docs/FORMAT.md`). `what` says what was wrong; `offset` is where in the
    /// file (the byte offset of the field or structure that failed its check).
    /// A cache loaded into is unchanged.
    Corrupt {
        /// Byte offset in the file of what failed its check.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// A file operation of a snapshot save or load failed (see
    /// [`std::io::Error`]); `op` names the step (`"open"`, `"write"`,
    /// `"fsync"`, `"rename"`, ...). A save that fails leaves the previous file
    /// at `path` intact; a cache loaded into is unchanged. A load of a path
    /// that names no regular file fails at `"open"`: a directory with
    /// `EISDIR`, anything else (a FIFO, a device, a socket) with
    /// `ErrorKind::InvalidInput`, no errno and the message "not a regular
    /// file (a FIFO)" or the like.
    Io {
        /// The step that failed.
        op: &'static str,
        /// The file or directory it worked on.
        path: std::path::PathBuf,
        /// The kind of failure.
        kind: std::io::ErrorKind,
        /// The OS error number, when the OS reported one.
        errno: Option<i32>,
        /// The OS's message (the library's, when the OS reported no error).
        message: String,
    },
    /// [`crate::GpuMode::Force`]: the GPU engine could not be loaded, or a
    /// rebuild on it failed; the message says at which step and why. A write
    /// that gets it changed nothing.
    Gpu(String),
}

impl Error {
    /// An [`Error::Io`] for `error`, met by step `op` on `path`.
    pub(crate) fn io(op: &'static str, path: &std::path::Path, error: &std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            kind: error.kind(),
            errno: error.raw_os_error(),
            message: error.to_string(),
        }
    }

    /// An [`Error::Corrupt`] at `offset`.
    pub(crate) fn corrupt(offset: u64, what: impl Into<String>) -> Error {
        Error::Corrupt {
            offset,
            what: what.into(),
        }
    }
}

/// Results of map operations.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyTooLong { len } => {
                write!(
                    f,
                    "key of {len} bytes is longer than the limit of {MAX_KEY_LEN}"
                )
            }
            Error::ValueTooLong { len } => write!(
                f,
                "value of {len} bytes is longer than the limit of {MAX_VALUE_LEN}"
            ),
            Error::ConcurrentWrite(c) => write!(
                f,
                "concurrent map writes: '{}' collided with a write in progress by '{}'",
                c.collider, c.holder
            ),
            Error::ConcurrentReadWrite(c) => write!(
                f,
                "concurrent map read and map write: '{}' collided with a write in progress by '{}'",
                c.collider, c.holder
            ),
            Error::OutOfMemory { bytes } => write!(f, "out of memory allocating {bytes} bytes"),
            Error::InvalidConfig(message) => write!(f, "invalid config: {message}"),
            Error::InvalidArgument(message) => write!(f, "invalid argument: {message}"),
            Error::TooLarge { bytes, limit } => write!(
                f,
                "entry of {bytes} bytes (footprint) is larger than its shard's byte budget of {limit}"
            ),
            Error::Load(error) => write!(f, "loader failed: {error}"),
            Error::Corrupt { offset, what } => {
                write!(f, "corrupt snapshot at byte offset {offset}: {what}")
            }
            Error::Io {
                op, path, message, ..
            } => write!(f, "snapshot {op} of {}: {message}", path.display()),
            Error::Gpu(message) => write!(f, "GPU engine (gpu = force): {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Load(error) => error.source_error(),
            _ => None,
        }
    }
}
