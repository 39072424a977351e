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

fn assert_equivalent(table: &SyntheticTable, new_log2: u32, plugin: &Path, what: &str) {
    let reference = testing::reference_image(table, new_log2).unwrap();
    let gpu = testing::rebuild(table, new_log2, Engine::Gpu(Some(plugin)))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .image();
    assert_eq!(reference.len(), gpu.len(), "{what}: image lengths");
    assert!(reference == gpu, "{what}: images differ");
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
    ] {
        let table = SyntheticTable::new(entries, log2, seed, deleted).unwrap();
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
    for i in 30_000..40_000u32 {
        map.insert(format!("key-{i}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    for i in 0..40_000u32 {
        let expected = (i >= 30_000 || i % 3 != 0).then(|| i.to_le_bytes().to_vec());
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
