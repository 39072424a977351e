//! Loading a snapshot: validate the whole file, then build the tables in bulk.
//!
//! 1. **Validate** (nothing is changed yet). The header is copied out of the
//!    mapping and checked (`format.rs`); the block headers are walked in file
//!    order, each copied out and checked against the header and the file's
//!    length before its payload length is used; then, across threads, each
//!    block's payload is copied out, checksummed and parsed, its records'
//!    keys hashed. Consecutive blocks smaller than a MiB are taken together as
//!    one [`Unit`] of work (one copy, one record list), so that a file of tiny
//!    blocks costs no more bookkeeping than one of the writer's 1 MiB blocks. Expired records are dropped here. Every length, count and
//!    offset is checked against the mapping's size before it is used, and no
//!    allocation is sized by a number that was not: a payload copy is at most
//!    the file's length, a record list at most a sixteenth of its payload.
//!    The file's length alone is no bound on what it holds (a sparse file of a
//!    few KiB on the device can be a terabyte long), so the block list grows
//!    only as block headers pass their checks (each a real 48 bytes), and
//!    `Map::load` presizes its tables for the records the file claims but no
//!    more than its bytes on the device can hold (`Mapped::stored_bytes`).
//! 2. **Apply.** The records are grouped by shard (a stable counting sort),
//!    and each shard's batch is inserted in file order under one acquisition
//!    of its write flag (in chunks, for a live cache), shards spread over
//!    threads, with the bucket and the record eight ahead prefetched, so that
//!    several cache misses are in flight at once. `Map::load` first sizes the
//!    new map for the snapshot, so its tables never grow while it loads.
//!
//! A file that fails validation is reported as [`Error::Corrupt`] (or
//! [`Error::Io`]) before step 2, so a cache loaded into is unchanged. What
//! step 2 can still fail with is an allocation failure
//! ([`Error::OutOfMemory`]), which leaves the records applied until then.
//!
//! `Map::load` into an unbounded map ([`fill_new`]) fuses the two steps, since
//! nobody sees the new map until it is complete (a bad file drops it): each
//! block is copied into a buffer of the loading thread's own, checked, parsed
//! and made into entries, and each shard's table is then built from the flat
//! array of its entries by the rehash engine's count, lay-out and fill
//! (`Writing::fill_empty`, `rehash::build_flat`), with no insert at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::file::Mapped;
use super::format::{
    parse_block, BlockHeader, Header, RecordSpan, BLOCK_HEADER_LEN, HEADER_LEN, RECORD_HEADER_LEN,
};
use super::wall::Now;
use super::LoadReport;
use crate::cache::bounds;
use crate::config::{cores, Mode};
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use crate::map::Map;
use crate::shard::Writing;
use crate::sync::epoch;
use crate::sync::thread_id;
use crate::table::entry::{self, Entry, Pending, Trailer};
use crate::table::slab::Slab;

/// A validated record: its key's hash, and where it is (the [`Unit`], and the
/// offset of its record header in the unit's copy).
#[derive(Clone, Copy)]
struct Rec {
    hash: KeyHash,
    unit: u32,
    at: u32,
}

/// A validated snapshot, in memory of our own.
pub(crate) struct Validated {
    header: Header,
    /// Each unit's copy.
    payloads: Vec<Vec<u8>>,
    /// The live records, by unit, in file order.
    records: Vec<Vec<Rec>>,
    expired: u64,
    file_len: u64,
}

/// Starts loading the cache line at `at` (a hint: never faults).
#[inline(always)]
fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no architectural effect.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Runs `work(i)` for every `i` in `0..n` on up to `threads` scoped threads
/// (the caller's among them), each taking the next index from a counter.
fn spread(n: usize, threads: usize, work: impl Fn(usize) + Sync) {
    spread_with(n, threads, || (), |(), i| work(i));
}

const _: () = assert!(super::format::MAX_PAYLOAD_LEN < 1 << 32);

/// What step 1 keeps of a checked block header: 24 bytes, where a file can
/// hold a block per 64 bytes.
#[derive(Clone, Copy)]
struct Surveyed {
    /// File offset of the payload.
    payload_at: u64,
    /// At most [`super::format::MAX_PAYLOAD_LEN`], under 2^32.
    payload_len: u32,
    record_count: u32,
    payload_checksum: u64,
}

