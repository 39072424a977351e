//! Rebuilding one shard table of 1M, 4M, 16M and 64M entries (a grow, the
//! table just over its load factor): the single-threaded reference, the
//! parallel CPU engine on all cores, and the GPU engine end to end (staging,
//! transfers, kernels, check). Wall time and host CPU time of each (best of
//! three; the GPU's first rebuild, which allocates and pins its buffers, is
//! reported apart), and the crossover that sets the default threshold. Then,
//! on the same tables, the GPU engine with each way of moving the tables
//! (`TRANSFERS`: the old table packed on the host or its arrays copied in
//! place, pageable or registered; the new image into pageable or registered
//! arrays, one copy or chunks overlapping the fill; see cuda/src/device.rs),
//! the choices the issue asks to measure.

use std::time::{Duration, Instant};

use mapcache::gpu::testing::{self, Engine, SyntheticTable};
use mapcache_gpu_check::{cpu_time, grow_log2, load, options};

/// Wall and CPU time of `f` (its result dropped outside the timing).
fn timed<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(Duration, Duration), String> {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let result = f()?;
    let measured = (wall.elapsed(), cpu_time() - cpu);
    drop(result);
    Ok(measured)
}

/// Wall and CPU time of one rebuild.
fn time(
    table: &SyntheticTable,
    new_log2: u32,
    engine: Engine<'_>,
) -> Result<(Duration, Duration), String> {
    timed(|| testing::rebuild(table, new_log2, engine))
}

fn best(
    runs: usize,
    mut f: impl FnMut() -> Result<(Duration, Duration), String>,
) -> Result<(Duration, Duration), String> {
    let mut best: Option<(Duration, Duration)> = None;
    for _ in 0..runs {
        let t = f()?;
        best = Some(match best {
            Some(b) if b.0 <= t.0 => b,
            _ => t,
        });
    }
    Ok(best.unwrap())
}

/// The transfer choices: a name, whether the old table is read in place (its
/// arrays copied as they are) rather than packed on the host, and the
/// plugin's settings for it (set through `testing::set_plugin_transfer`, the
/// plugin's benchmark knob, never through this process's environment, which
/// the driver's threads may be reading): input registered, output registered,
/// chunks.
const TRANSFERS: [(&str, bool, (bool, bool, u32)); 8] = [
    ("pageable", false, (false, false, 1)),
    ("registered", false, (false, true, 1)),
    ("chunked(8)", false, (false, false, 8)),
    ("registered+chunked(8)", false, (false, true, 8)),
    ("in-place", true, (false, false, 1)),
    ("in-place reg-in", true, (true, false, 1)),
    ("in-place reg-in+out", true, (true, true, 1)),
    ("in-place reg-in+out+ch(8)", true, (true, true, 8)),
];

