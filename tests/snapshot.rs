//! Snapshots through the Rust API: round trips at several sizes, TTLs across a
//! save and a load, loads into a live cache, bounded caches, failed saves.

use std::collections::HashMap;
use std::time::Duration;

use mapcache::{Clock, Config, Error, Map};

/// A fresh, empty directory of this test's own (removed when dropped).
#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

fn contents(map: &Map) -> HashMap<Vec<u8>, Vec<u8>> {
    map.iter().map(|item| item.unwrap()).collect()
}

fn round_trip(entries: &[(Vec<u8>, Vec<u8>)], name: &str) {
    let dir = TempDir::new("snap", name);
    let path = dir.path("cache.snap");
    let map = Map::new(Config::default()).unwrap();
    for (k, v) in entries {
        map.insert(k, v).unwrap();
    }
    let expected = contents(&map);
    let saved = map.save(&path).unwrap();
    assert_eq!(saved.records as usize, expected.len());
    assert_eq!(saved.bytes, std::fs::metadata(&path).unwrap().len());
    let loaded = Map::load(&path, Config::default()).unwrap();
    assert_eq!(loaded.len(), expected.len());
    assert_eq!(contents(&loaded), expected);
    for (k, v) in &expected {
        assert_eq!(loaded.get(k).unwrap().as_ref(), Some(v));
    }
    // No temporary file is left behind.
    assert_eq!(dir.names(), vec![std::ffi::OsString::from("cache.snap")]);
}

#[test]
fn an_empty_map_round_trips() {
    round_trip(&[], "empty");
}

#[test]
fn one_entry_round_trips() {
    round_trip(&[(b"key".to_vec(), b"value".to_vec())], "one");
}

#[test]
fn empty_keys_and_values_round_trip() {
    round_trip(&[(vec![], vec![]), (b"k".to_vec(), vec![])], "empties");
}

#[test]
fn large_values_round_trip() {
    // Values from 0 bytes to a few MiB: blocks of their own past 1 MiB.
    let entries: Vec<_> = [
        0usize,
        1,
        255,
        256,
        257,
        4096,
        (1 << 20) - 16,
        1 << 20,
        3 << 20,
        5 << 20,
    ]
    .iter()
    .enumerate()
    .map(|(i, &len)| {
        let value: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
        (format!("big-{i}").into_bytes(), value)
    })
    .collect();
    round_trip(&entries, "large");
}

#[test]
fn the_longest_key_round_trips() {
    let key = vec![b'k'; mapcache::MAX_KEY_LEN];
    round_trip(&[(key, b"v".to_vec())], "longest-key");
}

fn many(n: usize, name: &str) {
    let dir = TempDir::new("snap", name);
    let path = dir.path("many.snap");
    let map = Map::new(Config::default()).unwrap();
    for i in 0..n as u64 {
        map.insert(&i.to_le_bytes(), &(i * 3).to_le_bytes())
            .unwrap();
    }
    let saved = map.save(&path).unwrap();
    assert_eq!(saved.records, n as u64);
    assert!(saved.blocks >= (n as u64 * 32) >> 20);
    let loaded = Map::load(&path, Config::default()).unwrap();
    assert_eq!(loaded.len(), n);
    for i in 0..n as u64 {
        assert_eq!(
            loaded.get(&i.to_le_bytes()).unwrap(),
            Some((i * 3).to_le_bytes().to_vec()),
            "key {i}"
        );
    }
    assert_eq!(loaded.get(&(n as u64).to_le_bytes()).unwrap(), None);
}

#[test]
fn a_million_entries_round_trip() {
    many(1_000_000, "million");
}

#[test]
fn ten_million_entries_round_trip_under_stress() {
    if std::env::var_os("MAPCACHE_STRESS").is_none() {
        eprintln!("skipped: set MAPCACHE_STRESS=1 (make stress)");
        return;
    }
    many(10_000_000, "ten-million");
}

