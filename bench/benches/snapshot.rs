//! Warm start (issue 12): a timed bench binary, not criterion (one load of
//! 10M entries takes seconds, and what matters is the ratio of two runs made
//! side by side on the same machine state).
//!
//! Workload: 10M entries (MAPCACHE_SNAPSHOT_ENTRIES to change it), 16-byte keys,
//! 32-byte values, default config. In one run, each measured `ROUNDS` times
//! (the best and the median are printed):
//! - insert: the entries inserted one by one into an empty cache (the cold
//!   start the snapshot replaces);
//! - save: `Map::save` of that cache (MB/s of file written, fsync included);
//! - load: `Map::load` of the file into a new cache (MB/s of file read,
//!   entries/s), and its ratio to the insert;
//! - writers during a save: one thread overwriting random keys, its rate alone
//!   and while saves run on another thread;
//! - a restart: the insert and the load again, each in a fresh process (this
//!   binary re-run as a child), which must fault in all of its memory: what a
//!   process that restarts warm really pays. The rounds above reuse memory the
//!   allocator got back from the round before.
//!
//! `cargo bench -p mapcache-bench --bench snapshot` (part of `make bench`).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mapcache::{Config, Map};

const ROUNDS: usize = 3;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    k[8..].copy_from_slice(&i.to_le_bytes());
    k
}

fn value(i: u64) -> [u8; 32] {
    [i as u8; 32]
}

fn stats(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Overwrites of random keys a writer makes in `ops` operations: the elapsed time.
fn writer(map: &Map, n: u64, ops: u64, seed: u64) -> Duration {
    let mut x = seed | 1;
    let start = Instant::now();
    for _ in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = x % n;
        map.insert(&key(i), &value(i ^ 1)).unwrap();
    }
    start.elapsed()
}

/// Set in a child run to the one job it times: `insert`, or `load:<path>`.
const CHILD_ENV: &str = "MAPCACHE_SNAPSHOT_CHILD";

/// A child's job, timed, printed as `elapsed_ns <n>` on its own line.
fn child(job: &str, n: u64) {
    let start = Instant::now();
    let map = match job.strip_prefix("load:") {
        Some(path) => Map::load(path, Config::default()).unwrap(),
        None => {
            assert_eq!(job, "insert");
            let map = Map::new(Config::default()).unwrap();
            for i in 0..n {
                map.insert(&key(i), &value(i)).unwrap();
            }
            map
        }
    };
    let elapsed = start.elapsed();
    assert_eq!(map.len() as u64, n);
    println!("elapsed_ns {}", elapsed.as_nanos());
}

/// `job` run once in a fresh process: its time.
fn in_fresh_process(job: &str, n: u64) -> Duration {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, job)
        .env("MAPCACHE_SNAPSHOT_ENTRIES", n.to_string())
        .output()
        .unwrap();
    assert!(output.status.success(), "the {job} child failed");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let ns = stdout
        .lines()
        .find_map(|l| l.strip_prefix("elapsed_ns "))
        .expect("the child's time")
        .parse()
        .unwrap();
    Duration::from_nanos(ns)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("MAPCACHE_SNAPSHOT_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    if let Ok(job) = std::env::var(CHILD_ENV) {
        return child(&job, n);
    }
    let dir = std::env::temp_dir().join(format!("mapcache-bench-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.snap");
    println!("snapshot bench: {n} entries, 16-byte keys, 32-byte values, {ROUNDS} rounds");

    let mut inserts = Vec::new();
    let mut source = None;
    for _ in 0..ROUNDS {
        drop(source.take());
        let map = Map::new(Config::default()).unwrap();
        let start = Instant::now();
        for i in 0..n {
            map.insert(&key(i), &value(i)).unwrap();
        }
        inserts.push(start.elapsed());
        source = Some(map);
    }
    let source = source.unwrap();

    let mut saves = Vec::new();
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        bytes = source.save(&path).unwrap().bytes;
        saves.push(start.elapsed());
    }

    let mut loads = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let warm = Map::load(&path, Config::default()).unwrap();
        loads.push(start.elapsed());
        assert_eq!(warm.len() as u64, n);
        black_box(warm.get(&key(n / 2)).unwrap());
        drop(warm);
    }

    // A writer alone, then with saves running on another thread.
    let ops = (n / 2).max(100_000);
    let alone = stats(
        (0..ROUNDS)
            .map(|r| writer(&source, n, ops, r as u64 + 7))
            .collect(),
    );
    let waits_before = source.table_stats();
    let stop = AtomicBool::new(false);
    let saves_during = AtomicU64::new(0);
    let during = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Acquire) {
                source.save(&path).unwrap();
                saves_during.fetch_add(1, Ordering::Relaxed);
            }
        });
        let times = (0..ROUNDS)
            .map(|r| writer(&source, n, ops, r as u64 + 7))
            .collect();
        stop.store(true, Ordering::Release);
        stats(times)
    });

    let waits_after = source.table_stats();
    drop(source);

    // A restart: each job in a fresh process, alternately.
    let load_job = format!("load:{}", path.display());
    let (mut fresh_inserts, mut fresh_loads) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        fresh_inserts.push(in_fresh_process("insert", n));
        fresh_loads.push(in_fresh_process(&load_job, n));
    }

    let (insert_best, insert_median) = stats(inserts);
    let (save_best, save_median) = stats(saves);
    let (load_best, load_median) = stats(loads);
    let mb = bytes as f64 / 1e6;
    println!(
        "file: {mb:.1} MB ({:.1} bytes per entry)",
        bytes as f64 / n as f64
    );
    println!(
        "insert one by one: best {:.3} s, median {:.3} s ({:.2} M entries/s)",
        secs(insert_best),
        secs(insert_median),
        n as f64 / secs(insert_best) / 1e6
    );
    println!(
        "save:              best {:.3} s, median {:.3} s ({:.0} MB/s)",
        secs(save_best),
        secs(save_median),
        mb / secs(save_best)
    );
    println!(
        "load:              best {:.3} s, median {:.3} s ({:.0} MB/s, {:.2} M entries/s)",
        secs(load_best),
        secs(load_median),
        mb / secs(load_best),
        n as f64 / secs(load_best) / 1e6
    );
    println!(
        "load vs insert:    {:.2}x faster (best), {:.2}x (median)",
        secs(insert_best) / secs(load_best),
        secs(insert_median) / secs(load_median)
    );
    println!(
        "writer ({ops} overwrites): alone best {:.3} s, during saves best {:.3} s ({} saves ran): {:.2}x the time",
        secs(alone.0),
        secs(during.0),
        saves_during.load(Ordering::Relaxed),
        secs(during.1) / secs(alone.1)
    );
    println!(
        "  the writer's waits for reclamation during the saves: {} ({} ran out of patience)",
        waits_after.relief_waits - waits_before.relief_waits,
        waits_after.relief_give_ups - waits_before.relief_give_ups
    );
    let (fresh_insert, _) = stats(fresh_inserts);
    let (fresh_load, _) = stats(fresh_loads);
    println!(
        "in a fresh process: insert best {:.3} s, load best {:.3} s ({:.0} MB/s): {:.2}x faster",
        secs(fresh_insert),
        secs(fresh_load),
        mb / secs(fresh_load),
        secs(fresh_insert) / secs(fresh_load)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