impl Surveyed {
    /// The block header it was made from, as block `index` of `header`'s file.
    fn header(&self, index: usize, header: &Header) -> BlockHeader {
        BlockHeader {
            record_count: self.record_count,
            index: index as u64,
            snapshot_id: header.snapshot_id,
            payload_len: u64::from(self.payload_len),
            payload_checksum: self.payload_checksum,
        }
    }

    fn payload_end(&self) -> u64 {
        self.payload_at + u64::from(self.payload_len)
    }
}

/// Consecutive blocks, `blocks[first..end]`, copied out and parsed as one
/// piece of work: from the first payload's start to the last one's end
/// (the block headers between them ride along). A unit holds the blocks
/// that end within [`UNIT_BYTES`] of its start, or a single larger block,
/// so its span is under 2^32 and offsets into its copy fit a `u32`.
#[derive(Clone, Copy)]
struct Unit {
    first: usize,
    end: usize,
}

/// The span a unit of several blocks stays within: the writer's block size,
/// so that each block of a file mapcache wrote is a unit of its own, and a
/// file of 64-byte blocks is read in units of about 16,000.
const UNIT_BYTES: u64 = super::format::BLOCK_TARGET as u64;

/// The blocks, grouped into units in file order.
fn units(blocks: &[Surveyed]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        match units.last_mut() {
            Some(unit) if block.payload_end() - blocks[unit.first].payload_at <= UNIT_BYTES => {
                unit.end = i + 1;
            }
            _ => units.push(Unit {
                first: i,
                end: i + 1,
            }),
        }
    }
    units
}

impl Unit {
    /// File offset and length of its copy.
    fn span(&self, blocks: &[Surveyed]) -> (u64, u64) {
        let start = blocks[self.first].payload_at;
        (start, blocks[self.end - 1].payload_end() - start)
    }

    /// Records in its blocks (each block's at most a 16th of its payload).
    fn records(&self, blocks: &[Surveyed]) -> usize {
        blocks[self.first..self.end]
            .iter()
            .map(|b| b.record_count as usize)
            .sum()
    }

    /// Checks and parses each of its blocks from `copy` (its span), in file
    /// order, calling `each` with record spans relative to `copy`; returns
    /// the key and value bytes. The first bad block fails it.
    fn parse(
        &self,
        copy: &[u8],
        blocks: &[Surveyed],
        header: &Header,
        mut each: impl FnMut(RecordSpan),
    ) -> Result<u64> {
        let start = blocks[self.first].payload_at;
        let mut data = 0u64;
        for (index, block) in blocks.iter().enumerate().take(self.end).skip(self.first) {
            let base = (block.payload_at - start) as u32;
            let payload = &copy[base as usize..][..block.payload_len as usize];
            data += parse_block(
                payload,
                block.payload_at,
                &block.header(index, header),
                |span| {
                    each(RecordSpan {
                        key_at: base + span.key_at,
                        ..span
                    })
                },
            )?;
        }
        Ok(data)
    }
}

/// The first half of step 1: the header and every block header checked, in
/// file order (the structure of the file, before any payload is read).
pub(crate) struct Survey {
    header: Header,
    blocks: Vec<Surveyed>,
    file_len: u64,
}

impl Survey {
    /// Records in the file (checked against the block headers and the file's
    /// size: at most a 16th of the file's length).
    pub(crate) fn records(&self) -> u64 {
        self.header.record_count
    }
}

