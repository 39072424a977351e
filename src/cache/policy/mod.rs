//! PLACEHOLDER (replaced by the W-TinyLFU policy from the `policy` branch): an
//! exact LRU over a node arena, with the interface the shard uses.

/// A node's fields.
#[derive(Clone, Copy)]
struct Node {
    frag: u32,
    weight: u32,
    prev: u32,
    next: u32,
    live: bool,
}

const NIL: u32 = u32::MAX;

/// The policy of one shard.
pub(crate) struct Policy {
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    len: usize,
    weight: u64,
}

/// An entry chosen for eviction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Victim {
    pub(crate) node: u32,
    pub(crate) frag: u32,
    pub(crate) rejected: bool,
}

impl Policy {
    pub(crate) fn new(_capacity: u64) -> Policy {
        Policy {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            weight: 0,
        }
    }

    /// Policy bytes per entry.
    pub(crate) fn bytes_per_entry() -> usize {
        std::mem::size_of::<Node>()
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        if prev == NIL {
            self.head = next
        } else {
            self.nodes[prev as usize].next = next
        }
        if next == NIL {
            self.tail = prev
        } else {
            self.nodes[next as usize].prev = prev
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = old;
        if old == NIL {
            self.tail = i
        } else {
            self.nodes[old as usize].prev = i
        }
        self.head = i;
    }

    pub(crate) fn on_insert(&mut self, frag: u32, weight: u32) -> u32 {
        let node = Node {
            frag,
            weight,
            prev: NIL,
            next: NIL,
            live: true,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.push_front(i);
        self.len += 1;
        self.weight += u64::from(weight);
        i
    }

    pub(crate) fn on_hit(&mut self, node: u32, frag: u32) {
        match self.nodes.get(node as usize) {
            Some(n) if n.live && n.frag == frag => {
                self.unlink(node);
                self.push_front(node);
            }
            _ => {}
        }
    }

    pub(crate) fn on_update(&mut self, node: u32, weight: u32) {
        let Some(n) = self.nodes.get(node as usize).copied() else {
            return;
        };
        if !n.live {
            return;
        }
        self.weight = self.weight - u64::from(n.weight) + u64::from(weight);
        self.nodes[node as usize].weight = weight;
        self.unlink(node);
        self.push_front(node);
    }

    pub(crate) fn on_remove(&mut self, node: u32) {
        let Some(n) = self.nodes.get(node as usize).copied() else {
            return;
        };
        if !n.live {
            return;
        }
        self.unlink(node);
        self.nodes[node as usize].live = false;
        self.free.push(node);
        self.len -= 1;
        self.weight -= u64::from(n.weight);
    }

    pub(crate) fn evict(&mut self) -> Option<Victim> {
        let i = self.tail;
        if i == NIL {
            return None;
        }
        let frag = self.nodes[i as usize].frag;
        self.on_remove(i);
        Some(Victim {
            node: i,
            frag,
            rejected: false,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
    #[allow(dead_code)]
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }
    pub(crate) fn clear(&mut self) {
        *self = Policy::new(0);
    }
}
