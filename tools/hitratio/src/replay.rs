//! One trace through one cache of one capacity: mapcache itself, or the exact LRU.

use mapcache::{Config, Map};

use crate::lru::ExactLru;

/// The hash seed of every replayed cache, so that a run is reproducible.
pub const SEED: u64 = 0x5eed_1de5_0fca_7e00;

/// The value stored on every miss: the hit ratio does not depend on it.
const VALUE: &[u8; 8] = b"hitratio";

/// What a replay through mapcache saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Requests that hit.
    pub hits: u64,
    /// Requests.
    pub requests: u64,
    /// Entries the cache held at the end.
    pub final_entries: usize,
    /// Hits as the cache's own statistics count them (should equal `hits`).
    pub stats_hits: u64,
}

impl Outcome {
    /// Hits per request, in percent.
    pub fn percent(&self) -> f64 {
        percent(self.hits, self.requests)
    }
}

/// `hits / requests` in percent (0 for no request).
pub fn percent(hits: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        100.0 * hits as f64 / requests as f64
    }
}

/// The cache the harness measures at `capacity` entries: the library's default
/// configuration for that capacity, with a fixed hash seed.
pub fn config(capacity: usize) -> Config {
    Config {
        max_entries: capacity,
        seed: Some(SEED),
        ..Default::default()
    }
}

/// Replays `keys` through a fresh `mapcache::Map` of `capacity` entries: a get
/// per request, and on a miss an insert, as a cache-aside host does.
pub fn mapcache(keys: &[u64], capacity: usize) -> Result<Outcome, mapcache::Error> {
    let map = Map::new(config(capacity))?;
    let mut hits = 0;
    for key in keys {
        let key = key.to_le_bytes();
        if map.get_with(&key, |_| ())?.is_some() {
            hits += 1;
        } else {
            map.insert(&key, VALUE)?;
        }
    }
    Ok(Outcome {
        hits,
        requests: keys.len() as u64,
        final_entries: map.len(),
        stats_hits: map.stats().hits,
    })
}

/// Hits of the exact LRU of `capacity` entries on `keys`.
pub fn exact_lru(keys: &[u64], capacity: usize) -> u64 {
    let mut lru = ExactLru::new(capacity);
    keys.iter().filter(|&&key| lru.access(key)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_counts_every_request_and_agrees_with_the_cache_stats() {
        // 100 distinct keys, each requested twice in a row: the second request
        // hits in any cache of one entry or more.
        let keys: Vec<u64> = (0..100).flat_map(|k| [k, k]).collect();
        let outcome = mapcache(&keys, 1000).unwrap();
        assert_eq!(outcome.requests, 200);
        assert_eq!(outcome.hits, 100);
        assert_eq!(outcome.stats_hits, outcome.hits);
        assert_eq!(outcome.final_entries, 100);
        assert_eq!(exact_lru(&keys, 1), 100);
        assert_eq!(outcome.percent(), 50.0);
    }
}