/// The first half of step 1 (see [`Survey`]).
pub(crate) fn survey(file: &Mapped) -> Result<Survey> {
    let file_len = file.len();
    let head = file.copy_out(0, file_len.min(HEADER_LEN as u64))?;
    let header = Header::decode(&head, file_len)?;
    // The block headers, in file order: each is checked before its payload
    // length moves the walk on. The list grows as they pass, never reserved
    // from `block_count`: that was checked against the file's length only,
    // which a sparse file of a few KiB on disk can make terabytes (an up-front
    // reservation of 24 bytes a claimed block then aborted the process).
    let mut blocks: Vec<Surveyed> = Vec::new();
    let mut offset = HEADER_LEN as u64;
    let mut records = 0u64;
    for index in 0..header.block_count {
        if file_len - offset < BLOCK_HEADER_LEN as u64 {
            return Err(Error::corrupt(
                offset,
                format!(
                    "the file ends inside the header of block {index} ({} bytes left)",
                    file_len - offset
                ),
            ));
        }
        let bytes: [u8; BLOCK_HEADER_LEN] = file
            .copy_out(offset, BLOCK_HEADER_LEN as u64)?
            .try_into()
            .expect("48 bytes");
        let block = BlockHeader::decode(&bytes, offset, index, &header)?;
        records += u64::from(block.record_count);
        let payload_at = offset + BLOCK_HEADER_LEN as u64;
        blocks.try_reserve(1).map_err(|_| Error::OutOfMemory {
            bytes: (blocks.len() + 1).saturating_mul(std::mem::size_of::<Surveyed>()),
        })?;
        blocks.push(Surveyed {
            payload_at,
            // Checked in `decode`: at most `MAX_PAYLOAD_LEN`.
            payload_len: block.payload_len as u32,
            record_count: block.record_count,
            payload_checksum: block.payload_checksum,
        });
        offset = payload_at + block.payload_len;
    }
    if offset != file_len {
        return Err(Error::corrupt(
            offset,
            format!(
                "{} bytes after the last of the {} blocks the header counts",
                file_len - offset,
                header.block_count
            ),
        ));
    }
    if records != header.record_count {
        return Err(Error::corrupt(
            72,
            format!(
                "the header counts {} records but the blocks hold {records}",
                header.record_count
            ),
        ));
    }
    if blocks.len() > u32::MAX as usize {
        return Err(Error::corrupt(64, "more than 2^32 blocks"));
    }
    file.read_ahead();
    Ok(Survey {
        header,
        blocks,
        file_len,
    })
}

/// Step 10 of docs/FORMAT.md's reading: the blocks' key and value bytes,
/// `data`, add up to the header's `data_bytes`.
fn check_data_bytes(header: &Header, data: u64) -> Result<()> {
    if data == header.data_bytes {
        return Ok(());
    }
    Err(Error::corrupt(
        80,
        format!(
            "the header counts {} key and value bytes but the records hold {data}",
            header.data_bytes
        ),
    ))
}

/// The second half of step 1: every block's payload copied out, checksummed
/// and parsed, across threads; keys hashed with `map`'s hasher, expiry read
/// against its clock.
pub(crate) fn parse(file: &Mapped, survey: Survey, map: &Map) -> Result<Validated> {
    let Survey {
        header,
        blocks,
        file_len,
    } = survey;
    let now = Now::read(&map.config().clock);
    let hasher = map.hasher();
    let units = units(&blocks);
    type Parsed = Result<(Vec<u8>, Vec<Rec>, u64, u64)>;
    let results: Vec<Mutex<Option<Parsed>>> = (0..units.len()).map(|_| Mutex::new(None)).collect();
    spread(units.len(), cores(), |u| {
        let unit = units[u];
        let parsed = (|| {
            let (at, len) = unit.span(&blocks);
            let copy = file.copy_out(at, len)?;
            let mut recs = Vec::new();
            let records = unit.records(&blocks);
            recs.try_reserve_exact(records)
                .map_err(|_| Error::OutOfMemory {
                    bytes: records * std::mem::size_of::<Rec>(),
                })?;
            let mut expired = 0u64;
            let data = unit.parse(&copy, &blocks, &header, |span| {
                if span.expires_at_unix_ms != 0 && now.deadline(span.expires_at_unix_ms).is_none() {
                    expired += 1;
                    return;
                }
                recs.push(Rec {
                    hash: hasher.hash(span.key(&copy)),
                    unit: u as u32,
                    at: span.key_at - RECORD_HEADER_LEN as u32,
                });
            })?;
            Ok((copy, recs, expired, data))
        })();
        *results[u].lock().expect("no panic while held") = Some(parsed);
    });
    let mut payloads = Vec::with_capacity(units.len());
    let mut by_block = Vec::with_capacity(units.len());
    let (mut expired, mut data) = (0u64, 0u64);
    // The first failing block in file order is the one reported.
    for result in results {
        let (payload, recs, e, d) = result
            .into_inner()
            .expect("no panic while held")
            .expect("every block was parsed")?;
        payloads.push(payload);
        by_block.push(recs);
        expired += e;
        data += d;
    }
    check_data_bytes(&header, data)?;
    Ok(Validated {
        header,
        payloads,
        records: by_block,
        expired,
        file_len,
    })
}

