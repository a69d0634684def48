//! Index configuration: graph parameters, the exact-scan threshold and the compaction trigger.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default number of links per node and layer (`M`); layer 0 keeps `2 * M`, as in hnswlib.
pub const DEFAULT_M: usize = 16;
/// Default candidate-list width while building the graph.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;
/// Default candidate-list width while searching: recall@10 ≥ 0.999 at 100k and 0.987 at 1M
/// clustered 512-d vectors (see `docs/PERFORMANCE.md`).
pub const DEFAULT_EF_SEARCH: usize = 128;
/// Default collection size below which searches scan every vector exactly. Measured on 512-d
/// clustered data at the default `ef_search` (criterion `search/*` and `ann_bench
/// --exact-sweep`, docs/PERFORMANCE.md): the scan wins at 2000 vectors (55 µs vs 64 µs), the
/// graph at 4000 (84 µs vs 110 µs); the lines cross near 2600.
pub const DEFAULT_EXACT_THRESHOLD: usize = 2_500;
/// Default share of removed entries (tombstones) that triggers a graph rebuild.
pub const DEFAULT_COMPACT_RATIO: f32 = 0.25;

/// How an [`Index`](crate::Index) is built and searched.
///
/// Build one with [`IndexConfig::new`] (defaults for everything but the dimension) and
/// struct-update syntax:
///
/// ```
/// use glimpse_index::IndexConfig;
/// let config = IndexConfig { ef_search: 128, ..IndexConfig::new(512) };
/// assert_eq!(config.m, glimpse_index::config::DEFAULT_M);
/// ```
///
/// `m` and `ef_construction` shape the graph and are fixed once the index holds data (they are
/// persisted with it); `ef_search`, `exact_threshold` and `compact_ratio` only steer searches and
/// maintenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexConfig {
    /// Dimension of every vector (512 for CLIP ViT-B/32).
    pub dims: usize,
    /// Links per node on layers above 0 (`M` in the HNSW paper); layer 0 keeps `2 * m`.
    /// 4..=128. Default [`DEFAULT_M`].
    pub m: usize,
    /// Candidate-list width during construction; higher builds a better graph, slower.
    /// Default [`DEFAULT_EF_CONSTRUCTION`].
    pub ef_construction: usize,
    /// Candidate-list width during search unless a call overrides it; raised to `k` when smaller.
    /// Default [`DEFAULT_EF_SEARCH`].
    pub ef_search: usize,
    /// While the index holds fewer live vectors than this, searches scan all vectors exactly.
    /// Default [`DEFAULT_EXACT_THRESHOLD`].
    pub exact_threshold: usize,
    /// When removed entries exceed this share of the graph, the graph is rebuilt from the live
    /// vectors (in (0, 1]; 1.0 never compacts automatically, see [`Index::compact`]).
    /// Default [`DEFAULT_COMPACT_RATIO`].
    ///
    /// [`Index::compact`]: crate::Index::compact
    pub compact_ratio: f32,
}

impl IndexConfig {
    /// The defaults for vectors of `dims` dimensions.
    pub fn new(dims: usize) -> Self {
        IndexConfig {
            dims,
            m: DEFAULT_M,
            ef_construction: DEFAULT_EF_CONSTRUCTION,
            ef_search: DEFAULT_EF_SEARCH,
            exact_threshold: DEFAULT_EXACT_THRESHOLD,
            compact_ratio: DEFAULT_COMPACT_RATIO,
        }
    }

    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.dims == 0 || self.dims > 65_536 {
            return bad("dims", format!("{} is not in 1..=65536", self.dims));
        }
        if !(4..=128).contains(&self.m) {
            return bad("m", format!("{} is not in 4..=128", self.m));
        }
        if self.ef_construction < self.m || self.ef_construction > 4096 {
            return bad(
                "ef_construction",
                format!(
                    "{} is not in m..=4096 (m = {})",
                    self.ef_construction, self.m
                ),
            );
        }
        if self.ef_search == 0 || self.ef_search > 65_536 {
            return bad(
                "ef_search",
                format!("{} is not in 1..=65536", self.ef_search),
            );
        }
        if !(self.compact_ratio > 0.0 && self.compact_ratio <= 1.0) {
            return bad(
                "compact_ratio",
                format!("{} is not in (0, 1]", self.compact_ratio),
            );
        }
        Ok(())
    }
}

impl Default for IndexConfig {
    /// The defaults for 512-d vectors (CLIP ViT-B/32).
    fn default() -> Self {
        IndexConfig::new(512)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        IndexConfig::default().validate().unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        let err = IndexConfig {
            m: 1,
            ..IndexConfig::new(8)
        }
        .validate()
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { field: "m", .. }),
            "{err}"
        );
        let err = IndexConfig::new(0).validate().unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { field: "dims", .. }),
            "{err}"
        );
        let err = IndexConfig {
            compact_ratio: f32::NAN,
            ..IndexConfig::new(8)
        }
        .validate();
        assert!(matches!(
            err,
            Err(Error::InvalidConfig {
                field: "compact_ratio",
                ..
            })
        ));
    }
}
