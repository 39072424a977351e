//! Crash safety: a child process saves a large cache over an existing snapshot
//! again and again and is killed with SIGKILL at pseudo-random moments (during
//! the writes, the fsyncs, the rename, or between saves); after each kill the
//! target must load as one complete snapshot: the previous one or a new one,
//! never a mix or a partial file.
//!
//! The child is this test binary, re-run with `CRASH_CHILD_TARGET` set, which
//! makes `child_saves_until_killed` save instead of returning at once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mapcache::{Config, Map};

const KEYS: u32 = 150_000;
const CHILD_ENV: &str = "CRASH_CHILD_TARGET";

/// Generation `generation`'s value of key `i`: both are in it, padded.
fn value(i: u32, generation: u32) -> Vec<u8> {
    let mut v = format!("{generation}:{i}:").into_bytes();
    v.resize(80, b'.');
    v
}

fn filled(generation: u32) -> Map {
    let map = Map::new(Config::default()).unwrap();
    for i in 0..KEYS {
        map.insert(&i.to_le_bytes(), &value(i, generation)).unwrap();
    }
    map
}

/// The generation a loaded target holds, after checking that it is one
/// complete generation.
fn generation_of(target: &Path) -> u32 {
    let map = Map::load(target, Config::default())
        .unwrap_or_else(|e| panic!("the target does not load after a kill: {e}"));
    assert_eq!(map.len(), KEYS as usize, "a partial snapshot");
    let first = map.get(&0u32.to_le_bytes()).unwrap().unwrap();
    let generation: u32 = std::str::from_utf8(&first)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    for i in 0..KEYS {
        assert_eq!(
            map.get(&i.to_le_bytes()).unwrap(),
            Some(value(i, generation)),
            "key {i}: a mix of generations"
        );
    }
    generation
}

/// Not a test of its own: the child's body (returns at once unless run as the
/// child by `a_killed_save_leaves_the_previous_or_the_new_snapshot`).
#[test]
fn child_saves_until_killed() {
    let Some(target) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let target = PathBuf::from(target);
    let maps = [filled(1), filled(2)];
    println!("ready");
    for round in 0usize.. {
        maps[round % 2].save(&target).unwrap();
    }
}

/// Polls (for at most 5 s) until a temporary file next to `target` starts
/// with the snapshot magic: its save has written the header, its last write,
/// and is in its fsync or rename. `false` if none was seen (the kill then
/// lands wherever the save is; the test's assertions hold either way).
fn header_written(dir: &Path, target: &Path) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path == target {
                continue;
            }
            let mut magic = [0u8; 8];
            let read = std::fs::File::open(&path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
            if read.is_ok() && &magic == b"\x89MCSNAP\n" {
                return true;
            }
        }
        std::thread::yield_now();
    }
    false
}

#[test]
fn a_killed_save_leaves_the_previous_or_the_new_snapshot() {
    let dir = std::env::temp_dir().join(format!("mapcache-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("cache.snap");
    filled(0).save(&target).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seen = [0usize; 3];
    // A fixed pseudo-random sequence of kill delays (xorshift).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let kills = 24;
    let mut in_commit = 0;
    for round in 0..kills {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_micros(state % 400_000);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_saves_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &target)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.trim_end().ends_with("ready") => break,
                Some(Ok(_)) => continue,
                other => panic!("the child ended before saving: {other:?}"),
            }
        }
        if round % 2 == 0 {
            // Not a wait for something: the moment of the kill, drawn at random.
            std::thread::sleep(delay);
        } else if header_written(&dir, &target) {
            // The temporary file's header is written last, right before the
            // fsync, the rename and the directory's fsync: kill in that window.
            in_commit += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        seen[generation_of(&target) as usize] += 1;
        // A killed save leaves its temporary file behind; clear them out.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path != target {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    eprintln!(
        "after {kills} kills ({in_commit} seen between the header write and the rename) \
         the target held generations 0/1/2: {seen:?}"
    );
    assert_eq!(seen.iter().sum::<usize>(), kills);
    std::fs::remove_dir_all(&dir).unwrap();
}