#[test]
fn the_largest_value_round_trips_under_stress() {
    if std::env::var_os("MAPCACHE_STRESS").is_none() {
        eprintln!("skipped: set MAPCACHE_STRESS=1 (make stress)");
        return;
    }
    let mut value = vec![0u8; mapcache::MAX_VALUE_LEN];
    for (i, byte) in value.iter_mut().enumerate().step_by(4093) {
        *byte = (i >> 12) as u8;
    }
    *value.last_mut().unwrap() = 0x5a;
    round_trip(&[(b"max".to_vec(), value)], "max-value");
}

#[test]
fn ttls_are_honoured_across_a_save_and_a_load() {
    let dir = TempDir::new("snap", "ttl");
    let path = dir.path("ttl.snap");
    let clock = Clock::manual();
    let config = Config {
        clock: clock.clone(),
        ..Config::default()
    };
    let map = Map::new(config.clone()).unwrap();
    map.insert(b"forever", b"1").unwrap();
    map.insert_with_ttl(b"gone-before-save", b"2", Duration::from_secs(5))
        .unwrap();
    map.insert_with_ttl(b"gone-before-load", b"3", Duration::from_secs(20))
        .unwrap();
    map.insert_with_ttl(b"gone-after-load", b"4", Duration::from_secs(60))
        .unwrap();
    clock.advance(Duration::from_secs(10)).unwrap();
    let saved = map.save(&path).unwrap();
    // Expired at the save: left out.
    assert_eq!(saved.records, 3);
    // The restart takes 15 s: "gone-before-load" expires in between.
    clock.advance(Duration::from_secs(15)).unwrap();
    let warm = Map::load(&path, config.clone()).unwrap();
    assert_eq!(warm.get(b"forever").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(warm.get(b"gone-before-save").unwrap(), None);
    assert_eq!(warm.get(b"gone-before-load").unwrap(), None);
    assert_eq!(
        warm.get(b"gone-after-load").unwrap().as_deref(),
        Some(&b"4"[..])
    );
    assert_eq!(warm.len(), 2);
    // The remaining 35 s of its TTL still hold after the load.
    clock.advance(Duration::from_secs(34)).unwrap();
    assert!(warm.get(b"gone-after-load").unwrap().is_some());
    clock.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(warm.get(b"gone-after-load").unwrap(), None);
    assert!(warm.get(b"forever").unwrap().is_some());
    // Now both TTL records have expired: load_into counts them.
    let into = Map::new(config).unwrap();
    let report = into.load_into(&path).unwrap();
    assert_eq!((report.records, report.loaded, report.expired), (3, 1, 2));
    assert_eq!(into.get(b"forever").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(into.len(), 1);
}

/// A warm restart restores each entry's expiry as it was, whatever the loading
/// cache's default TTL: an entry written with the default TTL was saved with
/// its deadline, and one saved without an expiry (written with a TTL of zero,
/// "never, whatever the default", or in a cache without a default) never
/// expires after the load either. The file cannot tell those two apart, so
/// giving such a record the default TTL would expire on a restart an entry
/// its writer said never expires. On each load path: a new unbounded map (the
/// flat bulk build), a new bounded one, and a load into a live map.
#[test]
fn a_load_keeps_each_records_expiry_whatever_the_default_ttl() {
    let dir = TempDir::new("snap", "default-ttl");
    let path = dir.path("ttl.snap");
    let clock = Clock::manual();
    let with_default = |max_entries| Config {
        clock: clock.clone(),
        default_ttl: Duration::from_secs(10),
        max_entries,
        ..Config::default()
    };
    let source = Map::new(with_default(0)).unwrap();
    source.insert(b"default", b"1").unwrap();
    source
        .insert_with_ttl(b"never", b"2", Duration::ZERO)
        .unwrap();
    source
        .insert_with_ttl(b"own", b"3", Duration::from_secs(60))
        .unwrap();
    clock.advance(Duration::from_secs(4)).unwrap();
    source.save(&path).unwrap();
    let unbounded = Map::load(&path, with_default(0)).unwrap();
    let bounded = Map::load(&path, with_default(100)).unwrap();
    let into = Map::new(with_default(0)).unwrap();
    into.load_into(&path).unwrap();
    let maps = [
        ("load", &unbounded),
        ("bounded load", &bounded),
        ("load_into", &into),
    ];
    // "default" has the 6 s left of its 10 s, not 10 s from the load.
    clock.advance(Duration::from_secs(6)).unwrap();
    for (how, map) in maps {
        assert_eq!(map.get(b"default").unwrap(), None, "{how}");
        assert_eq!(
            map.get(b"own").unwrap().as_deref(),
            Some(&b"3"[..]),
            "{how}"
        );
    }
    clock.advance(Duration::from_secs(50)).unwrap();
    for (how, map) in maps {
        assert_eq!(map.get(b"own").unwrap(), None, "{how}: its own TTL");
        assert_eq!(
            map.get(b"never").unwrap().as_deref(),
            Some(&b"2"[..]),
            "{how}: never, whatever the default"
        );
    }
}

#[test]
fn a_system_clock_ttl_survives_a_round_trip() {
    let dir = TempDir::new("snap", "ttl-system");
    let path = dir.path("ttl.snap");
    let map = Map::new(Config::default()).unwrap();
    map.insert_with_ttl(b"k", b"v", Duration::from_secs(3600))
        .unwrap();
    map.save(&path).unwrap();
    let warm = Map::load(&path, Config::default()).unwrap();
    assert_eq!(warm.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn load_into_overwrites_the_keys_of_the_snapshot_and_keeps_the_others() {
    let dir = TempDir::new("snap", "into");
    let path = dir.path("into.snap");
    let source = Map::new(Config::default()).unwrap();
    for i in 0..10_000u32 {
        source
            .insert(format!("key-{i}").as_bytes(), b"snapshot")
            .unwrap();
    }
    source.save(&path).unwrap();
    let live = Map::new(Config::default()).unwrap();
    for i in 5_000..15_000u32 {
        live.insert(format!("key-{i}").as_bytes(), b"live").unwrap();
    }
    let report = live.load_into(&path).unwrap();
    assert_eq!(report.records, 10_000);
    assert_eq!(report.loaded, 10_000);
    assert_eq!(report.replaced, 5_000);
    assert_eq!(live.len(), 15_000);
    for i in 0..15_000u32 {
        let expected: &[u8] = if i < 10_000 { b"snapshot" } else { b"live" };
        assert_eq!(
            live.get(format!("key-{i}").as_bytes()).unwrap().as_deref(),
            Some(expected)
        );
    }
    let stats = live.stats();
    assert_eq!(
        stats.inserts - stats.deletes - stats.evictions - stats.expirations,
        15_000
    );
}

#[test]
fn a_bounded_cache_smaller_than_the_snapshot_keeps_its_bound() {
    let dir = TempDir::new("snap", "bounded");
    let path = dir.path("b.snap");
    let source = Map::new(Config::default()).unwrap();
    for i in 0..20_000u32 {
        source.insert(&i.to_le_bytes(), &[7u8; 20]).unwrap();
    }
    source.save(&path).unwrap();
    let config = Config {
        max_entries: 5_000,
        ..Config::default()
    };
    let warm = Map::load(&path, config.clone()).unwrap();
    assert_eq!(warm.len(), 5_000);
    assert_eq!(warm.stats().evictions, 15_000);
    let held = warm
        .iter()
        .filter(|item| item.as_ref().unwrap().1 == [7u8; 20])
        .count();
    assert_eq!(held, 5_000);
    let into = Map::new(config).unwrap();
    let report = into.load_into(&path).unwrap();
    assert_eq!(report.loaded, 20_000);
    assert_eq!(into.len(), 5_000);
}

#[test]
fn an_entry_larger_than_a_shards_byte_budget_is_left_out() {
    let dir = TempDir::new("snap", "too-large");
    let path = dir.path("t.snap");
    let source = Map::new(Config::default()).unwrap();
    source.insert(b"small", b"v").unwrap();
    source.insert(b"huge", &vec![0u8; 100_000]).unwrap();
    source.save(&path).unwrap();
    let into = Map::new(Config {
        max_bytes: 10_000,
        ..Config::default()
    })
    .unwrap();
    let report = into.load_into(&path).unwrap();
    assert_eq!((report.loaded, report.too_large), (1, 1));
    assert!(into.get(b"huge").unwrap().is_none());
    assert!(into.get(b"small").unwrap().is_some());
}

#[test]
fn exclusive_mode_saves_and_loads() {
    let dir = TempDir::new("snap", "exclusive");
    let path = dir.path("x.snap");
    let config = Config {
        mode: mapcache::Mode::Exclusive,
        ..Config::default()
    };
    let map = Map::new(config.clone()).unwrap();
    for i in 0..1000u32 {
        map.insert(&i.to_le_bytes(), b"x").unwrap();
    }
    map.save(&path).unwrap();
    let warm = Map::load(&path, config.clone()).unwrap();
    assert_eq!(contents(&warm), contents(&map));
    let into = Map::new(config).unwrap();
    assert_eq!(into.load_into(&path).unwrap().loaded, 1000);
    assert_eq!(contents(&into), contents(&map));
    // Another thread's write in flight: the load is a write and collides
    // before changing anything; the save is a read and collides too.
    let held = into.debug_hold_write_flag(b"any").unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(
                into.load_into(&path),
                Err(Error::ConcurrentWrite(_))
            ));
            assert!(matches!(
                into.save(dir.path("y.snap")),
                Err(Error::ConcurrentReadWrite(_))
            ));
        });
    });
    drop(held);
    assert!(!dir.path("y.snap").exists());
    assert_eq!(into.len(), 1000);
}