/// Records applied to one shard.
#[derive(Default)]
struct Applied {
    loaded: u64,
    replaced: u64,
    too_large: u64,
    /// Records that expired after validation, before their turn came.
    expired: u64,
}

/// How step 2 serialises with the map's other writers.
pub(crate) enum Access {
    /// The map is not shared yet (`Map::load`): each shard's own flag, taken
    /// once, serialises its (only) writer.
    Private,
    /// A live map: the mode's flag, per chunk of records.
    Live,
}

/// Records a live cache's shard takes under one acquisition of its flag, so
/// that its other writers wait at most that long.
const LIVE_CHUNK: usize = 4096;

/// Step 2 (see the module docs).
pub(crate) fn apply(map: &Map, snapshot: Validated, access: Access) -> Result<LoadReport> {
    let shard_count = map.shards().len();
    // Group by shard, stably (file order within a shard, so that of two
    // records of one key the later one wins).
    let mut starts = vec![0usize; shard_count + 1];
    for recs in &snapshot.records {
        for rec in recs {
            starts[map.hasher().shard(rec.hash) + 1] += 1;
        }
    }
    for s in 0..shard_count {
        starts[s + 1] += starts[s];
    }
    let live = starts[shard_count];
    let mut grouped: Vec<Rec> = Vec::new();
    grouped
        .try_reserve_exact(live)
        .map_err(|_| Error::OutOfMemory {
            bytes: live * std::mem::size_of::<Rec>(),
        })?;
    {
        let mut next = starts.clone();
        grouped.resize(
            live,
            Rec {
                hash: KeyHash(0),
                unit: 0,
                at: 0,
            },
        );
        for recs in snapshot.records {
            for rec in recs {
                let s = map.hasher().shard(rec.hash);
                grouped[next[s]] = rec;
                next[s] += 1;
            }
        }
    }
    let now = Now::read(&map.config().clock);
    let results: Vec<Mutex<Option<Result<Applied>>>> =
        (0..shard_count).map(|_| Mutex::new(None)).collect();
    let shard_work = |s: usize, held: Option<&crate::FlagGuard<'_>>| {
        let recs = &grouped[starts[s]..starts[s + 1]];
        let result = apply_shard(map, s, recs, &snapshot.payloads, now, &access, held);
        *results[s].lock().expect("no panic while held") = Some(result);
    };
    match (&access, map.mode()) {
        (Access::Live, Mode::Exclusive) => {
            // Exclusive mode: a load is a write; the map's one flag is taken
            // once (failing at once if another thread writes) and held by this
            // thread for every shard.
            let held = map.lock_for_write(&map.shards()[0])?;
            for s in 0..shard_count {
                shard_work(s, Some(&held));
            }
        }
        _ => spread(shard_count, cores(), |s| shard_work(s, None)),
    }
    let mut report = LoadReport {
        records: snapshot.header.record_count,
        expired: snapshot.expired,
        bytes: snapshot.file_len,
        ..LoadReport::default()
    };
    for result in results {
        if let Some(result) = result.into_inner().expect("no panic while held") {
            let applied = result?;
            report.loaded += applied.loaded;
            report.replaced += applied.replaced;
            report.too_large += applied.too_large;
            report.expired += applied.expired;
        }
    }
    Ok(report)
}

/// Inserts shard `s`'s records (`recs`, in file order), under
/// `held` (exclusive mode's flag, held by the caller) or the shard's own flag.
fn apply_shard(
    map: &Map,
    s: usize,
    recs: &[Rec],
    payloads: &[Vec<u8>],
    now: Now,
    access: &Access,
    held: Option<&crate::FlagGuard<'_>>,
) -> Result<Applied> {
    let mut applied = Applied::default();
    if recs.is_empty() {
        return Ok(applied);
    }
    let shard = &map.shards()[s];
    // File order (within the shard), with the bucket and the record of the
    // eighth record ahead prefetched: sorting by bucket made the table's
    // accesses sequential but the records' random, which measured slower
    // (see "Snapshots" in docs/ARCHITECTURE.md).
    let order: Vec<u32> = (0..recs.len() as u32).collect();
    let bounded = map.config().is_bounded();
    let chunk = match access {
        Access::Private => order.len(),
        Access::Live => LIVE_CHUNK,
    };
    for part in order.chunks(chunk) {
        // Between chunks, a writer waiting for the shard goes first (the
        // flag is not fair: taken back at once, it would wait the whole load).
        let own = held.is_none().then(|| {
            shard
                .flag
                .lock_after_waiters(thread_id::current(), &shard.waiters)
        });
        let flag = held.or(own.as_ref()).expect("one of the two");
        apply_part(
            map,
            shard,
            flag,
            recs,
            part,
            payloads,
            now,
            bounded,
            &mut applied,
        )?;
        if let Some(own) = own {
            drop(own);
            // As a write does, after releasing the flag: help reclaim what the
            // replaced entries left.
            map.count_relief(shard.relieve_garbage());
        }
    }
    Ok(applied)
}

