//! The eviction policy of one shard: W-TinyLFU whose admission window is
//! sized by ghosts (ARC's adaptation signal) instead of a hill climber.
//!
//! A pure data structure: the shard calls it under its write flag (`&mut
//! self`, no atomics), tells it of inserts, replayed read hits, updates and
//! removals by node index, and asks it for victims while it is over its bound.
//!
//! # The algorithm
//!
//! W-TinyLFU (Einziger, Friedman, Manes; as Caffeine and otter run it):
//! - a new entry enters the **window**, an LRU list holding `window_max` weight
//!   units (1% of the capacity at first);
//! - the **main** space is a segmented LRU: **probation** (admitted, not hit
//!   since) and **protected** (hit while in probation; at most 80% of the main
//!   space, its LRU demoted back to probation when it overflows). Protected
//!   is kept in CLOCK order rather than exact LRU: a hit there sets the
//!   node's bit in `referenced` instead of moving the node, and a marked head
//!   gets a second chance at the back instead of being demoted. Moving a node
//!   touches its two neighbours, two cache misses per hit once the policy
//!   outgrows the CPU's caches; the bitset (1 bit an entry) stays cached.
//!   Measured: the eviction-heavy benchmark's single thread 2.29 -> 2.65M
//!   operations/s, and every trace and capacity within 0.35 points of exact
//!   LRU order (glimpse 500 33.02 -> 32.67, OLTP 1500 44.64 -> 44.46; Zipf up
//!   0.05 to 0.1);
//! - when the cache is over its bound and the window over its share, the
//!   window's LRU entry (the *candidate*) duels probation's LRU (the
//!   *victim*): the candidate is admitted (moved to probation) and the victim
//!   evicted if the candidate's estimated frequency is higher, else the
//!   candidate is evicted ([`Victim::rejected`]); otherwise main's LRU goes;
//! - frequency comes from a count-min sketch of 4-bit counters (see
//!   [`sketch`]), one word (16 counters) per entry, halved every 10 accesses
//!   per entry so that it follows the recent past;
//! - a candidate that lost a duel with a frequency of 6 or more is admitted
//!   anyway one time in 4096 (Caffeine does it one time in 128 against hash
//!   flooding; here fragments come from the map's hash, seeded at random
//!   unless the host fixes the seed, so an attacker cannot aim collisions at
//!   the sketch, and 1/128 measured 4.4 points worse on the loop trace at 750
//!   entries: random admissions break the frequency ties a loop lives on).
//!
//! # Sizing the window: ghosts
//!
//! A fixed small window loses to LRU on recency traces (the Corda vault
//! trace: keys requested twice, 10 to 60 requests apart, then never: a new key
//! has frequency 1 and loses every duel); a large one collapses on loops and
//! scans. Caffeine's hill climber moves the window by the hit rate of sample
//! periods of 10 requests per entry; measured here (the replay tests), it is
//! too slow on the vault trace (24.4% at 2000 entries against LRU's 33.3%,
//! as otter's 24.8%), and a faster one (1 request per entry) fixes the vault
//! but costs 7 to 25 points on the loop trace: a hit rate sampled over short
//! periods is noise.
//!
//! Instead, the policy remembers what it dropped lately, in two [`ghost`]
//! filters (fragments only, Bloom filters aged by generations), for 0.35
//! requests per entry of capacity:
//! - a miss on a key the **window** dropped lately, with a sketch frequency of
//!   at most 1 (a key seen once before: recency, not popularity), grows the
//!   window by the key's weight: a bigger window would have kept it;
//! - a miss on a key the **main** space dropped lately shrinks the window:
//!   a bigger main space would have kept it.
//!
//! Each step is scaled as ARC scales its target: by the other ghost's
//! population over this one's (at least 1), so that the side that drops
//! fewer keys is not outvoted by the side that drops many. The frequency gate
//! keeps loops out of it: a loop longer than the cache sends back every key
//! it dropped, but those keys are frequent, and growing the window for them
//! would turn the cache into an LRU, which a loop defeats. The span is short
//! so that a key that comes back only after a full turn of the cache gives
//! no signal at all.
//!
//! Measured (hit ratio in percent at capacities 250 to 2000 entries, the
//! replay tests; `POLICY_VARIANTS=1` reprints every variant but those tried
//! against the glimpse shortfall, whose code was not kept):
//! - Caffeine as it is (climber, no ghosts, warm admission 1/128): means
//!   within 0.4 points of otter's on every trace; vault 24.4 to 30.4, mixed
//!   up to 2.8 under the best anchor, loop at 750 entries 68.4.
//! - its climber sampling 1 request per entry instead of 10: vault 32 to 33,
//!   but the loop loses 7.7 to 24.8 points, OLTP 0.9 to 2.3.
//! - ghosts without the frequency gate: loop 22% at 750 and 1000 entries (the
//!   window grows for loop keys, which come back just after a long stay in
//!   the window); with the gate but without the balance: OLTP 1.4 to 3.2
//!   under (the window side drops far more keys, so it wins every vote).
//! - gate and balance, with the climber still running: all within 1 point
//!   but loop 750 (-2.5), glimpse 1750 (-2.2), glimpse 250 (-1.4).
//! - the same without the climber, warm admission 1/4096 (this policy):
//!   all within 1 point of the best anchor but glimpse at 1750 (-2.2); mean
//!   above otter on every trace (OLTP 39.8 vs 38.9, glimpse 45.2 vs 44.8,
//!   loop 80.5 vs 79.2, vault 33.3 vs 27.6, mixed 63.7 vs 61.2). Putting back
//!   the climber costs 1 point on loop 750; warm admission 1/128, 4.4 there.
//! - the sketch at half a word per entry: OLTP -1.9, glimpse -2.4 at 250; at
//!   two words: +0.1 to +0.9 (not worth 8 more bytes per entry); aging at 5
//!   or 20 accesses per entry instead of 10: OLTP -1.0 or -1.8 somewhere.
//! - ghost filters of 8 bits and 3 probes per key: their false positives grow
//!   the window at random, Zipf 0.7 at 250 entries falls from 12.3 to 7.5.
//! - admitting ties between a candidate and a victim both seen once fixes
//!   glimpse at 1750 (57.4) but costs 6.5 points at 1000: not done. Glimpse
//!   at 1750 stays the one shortfall over a point (its 6,015 requests make
//!   2.2 points 133 misses: keys scanned once, refused, back 1,850 requests
//!   later).
//! - Tried next against that shortfall (all duels there are 1 against 1:
//!   the victims are keys scanned once during the fill, never hit since, as
//!   no aging happens in 6,015 requests), each as a change of this policy's
//!   figures (glimpse at 250 to 2000 unless said; measured in the replay
//!   tests, the code not kept):
//!   - a tie (both seen at most once) admitted when the victim was last
//!     touched over `a` requests per entry ago (a per-node stamp): `a` = 0.5
//!     or 1: 1750 +1.8 (57.4) but 1000 -7.5, 1250 -3.3, 750 -2.3; 1.5: 1250
//!     -5.1, 1000 -2.2; 2: 1000 -2.2, nothing at 1750; 3: nothing at 1750
//!     (the victims are younger than 5,250 requests). Any equal
//!     frequencies instead of at most 1: 250 -13.6, mixed up to -54.6;
//!   - the victim older than the oldest age (or the 99.9th to 97th
//!     percentile) at which a hit was seen, from a histogram of hit ages:
//!     1750 +1.8, 1500 +0.5, 1000 -4.2, 1250 -3.3; with a margin of 1.25 or
//!     1.5 over that age: 1250 -5.1;
//!   - a tie admitted while protected is under its quota (by 0 to 10% of
//!     the capacity; at 1750 it holds 1146 of 1385): 1000 -7.5 (it has room
//!     there too, at times); with frequencies up to 2: -16.8; combined with
//!     a victim age over 1.5 to 2 requests per entry: 1000 -2.2;
//!   - the sketch's first aging after 1, 2, 3 or 4 requests per entry
//!     instead of 10: 1750 +1.8 at 1, with 1000 -7.5 and 250 -5.4; at 2, 1500
//!     +3.1 but 250 -4.1; at 3 or 4, nothing at 1750;
//!   - ARC-style feedback on ties (a probability of admitting a tie, raised
//!     by a miss on a candidate refused on a tie, lowered by a hit on a
//!     victim kept on one, both remembered by ghosts over 1.5 or 2.5
//!     requests per entry): nothing on glimpse, since the first duel comes at
//!     request 3,315 and the refused keys 1,850 requests later, too late to
//!     matter; Zipf up to -1.5 and OLTP up to -1.0. Started at "admit every
//!     tie" and lowered also by a miss on a victim evicted on a tie (ghosts
//!     over 1.5 to 4 requests per entry): 1750 +1.8 but 1000 -7.4, 1250
//!     -4.8: at 1000 the evicted victims do come back and vote, at request
//!     2,857, after the churn of requests 1,829 to 2,848 has cost the hits;
//!   - the closest: a tie admitted when the victim was touched after the
//!     sketch's last halving (so its 1 means seen once, not a decayed count)
//!     and is older than twice the 75th percentile of the ages at which hits
//!     came: glimpse 1000 +0.6, 1250 +1.6, 1500 +1.5, 1750 +1.7 (57.3, 0.5
//!     under theine), but 250 -0.25 (14.8, 1.03 under otter), 750 -1.0,
//!     2000 -0.6 (the 33 keys 1058..1091 come back after 4,280 requests),
//!     Zipf 0.7 at 250 -0.7, the rest within 0.25. Twice the
//!     median instead: 1250 -4.7; 2.5 times the 75th: 1750 only +0.4;
//!     1.75 times: 750 -1.9; with the protected-room condition added: the
//!     same. Over the 0.3-point budget a change may cost elsewhere, so not
//!     kept: the choice at 1750 turns on reuse distances of 2,200 to 2,700
//!     requests in one 6,015-request trace, and any threshold that catches
//!     them evicts keys at 750 and 2000 that return later still.
//!   - so none is kept: the refused keys that would pay at 1750 (the 1,289
//!     reused keys fit there, not at 1250) look the same at 1000 and 1250 by
//!     every signal available before they return: victim age, protected
//!     room, hit-age tail. A doorkeeper was not tried for it: it makes both
//!     sides of a 1-against-1 tie 0-against-0.
//!
//! # Memory
//!
//! Per entry: its node, 12 bytes (two 31-bit links with the segment tag in
//! their top bits, and the fragment; 16 once a weight other than 1 is seen,
//! see [`nodes`]); its share of the sketch, 8 bytes when the shard's entry
//! capacity is a power of two, up to 16 just above one; of the ghosts, 1.4
//! bytes (2 filters x 2 generations x 16 bits per key a generation holds,
//! sized exactly), up to 2.8 while a byte-bounded shard's sketch is sized
//! for up to twice its entries. The arena grows by a quarter at a time, but
//! no further than the capacity plus one while under it, so a count-bounded
//! shard has no slack (a byte-bounded one at most 25%). Measured on full
//! count-bounded policies (`memory_per_entry_is_within_its_bound`, which
//! prints the breakdown): 21.4 bytes per entry at 1024 and 4096 entries
//! (12 node, 8 sketch, 1.4 ghosts), 24.3 at 1500, 26.5 at 5000 and 20,000
//! (the sketch 13.1 there); before the exact ghosts and the bounded arena
//! growth: 22.0, 25.7, 27.0 and 29.4 (nodes 14.6 and ghosts 1.6 at 20,000,
//! ghosts 2.7 at 1500). [`Policy::footprint`] is the exact figure;
//! [`Policy::BYTES_PER_ENTRY`] (39) a bound for shards of 1024 entries and
//! more, weights and a byte-bounded shard's slack included.
//!
//! The sketch is the rest, and its rounding up buys hit ratio: sized to the
//! entries exactly (blocks counted by multiply-shift instead of a power of
//! two, 8 bytes per entry everywhere): glimpse at 750 entries -1.1, 725
//! -1.1, OLTP at 1200 to 1300 -0.2 to -0.3; to the next eighth of a power of
//! two (at most 14% over): glimpse 750 -0.7, OLTP 1200 and 1300 -0.3, Zipf
//! at 5000 and 10,000 entries -0.3 (against 1.6 words per entry there). A
//! conservative update (raise only the least counters), which makes a
//! smaller sketch as exact, costs far more: loop at 250 entries 10.6
//! instead of 23.3, glimpse at 250 10.0 instead of 15.1 (the loop's keys
//! all tie then, and ties refuse). Not done.
//!
//! # Invariants
//!
//! - every live node is in exactly one of `window`, `probation`, `protected`,
//!   tagged with it; every other index below the arena's length is free;
//! - `len()` is the number of live nodes and `weight()` the sum of their
//!   weights (the three lists' weights);
//! - `window_max + protected_max <= capacity` (the capacity in effect,
//!   at most the configured one), `window_max >= 1`;
//! - `protected.weight() <= protected_max` after every call;
//! - a node handed out stays valid until `evict` returns it, `on_remove`
//!   frees it, or `clear`: then its index may be handed out again. Calls
//!   naming a free or out-of-range node, or (for `on_hit`) one whose fragment
//!   differs, touch no list.

