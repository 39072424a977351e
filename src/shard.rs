//! A shard: one table behind an epoch-protected pointer, the write flag of
//! concurrent mode, and the entry count. Every method here that changes the
//! table takes the proof that the caller holds the flag that serialises it.
//!
//! Growth: the writer that finds its shard over the load factor (or with too many
//! overflow buckets since the last build) builds the next table with the rehash
//! engine, publishes it with one Release swap and retires the old one through the
//! epoch. Readers on the old table keep reading a complete old table; no reader
//! ever sees a half-moved bucket.

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};

use crate::error::Result;
use crate::hash::KeyHash;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::write_flag::{FlagGuard, WriteFlag};
use crate::table::entry::{self, Entry, OwnedEntry};
use crate::table::rehash::RehashEngine;
use crate::table::table::{self, Slot, Table, MAX_LOG2};

/// What a writer needs beyond its shard to grow it.
pub(crate) struct Growth<'a> {
    pub(crate) engine: &'a dyn RehashEngine,
    pub(crate) grows: &'a std::sync::atomic::AtomicU64,
    pub(crate) rebuilds: &'a std::sync::atomic::AtomicU64,
}

/// A shard (see the module docs). Aligned to 128 bytes so that two shards' write
/// flags never share a cache line (or an adjacent-line prefetch pair).
#[repr(align(128))]
pub(crate) struct Shard {
    /// The current table; never null while the map is alive.
    table: Atomic<Table>,
    /// Serialises this shard's writers in concurrent mode.
    pub(crate) flag: WriteFlag,
    /// Entries in the table. Written only under the flag.
    len: AtomicUsize,
}

/// Retires an entry that no table links any more.
///
/// # Safety
/// `entry` was unlinked from the current table by the caller, who holds the flag,
/// so that no reader pinning after this call can reach it.
unsafe fn retire(guard: &Guard, entry: *mut Entry) {
    // SAFETY: per the contract the entry is unreachable for new pins; pins that
    // reached it before end before the epoch lets this run.
    unsafe { guard.defer_unchecked(move || entry::free(entry)) };
}

impl Shard {
    pub(crate) fn new(log2: u32) -> Result<Shard> {
        Ok(Shard {
            table: Atomic::new(Table::new(log2)?),
            flag: WriteFlag::new(),
            len: AtomicUsize::new(0),
        })
    }

