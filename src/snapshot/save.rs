//! Writing a snapshot of a live map: shard by shard into a temporary file in
//! the target's directory, which is fsynced and renamed over the target, and
//! the directory fsynced, so that a crash at any moment leaves either the
//! previous file or the complete new one at the target's path.
//!
//! Writers keep working during a save. For each shard the saver takes the
//! shard's write flag only to copy the shard's slot pointers (a walk of its
//! buckets, no entry is read), under an epoch pin; it releases the flag and
//! then serializes those entries while still pinned, which keeps each of them
//! alive even if a writer replaces or removes it meanwhile. So every key's
//! record holds the value the key had at the moment its shard was copied (a
//! key written during the save has, in the file, its value of that moment, and
//! a key absent then is absent from the file). Shards are copied at different
//! moments: the file is not a point-in-time image of the whole map. The price
//! of the pin is that memory retired during one shard's serialization is freed
//! only after it (see "Snapshots" in `docs/ARCHITECTURE.md`).
//!
//! In exclusive mode a save is a read: it copies each shard's slots between two
//! checks of the map's flag, and fails with [`Error::ConcurrentReadWrite`] (the
//! target untouched) when a write by another thread overlapped a copy.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::format::{
    library_version, BlockHeader, Header, RecordHeader, BLOCK_TARGET, HEADER_LEN, RECORD_HEADER_LEN,
};
use super::wall::Now;
use super::SaveReport;
use crate::config::Mode;
use crate::error::{Error, Result};
use crate::map::Map;
use crate::shard::Shard;
use crate::sync::atomic::Ordering;
use crate::sync::epoch;
use crate::table::bucket;
use crate::table::entry::{self, Entry};

/// The temporary file a save writes, removed unless it was renamed over the
/// target.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
    renamed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        drop(self.file.take());
        if !self.renamed {
            // Best effort: the save has already failed with the error that
            // matters; a leftover temporary file never replaces the target.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` names no file to write: it has no last component (`/`, or
/// ending in `..`), or it ends in `/` or `/.` (or is `.`), which
/// [`Path::file_name`] reads past: `dir/` would write `dir`'s temporary file
/// beside `dir` and then fail to rename it onto `dir/` with `ENOTDIR`.
fn names_no_file(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    path.file_name().is_none() || bytes.ends_with(b"/") || bytes.ends_with(b"/.") || bytes == b"."
}

/// The directory a snapshot at `path` lives in (where its temporary file goes).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The longest file name of the common file systems (Linux's `NAME_MAX`).
const NAME_MAX: usize = 255;

/// The name of a save's temporary file for the target file name `name`:
/// `.<name>.<pid>-<id>.tmp`, the name's bytes as they are (not made UTF-8)
/// and cut short so that the whole fits in [`NAME_MAX`]: any target name that
/// fits gets a temporary file that fits.
fn temp_name(name: &OsStr, pid: u32, id: u64) -> OsString {
    let suffix = format!(".{pid}-{id:016x}.tmp");
    let room = NAME_MAX - 1 - suffix.len();
    let name = name.as_bytes();
    let mut temp = Vec::with_capacity(NAME_MAX);
    temp.push(b'.');
    temp.extend_from_slice(&name[..name.len().min(room)]);
    temp.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(temp)
}

/// Streams blocks of records into the temporary file.
struct BlockWriter<'p> {
    temp: TempFile,
    /// The payload of the block being assembled.
    payload: Vec<u8>,
    records_in_block: u32,
    header: Header,
    /// Bytes written to the file so far.
    written: u64,
    /// Payload bytes after which a block is closed ([`BLOCK_TARGET`]).
    block_target: usize,
    progress: &'p mut dyn FnMut(u64),
}

