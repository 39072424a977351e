//! Snapshots through the Rust API: round trips at several sizes, TTLs across a
//! save and a load, loads into a live cache, bounded caches, failed saves.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use mapcache::{Clock, Config, Error, Map};

/// A fresh, empty directory of this test's own (removed when dropped).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mapcache-snap-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn contents(map: &Map) -> HashMap<Vec<u8>, Vec<u8>> {
    map.iter().map(|item| item.unwrap()).collect()
}

fn round_trip(entries: &[(Vec<u8>, Vec<u8>)], name: &str) {
    let dir = TempDir::new(name);
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
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("cache.snap")]);
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