#[test]
fn progress_reports_bytes_written_up_to_the_file_length() {
    let dir = TempDir::new("snap", "progress");
    let path = dir.path("p.snap");
    let map = Map::new(Config::default()).unwrap();
    for i in 0..100_000u32 {
        map.insert(&i.to_le_bytes(), &[1u8; 40]).unwrap();
    }
    let mut seen = Vec::new();
    let report = map
        .save_with_progress(&path, |bytes| seen.push(bytes))
        .unwrap();
    assert!(seen.len() as u64 > report.blocks, "{} calls", seen.len());
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(*seen.last().unwrap(), report.bytes);
}

/// A save keeps the permission bits of the file it replaces (a snapshot kept
/// private stays private), through a symbolic link too; a new file gets the
/// umask's.
#[test]
fn a_save_keeps_the_permissions_of_the_file_it_replaces() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("snap", "modes");
    let map = Map::new(Config::default()).unwrap();
    map.insert(b"k", b"v").unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let target = dir.path("private.snap");
    map.save(&target).unwrap();
    for bits in [0o600, 0o640, 0o604, 0o644] {
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(bits)).unwrap();
        map.save(&target).unwrap();
        assert_eq!(mode(&target), bits, "{bits:o}");
    }
    let link = dir.path("link.snap");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    map.save(&link).unwrap();
    assert_eq!(mode(&target), 0o600);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        Map::load(&link, Config::default())
            .unwrap()
            .get(b"k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn a_save_that_cannot_create_its_file_fails_and_leaves_the_target_intact() {
    let dir = TempDir::new("snap", "readonly");
    let ro = dir.path("ro");
    std::fs::create_dir(&ro).unwrap();
    let target = ro.join("cache.snap");
    let map = Map::new(Config::default()).unwrap();
    map.insert(b"old", b"1").unwrap();
    map.save(&target).unwrap();
    let before = std::fs::read(&target).unwrap();
    map.insert(b"new", b"2").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let result = map.save(&target);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root writes into a read-only directory anyway; /proc refuses it.
        assert!(result.is_ok());
        let Err(Error::Io {
            op, path, errno, ..
        }) = map.save("/proc/mapcache-test.snap")
        else {
            panic!("a save into /proc succeeded");
        };
        assert_eq!(op, "create");
        assert!(path.starts_with("/proc"));
        assert!(errno.is_some());
        return;
    }
    let Err(Error::Io {
        op, kind, errno, ..
    }) = result
    else {
        panic!("a save into a read-only directory: {result:?}");
    };
    assert_eq!(op, "create");
    assert_eq!(kind, std::io::ErrorKind::PermissionDenied);
    assert_eq!(errno, Some(libc::EACCES));
    assert_eq!(std::fs::read(&target).unwrap(), before);
}