impl BlockWriter<'_> {
    fn file(&mut self) -> &mut File {
        self.temp.file.as_mut().expect("open until the save ends")
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let result = self.file().write_all(bytes);
        result.map_err(|e| Error::io("write", &self.temp.path, &e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes one record (the key and value of a live entry).
    fn record(&mut self, key: &[u8], value: &[u8], expires_at_unix_ms: u64) -> Result<()> {
        let fixed = RecordHeader {
            key_len: key.len() as u32,
            value_len: value.len() as u32,
            expires_at_unix_ms,
        }
        .encode();
        let len = RECORD_HEADER_LEN + key.len() + value.len();
        if !self.payload.is_empty() && self.payload.len() + len > self.block_target {
            self.flush_block()?;
        }
        if len >= self.block_target {
            // A big value goes straight from the entry to the file, in a block
            // of its own, with no copy in between.
            let mut checksum = Xxh3::new();
            for part in [&fixed[..], key, value] {
                checksum.update(part);
            }
            let block = self.next_block(1, len as u64, checksum.digest());
            self.write(&block)?;
            for part in [&fixed[..], key, value] {
                self.write(part)?;
            }
            self.count(1, key.len() + value.len());
            (self.progress)(self.written);
            return Ok(());
        }
        self.payload.extend_from_slice(&fixed);
        self.payload.extend_from_slice(key);
        self.payload.extend_from_slice(value);
        self.records_in_block += 1;
        Ok(())
    }

    /// The header of the next block, counted.
    fn next_block(&mut self, records: u32, payload_len: u64, checksum: u64) -> [u8; 48] {
        let block = BlockHeader {
            record_count: records,
            index: self.header.block_count,
            snapshot_id: self.header.snapshot_id,
            payload_len,
            payload_checksum: checksum,
        };
        self.header.block_count += 1;
        block.encode()
    }

    fn count(&mut self, records: u64, data: usize) {
        self.header.record_count += records;
        self.header.data_bytes += data as u64;
    }

    /// Writes the block being assembled, if it holds any record.
    fn flush_block(&mut self) -> Result<()> {
        if self.records_in_block == 0 {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.payload);
        let records = self.records_in_block;
        let block = self.next_block(records, payload.len() as u64, xxh3_64(&payload));
        self.write(&block)?;
        self.write(&payload)?;
        let data = payload.len() - records as usize * RECORD_HEADER_LEN;
        self.count(u64::from(records), data);
        self.payload = payload;
        self.payload.clear();
        self.records_in_block = 0;
        (self.progress)(self.written);
        Ok(())
    }
}

/// Copies the slot pointers of `shard`'s table (the walk the flag is held
/// for) into `out`.
fn copy_slots(shard: &Shard, guard: &crossbeam_epoch::Guard, out: &mut Vec<*const Entry>) {
    out.clear();
    shard.table(guard).for_each_chain_bucket(|_, b| {
        // The reader's order: the tophash word, then the slots it marks.
        for index in bucket::occupied(b.tophash_word()) {
            let entry = b.slots[index].load(Ordering::Acquire);
            if !entry.is_null() {
                out.push(entry);
            }
        }
    });
}

/// Where a save to `path` puts its file: `path` itself when nothing is there
/// or a regular file is, and for a symbolic link the file it leads to (a rename
/// over the link would put the snapshot in the link's place and leave the
/// file it named as it was). Refused before anything is written, with
/// [`Error::Io`] at the step "stat" (`EISDIR` for a directory, no errno
/// otherwise): a path that names anything else, since
/// the rename would replace it (a directory; a device, FIFO or socket: saving
/// to `/dev/full` as root replaced the device node with a snapshot), and a
/// link that leads nowhere (a loop included). With the path, the metadata of
/// the regular file it replaces, if there is one.
fn target(path: &Path) -> Result<(std::borrow::Cow<'_, Path>, Option<std::fs::Metadata>)> {
    let refuse = |path: &Path, what: String, errno: Option<i32>| Error::Io {
        op: "stat",
        path: path.to_path_buf(),
        kind: errno.map_or(std::io::ErrorKind::InvalidInput, |errno| {
            std::io::Error::from_raw_os_error(errno).kind()
        }),
        errno,
        message: what,
    };
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((std::borrow::Cow::Borrowed(path), None))
        }
        Err(e) => return Err(Error::io("stat", path, &e)),
    };
    let (path, metadata) = if metadata.file_type().is_symlink() {
        let real = std::fs::canonicalize(path).map_err(|e| {
            refuse(
                path,
                format!("a symbolic link that leads to no file ({e}): nothing to replace"),
                None,
            )
        })?;
        let metadata = std::fs::metadata(&real).map_err(|e| Error::io("stat", &real, &e))?;
        (std::borrow::Cow::Owned(real), metadata)
    } else {
        (std::borrow::Cow::Borrowed(path), metadata)
    };
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok((path, Some(metadata)));
    }
    // A directory gets the errno the rename would have failed with.
    let (what, errno) = if file_type.is_dir() {
        ("a directory", Some(libc::EISDIR))
    } else {
        (
            super::file::kind_of(&file_type).unwrap_or("not a file"),
            None,
        )
    };
    Err(refuse(
        &path,
        format!("not a regular file ({what}): a save would replace it"),
        errno,
    ))
}

