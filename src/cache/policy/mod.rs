//! The eviction policy of one shard: adaptive W-TinyLFU (DOCS BELOW ARE
//! PROVISIONAL).

mod climber;
mod ghost;
mod list;
mod nodes;
mod sketch;

#[cfg(test)]
mod replay_tests;

use climber::{Climber, Steps};
use ghost::Ghosts;
use list::List;
use nodes::{Nodes, Queue};
use sketch::Sketch;

/// Share of the capacity the window starts with (Caffeine: 1%).
const INITIAL_WINDOW_SHARE: f64 = 0.01;
/// Share of the main space the protected segment may fill (Caffeine: 80%).
const PROTECTED_SHARE: f64 = 0.80;
/// A candidate at least this frequent that lost its duel is still admitted,
/// one time in 128 (Caffeine's defence against a flood of colliding keys
/// keeping a popular newcomer out forever).
const WARM_CANDIDATE: u8 = 6;
/// Nodes moved between segments per window adjustment, at most.
const TRANSFER_LIMIT: usize = 1000;
/// Entries the sketch is sized for at first, at most (it grows with the
/// number of live entries: a cache bounded by bytes does not know how many
/// entries it will hold).
const INITIAL_SKETCH_ENTRIES: u64 = 4096;

/// What [`Policy::evict`] chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Victim {
    /// The node of the evicted entry (freed already).
    pub(crate) node: u32,
    /// Its hash fragment.
    pub(crate) frag: u32,
    /// Whether it was a new entry refused admission to the main space.
    pub(crate) rejected: bool,
}

/// Knobs the replay tests vary; the cache uses [`Tuning::DEFAULT`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Tuning {
    pub(super) steps: Steps,
    pub(super) initial_window_share: f64,
    /// Whether the hill climber runs.
    pub(super) climb: bool,
    /// How long ghosts are remembered, in requests per entry (0: no ghosts).
    pub(super) ghost_span: f64,
    /// Window change per ghost hit, in units of the missed entry's weight.
    pub(super) ghost_step: u64,
    /// A window ghost hit counts only for a key at most this frequent.
    pub(super) ghost_max_freq: u8,
    /// Whether a ghost hit's step is scaled by the other ghost's population
    /// over its own (ARC's balance).
    pub(super) ghost_balance: bool,
}

impl Tuning {
    pub(super) const DEFAULT: Tuning = Tuning {
        steps: climber::CAFFEINE,
        initial_window_share: INITIAL_WINDOW_SHARE,
        climb: true,
        ghost_span: 0.5,
        ghost_step: 1,
        ghost_max_freq: 1,
        ghost_balance: true,
    };
}

#[derive(Debug)]
pub(crate) struct Policy {
    nodes: Nodes,
    window: List,
    probation: List,
    protected: List,
    sketch: Sketch,
    climber: Climber,
    /// Candidates the window dropped lately (rejected at admission).
    window_ghosts: Ghosts,
    /// Entries the main space dropped lately.
    main_ghosts: Ghosts,
    tuning: Tuning,
    /// Weight units the shard may hold.
    capacity: u64,
    /// The window's share of `capacity`, as the climber sets it.
    window_max: u64,
    /// The protected segment's share.
    protected_max: u64,
    /// Whether the cache has been half full (the climber only measures from
    /// then on: a filling cache's hit rate says nothing about its window).
    warm: bool,
    /// xorshift state for the warm-candidate admission.
    rng: u64,
}

impl Policy {
    /// A policy for a shard holding at most `capacity` weight units (>= 1).
    pub(crate) fn new(capacity: u64) -> Policy {
        Policy::with_tuning(capacity, Tuning::DEFAULT)
    }

