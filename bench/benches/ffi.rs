//! FFI overhead: a get through the C ABI (`mapcache_get`) against the Rust
//! `Map::get_into`, same data, same run.
//!
//! Three ways to read the same entries (16-byte keys, 32-byte values, hits in a
//! shuffled order, one thread):
//! - `rust_get_into`: `Map::get_into` into a reused `Vec`, on the map behind a C
//!   handle (so both sides read the very same table);
//! - `c_abi_get`: `mapcache::ffi::mapcache_get` on that handle, the exported
//!   `extern "C"` function called directly (what a statically linked C host does);
//! - `c_abi_get_dlopen`: `mapcache_get` of `target/release/libmapcache.so`, loaded
//!   with `dlopen` and called through a function pointer (what cgo and ctypes
//!   hosts do), on a map of its own filled the same way with the same seed;
//!   skipped if the library is not built (`make lib`).
//!
//! The overhead per call is the difference with `rust_get_into`. Two sizes: 1,000
//! entries (cache-resident: the overhead is most visible) and 1,000,000 (memory
//! bound, as in production). Run: `make bench-ffi` or `cargo bench -p mapcache-bench --bench ffi`.
//!
//! Reading the 1,000,000 figures: lookups issued back to back overlap their cache
//! misses, as far as the CPU's out-of-order window reaches into the next call.
//! Any extra work per call shortens that reach, so a few nanoseconds of wrapper
//! (the 1,000-entry overhead) show up as tens of nanoseconds there. Adding a dozen
//! dependent multiplies (about 2 ns) to the Rust loop costs it about 30 ns at 1M
//! too, and removing the epoch pin from the C path does not close the gap: it is
//! this lost overlap, not a cost specific to the boundary.

use std::ffi::{c_void, CString};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion};
use mapcache::ffi::handle::with_map_of;
use mapcache::ffi::{
    mapcache_config, mapcache_config_init, mapcache_free, mapcache_get, mapcache_new, mapcache_put,
    mapcache_status, mapcache_t, MAPCACHE_OK,
};

const SEED: u64 = 0x5eed_f00d;
const ORDER: usize = 1 << 16;

type GetFn = unsafe extern "C" fn(
    *mut mapcache_t,
    *const u8,
    usize,
    *mut u8,
    usize,
    *mut usize,
) -> mapcache_status;
type NewFn = unsafe extern "C" fn(*const mapcache_config, *mut *mut mapcache_t) -> mapcache_status;
type PutFn = unsafe extern "C" fn(
    *mut mapcache_t,
    *const u8,
    usize,
    *const u8,
    usize,
    *mut bool,
) -> mapcache_status;
type FreeFn = unsafe extern "C" fn(*mut mapcache_t);

fn key(i: usize) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(format!("key-{i:012}").as_bytes());
    k
}

fn value(i: usize) -> [u8; 32] {
    let mut v = [0u8; 32];
    v.copy_from_slice(format!("value-{i:026}").as_bytes());
    v
}

/// A shuffled lookup order over `n` keys (xorshift; deterministic).
fn order(n: usize) -> Vec<usize> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..ORDER)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        })
        .collect()
}

fn config() -> mapcache_config {
    let mut cfg = std::mem::MaybeUninit::<mapcache_config>::uninit();
    let size = std::mem::size_of::<mapcache_config>();
    // SAFETY: writable for one mapcache_config; init fills every field.
    let status = unsafe { mapcache_config_init(cfg.as_mut_ptr(), size) };
    assert_eq!(status, 0, "mapcache_config_init");
    // SAFETY: initialised just above.
    let mut cfg = unsafe { cfg.assume_init() };
    cfg.seed = SEED;
    cfg
}

/// The `libmapcache.so` next to the benchmark's profile, loaded with dlopen.
struct Dylib {
    handle: *mut c_void,
    new: NewFn,
    put: PutFn,
    get: GetFn,
    free: FreeFn,
}

