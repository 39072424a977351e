//! An LRU list threaded through the node arena by index: the head is the
//! least recently used node, the tail the most recently used. The list keeps
//! its length and the sum of its nodes' weights, so the policy can size its
//! segments without walking them.
//!
//! Invariants (checked by `List::check` in tests): walking `next` from
//! `head` visits exactly `len` nodes, all tagged with this list's queue, each
//! one's `prev` the one before (`NIL` for the head), ending at `tail`; their
//! weights sum to `weight`.

use super::nodes::{Nodes, Queue, NIL};

#[derive(Debug)]
pub(super) struct List {
    queue: Queue,
    head: u32,
    tail: u32,
    len: usize,
    weight: u64,
}

impl List {
    pub(super) fn new(queue: Queue) -> List {
        List {
            queue,
            head: NIL,
            tail: NIL,
            len: 0,
            weight: 0,
        }
    }

    /// The least recently used node, if any.
    pub(super) fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    #[cfg_attr(not(test), allow(dead_code))] // used by the tests' accounting
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn weight(&self) -> u64 {
        self.weight
    }

    /// Links the unlinked node `index` at the tail (most recently used) and
    /// tags it with this list's queue.
    pub(super) fn push_back(&mut self, nodes: &mut Nodes, index: u32) {
        let tail = self.tail;
        let node = nodes.get_mut(index);
        node.set_queue(self.queue);
        node.set_prev(tail);
        node.set_next(NIL);
        if tail == NIL {
            self.head = index;
        } else {
            nodes.get_mut(tail).set_next(index);
        }
        self.tail = index;
        self.len += 1;
        self.weight += u64::from(nodes.weight(index));
    }

    /// Unlinks `index`, which is in this list (its tag is left as it was).
    pub(super) fn unlink(&mut self, nodes: &mut Nodes, index: u32) {
        let node = nodes.get(index);
        debug_assert_eq!(node.queue(), self.queue);
        let (prev, next) = (node.prev(), node.next());
        if prev == NIL {
            self.head = next;
        } else {
            nodes.get_mut(prev).set_next(next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            nodes.get_mut(next).set_prev(prev);
        }
        let node = nodes.get_mut(index);
        node.set_prev(NIL);
        node.set_next(NIL);
        self.len -= 1;
        self.weight -= u64::from(nodes.weight(index));
    }

    /// Makes `index`, which is in this list, its most recently used node.
    pub(super) fn move_to_back(&mut self, nodes: &mut Nodes, index: u32) {
        if self.tail != index {
            self.unlink(nodes, index);
            self.push_back(nodes, index);
        }
    }

    /// Changes the weight of `index`, which is in this list, to `weight`.
    pub(super) fn reweigh(&mut self, nodes: &mut Nodes, index: u32, weight: u32) {
        self.weight -= u64::from(nodes.weight(index));
        nodes.set_weight(index, weight);
        self.weight += u64::from(weight);
    }

    /// Empties the list (the nodes themselves are the arena's to forget).
    pub(super) fn clear(&mut self) {
        *self = List::new(self.queue);
    }

    /// The nodes from head to tail, after checking every invariant above.
    #[cfg(test)]
    pub(super) fn check(&self, nodes: &Nodes) -> Vec<u32> {
        let mut order = Vec::new();
        let (mut prev, mut at, mut weight) = (NIL, self.head, 0u64);
        while at != NIL {
            let node = nodes.get(at);
            assert_eq!(node.queue(), self.queue, "node {at} in the wrong list");
            assert_eq!(node.prev(), prev, "node {at}'s prev link");
            weight += u64::from(nodes.weight(at));
            order.push(at);
            assert!(order.len() <= self.len, "list longer than its len");
            prev = at;
            at = node.next();
        }
        assert_eq!(self.tail, prev, "tail");
        assert_eq!(order.len(), self.len, "len");
        assert_eq!(weight, self.weight, "weight");
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_unlink_and_move_keep_order_and_weight() {
        let mut nodes = Nodes::new();
        let mut list = List::new(Queue::Probation);
        let ids: Vec<u32> = (0..5)
            .map(|i| {
                let id = nodes.alloc(i, i + 1, Queue::Window);
                list.push_back(&mut nodes, id);
                id
            })
            .collect();
        assert_eq!(list.check(&nodes), ids);
        assert_eq!(list.weight(), 15);
        list.move_to_back(&mut nodes, ids[0]);
        list.move_to_back(&mut nodes, ids[4]);
        assert_eq!(list.check(&nodes), [1, 2, 3, 0, 4]);
        list.unlink(&mut nodes, ids[3]);
        list.unlink(&mut nodes, ids[1]);
        assert_eq!(list.check(&nodes), [2, 0, 4]);
        assert_eq!(list.weight(), 3 + 1 + 5);
        list.reweigh(&mut nodes, ids[2], 10);
        assert_eq!(list.weight(), 10 + 1 + 5);
        assert_eq!(list.head(), Some(2));
        for id in [2, 0, 4] {
            list.unlink(&mut nodes, id);
        }
        assert_eq!(list.check(&nodes), []);
        assert_eq!((list.head(), list.weight(), list.len()), (None, 0, 0));
    }
}
