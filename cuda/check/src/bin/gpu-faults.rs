//! The core's fallback on a real device, one fault per run
//! (`MAPCACHE_CUDA_FAULT` = open, alloc, copy, kernel, wrong; none: the GPU
//! must do every rebuild): a map under `auto` ends with every key correct, its
//! status naming the failure; under `force` the failing write returns the error
//! and the map is unchanged. Prints `faults[<fault>]: PASS` or FAIL with why.
//! `fake-driver`: the fault is the fake driver's (`FAKE_CUDA_FAIL`, see
//! cuda/stub/fake_driver.cpp: driver calls failing in the middle of the
//! plugin's queue), so the plugin's own error paths run; the status need only
//! say that a rebuild fell back. With `MAPCACHE_GPU_SOURCE=in-place` the
//! rebuilds read the tables' arrays in place where they can.

use mapcache::{Config, Error, GpuMode, Map};
use mapcache_gpu_check::{load, options};

fn config(mode: GpuMode, options: &mapcache_gpu_check::Options) -> Config {
    Config {
        shards: 1,
        gpu: mode,
        gpu_threshold: 1,
        gpu_plugin: Some(options.plugin.clone()),
        seed: Some(11),
        ..Config::default()
    }
}

fn check(options: &mapcache_gpu_check::Options, fault: &str) -> Result<String, String> {
    let _ = load(options);
    let map = Map::new(config(GpuMode::Auto, options)).map_err(|e| e.to_string())?;
    // Past 2^15 buckets (213k entries in one shard), where a table has an
    // overflow arena, so that MAPCACHE_GPU_SOURCE=in-place reads one in place.
    const N: u32 = 250_000;
    for i in 0..N {
        map.insert(format!("key-{i}").as_bytes(), &i.to_le_bytes())
            .map_err(|e| e.to_string())?;
    }
    for i in 0..N {
        if map
            .get(format!("key-{i}").as_bytes())
            .map_err(|e| e.to_string())?
            != Some(i.to_le_bytes().to_vec())
        {
            return Err(format!("key-{i} lost or wrong"));
        }
    }
    let status = map.gpu_status();
    // `wrong` is caught by the core's check; the others fail as injected.
    let named = match fault {
        "none" => true,
        "wrong" => status.reason.contains("the result failed its check"),
        "fake-driver" => status.reason.contains("fell back to the CPU"),
        _ => status.reason.contains("(injected by MAPCACHE_CUDA_FAULT)"),
    };
    if !named {
        return Err(format!(
            "the status does not name the injected fault: {}",
            status.reason
        ));
    }
    let expected_rebuilds_on_gpu = fault == "none";
    if expected_rebuilds_on_gpu != (status.gpu_rebuilds > 0 && status.fallbacks == 0) {
        return Err(format!("unexpected status {status:?}"));
    }
    match Map::new(config(GpuMode::Force, options)) {
        Err(Error::Gpu(reason)) if fault == "open" => {
            return Ok(format!(
                "auto fell back ({}); force refused: {reason}",
                status.reason
            ))
        }
        Err(e) => return Err(format!("force: {e}")),
        Ok(forced) => {
            let mut inserted = 0u32;
            while inserted < N {
                match forced.insert(format!("key-{inserted}").as_bytes(), b"v") {
                    Ok(_) => inserted += 1,
                    Err(Error::Gpu(reason)) if fault != "none" => {
                        if forced.len() != inserted as usize {
                            return Err("force: the failed write changed the map".into());
                        }
                        return Ok(format!(
                            "auto fell back ({}); force: {reason}",
                            status.reason
                        ));
                    }
                    Err(e) => return Err(format!("force: {e}")),
                }
            }
            if fault != "none" {
                return Err("force: no rebuild failed".into());
            }
        }
    }
    Ok(format!("{status:?}"))
}

fn main() {
    let options = match options(&[]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gpu-faults: {e}");
            std::process::exit(2);
        }
    };
    let fault = std::env::var("MAPCACHE_CUDA_FAULT").unwrap_or_else(|_| "none".into());
    match check(&options, &fault) {
        Ok(detail) => println!("faults[{fault}]: PASS ({detail})"),
        Err(why) => {
            println!("faults[{fault}]: FAIL ({why})");
            std::process::exit(1);
        }
    }
}
