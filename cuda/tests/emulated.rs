//! The plugin's algorithm on its emulated device (the kernel source of
//! `kernels/rehash.cuh`, run on the host), through the core's real GPU engine
//! path (staging, count, fill, check): byte for byte the CPU reference's image,
//! for grows, same-size rebuilds and shrinks of tables with overflow chains and
//! deleted slots; and a map that grows on it.

use std::path::{Path, PathBuf};

use mapcache::gpu::testing::{self, Engine, SyntheticTable};
use mapcache::{Config, GpuMode, Map};

fn emulated_plugin() -> PathBuf {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let path = PathBuf::from("/emulated/libmapcache_cuda.so");
    INSTALLED.call_once(|| {
        mapcache_cuda::allow_emulation();
        // SAFETY: the plugin keeps the ABI's contract.
        unsafe { testing::install_plugin(&path, mapcache_cuda::mapcache_cuda_plugin_v1().cast()) }
            .unwrap();
    });
    path
}

/// Both sources (packed, and the table's arrays in place) against the reference.
fn assert_equivalent(table: &SyntheticTable, new_log2: u32, plugin: &Path, what: &str) {
    let reference = testing::reference_image(table, new_log2).unwrap();
    for (engine, source) in [
        (Engine::Gpu(Some(plugin)), "packed"),
        (Engine::GpuInPlace(Some(plugin)), "in place"),
    ] {
        let rebuilt = testing::rebuild(table, new_log2, engine)
            .unwrap_or_else(|e| panic!("{what}, {source}: {e}"));
        let in_place = source == "in place" && table.in_place();
        assert_eq!(
            rebuilt.was_in_place(),
            in_place,
            "{what}, {source}: the source used"
        );
        let gpu = rebuilt.image();
        assert_eq!(
            reference.len(),
            gpu.len(),
            "{what}, {source}: image lengths"
        );
        assert!(reference == gpu, "{what}, {source}: images differ");
    }
}

#[test]
fn emulated_kernels_build_the_reference_image() {
    let plugin = emulated_plugin();
    for (entries, log2, seed, deleted) in [
        (0, 0, 1, 0),
        (7, 0, 2, 0),
        (60, 2, 3, 0),
        (1000, 6, 4, 0),
        (1000, 4, 5, 300),
        (20_000, 9, 6, 100),
        (50_000, 10, 7, 0),
        (100_000, 14, 8, 500),
        // 2^15 buckets and more have an overflow arena: in place for real.
        (300_000, 15, 9, 200),
    ] {
        let table = SyntheticTable::new(entries, log2, seed, deleted).unwrap();
        if log2 >= 15 {
            assert!(table.in_place(), "an arena table's chains lie in its pool");
        }
        if deleted > 0 && entries >= 1000 {
            assert!(table.has_holes(), "no deleted slots left holes");
        }
        for new_log2 in [
            log2.saturating_sub(2),
            log2.saturating_sub(1),
            log2,
            log2 + 1,
            log2 + 3,
        ] {
            assert_equivalent(
                &table,
                new_log2,
                &plugin,
                &format!("{entries} entries, {deleted}/1000 deleted, 2^{log2} -> 2^{new_log2}"),
            );
        }
    }
}

