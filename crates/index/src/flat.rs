//! A read-optimised snapshot of the HNSW graph, and the search that walks it (saved with the
//! index and read back on open: `flat/io.rs`).
//!
//! The walk was written when hnsw_rs built the graph and searched it slowly (a `HashMap`
//! insert and two `Arc` allocations per visited node); the crate now builds the graph itself
//! ([`crate::graph`]) and still snapshots it for searches.
//! After bulk changes the index copies the graph's links into flat arrays of slot numbers
//! (`2·m` per node on layer 0: 12.8 MB for 100k nodes at m = 16) and 8-bit codes of the vectors
//! (see [`crate::quant`]), and searches those with a reusable per-thread visited table. The
//! walk ranks by the codes; its final candidates are rescored with the exact f32 vectors, so
//! returned scores are exact. Nodes added after the snapshot (the "tail") are scanned exactly
//! until the next refresh, so a snapshot never hides an entry.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::buf::Buf;
use crate::distance::{dot_kernel, prefetch};
use crate::exact::Scored;
use crate::huge;
use crate::quant::Codes;
use crate::repair::{self, Repair};
use crate::slots::Slots;

mod io;

const NONE: u32 = u32::MAX;
/// Searches start from the best nodes of the highest layer that has at least this many nodes,
/// rather than from hnsw_rs's single entry point: hnsw_rs prunes reverse links by distance
/// alone, which leaves its upper layers with few links between clusters, and on clustered data
/// the single greedy descent then sometimes settles in the wrong cluster, which no `ef`
/// recovers (measured at 1M: recall@10 capped at 0.983 at any `ef`; with seeds 0.993; scoring
/// the seeds costs a few hundred code dot products per query; see `docs/PERFORMANCE.md`).
const SEEDS: usize = 64;
/// The layer-0 search starts from where the greedy descents from this many best seeds end
/// (often the same node): at 1M, recall@10 0.9781 → 0.9808 at ef = 96 and 0.9928 → 0.9948 at
/// ef = 768 with 3 instead of 1, at no measurable cost; 8 gave nothing more. At 100k it costs
/// 5–10 % QPS for no recall, a price paid for the large collections.
const STARTS: usize = 3;

/// Upper-layer adjacency, keyed by slot with a multiplicative hash (SipHash showed up in
/// profiles of the greedy descent).
type SlotMap = HashMap<u32, Box<[u32]>, BuildHasherDefault<SlotHasher>>;

#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Receives `(slot, level, links)` for each node: see [`Links::for_each_node`].
pub(crate) type NodeVisitor<'a> = dyn FnMut(usize, usize, &[Vec<u32>]) + 'a;

/// A graph whose links a snapshot can copy: ours ([`crate::graph::Graph`]) or, in tests, the
/// hnsw_rs reference.
pub(crate) trait Links {
    /// Nodes: exactly slots `0..len`.
    fn len(&self) -> usize;
    /// `m`: links per node on the upper layers; layer 0 holds up to `2·m`.
    fn max_connections(&self) -> usize;
    /// Calls `f(slot, level, links)` for every node, `links[l]` its neighbours on layer `l`
    /// for `l` in `0..=level`.
    fn for_each_node(&self, f: &mut NodeVisitor<'_>);
}

#[derive(Debug)]
pub(crate) struct FlatGraph {
    /// Graph nodes covered (slots `0..nodes`).
    nodes: usize,
    degree0: usize,
    /// `degree0` neighbours per slot on layer 0, padded with `NONE`.
    layer0: Buf<u32>,
    /// Layers 1.. : neighbours of the nodes present on each layer.
    upper: Vec<SlotMap>,
    /// Where searches may start, each with its level (see [`SEEDS`]).
    seeds: Vec<(u32, usize)>,
    /// What the reachability repair did (see [`crate::repair`]).
    repair: Repair,
    /// 8-bit codes of the vectors of slots `0..nodes`, which the walk scores.
    codes: Codes,
}

impl FlatGraph {
    pub(crate) fn empty() -> Self {
        FlatGraph {
            nodes: 0,
            degree0: 0,
            layer0: Buf::default(),
            upper: Vec::new(),
            seeds: Vec::new(),
            repair: Repair::default(),
            codes: Codes::default(),
        }
    }

