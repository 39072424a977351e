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
//!
//! Only a regular file is loaded. What the path names is checked before it is
//! opened (a device is never opened), and again after: the path is opened with `O_NONBLOCK`, so
//! that opening a FIFO does not wait for a writer (nor a character device for
//! its hardware); what the open found is then checked with `fstat` before
//! anything is read, and anything but a regular file is refused as
//! [`Error::Io`] at the step "open" (a directory with `EISDIR`, anything else
//! with no errno and the message "not a regular file (a FIFO)" or the like).
//! `O_NONBLOCK` is cleared again before the file is locked and read. (A
//! regular file under another process's write lease, `F_SETLEASE`, therefore
//! fails to open at once with `EWOULDBLOCK` instead of waiting for the lease
//! to be broken, as a file under another's exclusive `flock` fails at once.)

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
    /// The bytes the file occupies on its device (`st_blocks`, in 512-byte
    /// units): see [`Mapped::stored_bytes`].
    stored: u64,
}

impl Mapped {
    /// Opens (a regular file only, see the module docs), locks and maps
    /// `path`. A file another process holds an exclusive
    /// `flock` on fails at once with [`Error::Io`] (`op` "lock",
    /// `ErrorKind::WouldBlock`) rather than waiting.
    pub(crate) fn open(path: &Path) -> Result<Mapped> {
        // What the path names, before anything is opened: opening a device can
        // do something (a tape rewinds, a terminal becomes the controlling
        // one). The fstat below still checks what was opened, in case the path
        // changed in between.
        if let Some(refused) = not_regular(path) {
            return Err(refused);
        }
        let (file, metadata) = open_regular(path)?;
        lock_shared(&file).map_err(|e| Error::io("lock", path, &e))?;
        let len = metadata.len();
        let map = if len == 0 {
            None
        } else {
            let options = memmap2::MmapOptions::new();
            // Not populated here: see `Mapped::read_ahead`.
            // SAFETY: the mapping is only ever read through `copy_out`, as raw
            // bytes copied into memory of our own, never through a reference
            // into the mapping that another process's write could change under
            // it. Truncation by another process is the remaining hazard (see the
            // module docs).
            Some(unsafe { options.map(&file) }.map_err(|e| Error::io("mmap", path, &e))?)
        };
        use std::os::unix::fs::MetadataExt;
        Ok(Mapped {
            map,
            _file: file,
            stored: metadata.blocks().saturating_mul(512),
        })
    }

    /// Reads the whole file in now, in the kernel's large reads
    /// (`MADV_POPULATE_READ`, Linux 5.14 and later; elsewhere `MADV_WILLNEED`,
    /// which starts them), rather than a page fault at a time as the payloads
    /// are copied. Called once the walk of the block headers has passed (steps
    /// 1 to 8 of docs/FORMAT.md), so that only a file whose structure checks out
    /// is read whole: a file is read to its end only when its blocks reach its
    /// end. (Populating as soon as the header checked out let a valid header
    /// over a sparse file of any length make the open read all of it: 4 GiB of
    /// page cache for a file of a few blocks on disk.) Advice only: a failure
    /// leaves the copies to fault the pages in.
    pub(crate) fn read_ahead(&self) {
        let Some(map) = &self.map else { return };
        #[cfg(target_os = "linux")]
        if map.advise(memmap2::Advice::PopulateRead).is_ok() {
            return;
        }
        let _ = map.advise(memmap2::Advice::WillNeed);
    }

