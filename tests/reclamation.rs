//! Memory reclamation, measured with a counting global allocator: churn over a
//! fixed key set keeps memory within 2x of its steady state while readers run,
//! and dropping the map gives its memory back at once, with no help (no manual
//! flush of the epoch) and while another thread that wrote to it sits idle with
//! deferred frees of the map's garbage in its epoch bag; from Rust (`drop`) and
//! through the C ABI (`mapcache_free`).
//!
//! One test function, so that no other test of this binary allocates meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use mapcache::{ffi, Config, Map};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, LIVE};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live bytes: counted allocations, plus the bucket arrays the library maps from
/// the kernel (2 MiB or more), which the counting allocator does not see.
fn live() -> isize {
    LIVE.load(Ordering::Relaxed) + mapcache::mapped_table_bytes() as isize
}

const KEYS: u32 = 20_000;
const READERS: usize = 1;
/// What a dropped shard may leave behind until the deferred closures that name
/// it have run: its `ShardMemory` (the slab's per-class heads, the registry's
/// locks) and its `Arc` counts, about 1.4 KiB (`src/table/reclaim.rs`).
const SHARD_RESIDUE: isize = 2048;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:08}").into_bytes() // 12 bytes
}

/// The value churn writes for operation `n` and key `i`: mostly small entries
/// (slab blocks), every 16th key a large one (an allocation of its own).
fn value(n: u32, i: u32) -> Vec<u8> {
    let len = if i % 16 == 0 { 300 } else { 32 };
    n.to_le_bytes().repeat(len / 4)
}

/// What the scenario does to a cache: the Rust map or a C handle.
trait Store: Send + Sync + 'static {
    fn put(&self, key: &[u8], value: &[u8]);
    fn remove(&self, key: &[u8]);
    fn read(&self, key: &[u8], buf: &mut Vec<u8>);
    fn shards(&self) -> usize;
    /// Destroys the cache; every other handle of it is gone.
    fn free(self);
}

impl Store for Map {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.insert(key, value).unwrap();
    }
    fn remove(&self, key: &[u8]) {
        Map::remove(self, key).unwrap();
    }
    fn read(&self, key: &[u8], buf: &mut Vec<u8>) {
        self.get_into(key, buf).unwrap();
    }
    fn shards(&self) -> usize {
        self.table_stats().shards
    }
    fn free(self) {
        drop(self);
    }
}

/// A cache made with `mapcache_new`, used through the C ABI.
struct CHandle(*mut ffi::mapcache_t);

// SAFETY: a mapcache_t may be used from any thread (the header's contract).
unsafe impl Send for CHandle {}
// SAFETY: as above.
unsafe impl Sync for CHandle {}

impl CHandle {
    fn new() -> CHandle {
        let mut cfg = std::mem::MaybeUninit::<ffi::mapcache_config>::uninit();
        let mut out = std::ptr::null_mut();
        // SAFETY: `cfg` is writable for its size; `out` is writable.
        unsafe {
            let size = std::mem::size_of::<ffi::mapcache_config>();
            assert_eq!(
                ffi::mapcache_config_init(cfg.as_mut_ptr(), size),
                ffi::MAPCACHE_OK
            );
            assert_eq!(ffi::mapcache_new(cfg.as_ptr(), &mut out), ffi::MAPCACHE_OK);
        }
        CHandle(out)
    }
}

