//! The GPU engine against the CPU reference, byte for byte: random tables of a
//! thousand to 64M entries (overflow chains from one-by-one inserts, deleted
//! slots), grown, rebuilt at the same size and shrunk by both, the GPU from
//! the packed source and from the table's arrays in place; every image
//! compared; on the full run, last, a sparse table grown past 2^32 bytes of
//! bucket array. Prints one line per case and `equivalence: PASS n/n` or FAIL.

use mapcache::gpu::testing::{self, Engine, SyntheticTable};
use mapcache_gpu_check::{grow_log2, load, options};

/// The sparse table's buckets before its grow: 2^25 buckets of 112 bytes,
/// 3.75 GB, and 7.5 GB after.
const WIDE_LOG2: u32 = 25;

/// Rebuilds `table` (`2^log2` buckets, made of `entries` with `deleted` per
/// mille removed) at `2^new_log2` with the GPU, packed and in place, and
/// compares each image with the reference's; prints a line per source.
#[allow(clippy::too_many_arguments)]
fn compare(
    table: &SyntheticTable,
    log2: u32,
    new_log2: u32,
    entries: usize,
    deleted: u32,
    options: &mapcache_gpu_check::Options,
    passed: &mut usize,
    total: &mut usize,
) {
    *total += 1;
    let what = format!(
        "{:>9} entries ({} live, {deleted}/1000 deleted) 2^{log2} -> 2^{new_log2}",
        entries,
        table.entries()
    );
    let reference = testing::reference_image(table, new_log2);
    for (source, engine) in [
        ("packed", Engine::Gpu(Some(&options.plugin))),
        ("in-place", Engine::GpuInPlace(Some(&options.plugin))),
    ] {
        if source == "in-place" {
            *total += 1;
        }
        let gpu = testing::rebuild(table, new_log2, engine);
        // In place wherever the table's chains lie in its pool.
        let expected_in_place = source == "in-place" && table.in_place();
        match (&reference, gpu) {
            (Ok(_), Ok(g)) if g.was_in_place() != expected_in_place => println!(
                "FAIL  {what} {source}: read in place: {}, expected {expected_in_place}",
                g.was_in_place()
            ),
            (Ok(r), Ok(g)) if *r == g.image() => {
                *passed += 1;
                let how = if g.was_in_place() {
                    ""
                } else {
                    " (packed: chains outside the pool)"
                };
                println!(
                    "ok    {what} {source}{}",
                    if source == "in-place" { how } else { "" }
                );
            }
            (Ok(_), Ok(_)) => println!("FAIL  {what} {source}: images differ"),
            (Err(e), _) => println!("FAIL  {what}: {e}"),
            (_, Err(e)) => println!("FAIL  {what} {source}: {e}"),
        }
    }
}

fn main() {
    let options = match options(&[1000, 10_000, 100_000, 1 << 20, 4 << 20, 16 << 20, 64 << 20]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gpu-equivalence: {e}");
            std::process::exit(2);
        }
    };
    if let Err(reason) = load(&options) {
        println!("equivalence: UNAVAILABLE ({reason})");
        std::process::exit(3);
    }
    let (mut passed, mut total) = (0, 0);
    for (i, &entries) in options.sizes.iter().enumerate() {
        let log2 = grow_log2(entries);
        // Big tables: the grow and the same-size rebuild; small ones all shapes.
        let targets: Vec<u32> = if entries > 4 << 20 {
            vec![log2 + 1, log2]
        } else {
            vec![log2 + 1, log2, log2.saturating_sub(2), log2 + 2]
        };
        // Deleted slots at every size but the largest (whose table takes a
        // while to build on one thread).
        let deletions: &[u32] = if entries > 16 << 20 { &[0] } else { &[0, 150] };
        for &deleted in deletions {
            let table = match SyntheticTable::new(entries, log2, 1000 + i as u64, deleted) {
                Ok(t) => t,
                Err(e) => {
                    println!("{entries} entries: cannot build the table: {e}");
                    total += 1;
                    continue;
                }
            };
            for &new_log2 in &targets {
                compare(
                    &table,
                    log2,
                    new_log2,
                    entries,
                    deleted,
                    &options,
                    &mut passed,
                    &mut total,
                );
            }
        }
    }
    // Past 2^32 bytes: a sparse table grown to 2^26 buckets (7.5 GB of main
    // array), so that a bucket's byte offset, in either array, no longer fits
    // 32 bits, on the full run only (the default sizes, up to 64M entries).
    // (`GPU_EQUIVALENCE_WIDE_LOG2` runs it at another size, with any sizes:
    // a dry run of this case on a small machine.)
    let wide = match std::env::var("GPU_EQUIVALENCE_WIDE_LOG2") {
        Ok(v) => v.parse().ok(),
        Err(_) => options
            .sizes
            .iter()
            .any(|&n| n >= 64 << 20)
            .then_some(WIDE_LOG2),
    };
    if let Some(wide) = wide {
        match SyntheticTable::new(2 << 20, wide, 77, 100) {
            Ok(table) => compare(
                &table,
                wide,
                wide + 1,
                2 << 20,
                100,
                &options,
                &mut passed,
                &mut total,
            ),
            Err(e) => {
                println!("FAIL  the sparse 2^{wide}-bucket table: cannot build it: {e}");
                total += 1;
            }
        }
    }
    let verdict = if passed == total { "PASS" } else { "FAIL" };
    println!("equivalence: {verdict} {passed}/{total}");
    std::process::exit(if passed == total { 0 } else { 1 });
}
