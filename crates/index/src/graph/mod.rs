//! The HNSW graph, built by this crate (Malkov & Yashunin, "Efficient and robust approximate
//! nearest neighbor search using Hierarchical Navigable Small World graphs", Alg. 1–4).
//!
//! It replaced hnsw_rs (kept as a test reference, see [`crate::reference`]), which dropped the
//! farthest link when a neighbour list was full (stranding nodes and cutting the long links
//! between clusters that recall at 1M needs), allocated per visited node and kept its own copy
//! of every vector. Here:
//!
//! - **Links** are `u32` slot numbers: `2·m` per node on layer 0 in one flat array, `m` per
//!   upper layer in a per-node box; lists are packed and padded with [`NONE`].
//! - **Vectors** are not copied: construction reads the index's own f32 storage
//!   ([`Slots`](crate::slots::Slots)).
//! - **Insertion** (`insert.rs`) searches each layer with `ef_construction`, picks `m`
//!   neighbours with the paper's heuristic (Alg. 4) and adds the reverse links; a full list is
//!   re-selected with the same heuristic among its links and the new node, never just cut
//!   (as hnswlib does).
//! - **Concurrency**: inserts run in parallel (rayon). Each node has a lock held while its
//!   lists are rewritten; searches during construction read links as relaxed atomics without
//!   locking (they may see a list mid-update, which only changes the route, never reads out of
//!   bounds: every stored value is a valid slot or [`NONE`]). An insert that raises the top
//!   level holds a global lock throughout, as hnswlib does.
//! - **Levels** are drawn as `⌊-ln(u) / ln(m)⌋` from a hash of the slot, so a graph's shape does
//!   not depend on thread scheduling.
//!
//! Node storage grows under `&mut` ([`Graph::grow`], called while the index holds its write
//! lock), links are written under `&self`.

mod insert;
mod io;

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use parking_lot::{Mutex, RwLock};

use crate::config::IndexConfig;
use crate::flat::{Links, NodeVisitor};

/// An empty link slot.
pub(crate) const NONE: u32 = u32::MAX;
/// Highest level a node may get (a level above 15 has probability `m^-16`).
const MAX_LEVEL: usize = 15;
/// Seed of the level hash.
const LEVEL_SEED: u64 = 0x5851_F42D_4C95_7F2D;

pub(crate) struct Graph {
    m: usize,
    m0: usize,
    ef_construction: usize,
    /// `1 / ln(m)`.
    level_mult: f64,
    /// Layer-0 links: `m0` per node.
    layer0: Vec<AtomicU32>,
    nodes: Vec<Node>,
    entry: RwLock<Entry>,
    /// Held for the whole of an insert that raises the top level.
    top: Mutex<()>,
}

struct Node {
    lock: Mutex<()>,
    level: u8,
    /// Links on layers `1..=level`, `m` per layer.
    upper: Box<[AtomicU32]>,
}

/// Where searches and inserts start: the node on the top layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    slot: u32,
    level: usize,
}

const EMPTY: Entry = Entry {
    slot: NONE,
    level: 0,
};

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.nodes.len())
            .field("m", &self.m)
            .field("entry", &*self.entry.read())
            .finish()
    }
}

impl Graph {
    /// An empty graph with room for `capacity` nodes.
    pub(crate) fn new(config: &IndexConfig, capacity: usize) -> Self {
        let m = config.m;
        let m0 = 2 * m;
        let mut g = Graph {
            m,
            m0,
            ef_construction: config.ef_construction,
            level_mult: 1.0 / (m as f64).ln(),
            layer0: Vec::new(),
            nodes: Vec::new(),
            entry: RwLock::new(EMPTY),
            top: Mutex::new(()),
        };
        g.layer0.reserve(capacity * m0);
        g.nodes.reserve(capacity);
        g
    }

    /// Adds unlinked nodes up to slot `len - 1` (each gets its level); they join the graph
    /// when [`insert`](Self::insert)ed.
    pub(crate) fn grow(&mut self, len: usize) {
        if len <= self.nodes.len() {
            return;
        }
        self.layer0.reserve((len - self.nodes.len()) * self.m0);
        self.nodes.reserve(len - self.nodes.len());
        for slot in self.nodes.len()..len {
            let level = self.level_of(slot);
            self.push_node(level);
        }
    }

    fn push_node(&mut self, level: usize) {
        self.layer0
            .extend(std::iter::repeat_with(|| AtomicU32::new(NONE)).take(self.m0));
        self.nodes.push(Node {
            lock: Mutex::new(()),
            level: level as u8,
            upper: std::iter::repeat_with(|| AtomicU32::new(NONE))
                .take(level * self.m)
                .collect(),
        });
    }

    /// The level of `slot`: `⌊-ln(u) / ln(m)⌋` with `u` uniform in (0, 1] from a hash.
    fn level_of(&self, slot: usize) -> usize {
        let mut z = (slot as u64).wrapping_add(LEVEL_SEED);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-u.ln() * self.level_mult) as usize).min(MAX_LEVEL)
    }

    /// Nodes (slots `0..len`, linked or not yet).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.layer0.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|n| n.upper.len() * 4).sum::<usize>()
    }

    /// The links of `slot` on `layer` (empty above its level).
    #[inline]
    fn links(&self, slot: usize, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            &self.layer0[slot * self.m0..(slot + 1) * self.m0]
        } else {
            self.nodes[slot]
                .upper
                .get((layer - 1) * self.m..layer * self.m)
                .unwrap_or(&[])
        }
    }

    /// The most links a list on `layer` holds.
    fn capacity(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }
}

impl Links for Graph {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn max_connections(&self) -> usize {
        self.m
    }

    fn for_each_node(&self, f: &mut NodeVisitor<'_>) {
        let mut links: Vec<Vec<u32>> = Vec::new();
        for (slot, node) in self.nodes.iter().enumerate() {
            let level = usize::from(node.level);
            links.resize_with(level + 1, Vec::new);
            for (l, out) in links.iter_mut().enumerate().take(level + 1) {
                out.clear();
                out.extend(
                    self.links(slot, l)
                        .iter()
                        .map(|a| a.load(Relaxed))
                        .take_while(|&s| s != NONE),
                );
            }
            f(slot, level, &links[..=level]);
        }
    }
}

#[cfg(test)]
mod tests;