    /// Copies the links of `graph`, whose nodes must be exactly slots `0..graph.len()`, and
    /// codes those slots' vectors.
    pub(crate) fn snapshot(graph: &dyn Links, slots: &Slots) -> Self {
        let nodes = graph.len();
        if nodes == 0 {
            return FlatGraph::empty();
        }
        let degree0 = 2 * graph.max_connections() + repair::REPAIR_SLOTS;
        let mut layer0 = huge::filled(nodes * degree0, NONE);
        let mut upper: Vec<SlotMap> = Vec::new();
        let (mut entry, mut max_level) = (NONE, 0usize);
        // (level, slot) of every node above layer 0, for the seeds.
        let mut high: Vec<(usize, u32)> = Vec::new();
        graph.for_each_node(&mut |slot, level, links| {
            if slot >= nodes {
                return; // inserted concurrently: left to the tail scan
            }
            if entry == NONE || level > max_level {
                entry = slot as u32;
                max_level = level;
            }
            if level > 0 {
                high.push((level, slot as u32));
            }
            for (l, layer) in links.iter().enumerate().take(level + 1) {
                let ids = layer.iter().copied().filter(|&s| (s as usize) < nodes);
                if l == 0 {
                    for (dst, s) in layer0[slot * degree0..(slot + 1) * degree0]
                        .iter_mut()
                        .zip(ids)
                    {
                        *dst = s;
                    }
                } else {
                    if upper.len() < l {
                        upper.resize_with(l, SlotMap::default);
                    }
                    upper[l - 1].insert(slot as u32, ids.collect());
                }
            }
        });
        upper.truncate(max_level);
        // Every node of the highest layer that has at least SEEDS nodes (the entry point alone
        // in small graphs), each with its level.
        let seed_layer = (1..=upper.len())
            .rev()
            .find(|&l| upper[l - 1].len() >= SEEDS);
        let mut seeds: Vec<(u32, usize)> = match seed_layer {
            Some(l) => high
                .iter()
                .filter(|&&(level, _)| level >= l)
                .map(|&(level, slot)| (slot, level))
                .collect(),
            None => vec![(entry, max_level)],
        };
        seeds.sort_unstable();
        let roots: Vec<u32> = seeds.iter().map(|s| s.0).collect();
        let kernel = dot_kernel();
        let similarity =
            |a: u32, b: u32| kernel(slots.vector(a as usize), slots.vector(b as usize));
        let repair = repair::connect(&mut layer0, degree0, NONE, &roots, &similarity);
        let codes = Codes::build(slots.dims(), nodes, |slot| slots.vector(slot));
        FlatGraph {
            nodes,
            degree0,
            layer0: Buf::Heap(layer0),
            upper,
            seeds,
            repair,
            codes,
        }
    }

    /// Drops every link (tests: a walk that reaches nothing beyond its starts).
    #[cfg(test)]
    pub(crate) fn cut_links(&mut self) {
        let layer0 = self
            .layer0
            .heap_mut()
            .expect("a snapshot taken, not loaded");
        layer0.iter_mut().for_each(|s| *s = NONE);
        self.upper.clear();
        self.seeds.truncate(1);
        self.seeds[0].1 = 0;
    }

    /// Slots covered by the snapshot; slots from here on are the tail.
    pub(crate) fn nodes(&self) -> usize {
        self.nodes
    }

    /// What the reachability repair did when this snapshot was taken.
    pub(crate) fn repair(&self) -> Repair {
        self.repair
    }

    /// Mean number of layer-0 links per node.
    pub(crate) fn mean_degree(&self) -> f32 {
        if self.nodes == 0 {
            return 0.0;
        }
        let links = self.layer0.iter().filter(|&&s| s != NONE).count();
        links as f32 / self.nodes as f32
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.layer0.heap_bytes()
            + self.codes.heap_bytes()
            + self
                .upper
                .iter()
                .map(|m| m.len() * (48 + 4 * self.degree0 / 2))
                .sum::<usize>()
    }