/// Creates a save's temporary file: `0600` when it will replace a file, whose
/// access `keep_access` then gives it (made at the umask's `0644` and narrowed
/// after, it could be opened in between, and read on as it is written, by
/// users the replaced file kept out), else at the umask's.
fn create_temp(path: &Path, replacing: bool) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if replacing { 0o600 } else { 0o666 })
        .open(path)
        .map_err(|e| Error::io("create", path, &e))
}

/// Gives the temporary file (created `0600`) the access of the file it will
/// replace: its owner and group where this process may give them (root; a
/// group it belongs to), else the saver's, as any atomic replace makes them;
/// then its permission bits (a snapshot kept `0600` stays so, instead of
/// taking the umask's `0644` at the rename), but for the group's bits when the
/// group could not be kept: those were granted to another group. Set in that
/// order, the file is never more open than the one it replaces. Failing to set
/// the bits fails the save (step "create": the file would not have the access
/// asked of it); the owner and group are best effort. ACLs and extended
/// attributes (an SELinux label) are not carried over.
fn keep_access(temp: &TempFile, replaced: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let file = temp.file.as_ref().expect("open until renamed");
    // Both, else the group alone (a user may give a file to a group it is in).
    let group_kept = std::os::unix::fs::fchown(file, Some(replaced.uid()), Some(replaced.gid()))
        .is_ok()
        || std::os::unix::fs::fchown(file, None, Some(replaced.gid())).is_ok();
    let bits = match group_kept {
        true => replaced.mode() & 0o777,
        false => replaced.mode() & 0o707,
    };
    file.set_permissions(std::fs::Permissions::from_mode(bits))
        .map_err(|e| Error::io("create", &temp.path, &e))
}

