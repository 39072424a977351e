//! The GPU engine against the CPU reference, byte for byte: random tables of a
//! thousand to 64M entries (overflow chains from one-by-one inserts, deleted
//! slots), grown, rebuilt at the same size and shrunk by both, the GPU from
//! the packed source and from the table's arrays in place; every image
//! compared. Prints one line per case and `equivalence: PASS n/n` or FAIL.

use mapcache::gpu::testing::{self, Engine, SyntheticTable};
use mapcache_gpu_check::{grow_log2, load, options};

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
                total += 1;
                let what = format!(
                    "{:>9} entries ({} live, {deleted}/1000 deleted) 2^{log2} -> 2^{new_log2}",
                    entries,
                    table.entries()
                );
                let reference = testing::reference_image(&table, new_log2);
                for (source, engine) in [
                    ("packed", Engine::Gpu(Some(&options.plugin))),
                    ("in-place", Engine::GpuInPlace(Some(&options.plugin))),
                ] {
                    if source == "in-place" {
                        total += 1;
                    }
                    let gpu = testing::rebuild(&table, new_log2, engine);
                    // In place wherever the table's chains lie in its pool.
                    let expected_in_place = source == "in-place" && table.in_place();
                    match (&reference, gpu) {
                        (Ok(_), Ok(g)) if g.was_in_place() != expected_in_place => println!(
                            "FAIL  {what} {source}: read in place: {}, expected {expected_in_place}",
                            g.was_in_place()
                        ),
                        (Ok(r), Ok(g)) if *r == g.image() => {
                            passed += 1;
                            let how = if g.was_in_place() { "" } else { " (packed: chains outside the pool)" };
                            println!("ok    {what} {source}{}", if source == "in-place" { how } else { "" });
                        }
                        (Ok(_), Ok(_)) => println!("FAIL  {what} {source}: images differ"),
                        (Err(e), _) => println!("FAIL  {what}: {e}"),
                        (_, Err(e)) => println!("FAIL  {what} {source}: {e}"),
                    }
                }
            }
        }
    }
    let verdict = if passed == total { "PASS" } else { "FAIL" };
    println!("equivalence: {verdict} {passed}/{total}");
    std::process::exit(if passed == total { 0 } else { 1 });
}