#[test]
fn a_save_whose_rename_fails_leaves_the_target_and_no_temporary_file() {
    let dir = TempDir::new("snap", "rename");
    // The target becomes a non-empty directory while the save writes (after
    // its check of the target, which refuses a directory): everything but the
    // rename works.
    let target = dir.path("cache.snap");
    let map = Map::new(Config::default()).unwrap();
    map.insert(b"k", b"v").unwrap();
    let result = map.save_with_progress(&target, |_| {
        if !target.exists() {
            std::fs::create_dir(&target).unwrap();
            std::fs::write(target.join("keep"), b"kept").unwrap();
        }
    });
    let Err(error @ Error::Io { op: "rename", .. }) = result else {
        panic!("the rename over a directory succeeded: {result:?}");
    };
    assert!(error.to_string().contains("rename"), "{error}");
    assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"kept");
    assert_eq!(dir.names(), vec![std::ffi::OsString::from("cache.snap")]);
}

#[test]
fn loading_a_missing_file_is_an_io_error() {
    let Err(Error::Io { op, kind, .. }) = Map::load("/nonexistent/cache.snap", Config::default())
    else {
        panic!("a missing file loaded");
    };
    assert_eq!((op, kind), ("open", std::io::ErrorKind::NotFound));
}

#[test]
fn a_file_locked_exclusively_by_another_is_not_loaded() {
    let dir = TempDir::new("snap", "lock");
    let path = dir.path("l.snap");
    Map::new(Config::default()).unwrap().save(&path).unwrap();
    let other = std::fs::File::open(&path).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX) }, 0);
    let Err(Error::Io { op, kind, .. }) = Map::load(&path, Config::default()) else {
        panic!("loaded under another's exclusive lock");
    };
    assert_eq!((op, kind), ("lock", std::io::ErrorKind::WouldBlock));
    drop(other);
    assert!(Map::load(&path, Config::default()).is_ok());
}

