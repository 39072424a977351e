//! The frequency sketch: a count-min sketch of 4-bit counters that estimates
//! how often each key was accessed recently, the popularity TinyLFU's
//! admission compares (as Caffeine's `FrequencySketch` does it).
//!
//! The table is a power of two of 64-bit words, 16 counters each, grouped in
//! blocks of 8 words (one 64-byte cache line). A key's fragment, remixed,
//! picks one block and, in it, one counter in each of 4 word pairs: an access
//! touches one line, and the estimate is the least of the 4 counters (the
//! count-min rule: collisions only ever add). Counters saturate at 15.
//!
//! Aging: after `sample_size` (10 per entry the sketch is sized for) counted
//! increments, every counter is halved, so frequency is over a sliding
//! history and a key once popular stops being preferred once it is not (the
//! TinyLFU "reset"). `size` then restarts at half, less the rounding lost by
//! halving odd counters.
//!
//! Size: one word (16 counters) per entry, rounded up to a power of two
//! (8 to 16 bytes per entry), as Caffeine sizes it; see the module docs of
//! `policy` for what less cost in hit ratio.

/// Counters per word, and bits per counter.
const COUNTER_BITS: u32 = 4;
/// Words per block (a 64-byte line).
const BLOCK_WORDS: usize = 8;
/// Aging period, in counted increments per entry the sketch is sized for.
#[cfg_attr(not(test), allow(dead_code))] // used by the tests' accounting
const SAMPLE_PER_ENTRY: u64 = 10;
/// The low bit of every counter.
const ONE_MASK: u64 = 0x1111_1111_1111_1111;
/// Every counter's bits but its top bit (what is left after a halving shift).
const RESET_MASK: u64 = 0x7777_7777_7777_7777;

#[derive(Debug)]
pub(super) struct Sketch {
    table: Vec<u64>,
    /// `table.len() / BLOCK_WORDS - 1`: the block index mask.
    block_mask: u64,
    /// Entries the table is sized for.
    entries: u64,
    /// Counted increments since the last halving (an increment that found all
    /// its counters saturated is not counted).
    size: u64,
    /// `size` at which the counters are halved.
    sample_size: u64,
    /// log2 of the words per entry (0: one word, 16 counters, per entry).
    density: i32,
    sample_per_entry: u64,
}

impl Sketch {
    /// A sketch for `entries` entries (at least one), one word per entry.
    #[cfg(test)]
    pub(super) fn new(entries: u64) -> Sketch {
        Sketch::with_density(entries, 0)
    }

    /// A sketch for `entries` entries with 2^`density` words per entry.
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests' accounting
    pub(super) fn with_density(entries: u64, density: i32) -> Sketch {
        Sketch::with_period(entries, density, SAMPLE_PER_ENTRY)
    }

    /// ... aging every `sample_per_entry` counted increments per entry.
    pub(super) fn with_period(entries: u64, density: i32, sample_per_entry: u64) -> Sketch {
        let entries = entries.max(1);
        let scaled = if density >= 0 {
            entries << density
        } else {
            entries >> -density
        };
        let words = usize::try_from(scaled)
            .unwrap_or(usize::MAX >> 4)
            .min(usize::MAX >> 4)
            .next_power_of_two()
            .max(BLOCK_WORDS);
        Sketch {
            table: vec![0; words],
            block_mask: (words / BLOCK_WORDS - 1) as u64,
            entries,
            size: 0,
            sample_size: sample_per_entry.saturating_mul(entries),
            density,
            sample_per_entry,
        }
    }

    /// Entries the sketch is sized for.
    pub(super) fn entries(&self) -> u64 {
        self.entries
    }

    /// Counted increments one aging period holds.
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests' accounting
    pub(super) fn sample_size(&self) -> u64 {
        self.sample_size
    }

    /// Resizes for `entries` if that is more than the sketch is sized for; the
    /// counts start over (a bigger table spreads keys differently).
    pub(super) fn ensure_capacity(&mut self, entries: u64) {
        if entries > self.entries {
            *self = Sketch::with_period(entries, self.density, self.sample_per_entry);
        }
    }

    /// The 4 (word, shift) counter positions of `frag`.
    fn slots(&self, frag: u32) -> [(usize, u32); 4] {
        let hash = remix(frag);
        let block = ((hash >> 32) & self.block_mask) as usize * BLOCK_WORDS;
        let mut slots = [(0, 0); 4];
        for (i, slot) in slots.iter_mut().enumerate() {
            let byte = (hash >> (i * 8)) as u32 & 0xFF;
            let word = block + i * 2 + (byte & 1) as usize;
            *slot = (word, ((byte >> 1) & 15) * COUNTER_BITS);
        }
        slots
    }

