//! mapcache against its peers, all in one run, every hash table given the same
//! fast hasher (foldhash) so that tables are compared, not hash functions.
//!
//! Workload (DESIGN.md section 11): 1M entries, 16-byte keys, 32-byte values.
//! - get_hit / get_miss: random uniform lookups, the value copied into a reusable
//!   buffer (the same work for every contender);
//! - insert_1m: 1M fresh keys into an empty table, growth included;
//! - mix_90_10: Zipf(0.99) keys, 90% get / 10% put (overwrite), 1 and 2 threads;
//! - get_hit/mapcache_pinned_view: mapcache's lookups through a `Map::pin` view
//!   (no fence per lookup);
//! - get_hit/hashbrown_epoch_pin_per_get: a control, not a contender: hashbrown
//!   with a `crossbeam_epoch::pin()` around each lookup, the price every
//!   epoch-protected read pays (a full fence per pin), measured on the table that
//!   sets the goal;
//! - get_hit_batch64: mapcache's pipelined batch lookup against 64 single
//!   hashbrown lookups;
//! - memory: bytes per entry beyond the 48 bytes of key and value, counted by a
//!   counting allocator (requested bytes), printed before the timings.
//!
//! Peers: hashbrown (single thread, `Box<[u8]>` keys and values, behind a
//! RefCell), `RwLock<std HashMap>`, dashmap, papaya, quick_cache (values as
//! `Arc<[u8]>`, since its `get` clones the value; capacity above 1M so it never
//! evicts). `cargo bench -p mapcache-bench --bench map` (or `make bench`).

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, RwLock};
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

// ---------------------------------------------------------------- allocator --

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, COUNTING, LIVE};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------- workload --

const N: usize = 1_000_000;
const KEY: usize = 16;
const VALUE: usize = 32;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Workload {
    keys: Vec<[u8; KEY]>,
    missing: Vec<[u8; KEY]>,
    value: [u8; VALUE],
    /// Random uniform indexes into `keys`.
    uniform: Vec<u32>,
    /// Zipf(0.99) indexes into `keys`.
    zipf: Vec<u32>,
}

impl Workload {
    fn new() -> Workload {
        let mut s = 42;
        let mut key = || {
            let mut k = [0u8; KEY];
            k[..8].copy_from_slice(&splitmix(&mut s).to_le_bytes());
            k[8..].copy_from_slice(&splitmix(&mut s).to_le_bytes());
            k
        };
        let keys: Vec<_> = (0..N).map(|_| key()).collect();
        let missing: Vec<_> = (0..N).map(|_| key()).collect();
        let mut s = 7;
        let uniform = (0..N)
            .map(|_| (splitmix(&mut s) % N as u64) as u32)
            .collect();
        // Zipf(0.99) by inverse CDF over the ranks; rank r maps to a scattered key.
        let mut cdf = Vec::with_capacity(N);
        let mut total = 0.0;
        for r in 0..N {
            total += 1.0 / ((r + 1) as f64).powf(0.99);
            cdf.push(total);
        }
        let zipf = (0..N)
            .map(|_| {
                let u = (splitmix(&mut s) >> 11) as f64 / (1u64 << 53) as f64 * total;
                let rank = cdf.partition_point(|&c| c < u).min(N - 1);
                ((rank as u64).wrapping_mul(2_654_435_761) % N as u64) as u32
            })
            .collect();
        Workload {
            keys,
            missing,
            value: [7u8; VALUE],
            uniform,
            zipf,
        }
    }
}

// -------------------------------------------------------------- contenders --

/// One table under test. `get` copies the value into `buf`.
trait Contender {
    const NAME: &'static str;
    fn new() -> Self;
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool;
    fn put(&self, key: &[u8], value: &[u8]);
}

type Fold = foldhash::fast::RandomState;

/// Copies a found value into `buf`; whether there was one.
fn copy_out(
    value: Option<impl std::ops::Deref<Target = impl AsRef<[u8]> + ?Sized>>,
    buf: &mut Vec<u8>,
) -> bool {
    match value {
        Some(v) => {
            buf.clear();
            buf.extend_from_slice((*v).as_ref());
            true
        }
        None => false,
    }
}

struct Mapcache(mapcache::Map);
impl Contender for Mapcache {
    const NAME: &'static str = "mapcache";
    fn new() -> Self {
        Mapcache(mapcache::Map::new(mapcache::Config::default()).unwrap())
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        self.0.get_into(key, buf).unwrap()
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(key, value).unwrap();
    }
}

type HashbrownMap = hashbrown::HashMap<Box<[u8]>, Box<[u8]>, Fold>;
type StdMap = std::collections::HashMap<Box<[u8]>, Box<[u8]>, Fold>;

struct Hashbrown(RefCell<HashbrownMap>);
impl Contender for Hashbrown {
    const NAME: &'static str = "hashbrown";
    fn new() -> Self {
        Hashbrown(RefCell::new(hashbrown::HashMap::with_hasher(
            Fold::default(),
        )))
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        copy_out(self.0.borrow().get(key), buf)
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.borrow_mut().insert(key.into(), value.into());
    }
}

