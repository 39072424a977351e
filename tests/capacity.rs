//! `initial_capacity`: a documented limit that is refused rather than attempted,
//! and a large accepted capacity that costs address space, not memory, until the
//! table fills (issue 10, point 9). Its own test binary, so that the resident-set
//! measurement sees no other test's allocations.

use mapcache::{Config, Error, Map, MAX_INITIAL_CAPACITY};

#[test]
fn initial_capacity_over_the_limit_is_an_invalid_config_naming_it() {
    for shards in [0, 1] {
        let result = Map::new(Config {
            initial_capacity: MAX_INITIAL_CAPACITY + 1,
            shards,
            ..Config::default()
        });
        match result {
            Err(Error::InvalidConfig(message)) => {
                assert!(message.contains("initial_capacity"), "{message}");
                assert!(message.contains("1073741824"), "{message}");
            }
            Err(other) => panic!("shards {shards}: {other} instead of an invalid config"),
            Ok(_) => panic!("shards {shards}: a capacity over the limit was accepted"),
        }
    }
}

/// The resident set of this process, in bytes (Linux).
#[cfg(target_os = "linux")]
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn a_large_table_is_not_committed_at_creation() {
    // 2^26 entries in one shard: a bucket array of about 1.9 GB. Creating the map
    // must not touch it (an eager memset would commit it all, and under
    // overcommit a larger one can get the process killed).
    const BUDGET: usize = 256 << 20;
    let before = resident_bytes();
    let map = match Map::new(Config {
        initial_capacity: 1 << 26,
        shards: 1,
        ..Config::default()
    }) {
        Ok(map) => map,
        // A machine that cannot even reserve the address space says so.
        Err(Error::OutOfMemory { bytes }) => {
            eprintln!("no address space for {bytes} bytes: nothing to measure");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < BUDGET,
        "creating the map made {grown} bytes resident (budget {BUDGET})"
    );
    // The lazily zeroed table reads as empty and works. (Each bucket touched
    // from here on commits its page: a huge page where the kernel grants one.)
    assert_eq!(map.get(b"absent").unwrap(), None);
    for i in 0u32..100 {
        map.insert(&i.to_le_bytes(), b"v").unwrap();
    }
    assert_eq!(map.len(), 100);
    assert_eq!(
        map.get(&7u32.to_le_bytes()).unwrap().as_deref(),
        Some(&b"v"[..])
    );
}