/// Inserts the records `part` names (indexes into `recs`) under `held`.
#[allow(clippy::too_many_arguments)]
fn apply_part(
    map: &Map,
    shard: &crate::shard::Shard,
    held: &crate::FlagGuard<'_>,
    recs: &[Rec],
    part: &[u32],
    payloads: &[Vec<u8>],
    now: Now,
    bounded: bool,
    applied: &mut Applied,
) -> Result<()> {
    let guard = epoch::pin();
    // SAFETY: `held` is exclusive mode's map flag (held by the caller for
    // every shard), or this shard's own flag, which serialises its writers in
    // concurrent mode and, for a map not shared yet (`Access::Private`), is
    // taken by its only writer.
    let writing = unsafe { Writing::new(shard, held) };
    for (k, &i) in part.iter().enumerate() {
        if let Some(&ahead) = part.get(k + 8) {
            let ahead = recs[ahead as usize];
            shard.prefetch(ahead.hash);
            prefetch(payloads[ahead.unit as usize][ahead.at as usize..].as_ptr());
        }
        let rec = recs[i as usize];
        // Expired between validation and now: left out, and counted as the
        // records found expired by validation are.
        let Some((key, value, deadline)) = decode(rec, payloads, now) else {
            applied.expired += 1;
            continue;
        };
        let trailer = Trailer {
            deadline,
            node: bounded,
        };
        if let Some(b) = shard.bounds() {
            let bytes = bounds::charge(entry::footprint_for(key.len(), value.len(), trailer));
            if b.max_bytes > 0 && bytes > b.max_bytes {
                applied.too_large += 1;
                continue;
            }
        }
        let pending = Pending::new(shard.slab(), key, value, trailer)?;
        let new = writing.make_entry(pending)?;
        if writing.upsert(&map.growth(), rec.hash, key, new, &guard)? {
            applied.replaced += 1;
        }
        applied.loaded += 1;
    }
    Ok(())
}

/// The key, value and deadline (on `now`'s clock) of `rec`, read from its
/// unit's copy (validated in step 1); `None` if it has expired by `now`.
#[inline]
fn decode(rec: Rec, payloads: &[Vec<u8>], now: Now) -> Option<(&[u8], &[u8], Option<u64>)> {
    let payload = &payloads[rec.unit as usize];
    let at = rec.at as usize;
    let key_len = le_u32(payload, at) as usize;
    let value_len = le_u32(payload, at + 4) as usize;
    let expires_at = le_u64(payload, at + 8);
    let key = &payload[at + RECORD_HEADER_LEN..][..key_len];
    let value = &payload[at + RECORD_HEADER_LEN + key_len..][..value_len];
    let deadline = match expires_at {
        0 => None,
        at => Some(now.deadline(at)?),
    };
    Some((key, value, deadline))
}

/// Runs `work(&mut state, i)` for every `i` in `0..n` as [`spread`] does,
/// each thread with a `state` of its own from `init`.
fn spread_with<S>(
    n: usize,
    threads: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) + Sync,
) {
    let next = AtomicUsize::new(0);
    let run = || {
        let mut state = init();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            work(&mut state, i);
        }
    };
    let threads = threads.min(n).max(1);
    crate::sync::scoped::scope("mapcache-load", |spawner| {
        for _ in 1..threads {
            // A thread that cannot start leaves its share to the others.
            spawner.spawn(run);
        }
        run();
    });
}