struct RwLockMap(RwLock<StdMap>);
impl Contender for RwLockMap {
    const NAME: &'static str = "rwlock_hashmap";
    fn new() -> Self {
        RwLockMap(RwLock::new(std::collections::HashMap::with_hasher(
            Fold::default(),
        )))
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        copy_out(self.0.read().unwrap().get(key), buf)
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.write().unwrap().insert(key.into(), value.into());
    }
}

struct Dash(dashmap::DashMap<Box<[u8]>, Box<[u8]>, Fold>);
impl Contender for Dash {
    const NAME: &'static str = "dashmap";
    fn new() -> Self {
        Dash(dashmap::DashMap::with_hasher(Fold::default()))
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        copy_out(self.0.get(key), buf)
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(key.into(), value.into());
    }
}

struct Papaya(papaya::HashMap<Box<[u8]>, Box<[u8]>, Fold>);
impl Contender for Papaya {
    const NAME: &'static str = "papaya";
    fn new() -> Self {
        Papaya(papaya::HashMap::with_hasher(Fold::default()))
    }
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        copy_out(self.0.pin().get(key), buf)
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.pin().insert(key.into(), value.into());
    }
}

type QuickCache = quick_cache::sync::Cache<Box<[u8]>, Arc<[u8]>, quick_cache::UnitWeighter, Fold>;
struct Quick(QuickCache);
impl Contender for Quick {
    const NAME: &'static str = "quick_cache";
    fn new() -> Self {
        let capacity = N + N / 4;
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

fn filled<C: Contender>(w: &Workload) -> C {
    let c = C::new();
    for k in &w.keys {
        c.put(k, &w.value);
    }
    c
}

// ----------------------------------------------------------------- memory --

/// Bytes per entry beyond key and value, for 1M entries.
fn overhead<C: Contender>(w: &Workload) -> f64 {
    COUNTING.store(true, Ordering::SeqCst);
    // Bucket arrays of 2 MiB or more are mapped from the kernel, which the
    // counting allocator does not see: mapcache reports them.
    let counted = || LIVE.load(Ordering::SeqCst) + mapcache::mapped_table_bytes() as isize;
    let before = counted();
    let c: C = filled(w);
    // Let deferred frees (old tables retired by grows) run: steady state is what
    // an entry costs.
    for _ in 0..1000 {
        crossbeam_epoch::pin().flush();
        mapcache::collect_garbage();
    }
    let bytes = counted() - before;
    drop(c);
    COUNTING.store(false, Ordering::SeqCst);
    bytes as f64 / N as f64 - (KEY + VALUE) as f64
}

fn memory(w: &Workload) {
    println!(
        "memory overhead, bytes per entry beyond the {} bytes of key and value (1M entries):",
        KEY + VALUE
    );
    for (name, bytes) in [
        (Mapcache::NAME, overhead::<Mapcache>(w)),
        (Hashbrown::NAME, overhead::<Hashbrown>(w)),
        (RwLockMap::NAME, overhead::<RwLockMap>(w)),
        (Dash::NAME, overhead::<Dash>(w)),
        (Papaya::NAME, overhead::<Papaya>(w)),
        (Quick::NAME, overhead::<Quick>(w)),
    ] {
        println!("  {name:<16} {bytes:6.1}");
    }
}

// ---------------------------------------------------------------- timings --

/// Runs `op(thread, i)` for `iters` iterations on each of `threads` threads and
/// returns the wall time from a common start.
fn timed<C: Contender + Sync>(
    c: &C,
    threads: usize,
    iters: u64,
    op: impl Fn(&C, usize, u64, &mut Vec<u8>) + Sync,
) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, op) = (&start, &op);
                s.spawn(move || {
                    let mut buf = Vec::with_capacity(64);
                    start.wait();
                    for i in 0..iters {
                        op(c, t, i, &mut buf);
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

fn single_thread<C: Contender>(crit: &mut Criterion, w: &Workload) {
    let c: C = filled(w);
    get_hit_row(crit, w, C::NAME, |key, buf| c.get(key, buf));
    let mut buf = Vec::with_capacity(64);
    let mut i = 0usize;
    let mut group = crit.benchmark_group("get_miss");
    group.bench_function(C::NAME, |b| {
        b.iter(|| {
            i = (i + 1) % N;
            black_box(c.get(&w.missing[w.uniform[i] as usize], &mut buf))
        })
    });
    group.finish();
    let mut group = crit.benchmark_group("mix_90_10_1thread");
    group.bench_function(C::NAME, |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let key = &w.keys[w.zipf[i] as usize];
            if i % 10 == 0 {
                c.put(key, &w.value);
            } else {
                black_box(c.get(key, &mut buf));
            }
        })
    });
    group.finish();
    drop(c);
    let mut group = crit.benchmark_group("insert_1m");
    group
        .throughput(Throughput::Elements(N as u64))
        .sample_size(10);
    group.bench_function(C::NAME, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let c = C::new();
                let t0 = Instant::now();
                for k in &w.keys {
                    c.put(k, &w.value);
                }
                total += t0.elapsed();
                drop(c);
            }
            total
        })
    });
    group.finish();
}