    pub(super) fn with_tuning(capacity: u64, tuning: Tuning) -> Policy {
        let capacity = capacity.max(1);
        let window_max =
            (capacity - (capacity as f64 * (1.0 - tuning.initial_window_share)) as u64).max(1);
        let sketch = Sketch::new(capacity.min(INITIAL_SKETCH_ENTRIES));
        let climber = Climber::new(capacity, sketch.entries(), tuning.steps);
        let span = (tuning.ghost_span * sketch.entries() as f64) as u64;
        Policy {
            nodes: Nodes::new(),
            window: List::new(Queue::Window),
            probation: List::new(Queue::Probation),
            protected: List::new(Queue::Protected),
            sketch,
            climber,
            window_ghosts: Ghosts::new(span),
            main_ghosts: Ghosts::new(span),
            tuning,
            capacity,
            window_max,
            protected_max: ((capacity - window_max.min(capacity)) as f64 * PROTECTED_SHARE) as u64,
            warm: false,
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    pub(crate) fn on_insert(&mut self, frag: u32, weight: u32) -> u32 {
        let weight = weight.max(1);
        self.tick_ghosts();
        if self.tuning.ghost_span > 0.0 {
            let step = u64::from(weight) * self.tuning.ghost_step;
            let (windows, mains) = (
                self.window_ghosts.population().max(1),
                self.main_ghosts.population().max(1),
            );
            if self.window_ghosts.contains(frag)
                && self.sketch.frequency(frag) <= self.tuning.ghost_max_freq
            {
                let scale = if self.tuning.ghost_balance {
                    (mains / windows).max(1)
                } else {
                    1
                };
                self.grow_window(step * scale);
            } else if self.main_ghosts.contains(frag) {
                let scale = if self.tuning.ghost_balance {
                    (windows / mains).max(1)
                } else {
                    1
                };
                self.shrink_window(step * scale);
            }
        }
        let node = self.nodes.alloc(frag, weight, Queue::Window);
        self.window.push_back(&mut self.nodes, node);
        self.sketch.increment(frag);
        self.climber.record_miss();
        self.grow_sketch();
        self.maintain();
        node
    }

    pub(crate) fn on_hit(&mut self, node: u32, frag: u32) {
        self.tick_ghosts();
        self.sketch.increment(frag);
        self.climber.record_hit();
        if self.nodes.live(node).is_some_and(|live| live.frag == frag) {
            self.reorder(node);
        }
        self.maintain();
    }

    pub(crate) fn on_update(&mut self, node: u32, weight: u32) {
        let Some(live) = self.nodes.live(node) else {
            return;
        };
        let (frag, queue) = (live.frag, live.queue());
        let (list, nodes) = self.segment(queue);
        list.reweigh(nodes, node, weight.max(1));
        self.sketch.increment(frag);
        self.reorder(node);
        self.maintain();
    }

    pub(crate) fn on_remove(&mut self, node: u32) {
        if let Some(live) = self.nodes.live(node) {
            let queue = live.queue();
            self.unlink_and_free(queue, node);
        }
    }

    pub(crate) fn evict(&mut self) -> Option<Victim> {
        loop {
            if self.nodes.len() == 0 {
                return None;
            }
            if self.window.weight() > self.window_max {
                let candidate = self.window.head()?;
                let Some(victim) = self.probation.head().or(self.protected.head()) else {
                    // Nothing to duel: the main space is empty.
                    self.window.unlink(&mut self.nodes, candidate);
                    self.probation.push_back(&mut self.nodes, candidate);
                    continue;
                };
                if self.admit(candidate, victim) {
                    self.window.unlink(&mut self.nodes, candidate);
                    self.probation.push_back(&mut self.nodes, candidate);
                    return Some(self.evict_node(victim, false));
                }
                return Some(self.evict_node(candidate, true));
            }
            let victim = self
                .probation
                .head()
                .or(self.protected.head())
                .or(self.window.head())?;
            return Some(self.evict_node(victim, false));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.window.weight() + self.probation.weight() + self.protected.weight()
    }

    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.window.clear();
        self.probation.clear();
        self.protected.clear();
    }

    /// Bytes of policy memory per entry: its node (12 bytes; 16 once weights
    /// other than 1 are used) and its share of the sketch (8 to 16 bytes).
    pub(crate) const BYTES_PER_ENTRY: usize = 16 + 16;

    pub(crate) fn bytes_per_entry() -> usize {
        Self::BYTES_PER_ENTRY
    }

    /// The list of a live node's `queue`, with the arena its links are in.
    fn segment(&mut self, queue: Queue) -> (&mut List, &mut Nodes) {
        let list = match queue {
            Queue::Window => &mut self.window,
            Queue::Probation => &mut self.probation,
            Queue::Protected => &mut self.protected,
            Queue::Free => unreachable!("a free node is in no list"),
        };
        (list, &mut self.nodes)
    }

    /// An access to the live `node`: it moves to its segment's MRU end, or from
    /// probation to protected (demoting protected's LRU if that overflows).
    fn reorder(&mut self, node: u32) {
        match self.nodes.get(node).queue() {
            Queue::Window => self.window.move_to_back(&mut self.nodes, node),
            Queue::Probation => {
                self.probation.unlink(&mut self.nodes, node);
                self.protected.push_back(&mut self.nodes, node);
                self.demote_protected();
            }
            Queue::Protected => self.protected.move_to_back(&mut self.nodes, node),
            Queue::Free => {}
        }
    }

    fn demote_protected(&mut self) {
        while self.protected.weight() > self.protected_max {
            let Some(node) = self.protected.head() else {
                break;
            };
            self.protected.unlink(&mut self.nodes, node);
            self.probation.push_back(&mut self.nodes, node);
        }
    }

    fn unlink_and_free(&mut self, queue: Queue, node: u32) {
        if queue == Queue::Free {
            return;
        }
        let (list, nodes) = self.segment(queue);
        list.unlink(nodes, node);
        nodes.free(node);
    }

    fn evict_node(&mut self, node: u32, rejected: bool) -> Victim {
        let live = self.nodes.get(node);
        let (frag, queue) = (live.frag, live.queue());
        if self.tuning.ghost_span > 0.0 {
            match queue {
                Queue::Window => self.window_ghosts.insert(frag),
                _ => self.main_ghosts.insert(frag),
            }
        }
        self.unlink_and_free(queue, node);
        Victim {
            node,
            frag,
            rejected,
        }
    }

    /// TinyLFU's admission: the candidate displaces the victim if it is more
    /// frequent; a warm candidate that is not still wins one time in 128.
    fn admit(&mut self, candidate: u32, victim: u32) -> bool {
        let candidate_freq = self.sketch.frequency(self.nodes.get(candidate).frag);
        let victim_freq = self.sketch.frequency(self.nodes.get(victim).frag);
        if candidate_freq > victim_freq {
            return true;
        }
        if candidate_freq < WARM_CANDIDATE {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng & 127 == 0
    }

    fn grow_sketch(&mut self) {
        let len = self.nodes.len() as u64;
        if len > self.sketch.entries() {
            self.sketch.ensure_capacity((len * 2).min(self.capacity));
            self.climber.resize(self.sketch.entries());
        }
    }

    /// Work after each event: drain the window into a main space that has
    /// room; once warm, let the climber resize the window.
    fn maintain(&mut self) {
        if self.weight() <= self.capacity {
            while self.window.weight() > self.window_max {
                let Some(node) = self.window.head() else {
                    break;
                };
                self.window.unlink(&mut self.nodes, node);
                self.probation.push_back(&mut self.nodes, node);
            }
        }
        if !self.warm {
            if self.weight() * 2 >= self.capacity {
                self.warm = true;
                self.climber.restart_period();
            }
            return;
        }
        if !self.tuning.climb {
            return;
        }
        match self.climber.adjustment() {
            0 => {}
            grow if grow > 0 => self.grow_window(grow as u64),
            shrink => self.shrink_window(shrink.unsigned_abs()),
        }
    }

    fn tick_ghosts(&mut self) {
        if self.tuning.ghost_span > 0.0 {
            self.window_ghosts.tick();
            self.main_ghosts.tick();
        }
    }

    fn grow_window(&mut self, amount: u64) {
        let quota = amount.min(self.protected_max);
        self.protected_max -= quota;
        self.window_max += quota;
        self.demote_protected();
        for _ in 0..TRANSFER_LIMIT {
            let Some(node) = self.probation.head().or(self.protected.head()) else {
                break;
            };
            if self.window.weight() + u64::from(self.nodes.weight(node)) > self.window_max {
                break;
            }
            let queue = self.nodes.get(node).queue();
            let (list, nodes) = self.segment(queue);
            list.unlink(nodes, node);
            self.window.push_back(&mut self.nodes, node);
        }
    }

    fn shrink_window(&mut self, amount: u64) {
        let quota = amount.min(self.window_max.saturating_sub(1));
        self.window_max -= quota;
        self.protected_max += quota;
        for _ in 0..TRANSFER_LIMIT {
            if self.window.weight() <= self.window_max {
                break;
            }
            let Some(node) = self.window.head() else {
                break;
            };
            self.window.unlink(&mut self.nodes, node);
            self.probation.push_back(&mut self.nodes, node);
        }
    }
}
