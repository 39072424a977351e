//! Hostile snapshot files: truncated at every offset, bits and bytes flipped,
//! every length, count and offset overwritten (with the checksums recomputed,
//! so that the structural checks are what must catch it), blocks swapped or
//! spliced in from another snapshot, garbage appended, random bytes behind a
//! valid header. Each time: `Error::Corrupt`, no panic, and a cache loaded into
//! is left exactly as it was.
//!
//! The field locations come from this file's own reader of the format, written
//! from `docs/FORMAT.md` alone (a check that the document is enough).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use mapcache::{Config, Error, Map};
use proptest::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

#[path = "support/handmade_snapshot.rs"]
mod handmade_snapshot;
#[path = "support/temp_dir.rs"]
mod temp_dir;
use handmade_snapshot::{handmade, handmade_blocks, Written};
use temp_dir::TempDir;

fn config() -> Config {
    Config {
        seed: Some(7),
        shards: 2,
        ..Config::default()
    }
}

/// The `i`-th key of the small snapshot (the first one empty).
fn key(i: u32) -> String {
    if i == 0 {
        String::new()
    } else {
        format!("k{i}").repeat(1 + i as usize % 3)
    }
}

/// A small snapshot of many blocks: 24 entries of assorted sizes (empty keys
/// and values among them, some with a TTL), blocks closed at 64 bytes.
fn small_snapshot(dir: &TempDir, name: &str) -> Vec<u8> {
    let map = Map::new(config()).unwrap();
    for i in 0..24u32 {
        let key = key(i);
        let value = vec![i as u8; (i as usize * 7) % 40];
        if i % 5 == 0 {
            map.insert_with_ttl(key.as_bytes(), &value, Duration::from_secs(3600))
                .unwrap();
        } else {
            map.insert(key.as_bytes(), &value).unwrap();
        }
    }
    let path = dir.path(name);
    map.debug_save_with_block_target(&path, 64).unwrap();
    std::fs::read(&path).unwrap()
}

// ---- a reader of the format, from docs/FORMAT.md ----

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

struct BlockAt {
    offset: usize,
    payload_len: usize,
    /// File offsets of the block's records.
    records: Vec<usize>,
}

/// Where every block and record of a valid snapshot is.
fn layout(file: &[u8]) -> Vec<BlockAt> {
    assert_eq!(&file[..8], b"\x89MCSNAP\n");
    let blocks = u64_at(file, 64) as usize;
    let mut at = 128;
    let mut out = Vec::new();
    for _ in 0..blocks {
        let count = u32_at(file, at + 4) as usize;
        let payload_len = u64_at(file, at + 24) as usize;
        let mut records = Vec::new();
        let mut r = at + 48;
        for _ in 0..count {
            records.push(r);
            r += 16 + u32_at(file, r) as usize + u32_at(file, r + 4) as usize;
        }
        assert_eq!(r, at + 48 + payload_len);
        out.push(BlockAt {
            offset: at,
            payload_len,
            records,
        });
        at += 48 + payload_len;
    }
    assert_eq!(at, file.len());
    out
}

/// Recomputes every checksum over the structures as `blocks` locates them:
/// payloads, then block headers, then the header.
fn reseal(file: &mut [u8], blocks: &[BlockAt]) {
    for b in blocks {
        let payload = b.offset + 48;
        if payload + b.payload_len <= file.len() {
            let sum = xxh3_64(&file[payload..payload + b.payload_len]);
            file[b.offset + 32..b.offset + 40].copy_from_slice(&sum.to_le_bytes());
        }
        let sum = xxh3_64(&file[b.offset..b.offset + 40]);
        file[b.offset + 40..b.offset + 48].copy_from_slice(&sum.to_le_bytes());
    }
    let sum = xxh3_64(&file[..120]);
    file[120..128].copy_from_slice(&sum.to_le_bytes());
}

// ---- the checks ----

fn contents(map: &Map) -> HashMap<Vec<u8>, Vec<u8>> {
    map.iter().map(|item| item.unwrap()).collect()
}

/// A live cache some of whose keys the snapshot also holds (with other values).
fn existing() -> Map {
    let map = Map::new(config()).unwrap();
    for i in 0..24u32 {
        let key = key(i);
        map.insert(key.as_bytes(), b"before").unwrap();
    }
    map.insert(b"only-here", b"x").unwrap();
    map
}