mod climber;
mod ghost;
mod list;
mod nodes;
mod sketch;

#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod tests;

use climber::{Climber, Steps};
use ghost::Ghosts;
use list::List;
use nodes::{Nodes, Queue};
use sketch::Sketch;

/// Share of the capacity the window starts with (Caffeine: 1%).
const INITIAL_WINDOW_SHARE: f64 = 0.01;
/// Share of the main space the protected segment may fill (Caffeine: 80%).
const PROTECTED_SHARE: f64 = 0.80;
/// A candidate at least this frequent that lost its duel may still be
/// admitted, one time in [`WARM_ODDS`] + 1.
const WARM_CANDIDATE: u8 = 6;
/// The xorshift bits that must be zero for that (4095: one time in 4096).
const WARM_ODDS: u64 = 4095;
/// How long ghosts are remembered, in requests per entry of capacity.
const GHOST_SPAN: f64 = 0.35;
/// A window ghost counts only for a key at most this frequent.
const GHOST_MAX_FREQUENCY: u8 = 1;
/// Nodes moved between segments per window adjustment, at most.
const TRANSFER_LIMIT: usize = 1000;
/// Entries the sketch (and the arena's first allocation) is sized for at
/// first, at most: it grows with the number of live entries, since a cache
/// bounded by bytes does not know how many entries it will hold.
const INITIAL_ENTRIES: u64 = 4096;

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
struct Tuning {
    /// The hill climber's constants, and whether it runs at all.
    steps: Steps,
    climb: bool,
    initial_window_share: f64,
    /// How long ghosts are remembered, in requests per entry (0: no ghosts).
    ghost_span: f64,
    /// Window change per ghost hit, in units of the missed entry's weight.
    ghost_step: u64,
    /// A window ghost hit counts only for a key at most this frequent.
    ghost_max_freq: u8,
    /// Whether a ghost hit's step is scaled by the other ghost's population
    /// over its own (ARC's balance).
    ghost_balance: bool,
    /// log2 of the sketch's words (16 counters) per entry.
    sketch_density: i32,
    /// A candidate at least this frequent that lost its duel may still be
    /// admitted, when the xorshift's low bits under `warm_mask` are zero.
    warm_threshold: u8,
    warm_mask: u64,
    /// The sketch ages every this many counted increments per entry.
    sample_per_entry: u64,
}

