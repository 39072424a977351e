//! Ghosts: which keys the policy dropped recently, by fragment, in a pair of
//! small Bloom filters that age out what they hold after a span of requests.
//!
//! A miss on a key that was dropped moments ago says which side of the cache
//! was too small to keep it (ARC's adaptation signal): a candidate the window
//! pushed out and that came back within the span would have hit in a bigger
//! window; a main-space victim that came back would have hit in a bigger main
//! space. The span is short (half the capacity in requests, see the policy's
//! docs for the measurements), so a loop longer than the cache, whose keys all
//! come back but only after a full turn, gives no signal either way.
//!
//! Two generations of `bits` bits each (16 per key a generation can hold,
//! rounded up to a whole word; a probe is placed by multiply-shift, so the
//! size need not be a power of two), 8 probes per key: keys go into the
//! current one; every `span / 2` requests the older is cleared and becomes
//! current. A key is remembered for between `span / 2` and `span` requests; a
//! false positive only nudges the window by one step.

const PROBES: usize = 8;
/// Bits per key a generation may hold: about 0.07% false positives at 8
/// probes when full (4 probes: 0.23%, which cost Zipf 0.7 at 250 entries 1.9
/// points; the power-of-two rounding this size replaced gave 4 probes 0.05%
/// to 0.25% for 1.4 to 2.8 bytes per entry instead of 1.4).
const BITS_PER_KEY: usize = 16;

#[derive(Debug)]
pub(super) struct Ghosts {
    generations: [Vec<u64>; 2],
    /// Index of the generation keys go into.
    current: usize,
    /// Bits in one generation (a multiple of 64, at most 2^30).
    bits: u64,
    /// Requests per generation.
    period: u64,
    /// Requests seen in the current generation.
    requests: u64,
    /// Keys inserted into each generation.
    inserted: [u64; 2],
}

impl Ghosts {
    /// Ghosts remembering keys for up to `span` requests (at least 2).
    pub(super) fn new(span: u64) -> Ghosts {
        let period = (span / 2).max(1);
        let bits = (usize::try_from(period).unwrap_or(1 << 26).min(1 << 26) * BITS_PER_KEY)
            .next_multiple_of(64);
        Ghosts {
            generations: [vec![0; bits / 64], vec![0; bits / 64]],
            current: 0,
            bits: bits as u64,
            period,
            requests: 0,
            inserted: [0; 2],
        }
    }

    /// The bits `frag` sets: double hashing over a remix of the fragment.
    fn probes(&self, frag: u32) -> [u32; PROBES] {
        let hash = frag.wrapping_mul(0x9E37_79B1).rotate_left(15) ^ frag;
        // The probes are placed by their high bits: the step needs them too.
        let step = hash.wrapping_mul(0x85EB_CA77).rotate_left(16) | 1;
        let mut probes = [0; PROBES];
        for (i, probe) in probes.iter_mut().enumerate() {
            let spread = hash.wrapping_add((i as u32).wrapping_mul(step));
            // Scaled to [0, bits): below 2^30, so it fits the u32.
            *probe = ((u64::from(spread) * self.bits) >> 32) as u32;
        }
        probes
    }

    /// Remembers `frag`.
    pub(super) fn insert(&mut self, frag: u32) {
        self.inserted[self.current] += 1;
        for bit in self.probes(frag) {
            self.generations[self.current][(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// Whether `frag` was remembered in the span (or collides with one that was).
    pub(super) fn contains(&self, frag: u32) -> bool {
        let probes = self.probes(frag);
        self.generations.iter().any(|generation| {
            probes
                .iter()
                .all(|&bit| generation[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
        })
    }

    /// Counts one request, aging the filters at the end of a generation.
    pub(super) fn tick(&mut self) {
        self.requests += 1;
        if self.requests >= self.period {
            self.requests = 0;
            self.current ^= 1;
            self.generations[self.current].fill(0);
            self.inserted[self.current] = 0;
        }
    }

    /// Keys remembered (counting repeats and collisions).
    pub(super) fn population(&self) -> u64 {
        self.inserted[0] + self.inserted[1]
    }

    /// Bytes both generations take.
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests' accounting
    pub(super) fn bytes(&self) -> usize {
        self.generations.iter().map(|g| g.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_the_span_then_forgets() {
        let mut ghosts = Ghosts::new(100);
        ghosts.insert(7);
        assert!(ghosts.contains(7));
        for _ in 0..50 {
            ghosts.tick();
        }
        assert!(ghosts.contains(7), "still in the older generation");
        for _ in 0..50 {
            ghosts.tick();
        }
        assert!(!ghosts.contains(7), "forgotten after the span");
    }

    #[test]
    fn few_false_positives() {
        let mut ghosts = Ghosts::new(2000);
        for i in 0..1000u32 {
            ghosts.insert(i.wrapping_mul(0x2545_F491));
        }
        let false_positives = (1000..11_000u32)
            .filter(|i| ghosts.contains(i.wrapping_mul(0x2545_F491)))
            .count();
        assert!(false_positives < 50, "{false_positives} of 10000");
        assert_eq!(ghosts.bytes(), 2 * 2000, "16 bits per key, to a whole word");
    }
}