/// The host's memory work behind each transfer choice, measured without the
/// device on the arrays a rebuild in place copies (`bytes` of them): a copy of
/// them from one resident buffer into another (what the driver does on the
/// host for a pageable copy, through its staging buffers); `mlock` and
/// `munlock` of them, resident (what registering them, `cuMemHostRegister`,
/// does to the pages, less the device's mapping); and the first touch of as
/// many fresh bytes, mapped as the core maps a big array (what every engine
/// pays for its new arrays; a pageable copy-out pays it inside the driver's
/// copy, a registered one when pinning); and the check of the new image that
/// every GPU rebuild's result gets on the host before it is published.
fn host_costs(table: &SyntheticTable, entries: usize, runs: usize) {
    let bytes: usize = table.arrays().iter().map(|a| a.1).sum();
    let mut into = vec![0u8; bytes];
    let copy = best(runs, || {
        timed(|| {
            let mut at = 0;
            for (ptr, len) in table.arrays() {
                // SAFETY: `arrays` names live memory of `len` bytes; `into`
                // holds their sum and is ours.
                unsafe { std::ptr::copy_nonoverlapping(ptr, into.as_mut_ptr().add(at), len) };
                at += len;
            }
            Ok(())
        })
    });
    drop(into);
    let pin = best(runs, || {
        timed(|| {
            for (ptr, len) in table.arrays() {
                // SAFETY: live memory of the table's; locking changes no byte.
                if len > 0 && unsafe { libc::mlock(ptr.cast(), len) } != 0 {
                    return Err(format!(
                        "mlock refused: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                // SAFETY: as above.
                unsafe { libc::munlock(ptr.cast(), len) };
            }
            Ok(())
        })
    });
    let touch = best(runs, || timed(|| first_touch(bytes)));
    // The check of the image a GPU rebuild hands back, on the reference's.
    let check = testing::rebuild(table, table.log2() + 1, Engine::Single)
        .and_then(|rebuilt| best(runs, || timed(|| testing::check_image(&rebuilt))));
    println!(
        "host {entries:>10} | {} MB: copy {} | mlock+munlock {} | first touch {} | image check {}",
        bytes >> 20,
        cell(&copy),
        cell(&pin),
        cell(&touch),
        cell(&check)
    );
}

/// Maps `bytes` fresh as the core maps a big array (anonymous, transparent
/// huge pages advised) and writes a byte of every 4 KiB page.
fn first_touch(bytes: usize) -> Result<(), String> {
    // SAFETY: a fresh private anonymous mapping.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err("mmap failed".into());
    }
    // SAFETY: the mapping just made, `bytes` long; unmapped once, below.
    unsafe {
        libc::madvise(raw, bytes, libc::MADV_HUGEPAGE);
        for page in (0..bytes).step_by(4096) {
            raw.cast::<u8>().add(page).write_volatile(1);
        }
        libc::munmap(raw, bytes);
    }
    Ok(())
}

/// "wall / cpu ms", or why there is no measurement.
fn cell(measured: &Result<(Duration, Duration), String>) -> String {
    match measured {
        Ok((wall, cpu)) => format!("{} / {} ms", ms(*wall), ms(*cpu)),
        Err(e) => e.clone(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn main() {
    let options = match options(&[1 << 20, 4 << 20, 16 << 20, 64 << 20]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gpu-bench: {e}");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gpu = load(&options);
    match &gpu {
        Ok(description) => println!("GPU engine: {description}"),
        Err(reason) => println!("GPU engine: unavailable ({reason})"),
    }
    println!(
        "{:>10} | {:>21} | {:>21} | {:>21} | {:>10} | {:>8} | {:>8}",
        "entries",
        "cpu-single wall/cpu",
        format!("cpu-parallel({cores}) w/c"),
        "gpu wall/cpu",
        "gpu first",
        "vs 1",
        "vs par"
    );
    let mut crossover = None;
    for &entries in &options.sizes {
        let log2 = grow_log2(entries);
        let table = match SyntheticTable::new(entries, log2, 7, 0) {
            Ok(t) => t,
            Err(e) => {
                println!("{entries:>10} | cannot build the table: {e}");
                continue;
            }
        };
        let runs = if entries >= 32 << 20 { 2 } else { 3 };
        // The host's share of a GPU rebuild that no transfer choice changes:
        // packing the source image (a single-threaded pass over the old chains).
        let mut staging = testing::Staging::default();
        let pack = best(runs, || timed(|| testing::pack(&table, &mut staging)));
        drop(staging);
        println!(
            "pack {entries:>10} | host pack of the source image {}",
            cell(&pack)
        );
        host_costs(&table, entries, runs);
        let skipped = || Err::<(Duration, Duration), String>("skipped".into());
        let (single, parallel) = if options.gpu_only {
            (skipped(), skipped())
        } else {
            (
                best(runs, || time(&table, log2 + 1, Engine::Single)),
                best(runs, || time(&table, log2 + 1, Engine::Parallel(cores))),
            )
        };
        // The GPU's first rebuild at this size (which grows its buffers), before
        // any other GPU rebuild of this table: the transfer runs below would
        // otherwise have grown them, and this column would not be the first.
        let gpu_first = match &gpu {
            Ok(_) => time(&table, log2 + 1, Engine::Gpu(Some(&options.plugin))).map(|t| ms(t.0)),
            Err(_) => Err("-".into()),
        };
        // The GPU engine with each copy-out choice; then the plugin's own
        // settings again, for the main table's GPU column.
        if gpu.is_ok() && options.transfers {
            let set = |(register_input, register_output, chunks)| {
                testing::set_plugin_transfer(
                    &options.plugin,
                    register_input,
                    register_output,
                    chunks,
                )
            };
            for (name, in_place, transfer) in TRANSFERS {
                if let Err(e) = set(transfer) {
                    println!("transfer {entries:>10} | {name:>26} | {e}");
                    continue;
                }
                let engine = || match in_place {
                    true => Engine::GpuInPlace(Some(&options.plugin)),
                    false => Engine::Gpu(Some(&options.plugin)),
                };
                // An in-place row that was not in place times the packed
                // path: it says so instead.
                let measured = best(runs, || {
                    timed(|| {
                        testing::rebuild(&table, log2 + 1, engine()).and_then(|r| {
                            match in_place && !r.was_in_place() {
                                true => Err("not in place (chains outside the pool)".into()),
                                false => Ok(r),
                            }
                        })
                    })
                });
                // Printed as it comes: a run cut short keeps what it measured.
                println!(
                    "transfer {entries:>10} | {name:>26} | gpu wall/cpu {}",
                    cell(&measured)
                );
            }
            // The settings as they were (`--transfer`'s, else the
            // environment's), for the main table's column.
            if let Err(e) = set(options.transfer.unwrap_or((false, false, 0))) {
                println!("transfer {entries:>10} | the plugin's own settings back: {e}");
            }
        }
        let gpu_best = match &gpu {
            Ok(_) => best(runs, || {
                time(&table, log2 + 1, Engine::Gpu(Some(&options.plugin)))
            }),
            Err(_) => Err("unavailable".into()),
        };
        let ratio = |base: &Result<(Duration, Duration), String>| match (base, &gpu_best) {
            (Ok(b), Ok(g)) => format!("{:.1}x", b.0.as_secs_f64() / g.0.as_secs_f64()),
            _ => "-".into(),
        };
        if let (Ok(p), Ok(s), Ok(g)) = (&parallel, &single, &gpu_best) {
            if crossover.is_none() && g.0 < p.0 && g.0 < s.0 {
                crossover = Some(entries);
            }
            // The goals, from 16M entries: at least 8x the reference's
            // speed, no slower than the parallel engine, at most 10% of the
            // reference's host CPU time.
            if entries >= 16 << 20 {
                let checks = [
                    (
                        s.0.as_secs_f64() >= 8.0 * g.0.as_secs_f64(),
                        "8x the reference (wall)",
                    ),
                    (g.0 <= p.0, "no slower than cpu-parallel (wall)"),
                    (
                        g.1.as_secs_f64() <= 0.1 * s.1.as_secs_f64(),
                        "10% of the reference's CPU",
                    ),
                ];
                // Printed as they come (before this size's row): a run cut
                // short at a larger size keeps them, for gpu-check's summary.
                for (met, goal) in checks {
                    println!(
                        "goal {entries}: {goal}: {}",
                        if met { "met" } else { "NOT met" }
                    );
                }
            }
        }
        println!(
            "{:>10} | {:>21} | {:>21} | {:>21} | {:>10} | {:>8} | {:>8}",
            entries,
            cell(&single),
            cell(&parallel),
            cell(&gpu_best),
            gpu_first.unwrap_or_else(|e| e),
            ratio(&single),
            ratio(&parallel)
        );
    }
    match (&gpu, crossover) {
        _ if options.gpu_only => println!("crossover: not measured (--gpu-only)"),
        (Err(_), _) => println!("crossover: not measured (no GPU engine)"),
        (Ok(_), Some(n)) => println!(
            "crossover: the GPU is fastest from {n} entries (sizes tried: {:?})",
            options.sizes
        ),
        (Ok(_), None) => println!("crossover: the GPU was not fastest at any size tried"),
    }
}
