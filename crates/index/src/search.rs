//! What a search did: [`SearchStats`] and its [`SearchPath`], from
//! [`Index::search_with_stats`](crate::Index::search_with_stats).
//!
//! A search either walks the graph or scans the vectors exactly, and a walk that finds fewer
//! than `k` results falls back to the scan. The results alone cannot tell these apart (the
//! fallback hides a walk that found nothing), so callers that need to know — tests, benches,
//! diagnostics — ask for the stats.

/// How a search found its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SearchPath {
    /// Nothing to search: `k` was 0 or the index holds no live entry.
    Empty,
    /// Every live entry was scored exactly, because the index holds fewer than
    /// [`IndexConfig::exact_threshold`](crate::IndexConfig::exact_threshold) live entries (or
    /// the search was [`Index::search_exact`](crate::Index::search_exact)).
    ExactScan,
    /// The filter was estimated to keep so few entries that scanning those is cheaper than
    /// walking the graph: every entry the filter keeps was scored exactly.
    FilterScan,
    /// The graph walk (plus an exact scan of entries newer than the search snapshot) found
    /// `k` results.
    GraphWalk,
    /// The graph walk found fewer than `k` results although at least `k` entries qualify (a
    /// filter or tombstones cut it off), so the search scanned exactly instead.
    FallbackExactScan,
}

/// What one search did, from [`Index::search_with_stats`](crate::Index::search_with_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchStats {
    /// Which way the results were found.
    pub path: SearchPath,
    /// The `k` the search used: the requested `k`, clamped to the number of live entries.
    pub k: usize,
    /// The candidate-list width the graph walk used: the requested `ef` raised to `k` (and
    /// capped at the number of graph nodes); 0 when no walk ran.
    pub ef: usize,
    /// Graph nodes the walk scored on layer 0 (its cost, which grows with `ef`); 0 when no
    /// walk ran.
    pub visited: usize,
    /// Results the graph walk produced itself (snapshot tail included), before any
    /// fallback; 0 when no walk ran.
    pub walk_hits: usize,
    /// Vectors scored exactly by a scan: the whole scan, the fallback, or the tail of
    /// entries newer than the search snapshot.
    pub scanned: usize,
}

impl SearchStats {
    pub(crate) fn new(path: SearchPath, k: usize) -> Self {
        SearchStats {
            path,
            k,
            ef: 0,
            visited: 0,
            walk_hits: 0,
            scanned: 0,
        }
    }
}