/// Entries made for a shard and not (yet) in its table: freed on drop.
struct Unplaced<'m> {
    slab: &'m Slab,
    entries: Vec<(KeyHash, *mut Entry)>,
}

// SAFETY: the entries are owned by this value alone (plain bytes), and the
// slab's `free` may run on any thread.
unsafe impl Send for Unplaced<'_> {}

impl Drop for Unplaced<'_> {
    fn drop(&mut self) {
        for (_, entry) in self.entries.drain(..) {
            // SAFETY: made with `slab` and never published (see the struct).
            unsafe { entry::free(entry, self.slab) };
        }
    }
}

/// A loader thread's reused memory: its unit's copy, and the unit's records
/// grouped by shard (a counting sort, so that what it keeps per shard of the
/// map is one count, not a list: lists had cost about 100 bytes per shard per
/// thread).
#[derive(Default)]
struct Scratch {
    buffer: Vec<u8>,
    /// The unit's records in file order, and each one's shard.
    records: Vec<(KeyHash, RecordSpan, u32)>,
    /// Per shard of the map: 0 between units; during one, its records' count,
    /// then where its run starts in `order`, then where it ends.
    counts: Vec<u32>,
    /// The shards the unit has records for, in the order first met.
    touched: Vec<u32>,
    /// Indexes into `records`, grouped by shard, file order within each.
    order: Vec<u32>,
}

impl Scratch {
    /// Groups `records` by shard: afterwards `order[start..end]` are the
    /// indexes of shard `s`'s records in file order, for each `(s, start,
    /// end)` returned; `counts` is all zeros again.
    fn group(&mut self, shards: usize) -> Vec<(usize, usize, usize)> {
        self.counts.resize(shards, 0);
        self.touched.clear();
        for &(_, _, s) in &self.records {
            let count = &mut self.counts[s as usize];
            if *count == 0 {
                self.touched.push(s);
            }
            *count += 1;
        }
        let mut runs = Vec::with_capacity(self.touched.len());
        let mut start = 0usize;
        for &s in &self.touched {
            let count = self.counts[s as usize] as usize;
            runs.push((s as usize, start, start + count));
            self.counts[s as usize] = start as u32;
            start += count;
        }
        self.order.clear();
        self.order.resize(self.records.len(), 0);
        for (i, &(_, _, s)) in self.records.iter().enumerate() {
            let at = &mut self.counts[s as usize];
            self.order[*at as usize] = i as u32;
            *at += 1;
        }
        for &s in &self.touched {
            self.counts[s as usize] = 0;
        }
        runs
    }
}

/// The entries one unit made, by shard (only the shards it had records for:
/// a list per shard per unit had cost 2.35 file lengths with 65,536 shards),
/// each shard's in file order.
type Made<'m> = Vec<(usize, Unplaced<'m>)>;

