//! Insertion (the paper's Alg. 1), the layer search (Alg. 2) and the neighbour-selection
//! heuristic (Alg. 4), on the f32 vectors of the index's own storage.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::{Entry, Graph, NONE};
use crate::distance::{dot_kernel, prefetch_first, DotFn};
use crate::exact::Scored;
use crate::slots::Slots;

/// Per-thread buffers of one insert: nothing is allocated per visited node.
#[derive(Default)]
struct Scratch {
    /// Generation stamp per slot: `marks[s] == epoch` means visited in this search.
    marks: Vec<u32>,
    epoch: u32,
    candidates: BinaryHeap<Scored>,
    results: BinaryHeap<Reverse<Scored>>,
    fresh: Vec<u32>,
    found: Vec<Scored>,
    selected: Vec<Scored>,
    /// The neighbours chosen on each layer of the node being inserted.
    plans: Vec<Vec<Scored>>,
}

impl Scratch {
    fn reset_visited(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    #[inline]
    fn visit(&mut self, slot: u32) -> bool {
        let m = &mut self.marks[slot as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Reads a packed link list up to its first [`NONE`].
#[inline]
fn read(list: &[AtomicU32]) -> impl Iterator<Item = u32> + '_ {
    list.iter()
        .map(|a| a.load(Relaxed))
        .take_while(|&s| s != NONE)
}

/// Overwrites a list with `links` (at most its length), padding with [`NONE`].
fn write(list: &[AtomicU32], links: impl Iterator<Item = u32>) {
    let mut i = 0;
    for s in links.take(list.len()) {
        list[i].store(s, Relaxed);
        i += 1;
    }
    for a in &list[i..] {
        a.store(NONE, Relaxed);
    }
}

impl Graph {
    /// Links node `slot` (grown, not yet inserted) into the graph; its vector and those of all
    /// linked nodes are read from `slots`. Safe to call from several threads at once for
    /// different slots.
    pub(crate) fn insert(&self, slot: usize, slots: &Slots) {
        SCRATCH.with(|s| self.insert_with(slot, slots, &mut s.borrow_mut()));
    }

    /// Inserts `range` on the rayon pool.
    pub(crate) fn insert_parallel(&self, range: std::ops::Range<usize>, slots: &Slots) {
        use rayon::prelude::*;
        range
            .into_par_iter()
            .for_each(|slot| self.insert(slot, slots));
    }

    fn insert_with(&self, slot: usize, slots: &Slots, scratch: &mut Scratch) {
        let level = usize::from(self.nodes[slot].level);
        let q = slots.vector(slot);
        let dot = dot_kernel();
        let me = slot as u32;
        // An insert that may raise the top level (or start the graph) holds the global lock
        // throughout, so two such inserts never race for the entry point.
        let mut top = Some(self.top.lock());
        let entry = *self.entry.read();
        if entry.slot == NONE {
            *self.entry.write() = Entry { slot: me, level };
            return;
        }
        if level <= entry.level {
            top = None;
        }
        let mut cur = Scored {
            score: dot(q, slots.vector(entry.slot as usize)),
            slot: entry.slot as usize,
        };
        // Greedy descent through the layers above the node's own (Alg. 1, lines 5–7).
        for layer in (level + 1..=entry.level).rev() {
            cur = self.greedy(q, cur, layer, slots, dot);
        }
        // Search every layer first (top down, each from the best node found on the layer
        // above), then link bottom up: the node becomes reachable on a layer only once its
        // lists on every layer below are written. Linking top down let a concurrent insert
        // descend onto it and start its layer-0 search from a node with no layer-0 links yet
        // (found: that node alone), and the node's own later write then overwrote the reverse
        // link that insert had added: stranded nodes, on 2 threads only.
        let top_layer = level.min(entry.level);
        let mut plans = std::mem::take(&mut scratch.plans);
        plans.resize_with(top_layer + 1, Vec::new);
        for layer in (0..=top_layer).rev() {
            self.search_layer(q, cur, layer, self.ef_construction, slots, dot, scratch);
            cur = scratch.found[0];
            select(
                &scratch.found,
                self.capacity(layer),
                slots,
                dot,
                &mut plans[layer],
            );
        }
        for (layer, selected) in plans.iter().enumerate() {
            {
                let _guard = self.nodes[slot].lock.lock();
                write(
                    self.links(slot, layer),
                    selected.iter().map(|s| s.slot as u32),
                );
            }
            for nb in selected {
                self.link_back(nb.slot, me, nb.score, layer, slots, dot, scratch);
            }
        }
        scratch.plans = plans;
        if top.is_some() && level > entry.level {
            *self.entry.write() = Entry { slot: me, level };
        }
        drop(top);
    }

    /// Moves to the best neighbour on `layer` until none is better.
    fn greedy(
        &self,
        q: &[f32],
        mut cur: Scored,
        layer: usize,
        slots: &Slots,
        dot: DotFn,
    ) -> Scored {
        loop {
            let mut moved = false;
            for nb in read(self.links(cur.slot, layer)) {
                let s = dot(q, slots.vector(nb as usize));
                if s > cur.score {
                    cur = Scored {
                        score: s,
                        slot: nb as usize,
                    };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Beam search of `layer` from `start` with list width `ef` (Alg. 2); leaves the best `ef`
    /// nodes in `scratch.found`, best first.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        q: &[f32],
        start: Scored,
        layer: usize,
        ef: usize,
        slots: &Slots,
        dot: DotFn,
        scratch: &mut Scratch,
    ) {
        scratch.reset_visited(self.nodes.len());
        scratch.candidates.clear();
        scratch.results.clear();
        scratch.visit(start.slot as u32);
        scratch.candidates.push(start);
        scratch.results.push(Reverse(start));
        let mut fresh = std::mem::take(&mut scratch.fresh);
        while let Some(c) = scratch.candidates.pop() {
            let worst = scratch.results.peek().map_or(f32::MIN, |w| w.0.score);
            if c.score < worst && scratch.results.len() >= ef {
                break;
            }
            // The next candidate's list: its load was the walk's other stall.
            if let Some(next) = scratch.candidates.peek() {
                prefetch_first(self.links(next.slot, layer));
            }
            fresh.clear();
            for nb in read(self.links(c.slot, layer)) {
                if scratch.visit(nb) {
                    fresh.push(nb);
                }
            }
            // Prefetch only the first cache line of the next vector: the hardware prefetcher
            // streams the rest once the dot product reads it in order. Prefetching the whole
            // next row (24 lines at 384 dims) stalled on the line-fill buffers: perf put half
            // of the insert's own time on the instruction after that prefetch.
            if let Some(&first) = fresh.first() {
                prefetch_first(slots.vector(first as usize));
            }
            for (i, &nb) in fresh.iter().enumerate() {
                if let Some(&next) = fresh.get(i + 1) {
                    prefetch_first(slots.vector(next as usize));
                }
                let s = dot(q, slots.vector(nb as usize));
                let worst = scratch.results.peek().map_or(f32::MIN, |w| w.0.score);
                if scratch.results.len() < ef || s > worst {
                    let cand = Scored {
                        score: s,
                        slot: nb as usize,
                    };
                    scratch.candidates.push(cand);
                    scratch.results.push(Reverse(cand));
                    if scratch.results.len() > ef {
                        scratch.results.pop();
                    }
                }
            }
        }
        scratch.fresh = fresh;
        scratch.found.clear();
        scratch.found.extend(scratch.results.drain().map(|r| r.0));
        scratch.found.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Adds `new` (similarity `score` to `slot`) to `slot`'s list on `layer`; a full list is
    /// re-selected with the heuristic among its links and `new`.
    #[allow(clippy::too_many_arguments)]
    fn link_back(
        &self,
        slot: usize,
        new: u32,
        score: f32,
        layer: usize,
        slots: &Slots,
        dot: DotFn,
        scratch: &mut Scratch,
    ) {
        let _guard = self.nodes[slot].lock.lock();
        let list = self.links(slot, layer);
        if list.is_empty() {
            return; // not on this layer (cannot happen: links stay within a layer)
        }
        let mut len = 0;
        for s in read(list) {
            if s == new {
                return;
            }
            len += 1;
        }
        if len < list.len() {
            list[len].store(new, Relaxed);
            return;
        }
        let v = slots.vector(slot);
        let mut cands = std::mem::take(&mut scratch.found);
        cands.clear();
        cands.push(Scored {
            score,
            slot: new as usize,
        });
        cands.extend(read(list).map(|s| Scored {
            score: dot(v, slots.vector(s as usize)),
            slot: s as usize,
        }));
        cands.sort_unstable_by(|a, b| b.cmp(a));
        let mut selected = std::mem::take(&mut scratch.selected);
        select(&cands, list.len(), slots, dot, &mut selected);
        write(list, selected.iter().map(|s| s.slot as u32));
        scratch.found = cands;
        scratch.selected = selected;
    }
}

/// The neighbour-selection heuristic (Alg. 4, without extending or keeping pruned
/// candidates, as hnswlib): walking `cands` (scored against the base node, best first), keep
/// a candidate unless it is closer to one already kept than to the base node; stop at `max`.
/// Fewer than `max` candidates are all kept.
fn select(cands: &[Scored], max: usize, slots: &Slots, dot: DotFn, out: &mut Vec<Scored>) {
    out.clear();
    if cands.len() <= max {
        out.extend_from_slice(cands);
        return;
    }
    for &c in cands {
        if out.len() >= max {
            break;
        }
        let v = slots.vector(c.slot);
        if out.iter().all(|r| dot(v, slots.vector(r.slot)) <= c.score) {
            out.push(c);
        }
    }
}
