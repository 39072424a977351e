//! Unit tests of the policy as a whole: every inserted node comes back from
//! `evict` exactly once, stale and garbage hits are harmless, weights add up,
//! clear forgets, and the structure's invariants hold after every call.

use std::collections::HashSet;

use super::nodes::Queue;
use super::{Policy, Victim};

impl Policy {
    /// Checks every invariant of the module docs; returns the live nodes.
    fn check(&self) -> HashSet<u32> {
        let mut live = HashSet::new();
        for list in [&self.window, &self.probation, &self.protected] {
            for node in list.check(&self.nodes) {
                assert!(live.insert(node), "node {node} in two lists");
            }
        }
        assert_eq!(live.len(), self.len());
        assert!(self.window_max >= 1);
        assert!(self.window_max + self.protected_max <= self.capacity);
        assert!(self.protected.weight() <= self.protected_max);
        live
    }
}

/// xorshift for the tests' own randomness.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn evict_returns_each_inserted_node_exactly_once() {
    let mut policy = Policy::new(100);
    let mut live = HashSet::new();
    let mut state = 0x1234_5678u64;
    for i in 0..5_000u32 {
        let frag = (next(&mut state) % 300) as u32;
        let node = policy.on_insert(frag, 1);
        assert!(live.insert(node), "node {node} handed out twice");
        if i % 3 == 0 {
            let target = *live.iter().next().unwrap();
            policy.on_hit(target, policy.nodes.get(target).frag);
        }
        while policy.len() > 100 {
            let victim = policy.evict().unwrap();
            assert!(live.remove(&victim.node), "victim {victim:?} not live");
        }
        if i % 97 == 0 {
            assert_eq!(policy.check(), live);
        }
    }
    // Draining returns every live node once, then None.
    while let Some(Victim { node, .. }) = policy.evict() {
        assert!(live.remove(&node), "node {node} evicted twice");
        policy.check();
    }
    assert!(live.is_empty());
    assert_eq!((policy.len(), policy.weight()), (0, 0));
    assert_eq!(policy.evict(), None);
}

#[test]
fn evict_works_under_the_capacity_too() {
    // A second, entry-count bound may ask for victims the policy's own
    // weight bound would not: there is always one while a node is live.
    let mut policy = Policy::new(1_000_000);
    let nodes: Vec<u32> = (0..10).map(|i| policy.on_insert(i, 1)).collect();
    let mut evicted: Vec<u32> = (0..10).map(|_| policy.evict().unwrap().node).collect();
    evicted.sort_unstable();
    assert_eq!(evicted, nodes);
    assert_eq!(policy.evict(), None);
}

#[test]
fn garbage_and_stale_hits_never_panic_and_move_nothing() {
    let mut policy = Policy::new(8);
    let a = policy.on_insert(11, 1);
    let b = policy.on_insert(22, 1);
    for node in [u32::MAX, 1 << 31, (1 << 31) - 1, 2, 3, 1000, a, b] {
        for frag in [0, 11, 22, u32::MAX] {
            policy.on_hit(node, frag);
            policy.check();
        }
    }
    // A freed node, then its index reused for another key: the old key's
    // replayed hit must not move the new entry.
    policy.on_remove(a);
    policy.on_hit(a, 11);
    policy.on_remove(a);
    policy.on_update(a, 5);
    let c = policy.on_insert(33, 1);
    assert_eq!(c, a, "the freed index is reused");
    let order = policy.window.check(&policy.nodes);
    policy.on_hit(c, 11);
    assert_eq!(policy.window.check(&policy.nodes), order);
    assert_eq!(policy.len(), 2);
    policy.on_remove(u32::MAX);
    policy.on_update(u32::MAX, 3);
    policy.check();
}

#[test]
fn weights_are_summed_through_updates_and_removals() {
    let mut policy = Policy::new(1000);
    let a = policy.on_insert(1, 100);
    let b = policy.on_insert(2, 1);
    let c = policy.on_insert(3, 0); // taken as 1
    assert_eq!(policy.weight(), 102);
    policy.on_update(b, 50);
    assert_eq!(policy.weight(), 151);
    policy.on_remove(a);
    assert_eq!(policy.weight(), 51);
    policy.on_update(c, 1);
    assert_eq!((policy.weight(), policy.len()), (51, 2));
    policy.check();
    // Over the byte capacity, victims come until the weight fits.
    for i in 0..20 {
        policy.on_insert(100 + i, 90);
        while policy.weight() > 1000 {
            policy.evict().unwrap();
        }
        policy.check();
    }
    assert!(policy.weight() <= 1000);
}

