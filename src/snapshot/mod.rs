//! Snapshots: a live map saved to a file, and a map (new or existing) loaded
//! from one, for a cache that restarts warm. The file format is specified in
//! `docs/FORMAT.md` (versioned, checksummed blocks of records with absolute
//! wall-clock expiry); the design and its measurements are in
//! `docs/ARCHITECTURE.md`, "Snapshots".
//!
//! - `format.rs`: the byte layout and the checks on each structure;
//! - `wall.rs`: deadlines on the cache's monotonic clock to and from wall time;
//! - `save.rs`: the writer (temporary file, fsync, rename, fsync of the
//!   directory; writers keep running);
//! - `file.rs`: the reader's file (shared advisory lock, mapping, copies out);
//! - `load.rs`: validation of the whole file, then the bulk build.

mod file;
mod format;
mod load;
mod save;
mod wall;

use std::path::Path;

use crate::config::Config;
use crate::error::Result;
use crate::map::Map;

/// What [`Map::save`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Records written (live entries).
    pub records: u64,
    /// Blocks written.
    pub blocks: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Entries found expired during the save and left out.
    pub expired_skipped: u64,
}

/// What [`Map::load_into`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Records in the file.
    pub records: u64,
    /// Records stored in the cache (inserted or replacing a value). A bounded
    /// cache may have evicted some of them again as later ones arrived.
    pub loaded: u64,
    /// Of those, records that replaced a value the cache held.
    pub replaced: u64,
    /// Records left out because they had expired (wall-clock) at load time.
    pub expired: u64,
    /// Records left out because their entry is larger than a shard's byte
    /// budget ([`crate::Error::TooLarge`] for a write).
    pub too_large: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// The file bytes a load presizes for even where the device counts fewer
/// (see `Map::load_with_report`).
const PRESIZE_FLOOR: u64 = 64 << 20;