impl Tuning {
    const DEFAULT: Tuning = Tuning {
        steps: climber::CAFFEINE,
        initial_window_share: INITIAL_WINDOW_SHARE,
        climb: false,
        ghost_span: GHOST_SPAN,
        ghost_step: 1,
        ghost_max_freq: GHOST_MAX_FREQUENCY,
        ghost_balance: true,
        sketch_density: 0,
        warm_threshold: WARM_CANDIDATE,
        warm_mask: WARM_ODDS,
        sample_per_entry: 10,
    };
}

/// One shard's eviction policy (see the module docs).
#[derive(Debug)]
pub(crate) struct Policy {
    /// The nodes, one per live entry, and the free indices.
    nodes: Nodes,
    /// New entries, LRU first.
    window: List,
    /// Main space, admitted and not hit since, LRU first: victims come from here.
    probation: List,
    /// Main space, hit while in probation, LRU first.
    protected: List,
    /// Recent access frequencies, by fragment.
    sketch: Sketch,
    /// Caffeine's hill climber, run only when the tuning says so (the tests'
    /// reference; the cache sizes the window by ghosts).
    climber: Option<Climber>,
    /// Fragments of candidates the window dropped lately.
    window_ghosts: Ghosts,
    /// Fragments of entries the main space dropped lately.
    main_ghosts: Ghosts,
    tuning: Tuning,
    /// Weight units the shard may hold, as configured.
    configured: u64,
    /// Weight units the shard holds before it evicts, as far as the policy
    /// can tell: `configured`, or less when another bound of the shard's
    /// binds first (see [`Policy::follow_the_shards_bound`]). The segments
    /// are sized as shares of this.
    capacity: u64,
    /// Weight the last insert or update added (what pushed the shard over).
    last_growth: u64,
    /// Whether the last call was `evict` (the next is not the first of its
    /// burst).
    evicting: bool,
    /// The window's share of `capacity`, as the ghosts move it.
    window_max: u64,
    /// The protected segment's share (80% of what the window leaves).
    protected_max: u64,
    /// Whether the cache has been half full (the climber measures from then
    /// on: a filling cache's hit rate says nothing about its window).
    warm: bool,
    /// xorshift64 state for the warm-candidate admission (fixed seed: the
    /// policy is deterministic, and the odds are too low to aim at).
    rng: u64,
    /// One bit per node: hit while protected since it was last placed at the
    /// protected segment's back. A protected hit sets the bit instead of
    /// moving the node (CLOCK's second chance): moving touches the node's two
    /// neighbours, cache misses once the policy outgrows the CPU's caches,
    /// while the bitset (1 bit an entry) stays cached. Demotion gives a
    /// marked head a second chance at the back instead.
    referenced: Vec<u64>,
}