/// The refusal every load path gives for `path`, which is no regular file:
/// `Error::Io` at "open" (as a directory's), naming the path, saying "not a
/// regular file" and what it is.
fn assert_refused(result: mapcache::Result<()>, path: &std::path::Path, what: &str) {
    match result {
        Err(
            error @ Error::Io {
                op: "open",
                errno: None,
                ..
            },
        ) => {
            let text = error.to_string();
            assert_eq!(
                text,
                format!(
                    "snapshot open of {}: not a regular file ({what})",
                    path.display()
                )
            );
        }
        other => panic!("a load of {}: {other:?}", path.display()),
    }
}

/// Every load path (`load`, `load_with_report`, `load_into`), of `path`.
fn every_load(path: &std::path::Path, what: &str) {
    assert_refused(Map::load(path, Config::default()).map(drop), path, what);
    assert_refused(
        Map::load_with_report(path, Config::default()).map(drop),
        path,
        what,
    );
    let live = Map::new(Config::default()).unwrap();
    live.insert(b"k", b"v").unwrap();
    assert_refused(live.load_into(path).map(drop), path, what);
    assert_eq!(live.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// A FIFO is refused at once: the load does not wait in open(2) for a writer
/// (it used to, and then read an empty "file", Corrupt). The test does not
/// wait either: while the loads run, it keeps opening the FIFO for writing
/// (non-blocking, which succeeds only while a reader has it open or waits in
/// open), so that a load blocked in open is released and ends with the wrong
/// error instead of hanging the test.
#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = TempDir::new("snap", "fifo");
    let path = dir.path("fifo");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo changes no memory of ours.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let loads = {
        let path = path.clone();
        std::thread::spawn(move || every_load(&path, "a FIFO"))
    };
    while !loads.is_finished() {
        // SAFETY: as above; a descriptor it returns is closed at once.
        let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
        if fd >= 0 {
            // SAFETY: a descriptor we own.
            unsafe { libc::close(fd) };
        }
        std::thread::yield_now();
    }
    if let Err(panic) = loads.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A character device (/dev/null: its length is 0, so it used to load as an
/// empty file, Corrupt) and a socket (which open(2) refuses with ENXIO, "No
/// such device or address") are refused as not regular files.
#[test]
fn a_device_and_a_socket_are_refused() {
    every_load(std::path::Path::new("/dev/null"), "a character device");
    let dir = TempDir::new("snap", "socket");
    let path = dir.path("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    every_load(&path, "a socket");
}

/// A directory is reported as one (EISDIR), at the same step.
#[test]
fn a_directory_is_refused_as_such() {
    let dir = TempDir::new("snap", "dir");
    for result in [
        Map::load(&dir.0, Config::default()).map(drop),
        Map::load_with_report(&dir.0, Config::default()).map(drop),
        Map::new(Config::default())
            .unwrap()
            .load_into(&dir.0)
            .map(drop),
    ] {
        let Err(Error::Io {
            op, kind, errno, ..
        }) = result
        else {
            panic!("a directory loaded: {result:?}");
        };
        assert_eq!(
            (op, kind, errno),
            ("open", std::io::ErrorKind::IsADirectory, Some(libc::EISDIR))
        );
    }
}

/// A save replaces a regular file only: a FIFO, a socket or a directory at the
/// path is refused before anything is written and left as it was (a save to
/// `/dev/full` as root replaced the device node with a snapshot, since the
/// rename replaces whatever the path names). A symbolic link is followed: the
/// file it leads to gets the snapshot and the link stays a link; one that
/// leads nowhere is refused.
#[test]
fn a_save_replaces_only_a_regular_file_and_saves_through_a_link() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TempDir::new("snap", "save-target");
    let map = Map::new(Config::default()).unwrap();
    map.insert(b"k", b"v").unwrap();
    let refused = |path: &std::path::Path, what: &str| match map.save(path) {
        Err(Error::Io { op, message, .. }) => {
            assert_eq!(op, "stat", "{message}");
            assert!(message.contains(what), "{message}");
        }
        other => panic!("{}: {:?}", path.display(), other),
    };
    let fifo = dir.path("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo changes no memory of ours.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    refused(
        &fifo,
        "not a regular file (a FIFO): a save would replace it",
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let socket_path = dir.path("socket");
    let _socket = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
    refused(&socket_path, "(a socket)");
    assert!(std::fs::symlink_metadata(&socket_path)
        .unwrap()
        .file_type()
        .is_socket());
    let subdir = dir.path("subdir");
    std::fs::create_dir(&subdir).unwrap();
    refused(&subdir, "(a directory)");
    assert!(matches!(
        map.save(&subdir),
        Err(Error::Io {
            errno: Some(libc::EISDIR),
            ..
        })
    ));
    // Through a link: the file it names gets the snapshot.
    let real = dir.path("real.snap");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.path("link.snap");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    map.save(&link).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        Map::load(&real, Config::default())
            .unwrap()
            .get(b"k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
    // A link to a FIFO is refused like the FIFO; a link to nothing too.
    let to_fifo = dir.path("to-fifo");
    std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();
    refused(&to_fifo, "(a FIFO)");
    let dangling = dir.path("dangling");
    std::os::unix::fs::symlink(dir.path("nothing"), &dangling).unwrap();
    refused(&dangling, "leads to no file");
    // No temporary file was left anywhere.
    let mut names: Vec<String> = dir
        .names()
        .into_iter()
        .map(|n| n.into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dangling",
            "fifo",
            "link.snap",
            "real.snap",
            "socket",
            "subdir",
            "to-fifo"
        ]
    );
}
