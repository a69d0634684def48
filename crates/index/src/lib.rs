//! Approximate nearest-neighbour search over L2-normalised embeddings, for Glimpse.
//!
//! An [`Index`] maps `u64` ids to vectors and answers "which stored vectors are most similar to
//! this one" by cosine similarity. It is an HNSW graph the crate builds itself (parallel
//! inserts, the paper's neighbour-selection heuristic on new and reverse links, links stored as
//! `u32` slots and distances read from the index's own vectors), a file-backed copy of the
//! vectors for exact scans, rescoring, tombstones and persistence, and a read-optimised snapshot of the graph's links
//! and of 8-bit codes of the vectors that searches walk (reading a quarter of the bytes per
//! node; see `docs/PERFORMANCE.md`).
//!
//! ```
//! use glimpse_index::{Index, IndexConfig};
//!
//! # fn main() -> glimpse_index::Result<()> {
//! let index = Index::new(IndexConfig::new(4))?;
//! index.insert(1, &[1.0, 0.0, 0.0, 0.0])?;
//! index.insert(2, &[0.0, 1.0, 0.0, 0.0])?;
//! index.insert_batch(&[(3, vec![0.9, 0.1, 0.0, 0.0]), (4, vec![0.0, 0.0, 1.0, 0.0])])?;
//!
//! // Best first, with cosine similarity in [-1, 1]. Vectors need not be normalised.
//! let hits = index.search(&[2.0, 0.0, 0.0, 0.0], 2, None)?;
//! assert_eq!(hits[0].0, 1);
//! assert!((hits[0].1 - 1.0).abs() < 1e-6);
//! assert_eq!(hits[1].0, 3);
//!
//! // Filters run during the search; removed ids never come back.
//! let odd = |id: u64| id % 2 == 1;
//! assert_eq!(index.search(&[1.0, 0.0, 0.0, 0.0], 1, Some(&odd))?[0].0, 1);
//! index.remove(1);
//! assert_eq!(index.search(&[1.0, 0.0, 0.0, 0.0], 1, None)?[0].0, 3);
//!
//! // Atomic save, checked load.
//! let dir = tempfile::tempdir().unwrap();
//! index.save(dir.path())?;
//! let again = Index::load(dir.path())?;
//! assert_eq!(again.search(&[1.0, 0.0, 0.0, 0.0], 3, None)?, index.search(&[1.0, 0.0, 0.0, 0.0], 3, None)?);
//! # Ok(())
//! # }
//! ```
//!
//! # Concepts
//!
//! - **Normalisation.** Every inserted vector and query is checked (length, finite, non-zero)
//!   and scaled to unit length, so the score is the cosine similarity.
//! - **Exact scores.** The graph walk ranks candidates by 8-bit codes of the vectors (quantised
//!   per dimension), then rescores its final `ef` candidates with the f32 vectors: returned
//!   scores and their order are exact, only *which* candidates the walk reaches is approximate.
//! - **Small collections** (below [`IndexConfig::exact_threshold`] live entries) are scanned
//!   exactly: as fast as the graph there, and perfect. The graph is maintained all along, so
//!   crossing the threshold costs nothing.
//! - **Filters** are predicates on ids, applied while walking the graph. A filter that keeps few
//!   entries (estimated by sampling) is answered by an exact scan of the entries it keeps, and a
//!   walk that finds fewer than `k` falls back to that scan: `k` results whenever `k` pass.
//!   [`Index::search_with_stats`] tells which of these a search took ([`SearchPath`]) and how
//!   much it visited; a filter may read the index it filters (see [`Index`]'s locking notes).
//! - **Removal** leaves a tombstone: the node keeps routing searches but is never returned.
//!   Past [`IndexConfig::compact_ratio`] tombstones the graph is rebuilt from the live vectors.
//! - **Persistence**: [`Index::save`] / [`Index::load`] write and read a checksummed manifest
//!   and the graph files it names (atomic saves; a save of an unchanged index into the
//!   directory it came from writes nothing). A load maps the saved vectors and search
//!   snapshot instead of parsing them; [`Index::open`] also defers the vectors file's
//!   checksum to a background thread ([`Index::verify`]). See [`persist`] for the format and
//!   guarantees.
//! - **Concurrency**: see [`Index`]'s locking notes.
//!
//! Memory: `dims` bytes of codes per entry and the graph's and the snapshot's links (4 bytes
//! each, `2·m` on layer 0) in RAM; the exact f32 vectors (`4 × dims` bytes per entry) are
//! file-backed and memory-mapped (a saved index's data file, or an unlinked temp file), and
//! their pages are handed back to the page cache after bulk steps; see `docs/PERFORMANCE.md`
//! for measured figures.
#![deny(missing_docs)]

mod buf;
pub mod config;
mod distance;
mod error;
mod exact;
mod flat;
mod graph;
mod huge;
mod index;
mod integrity;
pub mod persist;
mod quant;
mod reentry;
#[cfg(test)]
mod reference;
mod repair;
mod search;
mod slots;
mod vectors;

pub use config::IndexConfig;
pub use error::{Error, Result};
pub use index::{Index, IndexStats};
pub use search::{SearchPath, SearchStats};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn index_is_send_and_sync() {
        assert_send_sync::<Index>();
    }
}