    /// The bytes the file occupies on its device when it was opened. The holes
    /// of a sparse file read as zeros but occupy nothing, so this, not the
    /// length, bounds what a load may allocate before the payloads are
    /// verified (a few KiB on disk cannot hold a billion records). A
    /// filesystem may report less than the data (compressed; ZFS until its
    /// transaction commits; a small file stored inline, 0), which only makes
    /// such sizing smaller, and `Map::load` sizes for at least the first 64
    /// MiB: the tables then grow as the records come.
    pub(crate) fn stored_bytes(&self) -> u64 {
        self.stored
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

/// Opens `path` and checks with `fstat` that what it opened is a regular file
/// (the path may have changed since it was checked), then clears the
/// `O_NONBLOCK` it opened with. The file and its metadata, or the refusal.
fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata)> {
    let file = open_nonblocking(path).map_err(|e| match not_regular(path) {
        // A socket cannot be opened at all (ENXIO): say what it is.
        Some(refused) => refused,
        None => Error::io("open", path, &e),
    })?;
    let metadata = file.metadata().map_err(|e| Error::io("stat", path, &e))?;
    if metadata.is_dir() {
        // Opening a directory read-only succeeds; mapping it would fail with
        // ENODEV ("No such device"), which names no cause.
        let error = std::io::Error::from_raw_os_error(libc::EISDIR);
        return Err(Error::io("open", path, &error));
    }
    if !metadata.is_file() {
        // A FIFO or a device: what it would hand out is no file of known
        // length (and reading a FIFO would wait for a writer).
        return Err(refuse(path, &metadata.file_type()));
    }
    clear_nonblocking(&file).map_err(|e| Error::io("open", path, &e))?;
    Ok((file, metadata))
}

/// Opens `path` read-only with `O_NONBLOCK` (a FIFO opens at once instead of
/// waiting for a writer, and `fstat` can then tell what it is) and
/// `O_NOCTTY` (a terminal put at the path since it was checked does not become
/// the process's controlling terminal).
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// Clears the `O_NONBLOCK` that [`open_nonblocking`] set, once the file is
/// known to be a regular file (where it matters little, but a read could
/// otherwise fail with `EAGAIN` on a file under a mandatory lock).
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl F_GETFL on a descriptor we own; it changes no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fcntl F_SETFL on a descriptor we own, with an int argument; it
    // changes no memory.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn clear_nonblocking(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// What a file that is neither a regular file, a directory nor a symbolic link
/// is ("a FIFO", "a character device", ...), for the messages that refuse it;
/// `None` for a kind without a name here.
pub(crate) fn kind_of(file_type: &std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            Some("a FIFO")
        } else if file_type.is_char_device() {
            Some("a character device")
        } else if file_type.is_block_device() {
            Some("a block device")
        } else if file_type.is_socket() {
            Some("a socket")
        } else {
            None
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file_type;
        None
    }
}

/// The refusal of `path`, which is of type `file_type` and neither a regular
/// file nor a directory: [`Error::Io`] at "open", with no errno (the OS
/// reported no error; the load refused).
fn refuse(path: &Path, file_type: &std::fs::FileType) -> Error {
    let what = kind_of(file_type).map_or(String::new(), |kind| format!(" ({kind})"));
    Error::Io {
        op: "open",
        path: path.to_path_buf(),
        kind: std::io::ErrorKind::InvalidInput,
        errno: None,
        message: format!("not a regular file{what}"),
    }
}

