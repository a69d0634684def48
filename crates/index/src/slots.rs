//! Flat storage of the normalised vectors, indexed by slot, with the id mapping and tombstones.
//!
//! A slot is the graph's internal id: slots are only appended, so a slot number stays valid
//! until the next compaction. Re-inserting an id or removing it marks its old slot dead
//! (a tombstone); the graph still routes through dead slots but never returns them.

use std::collections::HashMap;

use crate::vectors::Vectors;

#[derive(Debug)]
pub(crate) struct Slots {
    dims: usize,
    /// `dims` floats per slot, file-backed (see [`crate::vectors`]).
    data: Vectors,
    /// External id of each slot.
    ids: Vec<u64>,
    /// Tombstones.
    dead: Vec<bool>,
    /// Live slot of each id.
    live: HashMap<u64, usize>,
    n_dead: usize,
}

impl Slots {
    pub(crate) fn new(dims: usize) -> Self {
        Slots {
            dims,
            data: Vectors::new(dims),
            ids: Vec::new(),
            dead: Vec::new(),
            live: HashMap::new(),
            n_dead: 0,
        }
    }

    /// Rebuilds the storage from persisted parts, or `None` when they are inconsistent.
    pub(crate) fn from_parts(
        dims: usize,
        data: Vectors,
        ids: Vec<u64>,
        dead: Vec<bool>,
    ) -> Option<Self> {
        if data.len() != ids.len() || dead.len() != ids.len() {
            return None;
        }
        let mut live = HashMap::with_capacity(ids.len());
        let mut n_dead = 0;
        for (slot, (&id, &is_dead)) in ids.iter().zip(&dead).enumerate() {
            if is_dead {
                n_dead += 1;
            } else if live.insert(id, slot).is_some() {
                return None; // two live slots for one id
            }
        }
        Some(Slots {
            dims,
            data,
            ids,
            dead,
            live,
            n_dead,
        })
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.data.reserve(additional);
        self.ids.reserve(additional);
        self.dead.reserve(additional);
        self.live.reserve(additional);
    }

    /// Appends a normalised vector for `id`, tombstoning the id's previous slot; returns the slot.
    pub(crate) fn push(&mut self, id: u64, v: &[f32]) -> usize {
        debug_assert_eq!(v.len(), self.dims);
        let slot = self.ids.len();
        self.data.push(v);
        self.ids.push(id);
        self.dead.push(false);
        if let Some(old) = self.live.insert(id, slot) {
            self.dead[old] = true;
            self.n_dead += 1;
        }
        slot
    }

    /// Tombstones `id`; false when it was not present.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        match self.live.remove(&id) {
            Some(slot) => {
                self.dead[slot] = true;
                self.n_dead += 1;
                true
            }
            None => false,
        }
    }

    pub(crate) fn dims(&self) -> usize {
        self.dims
    }
    #[inline]
    pub(crate) fn vector(&self, slot: usize) -> &[f32] {
        self.data.row(slot)
    }
    /// The vector storage (persistence writes it, bulk steps release its pages).
    pub(crate) fn vectors(&self) -> &Vectors {
        &self.data
    }
    pub(crate) fn id(&self, slot: usize) -> u64 {
        self.ids[slot]
    }
    pub(crate) fn is_live(&self, slot: usize) -> bool {
        slot < self.dead.len() && !self.dead[slot]
    }
    pub(crate) fn slot_of(&self, id: u64) -> Option<usize> {
        self.live.get(&id).copied()
    }
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.live.contains_key(&id)
    }
    /// Live (searchable) entries.
    pub(crate) fn live_len(&self) -> usize {
        self.live.len()
    }
    /// All slots, dead ones included.
    pub(crate) fn slot_len(&self) -> usize {
        self.ids.len()
    }
    pub(crate) fn dead_len(&self) -> usize {
        self.n_dead
    }
    pub(crate) fn ids(&self) -> &[u64] {
        &self.ids
    }
    pub(crate) fn dead_flags(&self) -> &[bool] {
        &self.dead
    }
    pub(crate) fn heap_bytes(&self) -> usize {
        self.data.heap_bytes()
            + self.ids.capacity() * 8
            + self.dead.capacity()
            + self.live.capacity() * 24
    }
    /// Live slots in slot order.
    pub(crate) fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.dead
            .iter()
            .enumerate()
            .filter(|(_, d)| !**d)
            .map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_replace_remove() {
        let mut s = Slots::new(2);
        assert_eq!(s.push(7, &[1.0, 0.0]), 0);
        assert_eq!(s.push(8, &[0.0, 1.0]), 1);
        assert_eq!(s.push(7, &[0.6, 0.8]), 2);
        assert_eq!((s.live_len(), s.slot_len(), s.dead_len()), (2, 3, 1));
        assert!(!s.is_live(0) && s.is_live(2));
        assert_eq!(s.vector(2), &[0.6, 0.8]);
        assert!(s.remove(8) && !s.remove(8));
        assert_eq!(s.live_slots().collect::<Vec<_>>(), vec![2]);
        let mut data = Vectors::new(2);
        for slot in 0..3 {
            data.push(s.vector(slot));
        }
        let back = Slots::from_parts(2, data, s.ids.clone(), s.dead.clone()).unwrap();
        assert_eq!(back.live_len(), 1);
        assert!(back.contains(7) && !back.contains(8));
        assert_eq!(back.vector(2), &[0.6, 0.8]);
        let mut short = Vectors::new(2);
        short.push(&[1.0, 0.0]);
        assert!(Slots::from_parts(2, short, vec![1, 2], vec![false; 2]).is_none());
    }
}