impl Policy {
    /// A policy for one shard that may hold `capacity` weight units (entries
    /// when every weight is 1, bytes otherwise); 0 is taken as 1.
    #[cfg(test)]
    pub(crate) fn new(capacity: u64) -> Policy {
        Policy::with_tuning(capacity, capacity, Tuning::DEFAULT)
    }

    /// [`Policy::new`] for a shard that holds at most `most_entries` entries
    /// whatever their weights (a byte bound over the smallest entry's charge):
    /// its first allocations are sized for no more. A byte capacity read as
    /// entries had given each shard of a byte-bounded cache nodes and a
    /// sketch for 4,096 entries up front, 46 KB, even when its share of the
    /// bound held 170 (3 GB for an empty cache of 65,536 shards).
    pub(crate) fn with_most_entries(capacity: u64, most_entries: u64) -> Policy {
        Policy::with_tuning(capacity, most_entries, Tuning::DEFAULT)
    }

    /// [`Policy::new`] with other knobs (the replay tests' variants).
    fn with_tuning(capacity: u64, most_entries: u64, tuning: Tuning) -> Policy {
        let capacity = capacity.max(1);
        let window_max =
            (capacity - (capacity as f64 * (1.0 - tuning.initial_window_share)) as u64).max(1);
        let entries = capacity.min(most_entries.max(1)).min(INITIAL_ENTRIES);
        let sketch = Sketch::with_period(entries, tuning.sketch_density, tuning.sample_per_entry);
        let climber = tuning
            .climb
            .then(|| Climber::new(capacity, entries, tuning.steps));
        let span = (tuning.ghost_span * entries as f64) as u64;
        let mut nodes = Nodes::new();
        // The shard inserts before it evicts: one node over the capacity.
        nodes.reserve(entries as usize + 1);
        // While every weight is 1 the capacity is in entries, and the shard
        // holds one over it at most; a byte capacity bounds entries too.
        nodes.expect_at_most(usize::try_from(capacity).map_or(usize::MAX, |c| c.saturating_add(1)));
        Policy {
            nodes,
            window: List::new(Queue::Window),
            probation: List::new(Queue::Probation),
            protected: List::new(Queue::Protected),
            sketch,
            climber,
            window_ghosts: Ghosts::new(span),
            main_ghosts: Ghosts::new(span),
            tuning,
            configured: capacity,
            capacity,
            last_growth: 0,
            evicting: false,
            window_max,
            protected_max: ((capacity - window_max.min(capacity)) as f64 * PROTECTED_SHARE) as u64,
            warm: false,
            rng: 0x2545_F491_4F6C_DD1D,
            referenced: Vec::new(),
        }
    }

