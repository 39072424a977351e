//! The node arena: one node per live entry, addressed by a `u32` index that
//! the shard stores in the entry, with the free indices chained for reuse.
//!
//! A node is 12 bytes: the links of the doubly linked list it sits in (`prev`,
//! `next`, indices into this arena, [`NIL`] at either end), each with one tag
//! bit in its top bit (the two bits together name the node's [`Queue`]), and
//! the entry's hash fragment. Weights live apart, in a vector that stays empty
//! while every weight is 1 (a cache bounded by entries only pays nothing for
//! them) and is filled in, all ones, the first time another weight arrives.
//!
//! Invariants:
//! - every index below `nodes.len()` is either live (tag names a list) or on
//!   the free chain (tag [`Queue::Free`], chained through `next`), never both;
//! - `live` is the number of live nodes;
//! - `weights` is empty, or as long as `nodes`;
//! - an index handed out is below [`MAX_NODES`], so it fits the 31 bits a link
//!   has beside its tag bit.

/// The end of a list (or of the free chain).
pub(super) const NIL: u32 = LINK_MASK;

/// Indices are below this: a link keeps 31 bits beside its tag bit, and
/// [`NIL`] is the largest 31-bit value.
pub(super) const MAX_NODES: u32 = LINK_MASK;

const LINK_MASK: u32 = 0x7FFF_FFFF;
const TAG_BIT: u32 = 0x8000_0000;

/// Which list a node is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Queue {
    /// The admission window: new entries, in LRU order.
    Window = 0,
    /// The main space's probation segment: admitted, not yet hit there.
    Probation = 1,
    /// The main space's protected segment: hit while in probation.
    Protected = 2,
    /// Not a live node: on the free chain.
    Free = 3,
}

impl Queue {
    fn from_bits(bits: u32) -> Queue {
        match bits {
            0 => Queue::Window,
            1 => Queue::Probation,
            2 => Queue::Protected,
            _ => Queue::Free,
        }
    }
}

/// One entry's node: its two links (tag bits on top) and its hash fragment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node {
    prev: u32,
    next: u32,
    pub(super) frag: u32,
}

impl Node {
    pub(super) fn prev(&self) -> u32 {
        self.prev & LINK_MASK
    }

    pub(super) fn next(&self) -> u32 {
        self.next & LINK_MASK
    }

    pub(super) fn queue(&self) -> Queue {
        Queue::from_bits(((self.prev >> 31) << 1) | (self.next >> 31))
    }

    pub(super) fn set_prev(&mut self, prev: u32) {
        self.prev = (self.prev & TAG_BIT) | prev;
    }

    pub(super) fn set_next(&mut self, next: u32) {
        self.next = (self.next & TAG_BIT) | next;
    }

    pub(super) fn set_queue(&mut self, queue: Queue) {
        let bits = queue as u32;
        self.prev = (self.prev & LINK_MASK) | ((bits >> 1) << 31);
        self.next = (self.next & LINK_MASK) | ((bits & 1) << 31);
    }
}

/// The arena of nodes, with its free chain and the lazily kept weights.
#[derive(Debug, Default)]
pub(super) struct Nodes {
    nodes: Vec<Node>,
    weights: Vec<u32>,
    free: u32,
    live: usize,
    /// Nodes the arena is expected to need at most (the shard's capacity in
    /// entries, one over it while the shard evicts): growth stops there
    /// rather than overshoot by a quarter; past it, it grows by quarters.
    expected: usize,
}

impl Nodes {
    pub(super) fn new() -> Nodes {
        Nodes {
            nodes: Vec::new(),
            weights: Vec::new(),
            free: NIL,
            live: 0,
            expected: 0,
        }
    }

    /// Starts fetching node `index` (any value: out of range is harmless).
    #[inline]
    pub(super) fn prefetch(&self, index: u32) {
        crate::table::bucket::prefetch_line(self.nodes.as_ptr().wrapping_add(index as usize));
    }

    /// The arena will hold at most about `nodes` nodes: its growth steps stop
    /// there (they only size allocations; any number of nodes still fits).
    pub(super) fn expect_at_most(&mut self, nodes: usize) {
        self.expected = nodes;
    }