/// Loading `bytes` fails with `Error::Corrupt`, both into a new map and into
/// `into`, which is left unchanged.
fn assert_rejected(path: &Path, bytes: &[u8], into: &Map, what: &str) {
    std::fs::write(path, bytes).unwrap();
    let before = contents(into);
    match Map::load(path, config()) {
        Err(Error::Corrupt { .. }) => {}
        Err(other) => panic!("{what}: expected Corrupt, got {other:?}"),
        Ok(map) => panic!("{what}: a hostile file loaded ({} entries)", map.len()),
    }
    match into.load_into(path) {
        Err(Error::Corrupt {
            offset,
            what: message,
        }) => {
            assert!(
                offset <= bytes.len() as u64 + 128,
                "{what}: offset {offset}"
            );
            assert!(!message.is_empty());
        }
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        contents(into),
        before,
        "{what}: the cache loaded into changed"
    );
    assert_eq!(into.len(), before.len());
}

/// A record: key, value, `expires_at_unix_ms`.
type Record = (Vec<u8>, Vec<u8>, u64);

/// The records of `file` as a reader written from `docs/FORMAT.md` ("Reading",
/// steps 1 to 10) sees them, or `None` if it rejects the file.
fn reference_read(file: &[u8]) -> Option<Vec<Record>> {
    let len = file.len() as u64;
    if file.len() < 128 || file[..8] != *b"\x89MCSNAP\n" || u32_at(file, 8) != 1 {
        return None;
    }
    if u32_at(file, 12) != 128 || u64_at(file, 120) != xxh3_64(&file[..120]) {
        return None;
    }
    if u64_at(file, 16) != 0 || file[30..32] != [0, 0] || file[88..120].iter().any(|&b| b != 0) {
        return None;
    }
    let (file_len, blocks, records, data) = (
        u64_at(file, 48),
        u64_at(file, 64),
        u64_at(file, 72),
        u64_at(file, 80),
    );
    if file_len != len || u64_at(file, 56) != 128 {
        return None;
    }
    let body = len - 128;
    if blocks > body / 64 || records > body / 16 || data > body || (blocks == 0) != (records == 0) {
        return None;
    }
    let id = u64_at(file, 32);
    let mut at = 128u64;
    let mut spans = Vec::new();
    let mut counted = 0u64;
    for i in 0..blocks {
        if len - at < 48 {
            return None;
        }
        let h = &file[at as usize..at as usize + 48];
        if u64_at(h, 40) != xxh3_64(&h[..40]) || h[..4] != *b"MCBK" || u64_at(h, 8) != i {
            return None;
        }
        let (count, payload_len) = (u32_at(h, 4) as u64, u64_at(h, 24));
        if u64_at(h, 16) != id
            || count == 0
            || payload_len > len - at - 48
            || 16 * count > payload_len
        {
            return None;
        }
        spans.push((at + 48, payload_len, count, u64_at(h, 32)));
        counted += count;
        at += 48 + payload_len;
    }
    if at != len || counted != records {
        return None;
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for (start, payload_len, count, sum) in spans {
        let p = &file[start as usize..(start + payload_len) as usize];
        if xxh3_64(p) != sum {
            return None;
        }
        let mut r = 0usize;
        let mut n = 0;
        while r < p.len() {
            if n == count || p.len() - r < 16 {
                return None;
            }
            let (kl, vl) = (u32_at(p, r) as usize, u32_at(p, r + 4) as usize);
            if kl > 65535 || vl > 1 << 30 || kl + vl > p.len() - r - 16 {
                return None;
            }
            let key = p[r + 16..r + 16 + kl].to_vec();
            let value = p[r + 16 + kl..r + 16 + kl + vl].to_vec();
            out.push((key, value, u64_at(p, r + 8)));
            total += (kl + vl) as u64;
            r += 16 + kl + vl;
            n += 1;
        }
        if n != count {
            return None;
        }
    }
    (total == data).then_some(out)
}

/// A file whose checksums were recomputed after a change may be valid (a
/// length changed so that the records still tile their block). Then the
/// library must load exactly what the reference reader reads; otherwise it
/// must reject the file as [`assert_rejected`] says.
fn assert_agrees(path: &Path, bytes: &[u8], into: &Map, what: &str) {
    let Some(records) = reference_read(bytes) else {
        return assert_rejected(path, bytes, into, what);
    };
    std::fs::write(path, bytes).unwrap();
    let map =
        Map::load(path, config()).unwrap_or_else(|e| panic!("{what}: valid file rejected: {e}"));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut expected = HashMap::new();
    for (key, value, expires) in records {
        // Records that expire within a minute of now may go either way.
        if expires != 0 && expires <= now_ms + 60_000 {
            expected.remove(&key);
            continue;
        }
        expected.insert(key, value);
    }
    let got = contents(&map);
    for (key, value) in &expected {
        assert_eq!(got.get(key), Some(value), "{what}");
    }
    assert!(
        got.len() >= expected.len() && got.len() <= expected.len() + 24,
        "{what}"
    );
    VALID_MUTATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Mutations that gave a valid file (counted to bound them).
static VALID_MUTATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn the_small_snapshot_is_valid_and_has_many_blocks() {
    let dir = TempDir::new("hostile", "valid");
    let file = small_snapshot(&dir, "a.snap");
    let blocks = layout(&file);
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    let path = dir.path("copy.snap");
    std::fs::write(&path, &file).unwrap();
    let map = Map::load(&path, config()).unwrap();
    assert_eq!(map.len(), 24);
    // Resealing an unchanged file keeps it valid: what the mutation tests
    // below reseal is rejected for the change, not for the resealing.
    let mut resealed = file.clone();
    reseal(&mut resealed, &blocks);
    assert_eq!(resealed, file);
    // The reference reader reads what the library loaded.
    let records = reference_read(&file).expect("the reference reader accepts it");
    assert_eq!(records.len(), 24);
    let loaded = contents(&map);
    for (key, value, _) in records {
        assert_eq!(loaded.get(&key), Some(&value));
    }
}

#[test]
fn truncation_at_every_offset_is_rejected() {
    let dir = TempDir::new("hostile", "truncate");
    let file = small_snapshot(&dir, "a.snap");
    let into = existing();
    let path = dir.path("t.snap");
    for len in 0..file.len() {
        assert_rejected(&path, &file[..len], &into, &format!("truncated to {len}"));
    }
}

#[test]
fn appended_garbage_is_rejected() {
    let dir = TempDir::new("hostile", "append");
    let file = small_snapshot(&dir, "a.snap");
    let into = existing();
    let path = dir.path("t.snap");
    for extra in [&[0u8][..], b"garbage", &[0xff; 100], &file[..]] {
        let mut bytes = file.clone();
        bytes.extend_from_slice(extra);
        assert_rejected(
            &path,
            &bytes,
            &into,
            &format!("{} bytes appended", extra.len()),
        );
    }
}

/// Values to write into a field of `width` bytes that held `old`.
fn hostile_values(old: u64, width: usize, file_len: u64) -> Vec<u64> {
    let max = if width == 8 {
        u64::MAX
    } else {
        u32::MAX as u64
    };
    let mut values = vec![
        0,
        1,
        old.wrapping_sub(1) & max,
        old.wrapping_add(1) & max,
        old.wrapping_mul(2) & max,
        max,
        max - 1,
        1 << (width * 8 - 1), // negative-looking
        (1 << (width * 8 - 1)) - 1,
        u32::MAX as u64,
        (file_len) & max,
        (file_len + 1) & max,
        16,
        48,
        128,
    ];
    values.retain(|&v| v != old);
    values.sort_unstable();
    values.dedup();
    values
}

#[test]
fn every_length_count_and_offset_overwritten_is_rejected_even_with_checksums_recomputed() {
    let dir = TempDir::new("hostile", "fields");
    let file = small_snapshot(&dir, "a.snap");
    let blocks = layout(&file);
    let into = existing();
    let path = dir.path("t.snap");
    // (file offset, width, name)
    let mut fields: Vec<(usize, usize, String)> = vec![
        (8, 4, "format_version".into()),
        (12, 4, "header_len".into()),
        (48, 8, "file_len".into()),
        (56, 8, "blocks_offset".into()),
        (64, 8, "block_count".into()),
        (72, 8, "record_count".into()),
        (80, 8, "data_bytes".into()),
    ];
    for (i, b) in blocks.iter().enumerate() {
        fields.push((b.offset + 4, 4, format!("block {i} record_count")));
        fields.push((b.offset + 8, 8, format!("block {i} block_index")));
        fields.push((b.offset + 24, 8, format!("block {i} payload_len")));
        for (j, &r) in b.records.iter().enumerate() {
            fields.push((r, 4, format!("block {i} record {j} key_len")));
            fields.push((r + 4, 4, format!("block {i} record {j} value_len")));
        }
    }
    let mut cases = 0;
    for (at, width, name) in &fields {
        let old = if *width == 8 {
            u64_at(&file, *at)
        } else {
            u32_at(&file, *at) as u64
        };
        for value in hostile_values(old, *width, file.len() as u64) {
            let mut bytes = file.clone();
            bytes[*at..*at + width].copy_from_slice(&value.to_le_bytes()[..*width]);
            reseal(&mut bytes, &blocks);
            assert_agrees(&path, &bytes, &into, &format!("{name} {old} -> {value}"));
            cases += 1;
        }
    }
    assert!(cases > 1000, "{cases} cases");
    // Almost every change is caught; the few valid files are checked above.
    let valid = VALID_MUTATIONS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        valid * 20 < cases,
        "{valid} of {cases} mutations gave valid files"
    );
}

#[test]
fn a_newer_format_version_is_rejected_with_a_clear_error() {
    let dir = TempDir::new("hostile", "version");
    let mut file = small_snapshot(&dir, "a.snap");
    file[8..12].copy_from_slice(&2u32.to_le_bytes());
    let path = dir.path("v2.snap");
    std::fs::write(&path, &file).unwrap();
    let Err(Error::Corrupt { offset, what }) = Map::load(&path, config()) else {
        panic!("a version-2 file loaded");
    };
    assert_eq!(offset, 8);
    assert!(what.contains("format version 2 is newer"), "{what}");
    let message = Error::Corrupt { offset, what }.to_string();
    assert!(message.contains("at byte offset 8"), "{message}");
}

#[test]
fn swapped_blocks_and_blocks_of_another_snapshot_are_rejected() {
    let dir = TempDir::new("hostile", "swap");
    let file = small_snapshot(&dir, "a.snap");
    // The same entries, saved again: the same layout under another snapshot id.
    let other = small_snapshot(&dir, "b.snap");
    assert_eq!(file.len(), other.len());
    let blocks = layout(&file);
    let into = existing();
    let path = dir.path("t.snap");
    let span = |b: &BlockAt| b.offset..b.offset + 48 + b.payload_len;
    for i in 0..blocks.len() {
        for j in i + 1..blocks.len() {
            // Swap blocks i and j, each intact.
            let mut bytes = file[..blocks[i].offset].to_vec();
            bytes.extend_from_slice(&file[span(&blocks[j])]);
            bytes.extend_from_slice(
                &file[blocks[i].offset + 48 + blocks[i].payload_len..blocks[j].offset],
            );
            bytes.extend_from_slice(&file[span(&blocks[i])]);
            bytes.extend_from_slice(&file[blocks[j].offset + 48 + blocks[j].payload_len..]);
            assert_eq!(bytes.len(), file.len());
            assert_rejected(&path, &bytes, &into, &format!("blocks {i} and {j} swapped"));
        }
        // Block i from the other snapshot, at its own place.
        let mut bytes = file.clone();
        bytes[span(&blocks[i])].copy_from_slice(&other[span(&blocks[i])]);
        assert_rejected(
            &path,
            &bytes,
            &into,
            &format!("block {i} of another snapshot"),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn flipped_bits_and_bytes_are_rejected(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6),
        bytes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let dir = TempDir::new("hostile", "flip");
        let file = small_snapshot(&dir, "a.snap");
        let mut changed = file.clone();
        for (at, bit) in &flips {
            changed[at.index(file.len())] ^= 1 << bit;
        }
        for (at, byte) in &bytes {
            changed[at.index(file.len())] = *byte;
        }
        prop_assume!(changed != file);
        // Every byte is under a checksum: any change is caught.
        prop_assert!(reference_read(&changed).is_none());
        assert_rejected(&dir.path("t.snap"), &changed, &existing(), "flipped");
    }

    #[test]
    fn random_bytes_after_a_valid_header_are_rejected(
        body in prop::collection::vec(any::<u8>(), 0..600),
        blocks in 0u64..8,
        records in 0u64..40,
        data in 0u64..600,
    ) {
        let dir = TempDir::new("hostile", "random");
        let mut header = [0u8; 128];
        header[..8].copy_from_slice(b"\x89MCSNAP\n");
        header[8..12].copy_from_slice(&1u32.to_le_bytes());
        header[12..16].copy_from_slice(&128u32.to_le_bytes());
        header[32..40].copy_from_slice(&42u64.to_le_bytes());
        header[48..56].copy_from_slice(&(128 + body.len() as u64).to_le_bytes());
        header[56..64].copy_from_slice(&128u64.to_le_bytes());
        header[64..72].copy_from_slice(&blocks.to_le_bytes());
        header[72..80].copy_from_slice(&records.to_le_bytes());
        header[80..88].copy_from_slice(&data.to_le_bytes());
        let sum = xxh3_64(&header[..120]);
        header[120..].copy_from_slice(&sum.to_le_bytes());
        let mut file = header.to_vec();
        file.extend_from_slice(&body);
        // The one valid file of this shape: no blocks, no records, no body.
        prop_assume!(!(body.is_empty() && blocks == 0 && records == 0 && data == 0));
        prop_assert!(reference_read(&file).is_none());
        assert_rejected(&dir.path("t.snap"), &file, &existing(), "random body");
    }
}

/// The fuzz target, as a long differential run behind `make stress`
/// (MAPCACHE_STRESS=1): random edits of a valid snapshot (bit flips, byte
/// overwrites, truncation, appended bytes, any u32/u64 field overwritten with
/// the checksums recomputed), each checked against the reference reader: a
/// file it rejects must be rejected, one it reads must load to its records.
#[test]
fn long_differential_fuzz_run_under_stress() {
    if std::env::var_os("MAPCACHE_STRESS").is_none() {
        eprintln!("skipped: set MAPCACHE_STRESS=1 (make stress)");
        return;
    }
    let dir = TempDir::new("hostile", "fuzz");
    let file = small_snapshot(&dir, "a.snap");
    let blocks = layout(&file);
    let into = existing();
    let path = dir.path("t.snap");
    let edit = (
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..4),
        prop::option::of((any::<prop::sample::Index>(), any::<u64>(), any::<bool>())),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..3),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&edit, |(bytes, flips, field, cut, tail)| {
            let mut changed = file.clone();
            for (at, byte) in &bytes {
                changed[at.index(file.len())] = *byte;
            }
            for (at, bit) in &flips {
                changed[at.index(file.len())] ^= 1 << bit;
            }
            if let Some((at, value, wide)) = field {
                let width = if wide { 8 } else { 4 };
                let at = at.index(file.len() - width);
                changed[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                reseal(&mut changed, &blocks);
            }
            if let Some(cut) = cut {
                changed.truncate(cut.index(file.len() + 1));
            }
            changed.extend_from_slice(&tail);
            if changed != file {
                assert_agrees(&path, &changed, &into, "fuzzed");
            }
            Ok(())
        })
        .unwrap();
}

/// A file of tiny blocks (a record each, as a hand-made or hostile file may
/// be; mapcache's writer makes 1 MiB ones) around a block larger than the
/// reader's unit of work: every load path reads each record, the later of
/// two records of a key wins across units, and a bad block deep inside a
/// unit of thousands is reported as itself. (Memory: before blocks were
/// read in units, a 160 MB file of 64-byte blocks took 1.3 GB to load.)
#[test]
fn a_file_of_tiny_blocks_loads_on_every_path_and_a_bad_one_is_named() {
    let dir = TempDir::new("hostile", "tiny");
    let path = dir.path("tiny.snap");
    let keys: Vec<[u8; 4]> = (0..12_000u32).map(|i| (i % 10_000).to_le_bytes()).collect();
    let values: Vec<Vec<u8>> = (0..12_000usize).map(|i| vec![i as u8; i % 7]).collect();
    let big = vec![7u8; 3 << 20];
    let mut blocks: Vec<Vec<Written<'_>>> = Vec::new();
    for i in 0..12_000 {
        blocks.push(vec![(&keys[i][..], &values[i][..], 0)]);
        if i == 5_000 {
            blocks.push(vec![(b"big", &big[..], 0), (b"also", b"x", 0)]);
        }
    }
    let file = handmade_blocks(&blocks);
    let expected = reference_read(&file).expect("the reference reads it");
    assert_eq!(expected.len(), 12_002);
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for (key, value, _) in &expected {
        model.insert(key.clone(), value.clone());
    }
    assert_eq!(model.len(), 10_002);
    std::fs::write(&path, &file).unwrap();
    let bounded = Config {
        max_entries: 1 << 20,
        ..config()
    };
    assert_eq!(contents(&Map::load(&path, config()).unwrap()), model);
    assert_eq!(contents(&Map::load(&path, bounded.clone()).unwrap()), model);
    let into = Map::new(config()).unwrap();
    assert_eq!(into.load_into(&path).unwrap().loaded, 12_002);
    assert_eq!(contents(&into), model);

    // A flipped byte in the payload of block 9,000 (after the large block:
    // block 9,001 in the file).
    let at = layout(&file)[9_001].offset + 48;
    let mut bad = file.clone();
    bad[at] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let into = existing();
    let before = contents(&into);
    for result in [
        Map::load(&path, config()).map(|_| ()),
        Map::load(&path, bounded.clone()).map(|_| ()),
        into.load_into(&path).map(|_| ()),
    ] {
        match result {
            Err(Error::Corrupt { offset, what }) => {
                assert_eq!(offset, at as u64, "{what}");
                assert!(what.contains("block 9001"), "{what}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(contents(&into), before);
}

/// A payload larger than any block the writer makes (one record of the largest
/// key and value) is refused at its `payload_len` field, in the walk of the
/// block headers (step 7), before any of it is read in or copied: the file
/// here is sparse, gigabytes long and a few bytes on disk, and a reader that
/// checked a 4 GiB bound only once it had the payload held 8 GiB to refuse it.
#[test]
fn a_payload_larger_than_any_block_the_writer_makes_is_refused_before_it_is_read() {
    let dir = TempDir::new("hostile", "4gib");
    let path = dir.path("sparse.snap");
    let largest = 16 + 65_535 + (1u64 << 30);
    for payload_len in [largest + 1, u64::from(u32::MAX), 1u64 << 32] {
        let mut file = handmade(&[(b"a", b"1", 0)]);
        let file_len = 176 + payload_len;
        file[48..56].copy_from_slice(&file_len.to_le_bytes());
        file[152..160].copy_from_slice(&payload_len.to_le_bytes());
        let sum = xxh3_64(&file[128..168]);
        file[168..176].copy_from_slice(&sum.to_le_bytes());
        let sum = xxh3_64(&file[..120]);
        file[120..128].copy_from_slice(&sum.to_le_bytes());
        std::fs::write(&path, &file).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(file_len)
            .unwrap();
        let into = existing();
        let before = contents(&into);
        for result in [
            Map::load(&path, config()).map(|_| ()),
            into.load_into(&path).map(|_| ()),
        ] {
            match result {
                Err(Error::Corrupt { offset, what }) => {
                    assert_eq!(offset, 152, "{payload_len}: {what}");
                    assert!(
                        what.contains("larger than any block mapcache writes"),
                        "{what}"
                    );
                }
                other => panic!("{payload_len}: expected Corrupt, got {other:?}"),
            }
        }
        assert_eq!(contents(&into), before);
    }
}

#[test]
fn a_key_named_twice_keeps_the_later_record_on_every_load_path() {
    let dir = TempDir::new("hostile", "twice");
    let path = dir.path("twice.snap");
    let file = handmade(&[
        (b"a", b"1", 0),
        (b"b", b"2", 0),
        (b"a", b"3", 0),
        (b"", b"e", 1),
    ]);
    assert_eq!(reference_read(&file).unwrap().len(), 4);
    std::fs::write(&path, &file).unwrap();
    let expect = |map: &Map| {
        assert_eq!(map.get(b"a").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(map.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
        // Expired in 1970.
        assert_eq!(map.get(b"").unwrap(), None);
        assert_eq!(map.len(), 2);
        let stats = map.stats();
        assert_eq!(
            stats.inserts - stats.deletes - stats.evictions - stats.expirations,
            2
        );
    };
    // The later record replaced the earlier one's value; one had expired.
    let counts = |r: &mapcache::LoadReport| (r.records, r.loaded, r.replaced, r.expired);
    let (unbounded, report) = Map::load_with_report(&path, config()).unwrap();
    expect(&unbounded);
    assert_eq!(counts(&report), (4, 3, 1, 1));
    assert_eq!(report.bytes, file.len() as u64);
    let bounded = Config {
        max_entries: 100,
        ..config()
    };
    let (bounded, report) = Map::load_with_report(&path, bounded).unwrap();
    expect(&bounded);
    assert_eq!(counts(&report), (4, 3, 1, 1));
    let into = Map::new(config()).unwrap();
    let report = into.load_into(&path).unwrap();
    assert_eq!(
        (
            report.records,
            report.loaded,
            report.replaced,
            report.expired
        ),
        (4, 3, 1, 1)
    );
    expect(&into);
}
