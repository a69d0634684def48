//! [`Index`]: inserts, removals, searches and compaction, and how they lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use rayon::prelude::*;

use crate::config::IndexConfig;
use crate::distance::{checked_norm, normalized};
use crate::error::Result;
use crate::exact;
use crate::flat::FlatGraph;
use crate::graph::Graph;
use crate::integrity::Integrity;
use crate::reentry::{self, FilterScope};
use crate::search::{SearchPath, SearchStats};
use crate::slots::Slots;
use crate::vectors::Vectors;

/// Vectors appended per write-lock hold during a batch insert: readers wait at most for one
/// chunk's memcpy, never for graph construction.
const BATCH_CHUNK: usize = 4096;
/// Live entries sampled to estimate how selective a filter is.
const FILTER_SAMPLE: usize = 256;
/// A filtered search scans exactly when the estimated number of allowed entries `a` satisfies
/// `a² < FILTER_EXACT_FACTOR · ef · live`: the graph walk must visit about `ef / selectivity`
/// nodes to collect `ef` allowed ones, the scan computes `a` dot products.
const FILTER_EXACT_FACTOR: usize = 8;

/// A searchable set of `(u64 id, unit vector)` entries.
///
/// # Locking
///
/// The state (vectors, id map, graph) sits behind one `RwLock`, and writers are serialised by a
/// separate mutex:
///
/// - [`search`](Self::search) takes the read lock only, so any number of threads search at once.
/// - [`insert`](Self::insert) / [`insert_batch`](Self::insert_batch) take the write lock just to
///   append vectors and update the id map (a memcpy, at most 4096 vectors per hold), then link
///   the new nodes into the graph under the *read* lock: searches keep running during graph
///   construction. An entry becomes visible to searches when its `insert` returns.
/// - [`remove`](Self::remove) takes the write lock for a flag flip.
/// - Compaction ([`compact`](Self::compact), or automatic in `remove`/`insert` once tombstones
///   pass [`IndexConfig::compact_ratio`]) builds a new graph from a copy of the live vectors
///   without holding the state lock, then swaps it in under a brief write lock. Other writers
///   wait for it; readers do not.
/// - [`save`](Self::save) holds the writer mutex and the read lock.
/// - Searches walk an immutable snapshot of the graph's links (an `Arc`, swapped under its own
///   short lock after batch inserts, compaction, load, or once entries added since the last
///   snapshot pass 1/64 of it); entries newer than the snapshot are scanned exactly.
/// - A search filter runs while its search holds the read lock, and may read the index again
///   on the same thread (`len`, `contains`, `get`, `stats`, another search): those reads take
///   the lock recursively, so they neither wait behind a queued writer (which would wait for
///   the search: a deadlock) nor panic. A filter that changes or saves the index panics with
///   a message instead of deadlocking (see `reentry.rs`).
///
/// `Index` is `Send + Sync`; share it with `Arc<Index>`.
#[derive(Debug)]
pub struct Index {
    pub(crate) config: IndexConfig,
    pub(crate) state: RwLock<State>,
    pub(crate) writer: Mutex<()>,
    /// Bumped by every change (insert, effective remove, compaction): a save of an unchanged
    /// index into the directory it came from writes nothing.
    pub(crate) changes: AtomicU64,
    /// Where this index was last loaded from or saved to, and `changes` then.
    pub(crate) saved: Mutex<Option<SavedAt>>,
    /// Whether its files were found intact (see [`Index::open`]).
    pub(crate) integrity: Arc<Integrity>,
}

/// A directory holding this index as it was at `changes` (see [`Index::save`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedAt {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) generation: u64,
    pub(crate) changes: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) slots: Slots,
    pub(crate) graph: Graph,
    /// Read-optimised copy of the graph's links; slots past it are scanned exactly.
    pub(crate) flat: RwLock<Arc<FlatGraph>>,
}

