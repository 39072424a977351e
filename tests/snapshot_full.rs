//! A save that runs out of space: the file system fills up in the middle of
//! the records. A test cannot fill a real disk (nor mount a small one without
//! privileges), so the child process lowers its file size limit
//! (`RLIMIT_FSIZE`), under which a write past the limit fails with `EFBIG`
//! exactly as one past a full disk fails with `ENOSPC`: the same `write` step
//! of the save. The save must return `Error::Io` for that step, leave the
//! previous snapshot as it was, and remove its temporary file.
//!
//! The child is this test binary, re-run with `FULL_CHILD_TARGET` set, which
//! makes `child_saves_under_a_file_size_limit` save instead of returning.

use std::process::Command;

use mapcache::{Config, Error, Map};

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

const CHILD_ENV: &str = "FULL_CHILD_TARGET";
/// The child's file size limit: a snapshot of `KEYS` entries is about 8x it.
const LIMIT: u64 = 256 * 1024;
const KEYS: u32 = 20_000;

fn filled(keys: u32) -> Map {
    let map = Map::new(Config::default()).unwrap();
    for i in 0..keys {
        map.insert(&i.to_le_bytes(), &[b'v'; 80]).unwrap();
    }
    map
}

/// Not a test of its own: the child's body (returns at once unless run as the
/// child by `a_save_that_runs_out_of_space_fails_and_leaves_the_target_intact`).
#[test]
fn child_saves_under_a_file_size_limit() {
    let Ok(target) = std::env::var(CHILD_ENV) else {
        return;
    };
    let limit = libc::rlimit {
        rlim_cur: LIMIT,
        rlim_max: LIMIT,
    };
    // SAFETY: ignoring SIGXFSZ (else a write past the limit kills the process
    // instead of failing) and lowering this process's own limit; both calls
    // take valid arguments.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    match filled(KEYS).save(&target) {
        Err(Error::Io {
            op, errno, path, ..
        }) => println!(
            "save failed: op={op} errno={} temporary={}",
            errno.unwrap_or(0),
            path.file_name().unwrap().to_string_lossy()
        ),
        other => println!("save did not fail as expected: {other:?}"),
    }
}

#[test]
fn a_save_that_runs_out_of_space_fails_and_leaves_the_target_intact() {
    let dir = TempDir::new("snap", "full");
    let target = dir.path("cache.snap");
    // The previous snapshot, well under the child's limit.
    filled(100).save(&target).unwrap();
    let before = std::fs::read(&target).unwrap();
    assert!((before.len() as u64) < LIMIT);

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_saves_under_a_file_size_limit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &target)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child failed: {stdout}");
    // The harness prints the test's name before the child's line.
    let line = stdout
        .find("save ")
        .map(|at| stdout[at..].lines().next().unwrap())
        .unwrap_or_else(|| panic!("no report from the child: {stdout}"));
    assert!(
        line.starts_with(&format!("save failed: op=write errno={} ", libc::EFBIG)),
        "{line}"
    );
    // The error names the temporary file, which is gone; the target is the
    // previous snapshot, byte for byte, and loads.
    assert!(line.contains(".cache.snap."), "{line}");
    assert_eq!(dir.names(), vec![std::ffi::OsString::from("cache.snap")]);
    assert_eq!(std::fs::read(&target).unwrap(), before);
    assert_eq!(Map::load(&target, Config::default()).unwrap().len(), 100);
}