    /// The current table, valid while `guard` is pinned.
    #[inline]
    pub(crate) fn table<'g>(&self, guard: &'g Guard) -> &'g Table {
        let table = self.table.load(Ordering::Acquire, guard);
        // SAFETY: the pointer is never null while the map lives (it is swapped,
        // never cleared, until drop), and the table it points to is retired through
        // the epoch, so it outlives the pin.
        unsafe { table.deref() }
    }

    /// Entries in the shard.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Inserts or replaces; `Ok(true)` when it replaced.
    pub(crate) fn upsert(
        &self,
        _held: &FlagGuard<'_>,
        growth: &Growth<'_>,
        hash: KeyHash,
        key: &[u8],
        new: OwnedEntry,
        guard: &Guard,
    ) -> Result<bool> {
        let table = self.table(guard);
        match table.locate(hash, key) {
            Slot::Found { bucket, index, .. } => {
                let old = bucket.slots[index].swap(new.into_raw(), Ordering::AcqRel);
                // SAFETY: `old` was just unlinked under the flag.
                unsafe { retire(guard, old) };
                Ok(true)
            }
            Slot::Vacant { free, tail } => {
                self.add(growth, table, free, tail, hash, key, new, guard)?;
                Ok(false)
            }
        }
    }

    /// Inserts when absent (`Ok(None)`); otherwise returns a copy of the present
    /// value and drops `new`.
    pub(crate) fn insert_if_absent(
        &self,
        _held: &FlagGuard<'_>,
        growth: &Growth<'_>,
        hash: KeyHash,
        key: &[u8],
        new: OwnedEntry,
        guard: &Guard,
    ) -> Result<Option<Vec<u8>>> {
        let table = self.table(guard);
        match table.locate(hash, key) {
            Slot::Found { bucket, index, .. } => {
                let present = bucket.slots[index].load(Ordering::Relaxed);
                // SAFETY: linked entries are live while the flag is held.
                Ok(Some(unsafe { entry::value(present) }.to_vec()))
            }
            Slot::Vacant { free, tail } => {
                self.add(growth, table, free, tail, hash, key, new, guard)?;
                Ok(None)
            }
        }
    }

    /// Replaces the value with `new` if it equals `expected`: `Some(true)` when
    /// swapped, `Some(false)` when it differed, `None` when the key is absent.
    pub(crate) fn compare_and_swap(
        &self,
        _held: &FlagGuard<'_>,
        hash: KeyHash,
        key: &[u8],
        expected: &[u8],
        new: OwnedEntry,
        guard: &Guard,
    ) -> Option<bool> {
        let table = self.table(guard);
        let Slot::Found { bucket, index, .. } = table.locate(hash, key) else {
            return None;
        };
        let current = bucket.slots[index].load(Ordering::Relaxed);
        // SAFETY: linked entries are live while the flag is held.
        if unsafe { entry::value(current) } != expected {
            return Some(false);
        }
        bucket.slots[index].store(new.into_raw(), Ordering::Release);
        // SAFETY: `current` was just unlinked under the flag.
        unsafe { retire(guard, current) };
        Some(true)
    }

    /// Removes the key; `true` when it was present.
    pub(crate) fn remove(
        &self,
        _held: &FlagGuard<'_>,
        hash: KeyHash,
        key: &[u8],
        guard: &Guard,
    ) -> bool {
        let table = self.table(guard);
        let Slot::Found {
            head,
            bucket,
            index,
        } = table.locate(hash, key)
        else {
            return false;
        };
        let old = table.unlink(head, bucket, index);
        // SAFETY: `old` was just unlinked under the flag.
        unsafe { retire(guard, old) };
        self.len.store(self.len() - 1, Ordering::Relaxed);
        true
    }

    /// Replaces the table with an empty one of `2^log2` buckets.
    pub(crate) fn clear(&self, _held: &FlagGuard<'_>, log2: u32, guard: &Guard) -> Result<()> {
        let fresh = Owned::new(Table::new(log2)?);
        let old = self.table.swap(fresh, Ordering::AcqRel, guard);
        self.len.store(0, Ordering::Relaxed);
        // SAFETY: the old table was unlinked under the flag; it alone links its
        // entries, and both are freed only after every pin that could reach them.
        unsafe {
            guard.defer_unchecked(move || {
                let old = old.into_owned();
                old.free_entries();
                drop(old);
            })
        };
        Ok(())
    }

    /// Adds a new key at a vacancy, growing or rebuilding the table first when due.
    #[allow(clippy::too_many_arguments)]
    fn add<'g>(
        &self,
        growth: &Growth<'_>,
        mut table: &'g Table,
        mut free: Option<(&'g crate::table::bucket::Bucket, usize)>,
        mut tail: &'g crate::table::bucket::Bucket,
        hash: KeyHash,
        key: &[u8],
        new: OwnedEntry,
        guard: &'g Guard,
    ) -> Result<()> {
        let len = self.len();
        let log2 = table.log2();
        let next_log2 = if table::over_load(len + 1, log2) && log2 < MAX_LOG2 {
            Some(log2 + 1)
        } else if table::too_many_overflow(table.extra_overflow(), log2) {
            Some(log2)
        } else {
            None
        };
        if let Some(next_log2) = next_log2 {
            table = self.publish_rehash(growth, table, next_log2, guard)?;
            match table.locate(hash, key) {
                Slot::Vacant { free: f, tail: t } => (free, tail) = (f, t),
                Slot::Found { .. } => unreachable!("the key was absent before the rehash"),
            }
        }
        table.place(free, tail, hash, new.into_raw());
        self.len.store(len + 1, Ordering::Relaxed);
        Ok(())
    }

    /// Builds the `2^new_log2` table from `old`, publishes it and retires `old`.
    fn publish_rehash<'g>(
        &self,
        growth: &Growth<'_>,
        old: &'g Table,
        new_log2: u32,
        guard: &'g Guard,
    ) -> Result<&'g Table> {
        let same_size = new_log2 == old.log2();
        let new = Owned::new(growth.engine.rehash(old, new_log2)?).into_shared(guard);
        let old = self.table.swap(new, Ordering::Release, guard);
        // SAFETY: the old table was unlinked under the flag. Its entries are linked
        // by the new table, so only its arrays are freed (Table's drop), after every
        // reader that reached it has unpinned.
        unsafe { guard.defer_destroy(old) };
        let counter = if same_size {
            growth.rebuilds
        } else {
            growth.grows
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `new` was just published and is retired only by a later writer
        // under the flag, through the epoch, which `guard` holds back.
        Ok(unsafe { new.deref() })
    }

    /// Frees the table and its entries.
    ///
    /// # Safety
    /// No other thread can reach the shard (its map is being dropped).
    pub(crate) unsafe fn destroy(&mut self) {
        // SAFETY: per the contract nobody else can access the shard, so an
        // unprotected guard is sound and the table is ours alone.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let table = self.table.swap(Shared::null(), Ordering::Relaxed, guard);
            if !table.is_null() {
                let table = table.into_owned();
                table.free_entries();
            }
        }
    }
}