impl State {
    pub(crate) fn new(slots: Slots, graph: Graph) -> Self {
        let flat = FlatGraph::snapshot(&graph, &slots);
        // The snapshot read every vector (codes, repair): hand their pages back.
        slots.vectors().release();
        State {
            slots,
            graph,
            flat: RwLock::new(Arc::new(flat)),
        }
    }

    /// A state whose search snapshot was read back from disk.
    pub(crate) fn with_flat(slots: Slots, graph: Graph, flat: FlatGraph) -> Self {
        State {
            slots,
            graph,
            flat: RwLock::new(Arc::new(flat)),
        }
    }

    /// The snapshot, retaken first if nodes were added since (callers hold the writer mutex):
    /// a saved snapshot covers the whole graph.
    pub(crate) fn complete_flat(&self) -> Arc<FlatGraph> {
        let flat = self.flat.read().clone();
        if flat.nodes() == self.slots.slot_len() {
            return flat;
        }
        let flat = Arc::new(FlatGraph::snapshot(&self.graph, &self.slots));
        *self.flat.write() = Arc::clone(&flat);
        self.slots.vectors().release();
        flat
    }

    /// Re-snapshots once the tail of unsnapshotted slots grows past a small share (callers hold
    /// the writer mutex, so the graph is not changing).
    fn maybe_refresh_flat(&self) {
        let covered = self.flat.read().nodes();
        let tail = self.slots.slot_len().saturating_sub(covered);
        if tail > (covered / 64).clamp(256, 4096) {
            *self.flat.write() = Arc::new(FlatGraph::snapshot(&self.graph, &self.slots));
            self.slots.vectors().release();
        }
    }
}

/// Sizes and memory use of an [`Index`], from [`Index::stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct IndexStats {
    /// Live (searchable) entries.
    pub len: usize,
    /// Removed or replaced entries still in the graph, until the next compaction.
    pub tombstones: usize,
    /// Nodes in the graph (live + tombstones).
    pub graph_nodes: usize,
    /// Approximate heap bytes: the id map, the graph's links (`2·m` per node on layer 0) and
    /// the search snapshot (links and 8-bit codes). The f32 vectors are file-backed and
    /// memory-mapped (`4 · dims` bytes per slot in the page cache or on disk, not on the heap),
    /// so they are not counted unless no temp file could be used.
    pub memory_bytes: usize,
    /// Mean number of layer-0 links per node in the search snapshot (at most `2·m` from the
    /// graph, plus a few the snapshot adds so every node can be reached).
    pub mean_links: f32,
    /// Nodes that the graph left unreachable from where searches start (its heuristic prunes
    /// reverse links, which can strand a node, as in hnswlib), which the search snapshot
    /// linked in (see `docs/PERFORMANCE.md`).
    pub relinked: usize,
    /// Nodes still unreachable in the search snapshot (expected 0).
    pub unreachable: usize,
}

