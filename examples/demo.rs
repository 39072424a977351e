//! The Rust demo `make demo` runs: a map filled and read from several threads,
//! then Go's "concurrent map writes" made into an error that names both threads.

use std::sync::{Arc, Barrier};
use std::thread;

use mapcache::{Config, Error, Map, Mode};

fn main() -> Result<(), Error> {
    let threads = 4;
    let per_thread = 250_000;
    let map = Arc::new(Map::new(Config::default())?);

    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let map = Arc::clone(&map);
            thread::spawn(move || -> Result<usize, Error> {
                for i in 0..per_thread {
                    let key = format!("user:{t}:{i}");
                    map.insert(key.as_bytes(), format!("value-{i}").as_bytes())?;
                }
                // Read back everything this thread wrote.
                let mut buf = Vec::new();
                let mut found = 0;
                for i in 0..per_thread {
                    let key = format!("user:{t}:{i}");
                    if map.get_into(key.as_bytes(), &mut buf)?
                        && buf == format!("value-{i}").as_bytes()
                    {
                        found += 1;
                    }
                }
                Ok(found)
            })
        })
        .collect();
    let mut found = 0;
    for worker in workers {
        found += worker.join().expect("worker panicked")?;
    }
    let stats = map.table_stats();
    println!(
        "concurrent mode: {threads} threads wrote {} keys and read back {found} correct values in {:.0?}",
        map.len(),
        started.elapsed()
    );
    println!(
        "  {} shards, {} buckets, {} overflow buckets, {} grows",
        stats.shards, stats.buckets, stats.overflow_buckets, stats.grows
    );
    println!("  iteration yields {} entries", map.iter().count());

    // Exclusive mode: Go's contract without the crash.
    let map = Arc::new(Map::new(Config {
        mode: Mode::Exclusive,
        ..Config::default()
    })?);
    let holding = Arc::new(Barrier::new(2));
    let done = Arc::new(Barrier::new(2));
    let writer = {
        let (map, holding, done) = (Arc::clone(&map), Arc::clone(&holding), Arc::clone(&done));
        thread::spawn(move || {
            mapcache::set_thread_label("writer-1");
            let _flag = map.debug_hold_write_flag(b"a").expect("flag is free");
            holding.wait(); // writer-1 is now inside a write
            done.wait();
        })
    };
    mapcache::set_thread_label("writer-2");
    holding.wait();
    match map.insert(b"b", b"2") {
        Err(e @ Error::ConcurrentWrite(_)) => println!("exclusive mode: {e}"),
        other => println!("exclusive mode: unexpected {other:?}"),
    }
    done.wait();
    writer.join().expect("writer panicked");
    map.insert(b"b", b"2")?;
    println!(
        "exclusive mode: after writer-1 finished, writer-2's write succeeds ({} entry)",
        map.len()
    );
    Ok(())
}
