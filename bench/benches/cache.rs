//! mapcache as a bounded cache against the Rust caches users would pick
//! instead (moka's sync cache, quick_cache), all in one run, each given the
//! same fast hasher (foldhash).
//!
//! - eviction_heavy_{1,2}threads: a 10M-key space, capacity 1M (10%), 16-byte
//!   keys, 32-byte values, Zipf(0.99) keys, 90% get / 10% put, and every get
//!   that misses is followed by a put of that key (a read-through cache);
//!   throughput in operations. Each contender's hit ratio on the same sequence
//!   (single thread, the second half of the sequence after a warm-up on the
//!   first) is printed first.
//! - cache_get_hit: random uniform get hits on 1M entries, a mapcache cache
//!   bounded at 1M entries (policy on) against an unbounded mapcache map: what
//!   the policy costs a read.
//! - memory: bytes per entry beyond the 48 of key and value, for 1M entries in
//!   a cache bounded at 1M, counted by a counting allocator (plus mapcache's
//!   mapped bucket arrays).
//!
//! `cargo bench -p mapcache-bench --bench cache` (part of `make bench`).

use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, COUNTING, LIVE};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Keys in the key space.
const SPACE: usize = 10_000_000;
/// Entries a cache holds (10% of the key space).
const CAPACITY: usize = SPACE / 10;
/// Operations in the precomputed key sequence (each thread starts elsewhere in
/// it): the first half warms a cache up, the hit ratio is measured on the second.
const OPS: usize = 1 << 23;
const VALUE: [u8; 32] = [7u8; 32];

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 16-byte key of key number `i` (made on the fly: the same work for every
/// contender, and no 160 MB key table competing for the caches).
#[inline]
fn key(i: u32) -> [u8; 16] {
    let mut s = u64::from(i);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&splitmix(&mut s).to_le_bytes());
    k[8..].copy_from_slice(&u64::from(i).to_le_bytes());
    k
}

/// Zipf(0.99) key numbers over the key space, by inverse CDF; rank r maps to a
/// scattered key number.
fn zipf_sequence() -> Vec<u32> {
    let mut cdf = Vec::with_capacity(SPACE);
    let mut total = 0.0;
    for r in 0..SPACE {
        total += 1.0 / ((r + 1) as f64).powf(0.99);
        cdf.push(total);
    }
    let mut s = 99;
    (0..OPS)
        .map(|_| {
            let u = (splitmix(&mut s) >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = cdf.partition_point(|&c| c < u).min(SPACE - 1);
            ((rank as u64).wrapping_mul(2_654_435_761) % SPACE as u64) as u32
        })
        .collect()
}

type Fold = foldhash::fast::RandomState;

/// Copies a found value into `buf`; whether there was one (the same work for
/// every contender whose `get` hands out a shared value).
fn copy_out(value: Option<Arc<[u8]>>, buf: &mut Vec<u8>) -> bool {
    match value {
        Some(v) => {
            buf.clear();
            buf.extend_from_slice(&v);
            true
        }
        None => false,
    }
}

/// One cache under test. `get` copies the value into `buf`.
trait Contender: Sync {
    const NAME: &'static str;
    fn new(capacity: usize) -> Self;
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool;
    fn put(&self, key: &[u8], value: &[u8]);
}

struct Mapcache(mapcache::Map);
impl Contender for Mapcache {
    const NAME: &'static str = "mapcache";
    fn new(capacity: usize) -> Self {
        Mapcache(
            mapcache::Map::new(mapcache::Config {
                max_entries: capacity,
                ..Default::default()
            })
            .unwrap(),
        )
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        self.0.get_into(key, buf).unwrap()
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(key, value).unwrap();
    }
}

struct Moka(moka::sync::Cache<Box<[u8]>, Arc<[u8]>, Fold>);
impl Contender for Moka {
    const NAME: &'static str = "moka";
    fn new(capacity: usize) -> Self {
        Moka(
            moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .build_with_hasher(Fold::default()),
        )
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        copy_out(self.0.get(key), buf)
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(key.into(), value.into());
    }
}

type QuickCache = quick_cache::sync::Cache<Box<[u8]>, Arc<[u8]>, quick_cache::UnitWeighter, Fold>;
struct Quick(QuickCache);
impl Contender for Quick {
    const NAME: &'static str = "quick_cache";
    fn new(capacity: usize) -> Self {
        Quick(QuickCache::with(
            capacity,
            capacity as u64,
            quick_cache::UnitWeighter,
            Fold::default(),
            Default::default(),
        ))
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        copy_out(self.0.get(key), buf)
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(key.into(), value.into());
    }
}

/// One operation of the read-through mix: whether it was a get that hit.
#[inline]
fn op<C: Contender>(c: &C, seq: &[u32], i: usize, buf: &mut Vec<u8>) -> Option<bool> {
    let k = key(seq[i % OPS]);
    if i % 10 == 0 {
        c.put(&k, &VALUE);
        return None;
    }
    let hit = c.get(&k, buf);
    if !hit {
        c.put(&k, &VALUE);
    }
    Some(hit)
}

/// A cache warmed up by the first half of the sequence.
fn warmed<C: Contender>(seq: &[u32]) -> C {
    let c = C::new(CAPACITY);
    let mut buf = Vec::with_capacity(64);
    for i in 0..OPS / 2 {
        op(&c, seq, i, &mut buf);
    }
    c
}

/// The hit ratio of gets over the second half of the sequence, after the
/// warm-up on the first (the second half's first-seen keys miss, as in life).
fn hit_ratio<C: Contender>(seq: &[u32]) -> f64 {
    let c: C = warmed(seq);
    let mut buf = Vec::with_capacity(64);
    let (mut hits, mut gets) = (0u64, 0u64);
    for i in OPS / 2..OPS {
        if let Some(hit) = op(&c, seq, i, &mut buf) {
            gets += 1;
            hits += u64::from(hit);
        }
    }
    hits as f64 / gets as f64
}

/// Runs `iters` operations on each of `threads` threads (thread t starts at a
/// different place in the sequence) and returns the wall time.
fn run<C: Contender>(
    c: &C,
    seq: &[u32],
    threads: usize,
    iters: u64,
    offset: &mut usize,
) -> Duration {
    let start = Barrier::new(threads + 1);
    let base = *offset;
    *offset += iters as usize;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    let mut buf = Vec::with_capacity(64);
                    let from = base + t * (OPS / threads.max(1));
                    start.wait();
                    for i in 0..iters as usize {
                        black_box(op(c, seq, from + i, &mut buf));
                    }
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for h in handles {
            h.join().unwrap();
        }
        t0.elapsed()
    })
}