impl Index {
    /// An empty index; fails with [`Error::InvalidConfig`](crate::Error::InvalidConfig) on a bad
    /// configuration.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.validate()?;
        let state = State::new(Slots::new(config.dims), Graph::new(&config, 0));
        Ok(Index::from_parts(config, state))
    }

    pub(crate) fn from_parts(config: IndexConfig, state: State) -> Self {
        Index {
            config,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            changes: AtomicU64::new(0),
            saved: Mutex::new(None),
            integrity: Arc::new(Integrity::verified()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// The vector dimension.
    pub fn dims(&self) -> usize {
        self.config.dims
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.read_state().slots.live_len()
    }

    /// True when no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `id` is live.
    pub fn contains(&self, id: u64) -> bool {
        self.read_state().slots.contains(id)
    }

    /// The stored (unit-length) vector of `id`, if live.
    pub fn get(&self, id: u64) -> Option<Vec<f32>> {
        let state = self.read_state();
        let slot = state.slots.slot_of(id)?;
        Some(state.slots.vector(slot).to_vec())
    }

    /// Sizes and memory use.
    pub fn stats(&self) -> IndexStats {
        let state = self.read_state();
        let nodes = state.graph.len();
        let graph_bytes = state.graph.heap_bytes();
        let (flat_bytes, mean_links, repair) = {
            let flat = state.flat.read();
            (flat.heap_bytes(), flat.mean_degree(), flat.repair())
        };
        IndexStats {
            len: state.slots.live_len(),
            tombstones: state.slots.dead_len(),
            graph_nodes: nodes,
            memory_bytes: state.slots.heap_bytes() + graph_bytes + flat_bytes,
            mean_links,
            relinked: repair.unreachable - repair.left,
            unreachable: repair.left,
        }
    }

    /// Inserts `vector` under `id`, replacing any previous vector of `id`.
    ///
    /// The vector is L2-normalised; a wrong length, NaN/inf or all-zero vector is an error and
    /// leaves the index unchanged.
    pub fn insert(&self, id: u64, vector: &[f32]) -> Result<()> {
        let v = normalized(vector, self.config.dims, Some(id))?;
        let writer = self.lock_writer("insert");
        self.changed();
        let slot = {
            let mut state = self.state.write();
            let slot = state.slots.push(id, &v);
            state.graph.grow(slot + 1);
            slot
        };
        {
            let state = self.state.read();
            state.graph.insert(slot, &state.slots);
            state.maybe_refresh_flat();
        }
        self.maybe_compact(writer);
        Ok(())
    }

    /// Inserts many entries, building the graph on all cores (rayon).
    ///
    /// Every vector is checked first: on an error nothing is inserted. Within a batch, the last
    /// vector of a repeated id wins.
    pub fn insert_batch<V>(&self, items: &[(u64, V)]) -> Result<()>
    where
        V: AsRef<[f32]> + Sync,
    {
        let dims = self.config.dims;
        // Check everything first (nothing is inserted on an error), then normalise chunk by
        // chunk: a normalised copy of the whole batch doubled the RSS of a bulk build.
        items
            .par_iter()
            .try_for_each(|(id, v)| checked_norm(v.as_ref(), dims, Some(*id)).map(drop))?;
        let writer = self.lock_writer("insert_batch");
        self.changed();
        for chunk_items in items.chunks(BATCH_CHUNK) {
            let chunk_vecs: Vec<Vec<f32>> = chunk_items
                .par_iter()
                .map(|(id, v)| normalized(v.as_ref(), dims, Some(*id)))
                .collect::<Result<_>>()?;
            let first = {
                let mut state = self.state.write();
                state.slots.reserve(chunk_items.len());
                let first = state.slots.slot_len();
                for ((id, _), v) in chunk_items.iter().zip(&chunk_vecs) {
                    state.slots.push(*id, v);
                }
                let len = state.slots.slot_len();
                state.graph.grow(len);
                first
            };
            let state = self.state.read();
            let range = first..first + chunk_items.len();
            state.graph.insert_parallel(range, &state.slots);
        }
        {
            let state = self.state.read();
            state.maybe_refresh_flat();
            // Construction read the vectors: their pages go back to the page cache.
            state.slots.vectors().release();
        }
        self.maybe_compact(writer);
        Ok(())
    }

    /// Removes `id`; it is never returned again. Returns whether it was present.
    ///
    /// The entry becomes a tombstone; when tombstones pass [`IndexConfig::compact_ratio`] of the
    /// graph, this call also rebuilds the graph (see [`compact`](Self::compact)).
    pub fn remove(&self, id: u64) -> bool {
        let writer = self.lock_writer("remove");
        let removed = self.state.write().slots.remove(id);
        if removed {
            self.changed();
            self.maybe_compact(writer);
        }
        removed
    }

    /// Rebuilds the graph from the live entries, dropping every tombstone.
    ///
    /// Searches keep running on the old graph during the rebuild; other writers wait.
    pub fn compact(&self) {
        let writer = self.lock_writer("compact");
        self.compact_locked(&writer);
    }

    fn maybe_compact(&self, writer: MutexGuard<'_, ()>) {
        let (dead, total) = {
            let state = self.state.read();
            (state.slots.dead_len(), state.slots.slot_len())
        };
        if self.config.compact_ratio < 1.0
            && dead > 0
            && dead as f32 > self.config.compact_ratio * total as f32
        {
            self.compact_locked(&writer);
        }
    }

    /// Marks the index as differing from any saved copy (callers hold the writer mutex).
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    fn compact_locked(&self, _writer: &MutexGuard<'_, ()>) {
        self.changed();
        let (ids, data) = {
            let state = self.state.read();
            let slots = &state.slots;
            let live: Vec<usize> = slots.live_slots().collect();
            let mut data = Vectors::new(slots.dims());
            data.reserve(live.len());
            for &slot in &live {
                data.push(slots.vector(slot));
            }
            (
                live.iter().map(|&s| slots.id(s)).collect::<Vec<u64>>(),
                data,
            )
        };
        let n = ids.len();
        let slots = Slots::from_parts(self.config.dims, data, ids, vec![false; n])
            .expect("live slots have distinct ids");
        let mut graph = Graph::new(&self.config, n);
        graph.grow(n);
        graph.insert_parallel(0..n, &slots);
        let new_state = State::new(slots, graph);
        let old = std::mem::replace(&mut *self.state.write(), new_state);
        drop(old); // freed outside the lock
    }

    /// The `k` live entries most similar to `query`, best first, as `(id, cosine similarity)`.
    ///
    /// `filter`, when given, is called with candidate ids during the search; only ids it accepts
    /// are returned, and `k` of them are returned whenever `k` live entries pass it. `k` larger
    /// than the index returns every (accepted) entry; it allocates nothing in proportion to `k`.
    /// Uses [`IndexConfig::ef_search`]; see [`search_with_ef`](Self::search_with_ef).
    ///
    /// The filter may call back into this index to read it ([`len`](Self::len),
    /// [`contains`](Self::contains), [`get`](Self::get), [`stats`](Self::stats), another
    /// search), also while other threads write; see [`Index`]'s locking notes.
    ///
    /// # Panics
    /// If the filter panics (the panic is passed on; the index stays usable), or if it tries
    /// to change or save this index (`insert`, `insert_batch`, `remove`, `compact`, `save`),
    /// which would otherwise deadlock.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Vec<(u64, f32)>> {
        self.search_with_ef(query, k, filter, self.config.ef_search)
    }

    /// [`search`](Self::search) with this call's candidate-list width `ef` (raised to `k`):
    /// higher is slower and more accurate.
    ///
    /// The query is normalised; a wrong length, NaN/inf or all-zero query is an error.
    /// Below [`IndexConfig::exact_threshold`] live entries, and for filters estimated to keep
    /// few entries, the search scans exactly instead of walking the graph.
    pub fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u64) -> bool>,
        ef: usize,
    ) -> Result<Vec<(u64, f32)>> {
        Ok(self.search_with_stats(query, k, filter, Some(ef))?.0)
    }

    /// [`search_with_ef`](Self::search_with_ef) (`ef` `None`: [`IndexConfig::ef_search`]),
    /// also returning what the search did: whether it walked the graph, scanned exactly or
    /// fell back from the walk to the scan, and how much work that was ([`SearchStats`]).
    pub fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u64) -> bool>,
        ef: Option<usize>,
    ) -> Result<(Vec<(u64, f32)>, SearchStats)> {
        let q = normalized(query, self.config.dims, None)?;
        self.integrity.check()?;
        let state = self.read_state();
        // Filters run from here on, while this thread holds the read lock.
        let _scope = filter.map(|_| FilterScope::enter(self.key()));
        let slots = &state.slots;
        let live = slots.live_len();
        // Never more results than live entries: `k = usize::MAX` allocates nothing.
        let k = k.min(live);
        if k == 0 {
            return Ok((Vec::new(), SearchStats::new(SearchPath::Empty, 0)));
        }
        // At least k, and no wider than the graph (a larger list holds nothing more).
        let ef = ef
            .unwrap_or(self.config.ef_search)
            .max(k)
            .min(slots.slot_len());
        let keep_slot = |slot: usize| filter.is_none_or(|f| f(slots.id(slot)));
        let scan =
            |stats: &mut SearchStats| exact::top_k(slots, &q, k, &keep_slot, &mut stats.scanned);

        let mut stats = SearchStats::new(SearchPath::ExactScan, k);
        let use_graph = live >= self.config.exact_threshold
            && match filter {
                None => true,
                Some(f) => {
                    let allowed = estimate_allowed(slots, f);
                    let walk = allowed.saturating_mul(allowed)
                        >= FILTER_EXACT_FACTOR.saturating_mul(ef).saturating_mul(live);
                    if !walk {
                        stats.path = SearchPath::FilterScan;
                    }
                    walk
                }
            };
        let hits = if use_graph {
            let flat = state.flat.read().clone();
            let admit = |slot: usize| slots.is_live(slot) && keep_slot(slot);
            let walk = flat.search(slots, &q, ef, &admit);
            let mut hits = walk.hits;
            (stats.ef, stats.visited) = (ef, walk.visited);
            if flat.nodes() < slots.slot_len() {
                let tail = flat.nodes()..slots.slot_len();
                hits.extend(exact::top_k_in(
                    slots,
                    &q,
                    k,
                    &keep_slot,
                    tail,
                    &mut stats.scanned,
                ));
                hits.sort_unstable_by(|a, b| b.cmp(a));
            }
            hits.truncate(k);
            stats.walk_hits = hits.len();
            // The walk ran dry (tombstones or a filter cut it off): guarantee k results
            // whenever k entries qualify.
            if hits.len() < k {
                stats.path = SearchPath::FallbackExactScan;
                scan(&mut stats)
            } else {
                stats.path = SearchPath::GraphWalk;
                hits
            }
        } else {
            scan(&mut stats)
        };
        let hits = hits
            .into_iter()
            .map(|h| (slots.id(h.slot), h.score.clamp(-1.0, 1.0)))
            .collect();
        Ok((hits, stats))
    }
}

