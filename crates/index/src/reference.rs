//! The HNSW graph: a thin wrapper that keeps every `hnsw_rs` type inside this file.
//!
//! The graph stores slot numbers (see [`crate::slots`]) as its data ids, and its own copy of each
//! vector (hnsw_rs copies on insert). `hnsw_rs` insertion takes `&self` and locks per node internally, so
//! several threads can insert at once. Searches do not use hnsw_rs's walk: see [`crate::flat`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;

use crate::config::IndexConfig;
use crate::distance::CosineDistance;
use crate::error::{Error, Result};

/// hnsw_rs caps the number of layers at 16.
const MAX_LAYERS: usize = 16;

pub(crate) struct Graph {
    hnsw: Hnsw<'static, f32, CosineDistance>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("points", &self.len())
            .finish()
    }
}

impl Graph {
    pub(crate) fn new(config: &IndexConfig, capacity: usize) -> Self {
        let hnsw = Hnsw::new(
            config.m,
            capacity.max(1024),
            MAX_LAYERS,
            config.ef_construction,
            CosineDistance,
        );
        Graph { hnsw }
    }

    /// Number of nodes (dead slots included).
    pub(crate) fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    pub(crate) fn insert(&self, slot: usize, v: &[f32]) {
        self.hnsw.insert_slice((v, slot));
    }

    /// Inserts on the rayon pool.
    pub(crate) fn insert_parallel(&self, items: &[(&[f32], usize)]) {
        use rayon::prelude::*;
        items
            .par_iter()
            .for_each(|&(v, slot)| self.hnsw.insert_slice((v, slot)));
    }

    /// Visits every node: its slot, level and per-layer neighbour slots (layers `0..=level`).
    pub(crate) fn for_each_node(&self, mut f: impl FnMut(usize, usize, &[Vec<usize>])) {
        let mut links: Vec<Vec<usize>> = Vec::new();
        for point in self.hnsw.get_point_indexation() {
            let level = usize::from(point.get_point_id().0);
            links.clear();
            for layer in point.get_neighborhood_id().iter().take(level + 1) {
                links.push(layer.iter().map(|n| n.d_id).collect());
            }
            f(point.get_origin_id(), level, &links);
        }
    }

    /// Visits every node's (slot, vector).
    pub(crate) fn for_each_point(&self, mut f: impl FnMut(usize, &[f32])) {
        for point in self.hnsw.get_point_indexation() {
            f(point.get_origin_id(), point.get_v());
        }
    }

    /// Writes `{basename}.hnsw.graph` and `{basename}.hnsw.data` into `dir`.
    pub(crate) fn dump(&self, dir: &Path, basename: &str) -> Result<()> {
        let dumped = catch_unwind(AssertUnwindSafe(|| self.hnsw.file_dump(dir, basename)));
        match dumped {
            Ok(Ok(name)) if name == basename => Ok(()),
            Ok(Ok(name)) => Err(graph_error("dump", format!("wrote basename {name}"))),
            Ok(Err(e)) => Err(graph_error("dump", e.to_string())),
            Err(panic) => Err(graph_error("dump", panic_message(&*panic))),
        }
    }

    /// Reloads a graph written by [`Graph::dump`]. Any panic inside hnsw_rs becomes an error.
    ///
    /// The caller must have verified the files' checksum: hnsw_rs asserts on malformed input.
    pub(crate) fn load(dir: &Path, basename: &str) -> Result<Self> {
        // `load_hnsw_with_dist` ties the graph's lifetime to the `HnswIo`. Without mmap the
        // graph owns all its data, so the loader (a path and a few options, no open files) is
        // leaked to obtain a `'static` graph: a few hundred bytes per load.
        let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(dir, basename)));
        let loaded = catch_unwind(AssertUnwindSafe(|| io.load_hnsw_with_dist(CosineDistance)));
        let mut hnsw = match loaded {
            Ok(Ok(hnsw)) => hnsw,
            Ok(Err(e)) => return Err(graph_error("reload", e.to_string())),
            Err(panic) => return Err(graph_error("reload", panic_message(&*panic))),
        };
        // The loader turns candidate extension on; fresh graphs have it off.
        hnsw.set_extend_candidates(false);
        Ok(Graph { hnsw })
    }

    pub(crate) fn max_connections(&self) -> usize {
        usize::from(self.hnsw.get_max_nb_connection())
    }
}

fn graph_error(operation: &'static str, reason: String) -> Error {
    Error::Graph { operation, reason }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic in hnsw_rs".to_string()
    }
}
