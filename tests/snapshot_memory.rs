//! What loading a snapshot costs in memory beyond the cache it builds,
//! measured with a counting global allocator, for a file of tiny blocks (a
//! record each: a hand-made or hostile file may be cut so; mapcache's writer
//! makes 1 MiB blocks). Each load path reads such a file in units of about
//! a MiB of blocks (`src/snapshot/load.rs`), so its bookkeeping is per unit,
//! not per block: before, a 160 MB file of 64-byte blocks took 1.3 GB to
//! load into a new map (about 430 bytes per block, most of it a list per
//! shard per block).
//!
//! One test function, so that no other test of this binary allocates meanwhile.

use std::sync::atomic::Ordering;

use mapcache::{Config, Map};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/handmade_snapshot.rs"]
mod handmade_snapshot;
#[path = "support/temp_dir.rs"]
mod temp_dir;
use counting_alloc::{reset_peak, Counting, LIVE, PEAK};
use handmade_snapshot::{handmade_blocks, Written};
use temp_dir::TempDir;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BLOCKS: u32 = 100_000;

/// The most the counted live bytes rose above what `load` leaves behind
/// (the cache it returns, dropped after), while it ran.
fn transient(load: impl FnOnce() -> Box<dyn std::any::Any>) -> isize {
    reset_peak();
    let result = load();
    let kept = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
    drop(result);
    peak - kept
}

/// Writes a file of `n` one-record blocks (4-byte keys, empty values) at
/// `path`; its length.
fn tiny_blocks(path: &std::path::Path, n: u32) -> isize {
    let keys: Vec<[u8; 4]> = (0..n).map(u32::to_le_bytes).collect();
    let blocks: Vec<Vec<Written<'_>>> = keys.iter().map(|k| vec![(&k[..], &b""[..], 0)]).collect();
    let file = handmade_blocks(&blocks);
    std::fs::write(path, &file).unwrap();
    assert_eq!(file.len(), 128 + 68 * n as usize);
    file.len() as isize
}

#[test]
fn loading_a_file_of_tiny_blocks_costs_memory_by_its_size_not_its_block_count() {
    let dir = TempDir::new("memory", "tiny");
    let path = dir.path("tiny.snap");
    let file_len = tiny_blocks(&path, BLOCKS);
    // Many shards: each made a list of its own per block before.
    let config = Config {
        seed: Some(1),
        shards: 64,
        ..Config::default()
    };
    let bounded = Config {
        max_entries: 1 << 20,
        ..config.clone()
    };
    // Each path holds the file's worth of copies or entries' makings, and
    // lists per block (24 bytes) and per record (16): about 1.0, 1.25 and
    // 1.25 file lengths here, against 32, 2.9 and 2.5 before; plus a unit's
    // copy (at most a MiB) per loading thread.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as isize;
    let allowed = file_len * 3 / 2 + (threads + 1) * (1 << 20);
    let new = transient(|| {
        let map = Map::load(&path, config.clone()).unwrap();
        assert_eq!(map.len(), BLOCKS as usize);
        Box::new(map)
    });
    let new_bounded = transient(|| {
        let map = Map::load(&path, bounded.clone()).unwrap();
        assert_eq!(map.len(), BLOCKS as usize);
        Box::new(map)
    });
    // The most shards, in a file of 20 units: a unit's lists are per shard it
    // has records for, not per shard of the map (2 MiB a unit at 65,536
    // shards before: 2.35 file lengths of a file mapcache wrote). What is per
    // shard of the map is the build's slot and list per shard, about 120
    // bytes each.
    let big = dir.path("big.snap");
    let big_len = tiny_blocks(&big, 3 * BLOCKS);
    let per_shard = 65_536 * 128;
    let many_shards = transient(|| {
        let map = Map::load(
            &big,
            Config {
                shards: 65_536,
                ..config.clone()
            },
        )
        .unwrap();
        assert_eq!(map.len(), 3 * BLOCKS as usize);
        Box::new(map)
    });
    let big_allowed = big_len * 3 / 2 + (threads + 1) * (1 << 20) + per_shard;
    let live = Map::new(config.clone()).unwrap();
    let into = transient(|| {
        assert_eq!(live.load_into(&path).unwrap().loaded, u64::from(BLOCKS));
        Box::new(())
    });
    assert_eq!(live.len(), BLOCKS as usize);
    let report = format!(
        "a {file_len}-byte file: new {new}, new bounded {new_bounded}, into a live map {into} \
         bytes beyond the cache (allowed {allowed}); a {big_len}-byte one into 65,536 shards \
         {many_shards}"
    );
    println!("{report}");
    for used in [new, new_bounded, into] {
        assert!(used <= allowed, "{report}");
    }
    assert!(
        many_shards <= big_allowed,
        "{report} (with 65,536 shards, allowed {big_allowed})"
    );
}