    /// Marks `node` as hit while protected.
    fn mark(&mut self, node: u32) {
        let (word, bit) = (node as usize / 64, node % 64);
        if word >= self.referenced.len() {
            self.referenced.resize(word + 1, 0);
        }
        self.referenced[word] |= 1 << bit;
    }

    /// Whether `node` was marked, clearing the mark.
    fn take_mark(&mut self, node: u32) -> bool {
        let (word, bit) = (node as usize / 64, node % 64);
        match self.referenced.get_mut(word) {
            Some(bits) if *bits & (1 << bit) != 0 => {
                *bits &= !(1 << bit);
                true
            }
            _ => false,
        }
    }

    /// A new entry (a miss that was filled) with hash fragment `frag` (the
    /// low 32 bits of the key's hash) and `weight` (0 is taken as 1): returns
    /// its node index (below 2^31), for the shard to keep in the entry. An
    /// access for the sketch; a ghost hit moves the window.
    ///
    /// # Panics
    /// If the shard already holds 2^31 - 1 entries.
    pub(crate) fn on_insert(&mut self, frag: u32, weight: u32) -> u32 {
        let weight = weight.max(1);
        self.tick_ghosts();
        self.follow_ghosts(frag, weight);
        let node = self.nodes.alloc(frag, weight, Queue::Window);
        self.window.push_back(&mut self.nodes, node);
        self.last_growth = u64::from(weight);
        self.evicting = false;
        self.sketch.increment(frag);
        if let Some(climber) = &mut self.climber {
            climber.record_miss();
        }
        self.grow_sketch();
        self.maintain();
        node
    }