#[test]
fn probation_hits_promote_and_protected_overflow_demotes() {
    let mut policy = Policy::new(10);
    let nodes: Vec<u32> = (0..10).map(|i| policy.on_insert(i, 1)).collect();
    // Filled without eviction: the window drained into probation.
    assert_eq!(policy.window.len(), 1);
    assert_eq!(policy.probation.len(), 9);
    for &node in &nodes[..9] {
        policy.on_hit(node, policy.nodes.get(node).frag);
    }
    assert_eq!(
        policy.nodes.get(nodes[0]).queue(),
        Queue::Probation,
        "demoted"
    );
    assert_eq!(policy.protected.len() as u64, policy.protected_max);
    policy.check();
}

#[test]
fn rejected_candidates_are_flagged_and_frequent_keys_stay() {
    // 500 entries: the sketch ages every 5,000 counted accesses, more than
    // this test makes, so the hot keys stay hot throughout.
    let mut policy = Policy::new(500);
    let hot: Vec<(u32, u32)> = (0..500).map(|i| (policy.on_insert(i, 1), i)).collect();
    for _ in 0..5 {
        for &(node, frag) in &hot {
            policy.on_hit(node, frag);
        }
    }
    // A scan of one-time keys: each is refused. Of the hot keys only the
    // ones in the window (5 entries) go, as the first candidates (they tie
    // with the hot victims they duel), and the odd main LRU when a ghost's
    // false positive grows the window by one.
    let (mut rejected, mut hot_lost) = (0, 0);
    for i in 1000..2000 {
        policy.on_insert(i, 1);
        let victim = policy.evict().unwrap();
        hot_lost += usize::from(hot.contains(&(victim.node, victim.frag)));
        rejected += usize::from(victim.rejected);
    }
    assert!(
        hot_lost <= 10,
        "{hot_lost} hot keys evicted for one-time keys"
    );
    assert!(rejected > 990, "{rejected} rejections");
    assert_eq!(policy.len(), 500);
    policy.check();
}

#[test]
fn clear_forgets_every_node() {
    let mut policy = Policy::new(10);
    for i in 0..30 {
        policy.on_insert(i, 2);
        while policy.weight() > 10 {
            policy.evict();
        }
    }
    policy.clear();
    assert_eq!(
        (policy.len(), policy.weight(), policy.evict()),
        (0, 0, None)
    );
    assert_eq!(policy.on_insert(7, 1), 0, "indices start over");
    policy.check();
}

#[test]
fn memory_per_entry_is_within_its_bound() {
    for capacity in [1024u64, 1500, 4096, 5000, 20_000] {
        let mut policy = Policy::new(capacity);
        for i in 0..capacity as u32 * 2 {
            policy.on_insert(i.wrapping_mul(0x9E37_79B1), 1);
            while policy.len() as u64 > capacity {
                policy.evict();
            }
        }
        let per_entry = policy.footprint() as f64 / capacity as f64;
        let share = |bytes: usize| bytes as f64 / capacity as f64;
        println!(
            "capacity {capacity}: {per_entry:.1} bytes per entry (nodes {:.1}, sketch {:.1}, ghosts {:.1})",
            share(policy.nodes.bytes()),
            share(policy.sketch.bytes()),
            share(policy.window_ghosts.bytes() + policy.main_ghosts.bytes()),
        );
        assert!(
            per_entry <= Policy::bytes_per_entry() as f64,
            "{capacity}: {per_entry}"
        );
        // Entries bounded by count: the arena holds one node over the
        // capacity, no growth slack.
        assert_eq!(policy.nodes.bytes(), 12 * (capacity as usize + 1));
        // Ghosts sized to what they hold: 16 bits per key, 0.175 keys per
        // entry per generation, 2 generations, 2 filters, to a whole word.
        let ghosts = policy.window_ghosts.bytes() + policy.main_ghosts.bytes();
        assert!(ghosts as f64 <= 1.4 * capacity as f64 + 64.0, "{ghosts}");
    }
    // A power-of-two capacity with weights 1: node, sketch word, ghosts.
    let mut policy = Policy::new(4096);
    for i in 0..4096u32 {
        policy.on_insert(i, 1);
    }
    let per_entry = policy.footprint() as f64 / 4096.0;
    assert!(per_entry < 12.0 + 8.0 + 3.0, "{per_entry}");
}