impl Index {
    /// Exact top-`k` by scanning every live vector (no graph): the ground truth that
    /// [`search`](Self::search) approximates. Same arguments, errors, result order and filter
    /// rules.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Vec<(u64, f32)>> {
        let q = normalized(query, self.config.dims, None)?;
        self.integrity.check()?;
        let state = self.read_state();
        let _scope = filter.map(|_| FilterScope::enter(self.key()));
        let slots = &state.slots;
        let keep_slot = |slot: usize| filter.is_none_or(|f| f(slots.id(slot)));
        let hits = exact::top_k(slots, &q, k, &keep_slot, &mut 0);
        Ok(hits
            .into_iter()
            .map(|h| (slots.id(h.slot), h.score.clamp(-1.0, 1.0)))
            .collect())
    }

    /// This index's identity for the re-entrancy marks (see [`crate::reentry`]).
    fn key(&self) -> usize {
        std::ptr::from_ref(&self.state) as usize
    }

    /// The state's read lock: the fair `read`, or `read_recursive` when this thread is inside
    /// one of this index's filters and so already holds it (a fair `read` would wait behind a
    /// queued writer, which waits for this thread: see [`crate::reentry`]).
    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        if reentry::filtering(self.key()) {
            self.state.read_recursive()
        } else {
            self.state.read()
        }
    }

    /// The writer mutex, for `operation`.
    ///
    /// # Panics
    /// When called from inside one of this index's search filters (it would deadlock).
    pub(crate) fn lock_writer(&self, operation: &str) -> MutexGuard<'_, ()> {
        reentry::assert_not_filtering(self.key(), operation);
        self.writer.lock()
    }
}

