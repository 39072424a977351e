//! One large shard: N keys (8-byte keys, 8-byte values) inserted one by one
//! into a map of one shard, then every key looked up, then the map dropped;
//! wall time of each and the resident memory the inserts added. For A/B runs
//! of changes to the table's growth and overflow buckets (docs/bench.md):
//! `cargo run --release -p mapcache-bench --bin large-shard -- 12000000`.

use std::time::Instant;

/// The process's resident set, in KiB (Linux; 0 elsewhere).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: u64 = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: large-shard ENTRIES");
            std::process::exit(2);
        }
    };
    let map = mapcache::Map::new(mapcache::Config {
        shards: 1,
        seed: Some(1),
        ..Default::default()
    })
    .expect("a map of one shard");
    let before = rss_kib();
    let start = Instant::now();
    for i in 0..n {
        map.insert(&i.to_le_bytes(), &i.to_be_bytes())
            .expect("insert");
    }
    let insert = start.elapsed();
    for _ in 0..100 {
        mapcache::collect_garbage();
    }
    let added = rss_kib().saturating_sub(before);
    let start = Instant::now();
    let mut hits = 0u64;
    for i in 0..n {
        hits += u64::from(map.get(&i.to_le_bytes()).expect("get").is_some());
    }
    let get = start.elapsed();
    assert_eq!(hits, n, "every key is found");
    let start = Instant::now();
    drop(map);
    let dropped = start.elapsed();
    println!(
        "{n} keys: insert {:.2} s, get {:.0} ns/key, resident +{} MiB ({:.1} B/key), drop {:.0} ms",
        insert.as_secs_f64(),
        get.as_nanos() as f64 / n as f64,
        added >> 10,
        added as f64 * 1024.0 / n as f64,
        dropped.as_secs_f64() * 1e3
    );
}
