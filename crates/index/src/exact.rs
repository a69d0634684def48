//! Exact (brute-force) top-k over the stored vectors.
//!
//! Used for small collections, for very selective filters, and as the fallback that guarantees
//! `k` results whenever `k` entries pass the filter.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::distance::dot;
use crate::slots::Slots;

/// A (score, slot) pair ordered by score, then by slot for determinism.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scored {
    pub(crate) score: f32,
    pub(crate) slot: usize,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    /// Higher score is greater; on equal scores the lower slot is greater (ranks first).
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.slot.cmp(&self.slot))
    }
}

/// The `k` live slots with the highest dot product with `query` that pass `keep`, best first;
/// adds the number of vectors scored to `scored`.
pub(crate) fn top_k(
    slots: &Slots,
    query: &[f32],
    k: usize,
    keep: &dyn Fn(usize) -> bool,
    scored: &mut usize,
) -> Vec<Scored> {
    top_k_in(slots, query, k, keep, 0..slots.slot_len(), scored)
}

/// [`top_k`] restricted to the slots in `range`.
pub(crate) fn top_k_in(
    slots: &Slots,
    query: &[f32],
    k: usize,
    keep: &dyn Fn(usize) -> bool,
    range: std::ops::Range<usize>,
    scored: &mut usize,
) -> Vec<Scored> {
    // No more results than slots in the range: a huge `k` allocates nothing.
    let k = k.min(range.len());
    if k == 0 {
        return Vec::new();
    }
    // Min-heap of the best k seen so far.
    let mut heap: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(k + 1);
    for slot in range {
        if !slots.is_live(slot) || !keep(slot) {
            continue;
        }
        *scored += 1;
        let cand = Scored {
            score: dot(query, slots.vector(slot)),
            slot,
        };
        if heap.len() < k {
            heap.push(Reverse(cand));
        } else if let Some(mut worst) = heap.peek_mut() {
            if cand > worst.0 {
                *worst = Reverse(cand);
            }
        }
    }
    let mut out: Vec<Scored> = heap.into_iter().map(|r| r.0).collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_best_first_and_respects_filter() {
        let mut s = Slots::new(2);
        s.push(10, &[1.0, 0.0]);
        s.push(11, &[0.0, 1.0]);
        s.push(12, &[0.6, 0.8]);
        s.push(13, &[0.8, 0.6]);
        s.remove(13);
        let mut scored = 0;
        let r = top_k(&s, &[1.0, 0.0], 3, &|_| true, &mut scored);
        assert_eq!(r.iter().map(|x| x.slot).collect::<Vec<_>>(), vec![0, 2, 1]);
        assert_eq!(scored, 3, "the tombstone is not scored");
        let r = top_k(&s, &[1.0, 0.0], 5, &|slot| slot != 0, &mut scored);
        assert_eq!(r.iter().map(|x| x.slot).collect::<Vec<_>>(), vec![2, 1]);
        // A huge k is clamped to the slots there are: no allocation of k entries.
        let r = top_k(&s, &[1.0, 0.0], usize::MAX, &|_| true, &mut scored);
        assert_eq!(r.len(), 3);
    }
}