fn eviction_heavy<C: Contender>(crit: &mut Criterion, seq: &[u32]) {
    let c: C = warmed(seq);
    for threads in [1usize, 2] {
        let mut group = crit.benchmark_group(format!("eviction_heavy_{threads}threads"));
        group.throughput(Throughput::Elements(threads as u64));
        let mut offset = 0;
        group.bench_function(C::NAME, |b| {
            b.iter_custom(|iters| run(&c, seq, threads, iters, &mut offset))
        });
        group.finish();
    }
}

fn get_hit(crit: &mut Criterion) {
    // Bounded above the 1M keys it holds, as shards' shares fill unevenly: the
    // policy's read-side bookkeeping runs on every hit, and nothing is evicted.
    let bounded = mapcache::Map::new(mapcache::Config {
        max_entries: CAPACITY + CAPACITY / 4,
        ..Default::default()
    })
    .unwrap();
    let unbounded = mapcache::Map::new(mapcache::Config::default()).unwrap();
    for i in 0..CAPACITY as u32 {
        bounded.insert(&key(i), &VALUE).unwrap();
        unbounded.insert(&key(i), &VALUE).unwrap();
    }
    assert_eq!(
        bounded.len(),
        CAPACITY,
        "the cache must hold every key to compare hits"
    );
    let mut s = 5;
    let uniform: Vec<u32> = (0..OPS)
        .map(|_| (splitmix(&mut s) % CAPACITY as u64) as u32)
        .collect();
    let mut group = crit.benchmark_group("cache_get_hit");
    for (name, map) in [
        ("mapcache_cache_1m", &bounded),
        ("mapcache_unbounded", &unbounded),
    ] {
        let mut buf = Vec::with_capacity(64);
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % OPS;
                black_box(map.get_into(&key(uniform[i]), &mut buf).unwrap())
            })
        });
    }
    group.finish();
}

/// Bytes per entry beyond key and value, for `CAPACITY` entries in a cache
/// bounded at `CAPACITY`.
fn overhead<C: Contender>() -> f64 {
    COUNTING.store(true, Ordering::SeqCst);
    let counted = || LIVE.load(Ordering::SeqCst) + mapcache::mapped_table_bytes() as isize;
    let before = counted();
    let c = C::new(CAPACITY);
    let mut buf = Vec::new();
    for i in 0..CAPACITY as u32 {
        c.put(&key(i), &VALUE);
    }
    // Read them all once, so that read-side buffers settle too.
    for i in 0..CAPACITY as u32 {
        c.get(&key(i), &mut buf);
    }
    for _ in 0..1000 {
        mapcache::collect_garbage();
    }
    let bytes = counted() - before;
    drop(c);
    COUNTING.store(false, Ordering::SeqCst);
    bytes as f64 / CAPACITY as f64 - 48.0
}

fn benches(crit: &mut Criterion) {
    COUNTING.store(false, Ordering::SeqCst);
    println!("memory overhead, bytes per entry beyond the 48 of key and value (1M entries, cache bounded at 1M):");
    for (name, bytes) in [
        (Mapcache::NAME, overhead::<Mapcache>()),
        (Moka::NAME, overhead::<Moka>()),
        (Quick::NAME, overhead::<Quick>()),
    ] {
        println!("  {name:<12} {bytes:6.1}");
    }
    let seq = zipf_sequence();
    println!(
        "hit ratio of gets, read-through Zipf(0.99) mix, 10M keys, capacity 1M \
         (the second {0}M operations of the sequence, after a warm-up on the first {0}M):",
        OPS / 2 / 1_000_000
    );
    for (name, ratio) in [
        (Mapcache::NAME, hit_ratio::<Mapcache>(&seq)),
        (Moka::NAME, hit_ratio::<Moka>(&seq)),
        (Quick::NAME, hit_ratio::<Quick>(&seq)),
    ] {
        println!("  {name:<12} {:6.2}%", ratio * 100.0);
    }
    get_hit(crit);
    eviction_heavy::<Mapcache>(crit, &seq);
    eviction_heavy::<Moka>(crit, &seq);
    eviction_heavy::<Quick>(crit, &seq);
    let _: &dyn BuildHasher<Hasher = foldhash::fast::FoldHasher> = &Fold::default();
}

criterion_group! {
    name = cache;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = benches
}
criterion_main!(cache);