impl Map {
    /// Saves the map to a snapshot file at `path`, replacing any file there
    /// atomically: the records go to a temporary file in the same directory,
    /// which is fsynced and renamed over `path`, and the directory is fsynced.
    /// A crash at any moment leaves either the previous file or the complete
    /// new one; a save that fails (with [`crate::Error::Io`]) leaves the
    /// previous file as it was and removes its temporary file. Only a regular
    /// file is replaced: a `path` that names a directory, a device, a FIFO or a
    /// socket is refused before anything is written ([`crate::Error::Io`] at
    /// the step "stat"), and a symbolic link is followed (the file it leads to
    /// is replaced; a link that leads to no file is refused). The new file
    /// gets the permission bits of the file it replaces (a snapshot kept
    /// `0600` stays so), and its owner and group where the process may set
    /// them, else the saver's.
    ///
    /// Writers keep working during a save: each shard's write flag is held only
    /// while its slot pointers are copied, never for file I/O. Every key's
    /// record holds the value the key had at the moment its shard was copied,
    /// a moment during the save; shards are copied one after another, so the
    /// file is not one point-in-time image of the whole map. Entries expired
    /// at that moment are left out; the others keep their expiry as absolute
    /// wall-clock time. In [`crate::Mode::Exclusive`] a save is a read, and
    /// fails with [`crate::Error::ConcurrentReadWrite`] when another thread
    /// writes during a copy.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("mapcache-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("cache.snap");
    /// let map = mapcache::Map::new(Default::default())?;
    /// map.insert(b"k", b"v")?;
    /// assert_eq!(map.save(&path)?.records, 1);
    /// let warm = mapcache::Map::load(&path, Default::default())?;
    /// assert_eq!(warm.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), mapcache::Error>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<SaveReport> {
        save::save(self, path.as_ref(), format::BLOCK_TARGET, &mut |_| {})
    }

    /// As [`Map::save`], calling `progress(bytes_written)` after each block
    /// (about every MiB) and once at the end with the file's length: for a
    /// progress bar. Keep it short: the calls made between records run under
    /// the save's epoch pin, which holds back the freeing of what writers of
    /// any map retire meanwhile.
    pub fn save_with_progress(
        &self,
        path: impl AsRef<Path>,
        mut progress: impl FnMut(u64),
    ) -> Result<SaveReport> {
        save::save(self, path.as_ref(), format::BLOCK_TARGET, &mut progress)
    }

    /// As [`Map::save`], closing each block once its payload reaches
    /// `block_target` bytes instead of 1 MiB: for tests that need small files
    /// of many blocks.
    #[doc(hidden)]
    pub fn debug_save_with_block_target(
        &self,
        path: impl AsRef<Path>,
        block_target: usize,
    ) -> Result<SaveReport> {
        save::save(self, path.as_ref(), block_target, &mut |_| {})
    }

    /// A new map configured by `config`, holding the snapshot at `path`.
    ///
    /// The whole file is validated (every length, count and offset against
    /// the file's size, every checksum) before the map is returned; a file that
    /// is damaged, truncated, appended to or of a newer format fails with
    /// [`crate::Error::Corrupt`], saying what was wrong and at which offset.
    /// Records whose wall-clock expiry has passed are left out. The map is
    /// sized for the snapshot up front: its [`Config::initial_capacity`] is
    /// raised to the records in the file when it is smaller. A bounded cache
    /// smaller than the snapshot keeps what its eviction policy keeps as the
    /// records arrive in file order. Of two records of one key (which a save
    /// never writes), the later one wins.
    ///
    /// Only a regular file is read: a path naming a FIFO, a device, a socket
    /// or a directory fails at once with [`crate::Error::Io`] (`op` "open"; a
    /// FIFO is opened without waiting for a writer). This holds for
    /// [`Map::load_with_report`] and [`Map::load_into`] as well.
    pub fn load(path: impl AsRef<Path>, config: Config) -> Result<Map> {
        Map::load_with_report(path, config).map(|(map, _)| map)
    }

    /// As [`Map::load`], also saying what the load did: the file's records,
    /// those stored, those left out as expired (and, for a bounded cache,
    /// those larger than a shard's byte budget). In a new map a record
    /// counts as `replaced` when an earlier record of the file named its key;
    /// a bounded cache may have evicted some stored records again as later
    /// ones arrived.
    pub fn load_with_report(path: impl AsRef<Path>, config: Config) -> Result<(Map, LoadReport)> {
        let file = file::Mapped::open(path.as_ref())?;
        let survey = load::survey(&file)?;
        // Presized for the records the file claims (its payloads unverified
        // yet), but no more than its bytes on the device can hold, or its
        // first 64 MiB where that is more: a sparse file of a few KiB that
        // claims 2^28 records would otherwise commit gigabytes of tables before
        // its first payload fails its checksum. (The floor is for a file whose
        // blocks the device does not count yet, or at all: ZFS until its
        // transaction commits, a small file stored inline. Past it, the tables
        // grow as the records come.)
        let counted = file.stored_bytes().max(file.len().min(PRESIZE_FLOOR));
        let storable = counted / format::RECORD_HEADER_LEN as u64;
        let records = usize::try_from(survey.records().min(storable)).unwrap_or(usize::MAX);
        let wanted = match config.max_entries {
            0 => records,
            bound => records.min(bound),
        };
        // Headroom for shards that get more than their share.
        let wanted = wanted.saturating_add(wanted / 16);
        let map = Map::new(Config {
            initial_capacity: config
                .initial_capacity
                .max(wanted.min(crate::MAX_INITIAL_CAPACITY)),
            ..config
        })?;
        let report = if map.config().is_bounded() {
            // The policy admits and evicts as the records arrive.
            let snapshot = load::parse(&file, survey, &map)?;
            drop(file);
            load::apply(&map, snapshot, load::Access::Private)?
        } else {
            load::fill_new(&file, survey, &map)?
        };
        Ok((map, report))
    }

    /// Loads the snapshot at `path` into this (live) cache. Snapshot records
    /// overwrite the values of the keys they name, as an insert would; keys
    /// the snapshot does not name are left alone. The whole file is validated
    /// first (see [`Map::load`]): a bad file fails with
    /// [`crate::Error::Corrupt`] and the cache is unchanged. Only an
    /// allocation failure while the records are stored
    /// ([`crate::Error::OutOfMemory`]) leaves the records stored until then.
    ///
    /// Other threads may read and write meanwhile: each shard takes its
    /// records in chunks of a few thousand under its write flag. In
    /// [`crate::Mode::Exclusive`] the load is one write: it fails with
    /// [`crate::Error::ConcurrentWrite`] if another thread is writing, before
    /// changing anything, and holds the map's flag until it is done.
    pub fn load_into(&self, path: impl AsRef<Path>) -> Result<LoadReport> {
        let path = path.as_ref();
        let file = file::Mapped::open(path)?;
        let survey = load::survey(&file)?;
        let snapshot = load::parse(&file, survey, self)?;
        drop(file);
        load::apply(self, snapshot, load::Access::Live)
    }
}