    /// Best-first beam search (HNSW's search-layer) with candidate list `ef`, ranked by the
    /// codes; returns up to `ef` nodes that pass `admit`, rescored exactly, best first. Nodes
    /// failing `admit` still route the walk.
    ///
    /// `admit` may call back into the index, including another search: the walk holds no
    /// borrow of its per-thread scratch while `admit` runs (see [`Scratch::take`]).
    pub(crate) fn search(
        &self,
        slots: &Slots,
        q: &[f32],
        ef: usize,
        admit: &dyn Fn(usize) -> bool,
    ) -> Walk {
        if self.nodes == 0 {
            return Walk::default();
        }
        let codes = &self.codes;
        let qc = codes.query(q);
        let score = |slot: u32| codes.score(&qc, slot as usize);
        // The STARTS best seeds, each followed by a greedy descent through the layers below it.
        let mut best = [(f32::MIN, NONE, 0usize); STARTS];
        for &(s, level) in &self.seeds {
            let sc = score(s);
            if sc > best[STARTS - 1].0 {
                best[STARTS - 1] = (sc, s, level);
                best.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            }
        }
        let mut starts = [Scored {
            score: f32::MIN,
            slot: 0,
        }; STARTS];
        let mut n_starts = 0;
        for &(sc, s, level) in best.iter().filter(|b| b.1 != NONE) {
            let (mut ep, mut ep_score) = (s, sc);
            for layer in self.upper[..level].iter().rev() {
                loop {
                    let mut moved = false;
                    if let Some(links) = layer.get(&ep) {
                        for &nb in links.iter() {
                            let s = score(nb);
                            if s > ep_score {
                                (ep, ep_score, moved) = (nb, s, true);
                            }
                        }
                    }
                    if !moved {
                        break;
                    }
                }
            }
            starts[n_starts] = Scored {
                score: ep_score,
                slot: ep as usize,
            };
            n_starts += 1;
        }
        let mut scratch = Scratch::take();
        let found = {
            let Scratch { visited, fresh } = &mut scratch;
            visited.reset(self.nodes);
            // Every unvisited neighbour of one node: sized from the snapshot's degree (2·m plus
            // the repair slots), not a fixed count.
            fresh.resize(self.degree0, 0);
            let mut candidates: BinaryHeap<Scored> =
                BinaryHeap::with_capacity(ef.saturating_mul(4).min(self.nodes));
            let mut results: BinaryHeap<Reverse<Scored>> =
                BinaryHeap::with_capacity(ef.min(self.nodes) + 1);
            for &start in &starts[..n_starts] {
                if !visited.insert(start.slot as u32) {
                    continue;
                }
                candidates.push(start);
                if admit(start.slot) {
                    results.push(Reverse(start));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
            while let Some(c) = candidates.pop() {
                if results.len() >= ef && c.score < results.peek().map_or(f32::MIN, |w| w.0.score) {
                    break;
                }
                let links = &self.layer0[c.slot * self.degree0..(c.slot + 1) * self.degree0];
                // Collect the unvisited neighbours, prefetching the first line of each code row,
                // then score them while prefetching the whole of the next one (as hnswlib
                // does): the walk is bound by memory latency, and prefetching every
                // neighbour's whole row at once overflowed L1 (measured with f32 rows).
                let mut n_fresh = 0;
                for &nb in links {
                    if nb == NONE {
                        break;
                    }
                    if visited.insert(nb) {
                        prefetch(&codes.row(nb as usize)[..1]);
                        fresh[n_fresh] = nb;
                        n_fresh += 1;
                    }
                }
                for (i, &nb) in fresh[..n_fresh].iter().enumerate() {
                    if let Some(&next) = fresh[..n_fresh].get(i + 1) {
                        prefetch(codes.row(next as usize));
                    }
                    let s = score(nb);
                    let worst = results.peek().map_or(f32::MIN, |w| w.0.score);
                    if results.len() < ef || s > worst {
                        let cand = Scored {
                            score: s,
                            slot: nb as usize,
                        };
                        candidates.push(cand);
                        if admit(cand.slot) {
                            results.push(Reverse(cand));
                            if results.len() > ef {
                                results.pop();
                            }
                        }
                    }
                }
            }
            results.into_vec()
        };
        let visited = scratch.visited.count;
        scratch.put_back();
        // Rescore with the exact vectors: returned scores and their order are exact.
        for r in &found {
            prefetch(slots.vector(r.0.slot));
        }
        let kernel = dot_kernel();
        let mut out: Vec<Scored> = found
            .into_iter()
            .map(|Reverse(r)| Scored {
                score: kernel(q, slots.vector(r.slot)),
                slot: r.slot,
            })
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        Walk { hits: out, visited }
    }
}

/// What [`FlatGraph::search`] found.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Up to `ef` admitted nodes, rescored exactly, best first.
    pub(crate) hits: Vec<Scored>,
    /// Layer-0 nodes the walk scored.
    pub(crate) visited: usize,
}

/// Visited marks: a generation counter per slot, so clearing is O(1).
#[derive(Default)]
struct Visited {
    marks: Vec<u32>,
    epoch: u32,
    /// Slots marked in this search.
    count: usize,
}

impl Visited {
    fn reset(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.count = 0;
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }
    /// Marks `slot`; false if it was already marked in this search.
    #[inline]
    fn insert(&mut self, slot: u32) -> bool {
        let m = &mut self.marks[slot as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            self.count += 1;
            true
        }
    }
}

/// A walk's reusable buffers: the visited marks and the unvisited neighbours of one node.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    fresh: Vec<u32>,
}

impl Scratch {
    /// This thread's scratch, moved out of the thread-local for the walk (no `RefCell` borrow
    /// is held while the caller's filter runs, so a filter that searches again on this thread
    /// gets a fresh scratch instead of a "RefCell already borrowed" panic).
    fn take() -> Self {
        SCRATCH.with(Cell::take)
    }