/// After a failed open: the refusal of `path` if it names something that is
/// neither a regular file nor a directory (a socket, which open(2) refuses
/// with ENXIO), so that the error says what it is; `None` otherwise.
fn not_regular(path: &Path) -> Option<Error> {
    let file_type = std::fs::metadata(path).ok()?.file_type();
    (!file_type.is_file() && !file_type.is_dir()).then(|| refuse(path, &file_type))
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

    /// The check after the open, on its own (`Mapped::open` checks the path
    /// first, so a non-regular file never reaches it there unless the path
    /// changes in between): a FIFO opens without waiting for a writer and is
    /// refused, a device is refused, a directory is EISDIR, a regular file
    /// comes back blocking again.
    #[test]
    fn what_was_opened_is_checked() {
        let dir = std::env::temp_dir().join(format!("mapcache-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo changes no memory of ours.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let refused = |path: &Path| match open_regular(path) {
            Err(Error::Io { op, message, .. }) => format!("{op}: {message}"),
            other => panic!("{}: {:?}", path.display(), other.map(|_| ())),
        };
        assert!(refused(&fifo).contains("not a regular file (a FIFO)"));
        assert!(refused(Path::new("/dev/null")).contains("a character device"));
        assert!(refused(&dir).starts_with("open: "));
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        let (opened, metadata) = open_regular(&file).unwrap();
        assert!(metadata.is_file());
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL on a descriptor we own.
        let flags = unsafe { libc::fcntl(opened.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The pages of `mapped` in memory (mincore).
    fn resident_pages(mapped: &Mapped) -> usize {
        let map = mapped.map.as_ref().expect("not empty");
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let mut pages = vec![0u8; map.len().div_ceil(page)];
        // SAFETY: the mapping is live and page-aligned, `pages` holds one byte
        // per page of it.
        let rc = unsafe { libc::mincore(map.as_ptr() as *mut _, map.len(), pages.as_mut_ptr()) };
        assert_eq!(rc, 0);
        pages.iter().filter(|&&p| p & 1 != 0).count()
    }

    #[test]
    fn a_large_file_that_is_no_snapshot_is_not_read_in_whole() {
        // A sparse 64 MiB file of zeros: mapping it with MAP_POPULATE would
        // read every page in (seconds for a few GiB, before the header is even
        // looked at); only a plausible snapshot is worth it.
        let path =
            std::env::temp_dir().join(format!("mapcache-file-sparse-{}.snap", std::process::id()));
        let file = File::create(&path).unwrap();
        file.set_len(64 << 20).unwrap();
        drop(file);
        let mapped = Mapped::open(&path).unwrap();
        let resident = resident_pages(&mapped);
        drop(mapped);
        std::fs::remove_file(&path).unwrap();
        assert!(resident < 1024, "{resident} of 16384 pages read in");
    }

    /// A sparse 64 MiB file with a valid header for its length and one block
    /// whose header is `block` (or garbage): its path.
    fn sparse_snapshot(
        name: &str,
        block: Option<super::super::format::BlockHeader>,
    ) -> std::path::PathBuf {
        use super::super::format::{Header, BLOCK_HEADER_LEN, HEADER_LEN};
        let path =
            std::env::temp_dir().join(format!("mapcache-file-{name}-{}.snap", std::process::id()));
        let file_len = 64u64 << 20;
        let header = Header {
            writer: [0, 1, 0],
            snapshot_id: 7,
            saved_at_unix_ms: 0,
            file_len,
            block_count: 1,
            record_count: 1,
            data_bytes: 0,
        };
        let mut bytes = header.encode().to_vec();
        match block {
            Some(block) => bytes.extend_from_slice(&block.encode()),
            None => bytes.extend_from_slice(&[0xa5; BLOCK_HEADER_LEN]),
        }
        assert_eq!(bytes.len(), HEADER_LEN + BLOCK_HEADER_LEN);
        std::fs::write(&path, &bytes).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(file_len)
            .unwrap();
        path
    }

    /// The file is read in whole only once its block headers' walk passed: a
    /// valid header over a sparse file is not enough (it made the open read
    /// the whole length in, 4 GiB for a hostile file of one bad block).
    #[test]
    fn a_file_is_read_in_whole_only_once_its_blocks_reach_its_end() {
        use super::super::format::BlockHeader;
        let bad = sparse_snapshot("bad-block", None);
        let mapped = Mapped::open(&bad).unwrap();
        assert!(super::super::load::survey(&mapped).is_err());
        let resident = resident_pages(&mapped);
        drop(mapped);
        std::fs::remove_file(&bad).unwrap();
        assert!(resident < 1024, "{resident} of 16384 pages read in");

        // One block to the end: the walk passes (the payload's checksum is
        // step 9, after it), and the whole file is read in.
        let good = sparse_snapshot(
            "one-block",
            Some(BlockHeader {
                record_count: 1,
                index: 0,
                snapshot_id: 7,
                payload_len: (64 << 20) - 176,
                payload_checksum: 0,
            }),
        );
        let mapped = Mapped::open(&good).unwrap();
        super::super::load::survey(&mapped).unwrap();
        let resident = resident_pages(&mapped);
        drop(mapped);
        std::fs::remove_file(&good).unwrap();
        // Synchronously so only with MADV_POPULATE_READ (Linux 5.14 and later);
        // MADV_WILLNEED's reads may still be under way.
        if memmap2::Advice::PopulateRead.is_supported() {
            assert!(resident > 16000, "{resident} of 16384 pages read in");
        }
    }

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