/// `Map::load` into a new, unbounded map (not shared yet): steps 1 and 2
/// fused, and the tables built in bulk. Across threads, each block's payload
/// is copied out into a buffer of the thread's own (reused, so it stays in
/// cache and costs no page faults), checked and parsed, and its records made
/// into entries at once, per shard under that shard's flag; then each shard's
/// entries, in file order, go to [`Writing::fill_empty`], which builds its
/// table from the flat array in one pass with the rehash's count, lay-out and
/// fill instead of a lookup and an insert per record. A bad file fails before
/// any table is built (the entries made so far are freed; the map is the
/// caller's to drop).
pub(crate) fn fill_new(file: &Mapped, survey: Survey, map: &Map) -> Result<LoadReport> {
    let Survey {
        header,
        blocks,
        file_len,
    } = survey;
    let shards = map.shards();
    let now = Now::read(&map.config().clock);
    let hasher = map.hasher();
    let units = units(&blocks);
    type Outcome<'m> = Result<(Made<'m>, u64)>;
    let results: Vec<Mutex<Option<Outcome<'_>>>> =
        (0..units.len()).map(|_| Mutex::new(None)).collect();
    spread_with(
        units.len(),
        cores(),
        Scratch::default,
        |scratch: &mut Scratch, u| {
            let unit = units[u];
            let outcome = (|| {
                let (at, len) = unit.span(&blocks);
                file.copy_into(at, len, &mut scratch.buffer)?;
                scratch.records.clear();
                let payload = &scratch.buffer[..];
                let records = &mut scratch.records;
                let data = unit.parse(payload, &blocks, &header, |span| {
                    let hash = hasher.hash(span.key(payload));
                    records.push((hash, span, hasher.shard(hash) as u32));
                })?;
                let runs = scratch.group(shards.len());
                let payload = &scratch.buffer[..];
                let mut made: Made<'_> = Vec::with_capacity(runs.len());
                for (s, start, end) in runs {
                    let shard = &shards[s];
                    let mut entries = Unplaced {
                        slab: shard.slab(),
                        entries: Vec::with_capacity(end - start),
                    };
                    {
                        let held = shard.flag.lock(thread_id::current());
                        // SAFETY: the map is not shared yet; its shards' own
                        // flags serialise the loader's threads.
                        let writing = unsafe { Writing::new(shard, &held) };
                        for &i in &scratch.order[start..end] {
                            let (hash, span, _) = scratch.records[i as usize];
                            let deadline = match span.expires_at_unix_ms {
                                0 => None,
                                at => match now.deadline(at) {
                                    Some(deadline) => Some(deadline),
                                    None => continue,
                                },
                            };
                            let key = span.key(payload);
                            let value = &payload[span.key_at as usize + key.len()..]
                                [..span.value_len as usize];
                            let trailer = Trailer {
                                deadline,
                                node: false,
                            };
                            let pending = Pending::new(shard.slab(), key, value, trailer)?;
                            let entry = writing.make_entry(pending)?.into_raw();
                            entries.entries.push((hash, entry));
                        }
                    }
                    made.push((s, entries));
                }
                Ok((made, data))
            })();
            *results[u].lock().expect("no panic while held") = Some(outcome);
        },
    );
    // The first failing block in file order is the one reported.
    let mut per_block = Vec::with_capacity(units.len());
    let mut data = 0u64;
    for result in results {
        let (made, d) = result
            .into_inner()
            .expect("no panic while held")
            .expect("every block was parsed")?;
        per_block.push(made);
        data += d;
    }
    check_data_bytes(&header, data)?;
    // Each shard's entries in file order (blocks in order, records in order).
    let mut by_shard: Vec<Unplaced<'_>> = shards
        .iter()
        .map(|shard| Unplaced {
            slab: shard.slab(),
            entries: Vec::new(),
        })
        .collect();
    let mut totals = vec![0usize; shards.len()];
    for made in &per_block {
        for (s, unplaced) in made {
            totals[*s] += unplaced.entries.len();
        }
    }
    let made = totals.iter().sum::<usize>() as u64;
    for (unplaced, &total) in by_shard.iter_mut().zip(&totals) {
        unplaced
            .entries
            .try_reserve_exact(total)
            .map_err(|_| Error::OutOfMemory { bytes: total * 16 })?;
    }
    for made in per_block {
        for (s, mut unplaced) in made {
            by_shard[s].entries.append(&mut unplaced.entries);
        }
    }
    let slots: Vec<Mutex<Unplaced<'_>>> = by_shard.into_iter().map(Mutex::new).collect();
    let outcomes: Vec<Mutex<Option<Result<usize>>>> =
        (0..shards.len()).map(|_| Mutex::new(None)).collect();
    spread(shards.len(), cores(), |s| {
        let mut unplaced = slots[s].lock().expect("no panic while held");
        let shard = &shards[s];
        let held = shard.flag.lock(thread_id::current());
        let guard = epoch::pin();
        // SAFETY: as above.
        let writing = unsafe { Writing::new(shard, &held) };
        // SAFETY: the entries were made with this shard's slab by
        // `make_entry`, are unpublished and owned by `unplaced`.
        let outcome = unsafe { writing.fill_empty(&unplaced.entries, &guard) };
        if outcome.is_ok() {
            // The shard owns them now.
            unplaced.entries.clear();
        }
        *outcomes[s].lock().expect("no panic while held") = Some(outcome);
    });
    let mut held = 0u64;
    for outcome in outcomes {
        held += outcome
            .into_inner()
            .expect("no panic while held")
            .expect("every shard")? as u64;
    }
    // Every record made into an entry was stored; one of a key that an
    // earlier record also named replaced that record's value.
    Ok(LoadReport {
        records: header.record_count,
        loaded: made,
        replaced: made - held,
        expired: header.record_count - made,
        too_large: 0,
        bytes: file_len,
    })
}

