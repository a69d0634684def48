//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod data;

use glimpse_index::{Index, IndexConfig, SearchPath};

pub const DIMS: usize = 512;

/// The test seed: `GLIMPSE_TEST_SEED` if set, else random; printed so failures can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("GLIMPSE_TEST_SEED") {
        Ok(s) => s.parse().expect("GLIMPSE_TEST_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    println!("{test}: seed {seed} (replay with GLIMPSE_TEST_SEED={seed})");
    seed
}

/// Clustered base and query vectors (flat, unnormalised).
pub fn dataset(seed: u64, n: usize, queries: usize) -> (Vec<f32>, Vec<f32>) {
    let mut g = data::Generator::new(DIMS, seed);
    (g.points(n), g.points(queries))
}

/// An index over `base` with ids 0..n.
pub fn build(config: IndexConfig, base: &[f32]) -> Index {
    let index = Index::new(config).unwrap();
    let items: Vec<(u64, &[f32])> = base
        .chunks_exact(DIMS)
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    index.insert_batch(&items).unwrap();
    index
}

/// Mean recall@k of `index` against brute force over the rows `keep` accepts (the entries the
/// index holds), checking that every search took `path` and returned exactly as many results
/// as brute force (`k`, or every entry when fewer).
pub fn mean_recall(
    index: &Index,
    base_norm: &[f32],
    queries: &[f32],
    k: usize,
    keep: &dyn Fn(usize) -> bool,
    path: SearchPath,
) -> f64 {
    let mut total = 0.0;
    let nq = queries.len() / DIMS;
    for q in queries.chunks_exact(DIMS) {
        let truth: Vec<u64> = data::brute_force(base_norm, DIMS, q, k, keep)
            .iter()
            .map(|x| x.0 as u64)
            .collect();
        let (hits, stats) = index.search_with_stats(q, k, None, None).unwrap();
        assert_eq!(stats.path, path, "{stats:?}");
        assert_eq!(hits.len(), truth.len(), "{stats:?}");
        let got: Vec<u64> = hits.iter().map(|x| x.0).collect();
        total += data::recall(&got, &truth);
    }
    total / nq as f64
}