#[test]
fn a_map_grows_on_the_emulated_device() {
    let plugin = emulated_plugin();
    let map = Map::new(Config {
        shards: 2,
        gpu: GpuMode::Force,
        gpu_threshold: 1,
        gpu_plugin: Some(plugin),
        seed: Some(5),
        ..Config::default()
    })
    .unwrap();
    for i in 0..30_000u32 {
        map.insert(format!("key-{i}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    for i in (0..30_000u32).step_by(3) {
        assert!(map.remove(format!("key-{i}").as_bytes()).unwrap());
    }
    // Updates in place: the kept slot sums (the GPU engine's check, under
    // force an error if they drifted) follow them too.
    for i in (1..30_000u32).step_by(3) {
        map.insert(format!("key-{i}").as_bytes(), &(i + 1).to_le_bytes())
            .unwrap();
    }
    for i in 30_000..70_000u32 {
        map.insert(format!("key-{i}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    for i in 0..70_000u32 {
        let value = if i < 30_000 && i % 3 == 1 { i + 1 } else { i };
        let expected = (i >= 30_000 || i % 3 != 0).then(|| value.to_le_bytes().to_vec());
        assert_eq!(
            map.get(format!("key-{i}").as_bytes()).unwrap(),
            expected,
            "key-{i}"
        );
    }
    let status = map.gpu_status();
    assert!(status.active, "{status:?}");
    assert!(
        status.reason.contains("emulated device"),
        "{}",
        status.reason
    );
    assert!(status.gpu_rebuilds >= 10, "{status:?}");
    assert_eq!(status.fallbacks, 0, "{status:?}");
}

/// The in-place source's own check: an overflow pointer outside the pool, or
/// a chain that loops, fails the count (and nothing outside the copy is read).
#[test]
fn an_in_place_source_whose_chains_leave_the_pool_is_refused() {
    use mapcache_cuda::abi::{self, Checksum, BUCKET_BYTES};
    emulated_plugin();
    let plugin = &mapcache_cuda::PLUGIN;
    let mut ctx = std::ptr::null_mut();
    let mut err = [0 as std::ffi::c_char; 256];
    // SAFETY: the ABI: an out pointer and a message buffer.
    assert_eq!(
        unsafe { (plugin.open)(&mut ctx, err.as_mut_ptr(), err.len()) },
        abi::PLUGIN_OK
    );
    const WORDS: usize = BUCKET_BYTES / 8;
    const STEP: u64 = BUCKET_BYTES as u64;
    let mut pool = vec![0u64; 2 * WORDS];
    let base = pool.as_ptr() as u64;
    // (case, the main bucket's overflow pointer, pool bucket 0's, pool bucket 1's)
    let cases: [(&str, u64, u64, u64); 4] = [
        ("below the pool", base - STEP, 0, 0),
        ("past its end", base + 2 * STEP, 0, 0),
        ("inside a bucket", base + 8, 0, 0),
        ("a loop", base, base + STEP, base),
    ];
    for (what, head_next, next_0, next_1) in cases {
        let mut main = [0u64; WORDS];
        main[0] = 0x22; // one occupied slot
        main[1] = 16;
        main[9] = head_next;
        pool[9] = next_0;
        pool[WORDS + 9] = next_1;
        let (mut pool_len, mut sum) = (0u64, Checksum::default());
        // SAFETY: one main bucket (old_log2 0) and two pool buckets, alive for
        // the call.
        let code = unsafe {
            (plugin.count_in_place)(
                ctx,
                main.as_ptr().cast(),
                pool.as_ptr().cast(),
                2,
                0,
                1,
                &mut pool_len,
                &mut sum,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        // SAFETY: NUL-terminated by the plugin.
        let message = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        assert_eq!(code, abi::PLUGIN_E_OTHER, "{what}: {message}");
        assert!(message.contains("outside its pool"), "{what}: {message}");
    }
    // SAFETY: opened above, closed once.
    unsafe { (plugin.close)(ctx) };
}

/// The plugin's fill writes only into arrays of the lengths its count laid
/// out: told other lengths, it writes nothing and fails, and its next job
/// starts clean (a count and fill that disagree within a plugin had been
/// able to write past the core's pool).
#[test]
fn a_fill_given_arrays_of_other_lengths_writes_nothing_and_fails() {
    use mapcache_cuda::abi::{self, Checksum, BUCKET_BYTES};
    use std::ffi::c_char;
    mapcache_cuda::allow_emulation();
    // SAFETY: the plugin's static table; each call keeps the ABI's contract
    // (writable outputs, an error buffer of its length, arrays of the sizes
    // named), and the context is used by this thread alone and closed.
    unsafe {
        let table = &*mapcache_cuda::mapcache_cuda_plugin_v1();
        let mut err = [0 as c_char; 256];
        let mut ctx = std::ptr::null_mut();
        assert_eq!(
            (table.open)(&mut ctx, err.as_mut_ptr(), err.len()),
            abi::PLUGIN_OK
        );
        // 2^15 buckets: overflow in the pool's arena, so the arrays go in as
        // they are; about 9 entries a bucket, so a pool is laid out.
        let source = SyntheticTable::new(300_000, 15, 3, 0).unwrap();
        assert!(source.in_place());
        let [(main, _), (pool, pool_bytes)] = source.arrays();
        let pool_buckets = (pool_bytes / BUCKET_BYTES) as u64;
        let main_len = 1u64 << 15;
        let (mut laid_pool, mut sums) = (0u64, Checksum::default());
        let count = |laid_pool: &mut u64, sums: &mut Checksum, err: &mut [c_char]| {
            (table.count_in_place)(
                ctx,
                main,
                pool,
                pool_buckets,
                15,
                15,
                laid_pool,
                sums,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        assert_eq!(count(&mut laid_pool, &mut sums, &mut err), abi::PLUGIN_OK);
        assert!(laid_pool > 0);
        // Main buckets at the start of `out`, the pool right after them.
        let fill = |out: &mut [u8], m: u64, p: u64, sums: &mut Checksum, err: &mut [c_char]| {
            let at = out.as_mut_ptr();
            (table.fill)(
                ctx,
                at,
                m,
                at.add(m as usize * BUCKET_BYTES),
                p,
                sums,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        // Room for the largest arrays named below, and canaries in all of it.
        let room = (main_len + laid_pool + 2) as usize * BUCKET_BYTES;
        for (m, p) in [
            (main_len, laid_pool - 1),
            (main_len, laid_pool + 1),
            (main_len - 1, laid_pool),
        ] {
            assert_eq!(count(&mut laid_pool, &mut sums, &mut err), abi::PLUGIN_OK);
            let mut out = vec![0xa5u8; room];
            let st = fill(&mut out, m, p, &mut sums, &mut err);
            assert_eq!(st, abi::PLUGIN_E_OTHER, "{m} and {p}");
            let message = std::ffi::CStr::from_ptr(err.as_ptr()).to_string_lossy();
            let laid = format!("the count laid out {main_len} and {laid_pool}");
            assert!(message.contains(&laid), "{message}");
            // The job is gone: a fill without a new count is refused too.
            let st = fill(&mut out, main_len, laid_pool, &mut sums, &mut err);
            assert_ne!(st, abi::PLUGIN_OK);
            assert!(out.iter().all(|&b| b == 0xa5), "the fill wrote");
        }
        // The right lengths fill.
        assert_eq!(count(&mut laid_pool, &mut sums, &mut err), abi::PLUGIN_OK);
        let mut out = vec![0u8; (main_len + laid_pool) as usize * BUCKET_BYTES];
        assert_eq!(
            fill(&mut out, main_len, laid_pool, &mut sums, &mut err),
            abi::PLUGIN_OK
        );
        assert_eq!(sums.entries, 300_000);
        (table.close)(ctx);
    }
}