    /// A fresh node for `frag` and `weight`, in `queue`, unlinked (both links
    /// [`NIL`]): a freed index if there is one, else a new one.
    pub(super) fn alloc(&mut self, frag: u32, weight: u32, queue: Queue) -> u32 {
        let index = if self.free != NIL {
            let index = self.free;
            self.free = self.nodes[index as usize].next();
            index
        } else {
            let index = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&index| index < MAX_NODES)
                .expect("a shard holds fewer than 2^31 - 1 entries");
            if self.nodes.len() == self.nodes.capacity() {
                // Grow by a quarter, not double: the arena is most of the
                // policy's memory, charged per entry; and no further than
                // the expected bound while under it.
                let len = self.nodes.len();
                let mut step = (len / 4).max(16);
                if len < self.expected {
                    step = step.min(self.expected - len);
                }
                self.nodes.reserve_exact(step);
            }
            self.nodes.push(Node {
                prev: 0,
                next: 0,
                frag: 0,
            });
            if !self.weights.is_empty() {
                self.weights
                    .reserve_exact(self.nodes.capacity() - self.weights.len());
                self.weights.push(1);
            }
            index
        };
        let node = &mut self.nodes[index as usize];
        *node = Node {
            prev: NIL,
            next: NIL,
            frag,
        };
        node.set_queue(queue);
        self.live += 1;
        self.set_weight(index, weight);
        index
    }

    /// Returns `index` (live, already unlinked from its list) to the free chain.
    pub(super) fn free(&mut self, index: u32) {
        let free = self.free;
        let node = &mut self.nodes[index as usize];
        debug_assert_ne!(node.queue(), Queue::Free);
        node.set_prev(NIL);
        node.set_next(free);
        node.set_queue(Queue::Free);
        self.free = index;
        self.live -= 1;
    }

    /// The live node at `index`, or `None` for a free or out-of-range index.
    pub(super) fn live(&self, index: u32) -> Option<&Node> {
        self.nodes
            .get(index as usize)
            .filter(|node| node.queue() != Queue::Free)
    }

    pub(super) fn get(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    pub(super) fn get_mut(&mut self, index: u32) -> &mut Node {
        &mut self.nodes[index as usize]
    }

    pub(super) fn weight(&self, index: u32) -> u32 {
        self.weights.get(index as usize).copied().unwrap_or(1)
    }

    pub(super) fn set_weight(&mut self, index: u32, weight: u32) {
        if self.weights.is_empty() {
            if weight == 1 {
                return;
            }
            self.weights = Vec::with_capacity(self.nodes.capacity());
            self.weights.resize(self.nodes.len(), 1);
        }
        self.weights[index as usize] = weight;
    }

    /// Reserves room for `additional` more nodes, exactly.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.nodes.reserve_exact(additional);
    }

    /// Heap bytes the arena holds (allocated, not only used).
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests' accounting
    pub(super) fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.weights.capacity() * std::mem::size_of::<u32>()
    }

    /// Live nodes.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// Forgets every node (the allocations are kept for reuse).
    pub(super) fn clear(&mut self) {
        self.nodes.clear();
        self.weights.clear();
        self.free = NIL;
        self.live = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_12_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 12);
    }

    #[test]
    fn tags_and_links_do_not_disturb_each_other() {
        let mut nodes = Nodes::new();
        let index = nodes.alloc(7, 1, Queue::Window);
        for queue in [
            Queue::Window,
            Queue::Probation,
            Queue::Protected,
            Queue::Free,
        ] {
            let node = nodes.get_mut(index);
            node.set_queue(queue);
            node.set_prev(MAX_NODES - 1);
            node.set_next(NIL);
            assert_eq!(node.queue(), queue);
            assert_eq!(node.prev(), MAX_NODES - 1);
            assert_eq!(node.next(), NIL);
            node.set_prev(3);
            node.set_next(0);
            assert_eq!((node.queue(), node.prev(), node.next()), (queue, 3, 0));
            assert_eq!(node.frag, 7);
        }
    }

    #[test]
    fn freed_indices_are_reused_and_not_live() {
        let mut nodes = Nodes::new();
        let a = nodes.alloc(1, 1, Queue::Window);
        let b = nodes.alloc(2, 1, Queue::Probation);
        assert_eq!((a, b, nodes.len()), (0, 1, 2));
        nodes.free(a);
        assert!(nodes.live(a).is_none());
        assert_eq!(nodes.live(b).map(|n| n.frag), Some(2));
        assert!(nodes.live(99).is_none());
        assert_eq!(nodes.alloc(3, 1, Queue::Window), a);
        assert_eq!(nodes.alloc(4, 1, Queue::Window), 2);
        assert_eq!(nodes.len(), 3);
    }

    #[test]
    fn growth_stops_at_the_expected_bound_then_goes_by_quarters() {
        let mut nodes = Nodes::new();
        nodes.reserve(4097);
        nodes.expect_at_most(5001);
        for i in 0..5001 {
            nodes.alloc(i, 1, Queue::Window);
        }
        assert_eq!(nodes.nodes.capacity(), 5001, "no slack past the bound");
        nodes.alloc(5001, 1, Queue::Window);
        assert!(nodes.nodes.capacity() >= 5001 + 5001 / 4);
        assert_eq!(nodes.len(), 5002);
    }

    #[test]
    fn weights_are_kept_only_once_one_differs_from_one() {
        let mut nodes = Nodes::new();
        let a = nodes.alloc(1, 1, Queue::Window);
        assert!(nodes.weights.is_empty());
        let b = nodes.alloc(2, 5, Queue::Window);
        assert_eq!(nodes.weights.len(), 2);
        assert_eq!((nodes.weight(a), nodes.weight(b)), (1, 5));
        let c = nodes.alloc(3, 1, Queue::Window);
        assert_eq!((nodes.weight(c), nodes.weights.len()), (1, 3));
        nodes.free(b);
        assert_eq!(nodes.alloc(4, 9, Queue::Window), b);
        assert_eq!(nodes.weight(b), 9);
    }
}