impl Store for CHandle {
    fn put(&self, key: &[u8], value: &[u8]) {
        let status = unsafe {
            // SAFETY: live handle; the buffers are valid for their lengths.
            ffi::mapcache_put(
                self.0,
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, ffi::MAPCACHE_OK);
    }
    fn remove(&self, key: &[u8]) {
        // SAFETY: live handle; the key is valid for its length.
        let status = unsafe { ffi::mapcache_delete(self.0, key.as_ptr(), key.len()) };
        assert!(status == ffi::MAPCACHE_OK || status == ffi::MAPCACHE_NOT_FOUND);
    }
    fn read(&self, key: &[u8], buf: &mut Vec<u8>) {
        let mut len = 0;
        buf.resize(512, 0);
        let status = unsafe {
            // SAFETY: live handle; `buf` is writable for its length.
            ffi::mapcache_get(
                self.0,
                key.as_ptr(),
                key.len(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
            )
        };
        assert!(status == ffi::MAPCACHE_OK || status == ffi::MAPCACHE_NOT_FOUND);
    }
    fn shards(&self) -> usize {
        // The default configuration, as mapcache_new resolves it.
        Map::new(Config::default()).unwrap().table_stats().shards
    }
    fn free(self) {
        // SAFETY: a live handle, freed once, with no other call in flight.
        unsafe { ffi::mapcache_free(self.0) };
    }
}

fn churn(map: &impl Store, ops: std::ops::Range<u32>) -> isize {
    let mut peak = live();
    for n in ops {
        let i = n.wrapping_mul(2_654_435_761) % KEYS;
        if n % 3 == 0 {
            map.remove(&key(i));
        }
        map.put(&key(i), &value(n, i));
        if n % 4096 == 0 {
            peak = peak.max(live());
        }
    }
    peak.max(live())
}

/// What one scenario measured: bytes live in the full map, at the churn's peak,
/// and right after the drop, each relative to before the map was made.
struct Measured {
    steady: isize,
    peak: isize,
    after_drop: isize,
    shards: usize,
}

/// One full scenario: fill; churn from this thread and from a second writer,
/// with readers running; the second writer then waits, idle, while this thread
/// drops the map and counts what is left.
fn scenario<S: Store>(make: fn() -> S, churn_ops: u32) -> Measured {
    let before = live();
    let map = Arc::new(make());
    let shards = map.shards();
    for i in 0..KEYS {
        map.put(&key(i), &value(0, i));
    }
    let steady = live() - before;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (map, done) = (Arc::clone(&map), Arc::clone(&done));
            thread::spawn(move || {
                let mut buf = Vec::with_capacity(512);
                let mut i = r as u32;
                while !done.load(Ordering::Relaxed) {
                    map.read(&key(i % KEYS), &mut buf);
                    i = i.wrapping_add(7919);
                }
            })
        })
        .collect();
    // The second writer churns the other half, drops its handle of the map,
    // reports its peak, and idles until the drop has been measured: its epoch
    // bag keeps whatever deferred frees it made last.
    let (peak_tx, peak_rx) = mpsc::channel();
    let measured = Arc::new(Barrier::new(2));
    let idle_writer = {
        let (map, measured) = (Arc::clone(&map), Arc::clone(&measured));
        thread::spawn(move || {
            let peak = churn(&*map, churn_ops / 2..churn_ops);
            drop(map);
            peak_tx.send(peak).unwrap();
            measured.wait();
        })
    };
    let mut peak = churn(&*map, 0..churn_ops / 2);
    peak = peak.max(peak_rx.recv().unwrap());
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    let map = Arc::into_inner(map).expect("every other handle of the map is gone");
    map.free();
    let after_drop = live() - before;
    measured.wait();
    idle_writer.join().unwrap();
    Measured {
        steady,
        peak: peak - before,
        after_drop,
        shards,
    }
}

fn check(what: &str, m: Measured, churn_ops: u32) {
    eprintln!(
        "{what}: steady {} B, peak during {churn_ops} churn ops {} B ({:.2}x), {} B left right after the drop",
        m.steady,
        m.peak,
        m.peak as f64 / m.steady as f64,
        m.after_drop
    );
    assert!(
        m.peak <= 2 * m.steady,
        "{what}: churn grew memory to {} B, more than 2x the steady {} B",
        m.peak,
        m.steady
    );
    let residue = m.shards as isize * SHARD_RESIDUE;
    assert!(
        m.after_drop <= residue,
        "{what}: dropping the map left {} B allocated (of {} B), more than the {residue} B its \
         {} shards' memory shells may hold until deferred frees run",
        m.after_drop,
        m.steady,
        m.shards
    );
}

#[test]
fn churn_stays_bounded_and_drop_frees_the_map_at_once() {
    // A warm-up run of each kind sizes the process-wide structures that outlive
    // any one map (the epochs' queues, the thread registry, the handle arena).
    scenario(|| Map::new(Config::default()).unwrap(), 10_000);
    scenario(CHandle::new, 10_000);

    let churn_ops = if std::env::var_os("MAPCACHE_STRESS").is_some() {
        50_000_000
    } else {
        5_000_000
    };
    let rust = scenario(|| Map::new(Config::default()).unwrap(), churn_ops);
    check("Rust, drop", rust, churn_ops);
    let c = scenario(CHandle::new, churn_ops / 5);
    check("C ABI, mapcache_free", c, churn_ops / 5);
}