/// Saves `map` to `path` (see the module docs), closing blocks at
/// `block_target` payload bytes ([`BLOCK_TARGET`] but in tests of small files
/// with many blocks).
pub(crate) fn save(
    map: &Map,
    path: &Path,
    block_target: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<SaveReport> {
    if names_no_file(path) {
        return Err(Error::InvalidArgument(format!(
            "snapshot path {} names no file",
            path.display()
        )));
    }
    let (path, replaced) = target(path)?;
    let path = &*path;
    let dir = directory_of(path);
    let snapshot_id = crate::hash::random_seed();
    let temp_path = dir.join(temp_name(
        path.file_name().expect("checked"),
        std::process::id(),
        snapshot_id,
    ));
    let file = create_temp(&temp_path, replaced.is_some())?;
    let temp = TempFile {
        path: temp_path,
        file: Some(file),
        renamed: false,
    };
    if let Some(replaced) = &replaced {
        keep_access(&temp, replaced)?;
    }
    let now = Now::read(&map.config().clock);
    let mut writer = BlockWriter {
        temp,
        payload: Vec::with_capacity(block_target.min(BLOCK_TARGET)),
        records_in_block: 0,
        header: Header {
            writer: library_version(),
            snapshot_id,
            saved_at_unix_ms: now.wall_ms,
            file_len: 0,
            block_count: 0,
            record_count: 0,
            data_bytes: 0,
        },
        written: 0,
        block_target: block_target.max(1),
        progress,
    };
    // The header goes in last, once the counts are known; until then the file
    // starts with zeros, which no reader takes for a snapshot.
    writer.write(&[0u8; HEADER_LEN])?;
    let mut expired = 0u64;
    let mut slots = Vec::new();
    for shard in map.shards() {
        let guard = match map.mode() {
            Mode::Concurrent => {
                let held = map.lock_for_write(shard)?;
                let guard = epoch::pin();
                copy_slots(shard, &guard, &mut slots);
                drop(held);
                guard
            }
            Mode::Exclusive => map.checked_read(|| {
                let guard = epoch::pin();
                copy_slots(shard, &guard, &mut slots);
                guard
            })?,
        };
        let clock_now = map.config().clock.now_nanos();
        for (n, &entry) in slots.iter().enumerate() {
            // The entries lie all over memory: fetch a few ahead so that
            // their misses overlap (2M entries: a save took 212 ms, now 139).
            if let Some(&ahead) = slots.get(n + 16) {
                entry::prefetch(ahead);
            }
            // SAFETY: each entry was linked when its slot was copied under
            // `guard`, which is still pinned, so it is live and immutable.
            let (key, value, deadline) = unsafe {
                (
                    entry::key(entry),
                    entry::value(entry),
                    entry::deadline(entry),
                )
            };
            let expires_at = match deadline {
                None => 0,
                Some(deadline) if deadline <= clock_now => {
                    expired += 1;
                    continue;
                }
                Some(deadline) => match now.expires_at(deadline) {
                    Some(at) => at,
                    None => {
                        expired += 1;
                        continue;
                    }
                },
            };
            writer.record(key, value, expires_at)?;
        }
        drop(guard);
    }
    writer.flush_block()?;
    writer.header.file_len = writer.written;
    let header = writer.header.encode();
    let temp_path = writer.temp.path.clone();
    let file = writer.file();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&header))
        .map_err(|e| Error::io("write", &temp_path, &e))?;
    file.sync_all()
        .map_err(|e| Error::io("fsync", &temp_path, &e))?;
    drop(writer.temp.file.take());
    std::fs::rename(&temp_path, path).map_err(|e| Error::io("rename", path, &e))?;
    writer.temp.renamed = true;
    // The rename is durable once the directory is: until then a power loss may
    // bring back the previous file (never a partial one).
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, &e))?;
    (writer.progress)(writer.written);
    Ok(SaveReport {
        records: writer.header.record_count,
        blocks: writer.header.block_count,
        bytes: writer.written,
        expired_skipped: expired,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::config::Config;
    use crate::map::Map;

    /// The file that will replace another is private from its creation,
    /// whatever the umask lets through (0644 by default): a moment at the
    /// umask's bits would let anyone open it and read on as it is written.
    #[test]
    fn a_temporary_file_that_will_replace_a_file_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir();
        for (replacing, name) in [(true, "private"), (false, "public")] {
            let path = dir.join(format!("mapcache-temp-{name}-{}.tmp", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let file = super::create_temp(&path, replacing).unwrap();
            let mode = file.metadata().unwrap().permissions().mode() & 0o777;
            drop(file);
            std::fs::remove_file(&path).unwrap();
            match replacing {
                // Under any umask.
                true => assert_eq!(mode, 0o600, "{mode:o}"),
                // The umask's (the owner's read and write under any usual one).
                false => assert_eq!(mode & 0o600, 0o600, "{mode:o}"),
            }
        }
    }

    #[test]
    fn a_path_naming_a_directory_names_no_file() {
        use std::path::Path;
        for path in [
            "/", ".", "..", "a/..", "a/", "a/.", "/tmp/", "/tmp/.", "a/./",
        ] {
            assert!(super::names_no_file(Path::new(path)), "{path}");
        }
        for path in ["a", "/tmp/a", "a/b", "./a", "a/.b", "a/b."] {
            assert!(!super::names_no_file(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn a_target_whose_name_is_near_name_max_saves() {
        // 250 bytes: a valid file name (NAME_MAX is 255), whose temporary
        // file's name must still fit.
        let dir =
            std::env::temp_dir().join(format!("mapcache-save-long-name-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("n".repeat(250));
        let map = Map::new(Config::default()).unwrap();
        map.insert(b"k", b"v").unwrap();
        map.save(&target).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![target.file_name().unwrap().to_owned()]);
        assert_eq!(Map::load(&target, Config::default()).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
