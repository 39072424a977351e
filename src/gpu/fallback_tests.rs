//! The dispatch's fallbacks: no driver, no plugin, and a fake plugin failing at
//! each step, every time ending with a correct table (or, under `force`, the
//! error and an unchanged map).

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};

use super::abi::{self, Checksum, PluginV1, SourceBucket};
use super::testing::install_plugin;
use crate::{Config, Error, GpuMode, Map};

/// Where a fake plugin fails.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Open,
    Stage,
    Count,
    Fill,
    /// Returns success with an image that fails its check.
    Wrong,
    /// In place: reports sums of its copy that are not the table's (a copy-in
    /// that lost a slot).
    CopyIn,
    /// Writes nothing (a copy back that never happened) but reports the
    /// sums of the source it was given, which are the right ones.
    Lies,
}

fn fault_of(n: u8) -> Fault {
    [
        Fault::Open,
        Fault::Stage,
        Fault::Count,
        Fault::Fill,
        Fault::Wrong,
        Fault::CopyIn,
        Fault::Lies,
    ][n as usize]
}

/// Calls of the fakes' `count_in_place`, process-wide.
static IN_PLACE_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Fake {
    fault: Fault,
    source: Vec<SourceBucket>,
    starts: Vec<u32>,
    /// The sums of the staged source, taken by `count`.
    staged: Checksum,
}

/// # Safety
/// `err` is writable for `len` bytes.
unsafe fn say(err: *mut c_char, len: usize, message: &str) {
    let n = message.len().min(len - 1);
    // SAFETY: `n + 1 <= len` bytes (contract).
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr(), err.cast::<u8>(), n);
        err.add(n).write(0);
    }
}

unsafe extern "C" fn open<const F: u8>(ctx: *mut *mut c_void, err: *mut c_char, len: usize) -> i32 {
    if fault_of(F) == Fault::Open {
        // SAFETY: per the ABI.
        unsafe { say(err, len, "fake: cuInit: CUDA_ERROR_NO_DEVICE") };
        return abi::PLUGIN_E_NO_DEVICE;
    }
    let fake = Box::new(Fake {
        fault: fault_of(F),
        source: Vec::new(),
        starts: Vec::new(),
        staged: Checksum::default(),
    });
    // SAFETY: per the ABI, `ctx` is writable.
    unsafe { ctx.write(Box::into_raw(fake).cast()) };
    abi::PLUGIN_OK
}

unsafe extern "C" fn stage(
    ctx: *mut c_void,
    sources: u64,
    chains: u64,
    source: *mut *mut SourceBucket,
    starts: *mut *mut u32,
    err: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: the context `open` made, used one call at a time.
    let fake = unsafe { &mut *ctx.cast::<Fake>() };
    if fake.fault == Fault::Stage {
        // SAFETY: per the ABI.
        unsafe { say(err, len, "fake: cuMemAllocHost: CUDA_ERROR_OUT_OF_MEMORY") };
        return abi::PLUGIN_E_ALLOC;
    }
    fake.source = vec![SourceBucket::default(); sources as usize];
    fake.starts = vec![0; chains as usize];
    // SAFETY: per the ABI, both are writable.
    unsafe {
        source.write(fake.source.as_mut_ptr());
        starts.write(fake.starts.as_mut_ptr());
    }
    abi::PLUGIN_OK
}

unsafe extern "C" fn count(
    ctx: *mut c_void,
    _old: u32,
    _new: u32,
    pool_len: *mut u64,
    err: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: as in `stage`.
    let fake = unsafe { &mut *ctx.cast::<Fake>() };
    if fake.fault == Fault::Count {
        // SAFETY: per the ABI.
        unsafe {
            say(
                err,
                len,
                "fake: cuMemcpyHtoDAsync: CUDA_ERROR_ILLEGAL_ADDRESS",
            )
        };
        return abi::PLUGIN_E_COPY;
    }
    let mut staged = Checksum::default();
    for b in &fake.source {
        staged.add(b.tophash, &b.slots, &b.frags);
    }
    fake.staged = staged;
    // SAFETY: per the ABI.
    unsafe { pool_len.write(0) };
    abi::PLUGIN_OK
}