/// Estimated number of live entries `filter` accepts, from an evenly strided sample.
fn estimate_allowed(slots: &Slots, filter: &dyn Fn(u64) -> bool) -> usize {
    let live = slots.live_len();
    let total = slots.slot_len();
    let step = (total / FILTER_SAMPLE).max(1);
    let (mut seen, mut passed) = (0usize, 0usize);
    let mut slot = 0;
    while slot < total {
        if slots.is_live(slot) {
            seen += 1;
            passed += usize::from(filter(slots.id(slot)));
        }
        slot += step;
    }
    if seen == 0 {
        return 0;
    }
    live * passed / seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` pseudo-random 16-d vectors, ids `0..n`.
    fn index(n: usize, exact_threshold: usize) -> Index {
        let config = IndexConfig {
            exact_threshold,
            ..IndexConfig::new(16)
        };
        let index = Index::new(config).unwrap();
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let items: Vec<(u64, Vec<f32>)> = (0..n as u64)
            .map(|id| {
                let v = (0..16)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                    })
                    .collect();
                (id, v)
            })
            .collect();
        index.insert_batch(&items).unwrap();
        index
    }

    /// A walk that finds fewer than k falls back to the exact scan, and says so: the results
    /// alone would hide a walk that found nothing.
    #[test]
    fn a_walk_that_runs_dry_is_reported_as_a_fallback() {
        let index = index(1_000, 0);
        let q = index.get(17).unwrap();
        let (hits, stats) = index.search_with_stats(&q, 10, None, None).unwrap();
        assert_eq!(stats.path, SearchPath::GraphWalk, "{stats:?}");
        assert_eq!((hits.len(), stats.walk_hits), (10, 10));
        assert!(stats.visited > 10, "{stats:?}");
        {
            let state = index.state.read();
            let mut flat = FlatGraph::snapshot(&state.graph, &state.slots);
            flat.cut_links();
            *state.flat.write() = Arc::new(flat);
        }
        let (hits, stats) = index.search_with_stats(&q, 10, None, None).unwrap();
        assert_eq!(stats.path, SearchPath::FallbackExactScan, "{stats:?}");
        assert!(stats.walk_hits < 10, "{stats:?}");
        assert_eq!(stats.scanned, 1_000);
        assert_eq!(hits, index.search_exact(&q, 10, None).unwrap());
    }

    /// `k` and `ef` are clamped to the index: `usize::MAX` neither panics nor allocates.
    #[test]
    fn huge_k_and_ef_are_clamped() {
        for (n, threshold, path) in [
            (50, 2_500, SearchPath::ExactScan),
            (600, 0, SearchPath::GraphWalk),
        ] {
            let index = index(n, threshold);
            let q = index.get(3).unwrap();
            let (hits, stats) = index.search_with_stats(&q, usize::MAX, None, None).unwrap();
            assert_eq!(hits.len(), n);
            assert_eq!((stats.path, stats.k), (path, n), "{stats:?}");
            assert_eq!(index.search(&q, usize::MAX, None).unwrap(), hits);
            assert_eq!(index.search_exact(&q, usize::MAX, None).unwrap(), hits);
            let even = |id: u64| id.is_multiple_of(2);
            let got = index.search(&q, usize::MAX, Some(&even)).unwrap();
            assert_eq!(got.len(), n / 2);
            let (hits, stats) = index
                .search_with_stats(&q, 5, None, Some(usize::MAX))
                .unwrap();
            assert_eq!(hits.len(), 5);
            if path == SearchPath::GraphWalk {
                assert_eq!(stats.ef, n, "ef capped at the graph's size");
            }
        }
        let empty = Index::new(IndexConfig::new(16)).unwrap();
        let (hits, stats) = empty
            .search_with_stats(&[1.0; 16], usize::MAX, None, Some(usize::MAX))
            .unwrap();
        assert!(hits.is_empty());
        assert_eq!(stats.path, SearchPath::Empty);
    }
}