    /// Starts fetching what [`Policy::on_hit`] of (`node`, `frag`) will touch
    /// first (the node and its sketch block), so that the replay of a batch of
    /// hits overlaps their cache misses. Any pair is harmless.
    #[inline]
    pub(crate) fn prefetch(&self, node: u32, frag: u32) {
        self.nodes.prefetch(node);
        self.sketch.prefetch(frag);
    }

    /// A read hit on `node` for a key whose fragment is `frag`, replayed from
    /// a reader's buffer (lossy, possibly late). The sketch counts `frag`
    /// whatever `node` is; the node moves only if it is live and still has
    /// that fragment (it may have been freed or reused since). Never panics,
    /// whatever the pair.
    pub(crate) fn on_hit(&mut self, node: u32, frag: u32) {
        self.last_growth = 0;
        self.evicting = false;
        self.tick_ghosts();
        self.sketch.increment(frag);
        if let Some(climber) = &mut self.climber {
            climber.record_hit();
        }
        if self.nodes.live(node).is_some_and(|live| live.frag == frag) {
            self.reorder(node);
        }
        self.maintain();
    }

    /// The value of `node`'s entry was replaced, now weighing `weight` (0 is
    /// taken as 1): an access. A free or out-of-range `node` is ignored.
    pub(crate) fn on_update(&mut self, node: u32, weight: u32) {
        let Some(live) = self.nodes.live(node) else {
            return;
        };
        let (frag, queue) = (live.frag, live.queue());
        let old = self.nodes.weight(node);
        let (list, nodes) = self.segment(queue);
        list.reweigh(nodes, node, weight.max(1));
        self.last_growth = u64::from(weight.max(1).saturating_sub(old));
        self.evicting = false;
        self.sketch.increment(frag);
        self.reorder(node);
        // A protected node that grew may overflow its segment.
        self.demote_protected();
        self.maintain();
    }