#[test]
fn the_sketch_and_ghosts_grow_with_the_entries_only() {
    // A byte-bounded policy: sized for 4096 entries at first, then for the
    // next power of two of the live entries, never past the capacity.
    let mut policy = Policy::new(1 << 20);
    assert_eq!(policy.sketch.entries(), 4096);
    for i in 0..5000 {
        policy.on_insert(i, 1);
    }
    assert_eq!(policy.sketch.entries(), 8192);
    let ghost_bytes = policy.window_ghosts.bytes();
    // A full count-bounded policy goes one over its capacity at each insert
    // (the shard evicts after): that must not resize (and wipe) anything.
    let mut policy = Policy::new(250);
    for i in 0..250 {
        policy.on_insert(i, 1);
    }
    policy.window_ghosts.insert(12345);
    for i in 250..260 {
        policy.on_insert(i, 1);
        policy.evict();
    }
    assert_eq!(policy.sketch.entries(), 250);
    assert!(policy.window_ghosts.contains(12345), "ghosts wiped");
    assert!(ghost_bytes > policy.window_ghosts.bytes());
}

#[test]
fn random_operations_keep_every_invariant_and_agree_with_a_model() {
    use std::collections::HashMap;
    for (capacity, weighted) in [(1u64, false), (7, false), (64, false), (300, true)] {
        let mut policy = Policy::new(capacity);
        // node -> (frag, weight), what the shard would know.
        let mut model: HashMap<u32, (u32, u32)> = HashMap::new();
        let mut state = 0xDEAD_BEEF ^ capacity;
        for step in 0..20_000 {
            let roll = next(&mut state) % 100;
            let pick = |state: &mut u64, model: &HashMap<u32, (u32, u32)>| {
                let mut keys: Vec<u32> = model.keys().copied().collect();
                keys.sort_unstable();
                (!keys.is_empty()).then(|| keys[(next(state) % keys.len() as u64) as usize])
            };
            let weight = if weighted {
                (next(&mut state) % 40) as u32
            } else {
                1
            };
            match roll {
                0..=39 => {
                    let frag = (next(&mut state) % 500) as u32;
                    let node = policy.on_insert(frag, weight);
                    assert!(model.insert(node, (frag, weight.max(1))).is_none());
                }
                40..=69 => {
                    if let Some(node) = pick(&mut state, &model) {
                        policy.on_hit(node, model[&node].0);
                    }
                }
                70..=74 => policy.on_hit(next(&mut state) as u32, next(&mut state) as u32),
                75..=79 => {
                    if let Some(node) = pick(&mut state, &model) {
                        policy.on_update(node, weight);
                        model.get_mut(&node).unwrap().1 = weight.max(1);
                    }
                }
                80..=84 => {
                    if let Some(node) = pick(&mut state, &model) {
                        policy.on_remove(node);
                        model.remove(&node);
                    }
                }
                85 => {
                    if step % 7 == 0 {
                        policy.clear();
                        model.clear();
                    }
                }
                _ => match policy.evict() {
                    Some(victim) => {
                        let (frag, _) = model.remove(&victim.node).expect("a live victim");
                        assert_eq!(frag, victim.frag);
                    }
                    None => assert!(model.is_empty()),
                },
            }
            // The shard's own loop: evict while over the bound.
            while policy.weight() > capacity {
                let victim = policy.evict().expect("over capacity, so not empty");
                model.remove(&victim.node).expect("a live victim");
            }
            let live = policy.check();
            assert_eq!(live, model.keys().copied().collect::<HashSet<u32>>());
            let weight: u64 = model.values().map(|&(_, w)| u64::from(w)).sum();
            assert_eq!(policy.weight(), weight);
        }
    }
}
