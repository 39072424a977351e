//! `MAPCACHE_CUDA_FAULT`: the plugin failing at each step as CUDA would, and
//! the core's fallback ending with a correct table each time (under `force`,
//! the error and an unchanged map). One test, so that the environment variable,
//! read when a context opens, is set by one thread at a time.

use std::path::PathBuf;

use mapcache::gpu::testing;
use mapcache::{Config, Error, GpuMode, Map};

fn config(mode: GpuMode, plugin: &std::path::Path) -> Config {
    Config {
        shards: 1,
        gpu: mode,
        gpu_threshold: 1,
        gpu_plugin: Some(plugin.to_path_buf()),
        seed: Some(9),
        ..Config::default()
    }
}

#[test]
fn every_injected_fault_falls_back_to_a_correct_table() {
    mapcache_cuda::allow_emulation();
    for (fault, expected) in [
        ("open", "no CUDA device: cuInit: CUDA_ERROR_NO_DEVICE"),
        ("alloc", "GPU staging: allocation failed: cuMemAllocHost"),
        ("copy", "GPU count: copy failed: cuMemcpyHtoDAsync"),
        ("kernel", "GPU fill: kernel failed: cuLaunchKernel"),
        ("wrong", "GPU fill: the result failed its check"),
    ] {
        let path = PathBuf::from(format!("/emulated/fault-{fault}/libmapcache_cuda.so"));
        std::env::set_var("MAPCACHE_CUDA_FAULT", fault);
        // SAFETY: the plugin keeps the ABI's contract.
        let installed = unsafe {
            testing::install_plugin(&path, mapcache_cuda::mapcache_cuda_plugin_v1().cast())
        };
        std::env::remove_var("MAPCACHE_CUDA_FAULT");
        assert_eq!(
            installed.is_err(),
            fault == "open",
            "{fault}: {installed:?}"
        );

        let map = Map::new(config(GpuMode::Auto, &path)).unwrap();
        for i in 0..5000u32 {
            map.insert(format!("k{i}").as_bytes(), &i.to_le_bytes())
                .unwrap();
        }
        for i in 0..5000u32 {
            assert_eq!(
                map.get(format!("k{i}").as_bytes()).unwrap(),
                Some(i.to_le_bytes().to_vec()),
                "{fault}: k{i}"
            );
        }
        let status = map.gpu_status();
        assert_eq!(status.gpu_rebuilds, 0, "{fault}");
        assert!(status.fallbacks > 0, "{fault}");
        assert!(
            status.reason.contains(expected),
            "{fault}: {}",
            status.reason
        );

        match Map::new(config(GpuMode::Force, &path)) {
            Err(Error::Gpu(reason)) => assert_eq!(fault, "open", "{reason}"),
            Err(e) => panic!("{fault}: {e}"),
            Ok(map) => {
                let mut inserted = 0u32;
                let error = loop {
                    match map.insert(format!("k{inserted}").as_bytes(), b"v") {
                        Ok(_) => inserted += 1,
                        Err(e) => break e,
                    }
                };
                assert!(
                    matches!(error, Error::Gpu(ref r) if r.contains(expected)),
                    "{fault}: {error}"
                );
                assert_eq!(map.len(), inserted as usize, "{fault}");
                assert!(map
                    .get(format!("k{inserted}").as_bytes())
                    .unwrap()
                    .is_none());
            }
        }
    }
}