impl Dylib {
    fn open() -> Option<Dylib> {
        // The workspace's target/release (this crate sits one level below the root).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/release/libmapcache.so");
        let cpath = CString::new(path.to_str()?).ok()?;
        // SAFETY: a valid C string; RTLD_LOCAL keeps its symbols apart from ours.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            eprintln!(
                "c_abi_get_dlopen skipped: {} not loadable (run `make lib`)",
                path.display()
            );
            return None;
        }
        let sym = |name: &str| {
            let cname = CString::new(name).unwrap();
            // SAFETY: handle from dlopen, a valid C string.
            let p = unsafe { libc::dlsym(handle, cname.as_ptr()) };
            assert!(!p.is_null(), "{name} missing from libmapcache.so");
            p
        };
        // SAFETY: the symbols are the library's extern "C" functions with exactly
        // these signatures (include/mapcache.h).
        unsafe {
            Some(Dylib {
                handle,
                new: std::mem::transmute::<*mut c_void, NewFn>(sym("mapcache_new")),
                put: std::mem::transmute::<*mut c_void, PutFn>(sym("mapcache_put")),
                get: std::mem::transmute::<*mut c_void, GetFn>(sym("mapcache_get")),
                free: std::mem::transmute::<*mut c_void, FreeFn>(sym("mapcache_free")),
            })
        }
    }
}