    /// Starts fetching the block of `frag`'s counters.
    #[inline]
    pub(super) fn prefetch(&self, frag: u32) {
        let (word, _) = self.slots(frag)[0];
        crate::table::bucket::prefetch_line(self.table.as_ptr().wrapping_add(word));
    }

    /// The estimated recent frequency of `frag`, 0 to 15.
    pub(super) fn frequency(&self, frag: u32) -> u8 {
        self.slots(frag)
            .iter()
            .map(|&(word, shift)| ((self.table[word] >> shift) & 15) as u8)
            .min()
            .unwrap_or(0)
    }

    /// Counts one access to `frag`, halving every counter when an aging
    /// period is full.
    pub(super) fn increment(&mut self, frag: u32) {
        let mut added = false;
        for (word, shift) in self.slots(frag) {
            let counter = (self.table[word] >> shift) & 15;
            if counter < 15 {
                self.table[word] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.size += 1;
            if self.size >= self.sample_size {
                self.halve();
            }
        }
    }

    /// Halves every counter (the aging step).
    fn halve(&mut self) {
        let mut odd = 0u64;
        for word in &mut self.table {
            odd += u64::from((*word & ONE_MASK).count_ones());
            *word = (*word >> 1) & RESET_MASK;
        }
        self.size = self.size.saturating_sub(odd / 4) / 2;
    }

    /// Bytes the table takes.
    pub(super) fn bytes(&self) -> usize {
        self.table.len() * 8
    }
}

/// Mixes a 32-bit fragment into 64 well-spread bits (the fragment is a hash's
/// low bits, which the table also uses to place the entry: remixing keeps the
/// sketch's collisions independent of the table's).
fn remix(frag: u32) -> u64 {
    let mut x = u64::from(frag) ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_to_fifteen() {
        let mut sketch = Sketch::new(1024);
        for expected in 1..=20u8 {
            sketch.increment(42);
            assert_eq!(sketch.frequency(42), expected.min(15));
        }
        assert_eq!(sketch.frequency(43), 0);
    }

    #[test]
    fn estimates_never_undercount_and_rarely_overcount() {
        let mut sketch = Sketch::new(4096);
        // Key i is accessed i % 8 times: under the aging period.
        for i in 0..2000u32 {
            for _ in 0..i % 8 {
                sketch.increment(i.wrapping_mul(0x01000193));
            }
        }
        let mut over = 0;
        for i in 0..2000u32 {
            let estimate = sketch.frequency(i.wrapping_mul(0x01000193));
            assert!(u32::from(estimate) >= i % 8, "count-min never undercounts");
            over += u32::from(estimate) - i % 8;
        }
        assert!(over < 200, "overcount {over} over 2000 keys");
    }

    #[test]
    fn halves_after_the_sample_size() {
        let mut sketch = Sketch::new(16);
        assert_eq!(sketch.sample_size(), 160);
        for _ in 0..8 {
            sketch.increment(1);
        }
        assert_eq!(sketch.frequency(1), 8);
        // Fill the rest of the period with other keys: one halving.
        let mut key = 1000u32;
        while sketch.size != 0 && sketch.size < sketch.sample_size - 1 {
            key += 1;
            sketch.increment(key);
        }
        let before = sketch.frequency(1);
        assert!(before >= 8);
        let mut halvings = 0;
        let mut size = sketch.size;
        while halvings == 0 {
            key += 1;
            sketch.increment(key);
            if sketch.size < size {
                halvings += 1;
            }
            size = sketch.size;
        }
        assert_eq!(sketch.frequency(1), before / 2);
        assert!(sketch.size < sketch.sample_size / 2 + 1);
    }

    #[test]
    fn sized_a_word_per_entry_rounded_up() {
        assert_eq!(Sketch::new(1).bytes(), 64);
        assert_eq!(Sketch::new(1000).bytes(), 8 * 1024);
        assert_eq!(Sketch::new(1024).bytes(), 8 * 1024);
        let mut sketch = Sketch::new(100);
        sketch.increment(5);
        sketch.ensure_capacity(50);
        assert_eq!(sketch.frequency(5), 1, "no resize to a smaller size");
        sketch.ensure_capacity(5000);
        assert_eq!((sketch.entries(), sketch.frequency(5)), (5000, 0));
    }
}