/// As `count`, over the table's own arrays: the source's sums are taken
/// honestly (bucket by bucket), so that a wrong fill fails its check.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn count_in_place(
    ctx: *mut c_void,
    main: *const u8,
    pool: *const u8,
    pool_len: u64,
    old: u32,
    new: u32,
    new_pool_len: *mut u64,
    source_sum: *mut Checksum,
    err: *mut c_char,
    len: usize,
) -> i32 {
    IN_PLACE_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut sum = Checksum::default();
    for (array, buckets) in [(main, 1u64 << old), (pool, pool_len)] {
        for b in 0..buckets as usize {
            // SAFETY: per the ABI, `array` holds `buckets` buckets of
            // BUCKET_BYTES (8-aligned words: tophash, slots, overflow, frags).
            let words = unsafe {
                std::slice::from_raw_parts(array.cast::<u64>().add(b * abi::BUCKET_BYTES / 8), 14)
            };
            let slots: [u64; abi::SLOTS] = words[1..9].try_into().unwrap();
            let frags: [u32; abi::SLOTS] =
                std::array::from_fn(|i| (words[10 + i / 2] >> (32 * (i % 2))) as u32);
            sum.add(words[0], &slots, &frags);
        }
    }
    // SAFETY: the context `open` made, used one call at a time.
    if unsafe { &*ctx.cast::<Fake>() }.fault == Fault::CopyIn {
        sum.entries -= 1;
    }
    // SAFETY: per the ABI.
    unsafe { source_sum.write(sum) };
    // SAFETY: per the ABI.
    unsafe { count(ctx, old, new, new_pool_len, err, len) }
}

unsafe extern "C" fn fill(
    ctx: *mut c_void,
    _main: *mut u8,
    _main_len: u64,
    _pool: *mut u8,
    _pool_len: u64,
    sum: *mut Checksum,
    err: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: as in `stage`.
    let fake = unsafe { &mut *ctx.cast::<Fake>() };
    if fake.fault == Fault::Fill {
        // SAFETY: per the ABI.
        unsafe { say(err, len, "fake: cuLaunchKernel: CUDA_ERROR_LAUNCH_FAILED") };
        return abi::PLUGIN_E_KERNEL;
    }
    // Fault::Wrong: an empty image, claimed done; Fault::Lies: the same,
    // with the sums the core expects.
    let claimed = match fake.fault {
        Fault::Lies => fake.staged,
        _ => Checksum::default(),
    };
    // SAFETY: per the ABI.
    unsafe { sum.write(claimed) };
    abi::PLUGIN_OK
}

unsafe extern "C" fn close(ctx: *mut c_void) {
    // SAFETY: made by `open` with Box::into_raw, closed once.
    drop(unsafe { Box::from_raw(ctx.cast::<Fake>()) });
}

fn table<const F: u8>() -> PluginV1 {
    PluginV1 {
        struct_size: std::mem::size_of::<PluginV1>(),
        abi_version: abi::PLUGIN_ABI_VERSION,
        reserved: 0,
        name: c"fake plugin".as_ptr(),
        open: open::<F>,
        stage,
        count,
        fill,
        close,
        count_in_place,
    }
}

/// Installs a fake plugin failing at `fault`, at a path of its own.
fn install(fault: Fault) -> PathBuf {
    let path = PathBuf::from(format!("/nonexistent/fake-plugin-{fault:?}.so"));
    let table = match fault {
        Fault::Open => table::<0>(),
        Fault::Stage => table::<1>(),
        Fault::Count => table::<2>(),
        Fault::Fill => table::<3>(),
        Fault::Wrong => table::<4>(),
        Fault::CopyIn => table::<5>(),
        Fault::Lies => table::<6>(),
    };
    // SAFETY: the fake keeps the ABI's contract.
    // Leaked: a plugin's table is static.
    let table: &'static PluginV1 = Box::leak(Box::new(table));
    let _ = unsafe { install_plugin(&path, (table as *const PluginV1).cast()) };
    path
}

fn config(mode: GpuMode, plugin: &Path) -> Config {
    Config {
        shards: 1,
        gpu: mode,
        gpu_threshold: 1,
        gpu_plugin: Some(plugin.to_path_buf()),
        seed: Some(3),
        ..Config::default()
    }
}