#[cfg(test)]
mod tests {
    use super::{apply, parse, survey, Access};
    use crate::snapshot::file::Mapped;
    use crate::snapshot::format::{Header, BLOCK_HEADER_LEN, HEADER_LEN, RECORD_HEADER_LEN};
    use crate::{Clock, Config, Error, Map};
    use std::time::Duration;

    /// A sparse file of `file_len` bytes (a few KiB on the device) whose only
    /// content is a valid header claiming as many blocks and records as that
    /// length allows; `None` where the filesystem refuses such a length.
    fn sparse_claiming_the_most_blocks(name: &str, file_len: u64) -> Option<std::path::PathBuf> {
        let path =
            std::env::temp_dir().join(format!("mapcache-load-{name}-{}.snap", std::process::id()));
        let body = file_len - HEADER_LEN as u64;
        let blocks = body / (BLOCK_HEADER_LEN + RECORD_HEADER_LEN) as u64;
        let header = Header {
            writer: [0, 1, 0],
            snapshot_id: 7,
            saved_at_unix_ms: 0,
            file_len,
            block_count: blocks,
            record_count: blocks,
            data_bytes: 0,
        };
        std::fs::write(&path, header.encode()).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        if file.set_len(file_len).is_err() {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(path)
    }

    /// The block list grows as block headers pass their checks, and the map
    /// is presized by what the file holds on its device: a header over a
    /// sparse terabyte that claims 2^34 blocks and records made the survey
    /// reserve 24 bytes a block up front (an allocation failure, which aborts
    /// the process) and would have presized the tables for 2^34 records.
    #[test]
    fn a_sparse_file_claiming_billions_of_blocks_is_refused_without_reserving_for_them() {
        let Some(path) = sparse_claiming_the_most_blocks("sparse-tib", 1 << 40) else {
            eprintln!("skipped: the temporary directory's filesystem refuses a 1 TiB sparse file");
            return;
        };
        let file = Mapped::open(&path).unwrap();
        assert!(
            file.stored_bytes() < 1 << 20,
            "{} bytes on the device",
            file.stored_bytes()
        );
        let surveyed = survey(&file);
        drop(file);
        let loaded = Map::load(&path, Config::default());
        std::fs::remove_file(&path).unwrap();
        match (surveyed, loaded) {
            // Refused at the first block's header, a hole of zeros.
            (Err(Error::Corrupt { offset, .. }), Err(Error::Corrupt { offset: o, .. })) => {
                let first_block = HEADER_LEN as u64..(HEADER_LEN + BLOCK_HEADER_LEN) as u64;
                assert!(
                    first_block.contains(&offset) && o == offset,
                    "{offset}, {o}"
                );
            }
            (s, l) => panic!("survey {:?}, load {:?}", s.err(), l.err()),
        }
    }

    /// A record that expires after the file was validated, before its turn
    /// to be applied, is left out and counted as expired: the report's
    /// counts cover every record of the file.
    #[test]
    fn a_record_expiring_between_validation_and_apply_is_counted_as_expired() {
        let path = std::env::temp_dir().join(format!(
            "mapcache-load-late-expiry-{}.snap",
            std::process::id()
        ));
        let clock = Clock::manual();
        let config = Config {
            clock: clock.clone(),
            shards: 1,
            ..Config::default()
        };
        let saved = Map::new(config.clone()).unwrap();
        saved
            .insert_with_ttl(b"late", b"v", Duration::from_secs(10))
            .unwrap();
        saved.insert(b"kept", b"w").unwrap();
        saved.save(&path).unwrap();

        let target = Map::new(config).unwrap();
        let file = Mapped::open(&path).unwrap();
        let validated = parse(&file, survey(&file).unwrap(), &target).unwrap();
        drop(file);
        std::fs::remove_file(&path).unwrap();
        clock.advance(Duration::from_secs(20)).unwrap();
        let report = apply(&target, validated, Access::Live).unwrap();
        assert_eq!(
            (report.records, report.loaded, report.expired),
            (2, 1, 1),
            "{report:?}"
        );
        assert_eq!(target.get(b"late").unwrap(), None);
        assert_eq!(target.get(b"kept").unwrap().as_deref(), Some(&b"w"[..]));
    }
}