    /// The map removed `node`'s entry (delete, expiry): the node is freed for
    /// reuse. A free or out-of-range `node` is ignored.
    pub(crate) fn on_remove(&mut self, node: u32) {
        self.last_growth = 0;
        self.evicting = false;
        if let Some(live) = self.nodes.live(node) {
            let queue = live.queue();
            self.unlink_and_free(queue, node);
        }
    }

    /// The next entry to evict, chosen by the policy, its node freed already;
    /// `None` only when no node is live. Called while the shard is over its
    /// bound, which may be a bound of its own (entries while the policy counts
    /// bytes): it always has a victim, whether or not `weight()` is over the
    /// capacity. Ghosts remember the victim.
    pub(crate) fn evict(&mut self) -> Option<Victim> {
        if !self.evicting {
            self.evicting = true;
            self.follow_the_shards_bound();
        }
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

    /// Live nodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The sum of the live nodes' weights.
    pub(crate) fn weight(&self) -> u64 {
        self.window.weight() + self.probation.weight() + self.protected.weight()
    }

    /// Forgets every node (all indices free; the next is 0 again). The sketch
    /// and ghosts keep their history: the keys that were popular before a
    /// clear are likely to be again.
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.window.clear();
        self.probation.clear();
        self.protected.clear();
        self.referenced.clear();
    }

    /// Bytes of policy memory per entry, at most, for a shard of 1024 entries
    /// or more: a node of 16 (12 while every weight is 1), less than 16 of
    /// sketch (8 when the entry capacity is a power of two), at most 2.8 of
    /// ghosts (1.4 in a count-bounded shard), and the arena's slack (none in
    /// a count-bounded shard, a quarter of the node at most otherwise).
    pub(crate) const BYTES_PER_ENTRY: usize = 16 + 4 + 16 + 3;

    /// [`Policy::BYTES_PER_ENTRY`].
    pub(crate) fn bytes_per_entry() -> usize {
        Self::BYTES_PER_ENTRY
    }