/// A row of the get_hit group: `get` over the uniform hit keys, each value
/// copied into a reusable buffer (the contenders' rows and the extra ones).
fn get_hit_row(
    crit: &mut Criterion,
    w: &Workload,
    name: &str,
    mut get: impl FnMut(&[u8], &mut Vec<u8>) -> bool,
) {
    let mut buf = Vec::with_capacity(64);
    let mut group = crit.benchmark_group("get_hit");
    let mut i = 0usize;
    group.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % N;
            black_box(get(&w.keys[w.uniform[i] as usize], &mut buf))
        })
    });
    group.finish();
}

/// mapcache's lookups through a `Pinned` view (one pin for the whole loop),
/// reported in the get_hit group next to the per-call pin.
fn pinned(crit: &mut Criterion, w: &Workload) {
    let map: Mapcache = filled(w);
    let view = map.0.pin();
    get_hit_row(crit, w, "mapcache_pinned_view", |key, buf| {
        view.get_into(key, buf).unwrap()
    });
}

/// The control row: hashbrown lookups, each under a `crossbeam_epoch::pin()` as
/// an epoch-protected read must be. The pin's fence keeps a lookup's cache
/// misses from overlapping the next one's, whatever the table; this row measures
/// that cost apart from mapcache's own table walk.
fn pin_control(crit: &mut Criterion, w: &Workload) {
    let hb: Hashbrown = filled(w);
    get_hit_row(crit, w, "hashbrown_epoch_pin_per_get", |key, buf| {
        let _guard = crossbeam_epoch::pin();
        hb.get(key, buf)
    });
}

/// mapcache's batch lookup (`get_many_with`, 64 keys a call, values copied out)
/// against the same 64 lookups one by one in hashbrown: what a batch buys.
fn batches(crit: &mut Criterion, w: &Workload) {
    const BATCH: usize = 64;
    let mut group = crit.benchmark_group("get_hit_batch64");
    group.throughput(Throughput::Elements(BATCH as u64));
    let map: Mapcache = filled(w);
    let mut i = 0usize;
    let mut buf = Vec::with_capacity(BATCH * VALUE);
    group.bench_function("mapcache_get_many_with", |b| {
        b.iter(|| {
            i = (i + BATCH) % (N - BATCH);
            buf.clear();
            let keys = w.uniform[i..i + BATCH]
                .iter()
                .map(|&k| &w.keys[k as usize][..]);
            map.0.get_many_with(keys, |_, v| {
                if let Ok(Some(v)) = v {
                    buf.extend_from_slice(v);
                }
            });
            black_box(buf.len())
        })
    });
    drop(map);
    let hb: Hashbrown = filled(w);
    let mut one = Vec::with_capacity(VALUE);
    group.bench_function("hashbrown_64_gets", |b| {
        b.iter(|| {
            i = (i + BATCH) % (N - BATCH);
            buf.clear();
            for &k in &w.uniform[i..i + BATCH] {
                if hb.get(&w.keys[k as usize], &mut one) {
                    buf.extend_from_slice(&one);
                }
            }
            black_box(buf.len())
        })
    });
    group.finish();
}

fn two_threads<C: Contender + Sync>(crit: &mut Criterion, w: &Workload) {
    let c: C = filled(w);
    let mut group = crit.benchmark_group("mix_90_10_2threads");
    // One iteration = one operation on each of the two threads.
    group.throughput(Throughput::Elements(2));
    group.bench_with_input(BenchmarkId::from_parameter(C::NAME), &c, |b, c| {
        b.iter_custom(|iters| {
            timed(c, 2, iters, |c, t, i, buf| {
                let n = (i as usize + t * (N / 2)) % N;
                let key = &w.keys[w.zipf[n] as usize];
                if n % 10 == 0 {
                    c.put(key, &w.value);
                } else {
                    black_box(c.get(key, buf));
                }
            })
        })
    });
    group.finish();
}

fn benches(crit: &mut Criterion) {
    // Count only inside `overhead`'s measurements.
    COUNTING.store(false, Ordering::SeqCst);
    let w = Workload::new();
    memory(&w);
    single_thread::<Mapcache>(crit, &w);
    single_thread::<Hashbrown>(crit, &w);
    single_thread::<RwLockMap>(crit, &w);
    single_thread::<Dash>(crit, &w);
    single_thread::<Papaya>(crit, &w);
    single_thread::<Quick>(crit, &w);
    pinned(crit, &w);
    pin_control(crit, &w);
    batches(crit, &w);
    two_threads::<Mapcache>(crit, &w);
    two_threads::<RwLockMap>(crit, &w);
    two_threads::<Dash>(crit, &w);
    two_threads::<Papaya>(crit, &w);
    two_threads::<Quick>(crit, &w);
    // The hasher is part of the comparison's fairness: confirm it is foldhash.
    let _: &dyn BuildHasher<Hasher = foldhash::fast::FoldHasher> = &Fold::default();
}

criterion_group! {
    name = map;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(map);
