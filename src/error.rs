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