/// A cache created and filled through the given C entry points.
///
/// # Safety
/// The function pointers must be mapcache's.
unsafe fn c_cache(n: usize, new: NewFn, put: PutFn) -> *mut mapcache_t {
    let cfg = config();
    let mut cache = std::ptr::null_mut();
    // SAFETY: valid config and out-pointer.
    assert_eq!(unsafe { new(&cfg, &mut cache) }, MAPCACHE_OK);
    for i in 0..n {
        let (k, v) = (key(i), value(i));
        // SAFETY: live cache, valid buffers.
        let s = unsafe {
            put(
                cache,
                k.as_ptr(),
                k.len(),
                v.as_ptr(),
                v.len(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(s, MAPCACHE_OK);
    }
    cache
}

/// Benchmarks `get` (a `mapcache_get`, linked or loaded) on `cache` over `keys`
/// in `order`.
///
/// # Safety
/// `get` is mapcache's `mapcache_get` and `cache` a live cache of the same
/// library.
unsafe fn bench_c_get(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    cache: *mut mapcache_t,
    get: GetFn,
    keys: &[[u8; 16]],
    order: &[usize],
) {
    group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        let mut buf = [0u8; 64];
        let mut len = 0usize;
        let mut i = 0usize;
        b.iter(|| {
            let k = &keys[order[i % ORDER]];
            i = i.wrapping_add(1);
            // SAFETY: live cache (contract), valid buffers.
            let s = unsafe {
                get(
                    cache,
                    black_box(k.as_ptr()),
                    k.len(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut len,
                )
            };
            black_box((s, len))
        });
    });
}

fn bench_get(c: &mut Criterion) {
    let dylib = Dylib::open();
    let mut group = c.benchmark_group("ffi_get_hit");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &n in &[1_000usize, 1_000_000] {
        let keys: Vec<[u8; 16]> = (0..n).map(key).collect();
        let order = order(n);

        // SAFETY: the crate's own exported functions.
        let cache = unsafe { c_cache(n, mapcache_new, mapcache_put) };
        with_map_of(cache, |map| {
            group.bench_with_input(BenchmarkId::new("rust_get_into", n), &n, |b, _| {
                let mut buf = Vec::with_capacity(64);
                let mut i = 0usize;
                b.iter(|| {
                    let k = &keys[order[i % ORDER]];
                    i = i.wrapping_add(1);
                    black_box(map.get_into(black_box(k), &mut buf).unwrap())
                });
            });
        })
        .expect("a live handle");
        // SAFETY: the crate's own mapcache_get on its live cache.
        unsafe {
            bench_c_get(
                &mut group,
                "c_abi_get",
                n,
                cache,
                mapcache_get,
                &keys,
                &order,
            )
        };
        // SAFETY: created above, freed once.
        unsafe { mapcache_free(cache) };

        if let Some(lib) = &dylib {
            // SAFETY: the library's own functions.
            let cache = unsafe { c_cache(n, lib.new, lib.put) };
            // SAFETY: the loaded library's mapcache_get on its own live cache.
            unsafe {
                bench_c_get(
                    &mut group,
                    "c_abi_get_dlopen",
                    n,
                    cache,
                    lib.get,
                    &keys,
                    &order,
                )
            };
            // SAFETY: created above, freed once.
            unsafe { (lib.free)(cache) };
        }
    }
    group.finish();
    if let Some(lib) = dylib {
        // The library stays loaded: its TLS destructors may still run at exit.
        let _ = lib.handle;
    }
}

/// Criterion measures one variant after the other, so load from other processes
/// that comes and goes lands on one side. This also alternates short rounds of
/// each on the same handle and reports the minimum and the median per call, and
/// their difference: the overhead.
fn interleaved() {
    const ROUNDS: usize = 31;
    const CALLS: usize = 100_000;
    for &n in &[1_000usize, 1_000_000] {
        let keys: Vec<[u8; 16]> = (0..n).map(key).collect();
        let order = order(n);
        // SAFETY: the crate's own exported functions.
        let cache = unsafe { c_cache(n, mapcache_new, mapcache_put) };
        let (mut rust, mut c_abi, mut rust_with) = (Vec::new(), Vec::new(), Vec::new());
        with_map_of(cache, |map| {
            let mut buf = Vec::with_capacity(64);
            let mut out = [0u8; 64];
            let mut len = 0usize;
            for round in 0..ROUNDS {
                let rust_round = |buf: &mut Vec<u8>| {
                    let start = std::time::Instant::now();
                    for i in 0..CALLS {
                        let k = &keys[order[(round * CALLS + i) % ORDER]];
                        black_box(map.get_into(black_box(k), buf).unwrap());
                    }
                    start.elapsed().as_secs_f64() * 1e9 / CALLS as f64
                };
                let mut c_round = || {
                    let start = std::time::Instant::now();
                    for i in 0..CALLS {
                        let k = &keys[order[(round * CALLS + i) % ORDER]];
                        // SAFETY: live cache, valid buffers.
                        let s = unsafe {
                            mapcache_get(
                                cache,
                                black_box(k.as_ptr()),
                                k.len(),
                                out.as_mut_ptr(),
                                out.len(),
                                &mut len,
                            )
                        };
                        black_box((s, len));
                    }
                    start.elapsed().as_secs_f64() * 1e9 / CALLS as f64
                };
                // `get_with` copying into a stack buffer: what mapcache_get does inside.
                let with_round = || {
                    let mut out = [0u8; 64];
                    let start = std::time::Instant::now();
                    for i in 0..CALLS {
                        let k = &keys[order[(round * CALLS + i) % ORDER]];
                        let r = map.get_with(black_box(k), |v| {
                            out[..v.len()].copy_from_slice(v);
                            v.len()
                        });
                        black_box((r.unwrap(), &out));
                    }
                    start.elapsed().as_secs_f64() * 1e9 / CALLS as f64
                };
                if round % 2 == 0 {
                    rust.push(rust_round(&mut buf));
                    c_abi.push(c_round());
                    rust_with.push(with_round());
                } else {
                    rust_with.push(with_round());
                    c_abi.push(c_round());
                    rust.push(rust_round(&mut buf));
                }
            }
        })
        .expect("a live handle");
        // SAFETY: created above, freed once.
        unsafe { mapcache_free(cache) };
        let stats = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            (v[0], v[v.len() / 2])
        };
        let ((rust_min, rust_med), (c_min, c_med)) = (stats(&mut rust), stats(&mut c_abi));
        let (with_min, with_med) = stats(&mut rust_with);
        println!(
            "ffi_overhead/{n}: rust_get_into min {rust_min:.1} ns median {rust_med:.1} ns | \
             c_abi_get min {c_min:.1} ns median {c_med:.1} ns | overhead min {:.1} ns median {:.1} ns \
             ({ROUNDS} interleaved rounds of {CALLS} calls)",
            c_min - rust_min,
            c_med - rust_med
        );
        println!(
            "ffi_overhead/{n}: rust get_with + copy to a stack buffer (mapcache_get's inner call): \
             min {with_min:.1} ns median {with_med:.1} ns"
        );
    }
}

criterion_group!(benches, bench_get);

fn main() {
    interleaved();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