/// Inserts `n` keys (several grows) and checks every one.
fn fill_and_check(map: &Map, n: u32) {
    for i in 0..n {
        map.insert(format!("key-{i}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    assert_eq!(map.len(), n as usize);
    for i in 0..n {
        assert_eq!(
            map.get(format!("key-{i}").as_bytes()).unwrap(),
            Some(i.to_le_bytes().to_vec()),
            "key-{i}"
        );
    }
}

fn driver_present() -> bool {
    super::dl::Library::open(super::loader::DRIVER).is_ok()
}

#[test]
fn auto_falls_back_and_says_why() {
    let missing = Path::new("/nonexistent/libmapcache_cuda.so");
    let map = Map::new(config(GpuMode::Auto, missing)).unwrap();
    fill_and_check(&map, 5000);
    let status = map.gpu_status();
    assert!(!status.active);
    if driver_present() {
        assert_eq!(
            status.reason,
            "plugin not found at /nonexistent/libmapcache_cuda.so"
        );
    } else {
        assert!(
            status.reason.starts_with("libcuda.so.1 not found"),
            "{}",
            status.reason
        );
    }
    assert_eq!(status.gpu_rebuilds, 0);
    assert!(status.fallbacks > 0, "{status:?}");
}

#[test]
fn force_is_an_error_at_creation() {
    let missing = Path::new("/nonexistent/libmapcache_cuda.so");
    let Err(Error::Gpu(reason)) = Map::new(config(GpuMode::Force, missing)) else {
        panic!("a forced GPU engine that cannot load was accepted");
    };
    assert!(
        reason.starts_with("libcuda.so.1 not found") || reason.starts_with("plugin not found at"),
        "{reason}"
    );
}

#[test]
fn off_loads_nothing_and_says_off() {
    let map = Map::new(config(GpuMode::Off, Path::new("/nonexistent/x.so"))).unwrap();
    fill_and_check(&map, 200);
    let status = map.gpu_status();
    assert_eq!((status.active, status.reason.as_str()), (false, "off"));
    assert_eq!((status.gpu_rebuilds, status.fallbacks), (0, 0));
}

#[test]
fn below_the_threshold_the_gpu_is_not_asked() {
    let path = install(Fault::Wrong);
    let map = Map::new(Config {
        gpu_threshold: 1 << 20,
        ..config(GpuMode::Force, &path)
    })
    .unwrap();
    fill_and_check(&map, 3000);
    assert_eq!(map.gpu_status().fallbacks, 0);
}

#[test]
fn a_plugin_without_a_device_is_reported_and_forced_maps_refused() {
    let path = install(Fault::Open);
    let map = Map::new(config(GpuMode::Auto, &path)).unwrap();
    fill_and_check(&map, 3000);
    let status = map.gpu_status();
    assert!(!status.active);
    assert_eq!(
        status.reason,
        "no CUDA device: fake: cuInit: CUDA_ERROR_NO_DEVICE"
    );
    assert!(matches!(
        Map::new(config(GpuMode::Force, &path)),
        Err(Error::Gpu(r)) if r.starts_with("no CUDA device")
    ));
}

#[test]
fn every_failing_step_falls_back_to_a_correct_table() {
    for (fault, expected) in [
        (
            Fault::Stage,
            "GPU staging: allocation failed: fake: cuMemAllocHost",
        ),
        (
            Fault::Count,
            "GPU count: copy failed: fake: cuMemcpyHtoDAsync",
        ),
        (Fault::Fill, "GPU fill: kernel failed: fake: cuLaunchKernel"),
        (Fault::Wrong, "GPU fill: the result failed its check"),
        (
            Fault::Lies,
            "GPU fill: the image copied back failed its check: its slots hold",
        ),
    ] {
        let path = install(fault);
        let map = Map::new(config(GpuMode::Auto, &path)).unwrap();
        fill_and_check(&map, 5000);
        let status = map.gpu_status();
        assert!(status.active, "{fault:?}: {status:?}");
        assert!(status.fallbacks > 0, "{fault:?}");
        assert_eq!(status.gpu_rebuilds, 0, "{fault:?}");
        assert!(
            status.reason.contains(expected),
            "{fault:?}: {}",
            status.reason
        );
    }
}

#[test]
fn under_force_a_failing_rebuild_fails_the_write_and_changes_nothing() {
    for fault in [
        Fault::Stage,
        Fault::Count,
        Fault::Fill,
        Fault::Wrong,
        Fault::Lies,
    ] {
        let path = install(fault);
        let map = Map::new(config(GpuMode::Force, &path)).unwrap();
        // The first insert that needs a grow fails; everything before it stays.
        let mut inserted = 0u32;
        let error = loop {
            match map.insert(format!("key-{inserted}").as_bytes(), b"v") {
                Ok(_) => inserted += 1,
                Err(e) => break e,
            }
            assert!(inserted < 100_000, "{fault:?}: no rebuild ever failed");
        };
        assert!(matches!(error, Error::Gpu(_)), "{fault:?}: {error}");
        assert_eq!(map.len(), inserted as usize);
        assert_eq!(map.get(format!("key-{inserted}").as_bytes()).unwrap(), None);
        for i in 0..inserted {
            assert!(map.contains_key(format!("key-{i}").as_bytes()).unwrap());
        }
    }
}

#[test]
fn a_relative_plugin_path_is_the_working_directory_s_when_the_map_is_made() {
    let dispatch = super::dispatch::GpuDispatch::new(
        crate::table::rehash::engine_for(crate::config::EngineChoice::Single),
        GpuMode::Auto,
        0,
        Some(PathBuf::from("plugins/libmapcache_cuda.so")),
    );
    assert_eq!(
        dispatch.plugin_path.as_deref(),
        Some(
            std::env::current_dir()
                .unwrap()
                .join("plugins/libmapcache_cuda.so")
                .as_path()
        )
    );
}

#[test]
fn a_plugin_path_that_is_no_regular_file_says_so() {
    // A device: there, and readable, but no library (a FIFO would be the same).
    let error = super::loader::load_without_driver(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        error,
        "plugin path /dev/zero is not a regular file, not libmapcache_cuda.so"
    );
}

#[test]
fn under_force_a_failed_rebuild_is_an_error_and_no_fallback() {
    let path = install(Fault::Fill);
    let map = Map::new(config(GpuMode::Force, &path)).unwrap();
    let mut failed = 0;
    for i in 0..2000u32 {
        if map.insert(format!("key-{i}").as_bytes(), b"v").is_err() {
            failed += 1;
        }
    }
    assert!(failed > 0);
    let status = map.gpu_status();
    assert_eq!(
        (status.gpu_rebuilds, status.fallbacks),
        (0, 0),
        "{status:?}"
    );
    assert!(
        status
            .reason
            .contains("the latest GPU rebuild to fail was an error (force): GPU fill: kernel"),
        "{status:?}"
    );
}

#[test]
fn a_directory_for_a_plugin_says_so() {
    let dir = std::env::temp_dir();
    let error = super::loader::load_without_driver(&dir).unwrap_err();
    assert_eq!(
        error,
        format!(
            "plugin path {} is a directory, not libmapcache_cuda.so",
            dir.display()
        )
    );
}

/// The in-place source's checks through the core's GPU path (the fakes count
/// and fill nothing, so any rebuild of a nonempty table must fail a check):
/// a failing count, a failing fill, a fill that writes a wrong image, and a
/// copy whose sums are not the table's each end in an error naming its step,
/// after the in-place count was called.
#[test]
fn the_in_place_source_fails_each_step_with_its_reason() {
    use super::testing::{rebuild, Engine, SyntheticTable};
    // 2^15 buckets: an arena, so that every chain lies in the pool.
    let table = SyntheticTable::new(250_000, 15, 9, 50).unwrap();
    assert!(table.in_place());
    for (fault, step) in [
        (Fault::Count, "GPU count: copy failed: fake"),
        (Fault::Fill, "GPU fill: kernel failed: fake"),
        (Fault::Wrong, "GPU fill: the result failed its check"),
        (
            Fault::CopyIn,
            "GPU count: the device's copy of the table failed its check",
        ),
    ] {
        let path = install(fault);
        let before = IN_PLACE_CALLS.load(std::sync::atomic::Ordering::Relaxed);
        let outcome = rebuild(&table, 16, Engine::GpuInPlace(Some(&path)));
        let Err(reason) = outcome else {
            panic!("{fault:?}: the rebuild passed its checks");
        };
        assert!(reason.starts_with(step), "{fault:?}: {reason}");
        assert!(
            IN_PLACE_CALLS.load(std::sync::atomic::Ordering::Relaxed) > before,
            "{fault:?}: the in-place count was not called"
        );
    }
}