    /// Heap bytes the policy holds now, exactly (arena, sketch, ghosts).
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests' accounting
    pub(crate) fn footprint(&self) -> usize {
        self.nodes.bytes()
            + self.sketch.bytes()
            + self.window_ghosts.bytes()
            + self.main_ghosts.bytes()
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
                self.take_mark(node);
                self.protected.push_back(&mut self.nodes, node);
                self.demote_protected();
            }
            Queue::Protected => self.mark(node),
            Queue::Free => {}
        }
    }

    fn demote_protected(&mut self) {
        while self.protected.weight() > self.protected_max {
            let Some(node) = self.protected.head() else {
                break;
            };
            if self.take_mark(node) {
                // Hit since it reached the back: a second chance, at the back.
                // Each pass clears a mark, so the loop ends.
                self.protected.move_to_back(&mut self.nodes, node);
                continue;
            }
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
    /// frequent; a warm candidate that is not still wins, rarely.
    fn admit(&mut self, candidate: u32, victim: u32) -> bool {
        let candidate_freq = self.sketch.frequency(self.nodes.get(candidate).frag);
        let victim_freq = self.sketch.frequency(self.nodes.get(victim).frag);
        if candidate_freq > victim_freq {
            return true;
        }
        if candidate_freq < self.tuning.warm_threshold {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng & self.tuning.warm_mask == 0
    }

    /// The sketch (and the ghosts) follow the number of live entries, up to
    /// the capacity: sized for the next power of two of them (the counts
    /// start over, as Caffeine's do when its sketch grows).
    fn grow_sketch(&mut self) {
        let len = self.nodes.len() as u64;
        let entries = len.next_power_of_two().min(self.configured);
        if entries <= self.sketch.entries() {
            return;
        }
        self.sketch.ensure_capacity(entries);
        if let Some(climber) = &mut self.climber {
            climber.resize(entries);
        }
        let span = (self.tuning.ghost_span * entries as f64) as u64;
        self.window_ghosts = Ghosts::new(span);
        self.main_ghosts = Ghosts::new(span);
    }

    /// Work after each event: drain the window into a main space that has
    /// room; once warm, let the climber (if it runs) resize the window.
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
        let Some(climber) = &mut self.climber else {
            return;
        };
        if !self.warm {
            if self.window.weight() + self.probation.weight() + self.protected.weight()
                >= self.capacity / 2
            {
                self.warm = true;
                climber.restart_period();
            }
            return;
        }
        match climber.adjustment() {
            0 => {}
            grow if grow > 0 => self.grow_window(grow as u64),
            shrink => self.shrink_window(shrink.unsigned_abs()),
        }
    }

    /// At the first `evict` of a burst: the shard evicts because the last
    /// insert or update pushed it over a bound, so it held `weight() -
    /// last_growth` before, and that is its capacity in effect when the
    /// policy thinks it is within its own (the shard bounds entries as well
    /// as bytes, and the other bound binds), or when it holds more than the
    /// policy thought (that bound moved up, weights grew). Without this, a
    /// shard bound by entries under a loose byte bound would never see a
    /// duel: measured, the loop trace at 500 entries fell from 49% to 0%.
    fn follow_the_shards_bound(&mut self) {
        let weight = self.weight();
        let held = weight
            .saturating_sub(self.last_growth)
            .clamp(1, self.configured);
        if weight <= self.capacity || held > self.capacity {
            self.rescale(held);
        }
    }

    /// Makes `capacity` the capacity in effect, keeping the segments' shares.
    fn rescale(&mut self, capacity: u64) {
        if capacity == self.capacity {
            return;
        }
        let ratio = capacity as f64 / self.capacity as f64;
        self.window_max = ((self.window_max as f64 * ratio) as u64).clamp(1, capacity);
        self.protected_max =
            ((self.protected_max as f64 * ratio) as u64).min(capacity - self.window_max);
        self.capacity = capacity;
        self.demote_protected();
    }

    /// A miss on `frag`: if a ghost remembers it, move the window (see the
    /// module docs).
    fn follow_ghosts(&mut self, frag: u32, weight: u32) {
        if self.tuning.ghost_span <= 0.0 {
            return;
        }
        let step = u64::from(weight) * self.tuning.ghost_step;
        let windows = self.window_ghosts.population().max(1);
        let mains = self.main_ghosts.population().max(1);
        let balance = |ours: u64, theirs: u64| {
            if self.tuning.ghost_balance {
                (theirs / ours).max(1)
            } else {
                1
            }
        };
        if self.window_ghosts.contains(frag)
            && self.sketch.frequency(frag) <= self.tuning.ghost_max_freq
        {
            self.grow_window(step * balance(windows, mains));
        } else if self.main_ghosts.contains(frag) {
            self.shrink_window(step * balance(mains, windows));
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