    /// Returns the buffers for the next walk on this thread.
    fn put_back(self) {
        SCRATCH.with(|s| s.set(self));
    }
}

thread_local! {
    static SCRATCH: Cell<Scratch> = const {
        Cell::new(Scratch {
            visited: Visited {
                marks: Vec::new(),
                epoch: 0,
                count: 0,
            },
            fresh: Vec::new(),
        })
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repair::REPAIR_SLOTS;

    /// `n` distinct unit vectors of 8 dimensions and a snapshot in which every node links to
    /// the next `degree` nodes (whatever hnsw_rs would build), searched from node 0.
    fn full_snapshot(n: usize, degree: usize) -> (Slots, FlatGraph) {
        let dims = 8;
        let mut slots = Slots::new(dims);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..n {
            let mut v: Vec<f32> = (0..dims)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect();
            v[0] += 0.01; // never all zeros
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            slots.push(i as u64, &v);
        }
        let mut layer0 = vec![NONE; n * degree];
        for s in 0..n {
            for j in 0..degree {
                layer0[s * degree + j] = ((s + 1 + j) % n) as u32;
            }
        }
        let codes = Codes::build(dims, n, |slot| slots.vector(slot));
        let flat = FlatGraph {
            nodes: n,
            degree0: degree,
            layer0: Buf::Heap(layer0),
            upper: Vec::new(),
            seeds: vec![(0, 0)],
            repair: Repair::default(),
            codes,
        };
        (slots, flat)
    }

    /// The walk gathers a node's unvisited neighbours in a scratch buffer: it must hold a whole
    /// layer-0 list, `2·m` links plus the repair slots (258 at m = 127, 260 at m = 128, more
    /// if the limit on `m` is ever raised). A fixed 256-slot buffer overflowed there.
    #[test]
    fn the_walk_takes_nodes_with_more_than_256_links() {
        let n = 700;
        for degree in [2 * 127 + REPAIR_SLOTS, 2 * 128 + REPAIR_SLOTS, 400] {
            let (slots, flat) = full_snapshot(n, degree);
            let q = slots.vector(n / 2).to_vec();
            let walk = flat.search(&slots, &q, 10, &|_| true);
            assert!(
                walk.visited > degree,
                "degree {degree}: visited {}",
                walk.visited
            );
            assert_eq!(walk.hits.len(), 10, "degree {degree}");
            // Exact rescoring: the query's own vector ranks first.
            assert_eq!(walk.hits[0].slot, n / 2, "degree {degree}");
        }
    }

    /// The walk holds no borrow of its per-thread scratch while the filter runs: a filter that
    /// walks again on the same thread works (it used to panic "already borrowed").
    #[test]
    fn a_filter_may_walk_again() {
        let (slots, flat) = full_snapshot(300, 20);
        let q = slots.vector(7).to_vec();
        let plain = flat.search(&slots, &q, 10, &|_| true);
        let nested = flat.search(&slots, &q, 10, &|slot| {
            let inner = flat.search(&slots, slots.vector(slot), 5, &|_| true);
            !inner.hits.is_empty()
        });
        assert_eq!(
            nested.hits.iter().map(|h| h.slot).collect::<Vec<_>>(),
            plain.hits.iter().map(|h| h.slot).collect::<Vec<_>>()
        );
        assert_eq!(nested.visited, plain.visited);
    }
}
