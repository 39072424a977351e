//! The snapshot file a load reads: opened, locked with a shared advisory lock
//! (`flock`) for as long as the load runs, and mapped with memmap2. Nothing is
//! ever read from the mapping in place: [`Mapped::copy_out`] copies a range out
//! (after its bounds were checked against the mapping's length), and the
//! loader validates and parses only such copies, so bytes that another process
//! changes after they were validated are never the ones used.
//!
//! What remains: a process that truncates the file while it is mapped makes
//! the pages past the new end unreadable, and a copy that touches one raises
//! SIGBUS, which kills the loading process (Rust cannot recover from it). The
//! lock keeps out writers that take `flock(LOCK_EX)` before rewriting a file
//! in place; mapcache's own saves never modify an existing file (they write a
//! new one and rename it over), so they cannot cause it. Writers that ignore
//! advisory locks can.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// A snapshot file, locked and mapped.
pub(crate) struct Mapped {
    /// The mapping; `None` for an empty file (which cannot be mapped).
    map: Option<Mmap>,
    /// Holds the lock until the load ends (closing the file releases it).
    _file: File,
}

impl Mapped {
    /// Opens, locks and maps `path`. A file another process holds an exclusive
    /// `flock` on fails at once with [`Error::Io`] (`op` "lock",
    /// `ErrorKind::WouldBlock`) rather than waiting.
    pub(crate) fn open(path: &Path) -> Result<Mapped> {
        let file = File::open(path).map_err(|e| Error::io("open", path, &e))?;
        lock_shared(&file).map_err(|e| Error::io("lock", path, &e))?;
        let metadata = file.metadata().map_err(|e| Error::io("stat", path, &e))?;
        if metadata.is_dir() {
            // Opening a directory read-only succeeds; mapping it would fail
            // with ENODEV ("No such device"), which names no cause.
            let error = std::io::Error::from_raw_os_error(libc::EISDIR);
            return Err(Error::io("open", path, &error));
        }
        let len = metadata.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the mapping is only ever read through `copy_out`, as raw
            // bytes copied into memory of our own, never through a reference
            // into the mapping that another process's write could change under
            // it. Truncation by another process is the remaining hazard (see the
            // module docs).
            Some(
                unsafe { memmap2::MmapOptions::new().populate().map(&file) }
                    .map_err(|e| Error::io("mmap", path, &e))?,
            )
        };
        Ok(Mapped { map, _file: file })
    }

    /// The mapping's length: the file's length when it was mapped.
    pub(crate) fn len(&self) -> u64 {
        self.map.as_ref().map_or(0, |m| m.len() as u64)
    }

    /// A copy of `len` bytes at `offset`, into memory of our own. Fails with
    /// [`Error::Corrupt`] if the range is not inside the mapping, and with
    /// [`Error::OutOfMemory`] if the copy cannot be allocated (`len` is
    /// bounded by the mapping's length, checked first).
    pub(crate) fn copy_out(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.copy_into(offset, len, &mut out)?;
        Ok(out)
    }

    /// As [`Mapped::copy_out`], into `out` (replacing its contents).
    pub(crate) fn copy_into(&self, offset: u64, len: u64, out: &mut Vec<u8>) -> Result<()> {
        let inside = matches!(offset.checked_add(len), Some(end) if end <= self.len());
        if !inside {
            return Err(Error::corrupt(
                offset,
                format!(
                    "a range of {len} bytes at offset {offset} runs past the end of the {}-byte file",
                    self.len()
                ),
            ));
        }
        let len = len as usize;
        out.clear();
        out.try_reserve_exact(len)
            .map_err(|_| Error::OutOfMemory { bytes: len })?;
        if len == 0 {
            return Ok(());
        }
        let map = self
            .map
            .as_ref()
            .expect("a non-empty range is in a mapping");
        // SAFETY: `offset + len <= map.len()` (checked above), so the source
        // range is inside the mapping; `out` has room for `len` bytes and does
        // not overlap the mapping. The copy is of raw bytes: no reference into
        // the mapping is made (see `open`).
        unsafe {
            std::ptr::copy_nonoverlapping(map.as_ptr().add(offset as usize), out.as_mut_ptr(), len);
            out.set_len(len);
        }
        Ok(())
    }
}

/// Takes a shared `flock` on `file` without waiting.
#[cfg(unix)]
fn lock_shared(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; it changes no memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere there is no advisory lock.
#[cfg(not(unix))]
fn lock_shared(_file: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_refused_as_such() {
        match Mapped::open(&std::env::temp_dir()) {
            Err(Error::Io { op, errno, .. }) => {
                assert_eq!((op, errno), ("open", Some(libc::EISDIR)));
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a directory was mapped"),
        }
    }
}
