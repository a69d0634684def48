//! hnsw_rs, kept as an independent reference for tests: the crate builds its own graph
//! ([`crate::graph`]); tests build hnsw_rs's on the same data and parameters, snapshot both
//! into the same search layout and check that ours recalls at least as well.

use hnsw_rs::hnsw::Hnsw;

use crate::config::IndexConfig;
use crate::flat::{Links, NodeVisitor};

/// hnsw_rs caps the number of layers at 16.
const MAX_LAYERS: usize = 16;

pub(crate) struct ReferenceGraph {
    hnsw: Hnsw<'static, f32, CosineDistance>,
}

impl ReferenceGraph {
    pub(crate) fn new(config: &IndexConfig, capacity: usize) -> Self {
        let hnsw = Hnsw::new(
            config.m,
            capacity.max(1024),
            MAX_LAYERS,
            config.ef_construction,
            CosineDistance,
        );
        ReferenceGraph { hnsw }
    }

    /// Inserts `(vector, slot)` pairs on the rayon pool.
    pub(crate) fn insert_parallel(&self, items: &[(&[f32], usize)]) {
        use rayon::prelude::*;
        items
            .par_iter()
            .for_each(|&(v, slot)| self.hnsw.insert_slice((v, slot)));
    }
}

impl Links for ReferenceGraph {
    fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    fn max_connections(&self) -> usize {
        usize::from(self.hnsw.get_max_nb_connection())
    }

    fn for_each_node(&self, f: &mut NodeVisitor<'_>) {
        let mut links: Vec<Vec<u32>> = Vec::new();
        for point in self.hnsw.get_point_indexation() {
            let level = usize::from(point.get_point_id().0);
            links.clear();
            for layer in point.get_neighborhood_id().iter().take(level + 1) {
                links.push(layer.iter().map(|n| n.d_id as u32).collect());
            }
            f(point.get_origin_id(), level, &links);
        }
    }
}

/// hnsw_rs's distance: `1 - dot`, clamped to `[0, 2]`.
///
/// hnsw_rs asserts distances are non-negative; rounding can push `1 - dot` of a vector with
/// itself slightly below 0 (that is why its own `DistDot` panics on exact matches).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CosineDistance;

impl hnsw_rs::anndists::dist::Distance<f32> for CosineDistance {
    #[inline]
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - crate::distance::dot(va, vb)).clamp(0.0, 2.0)
    }
}
