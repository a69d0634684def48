//! Filtered search: only allowed ids, and k of them whenever k exist.

use glimpse_index::{IndexConfig, SearchPath};

use crate::common::{self, data, DIMS};

#[test]
fn filters_return_only_allowed_ids_and_k_of_them() {
    let seed = common::seed("filters");
    let n = 3_000;
    let (base, queries) = common::dataset(seed, n, 50);
    let norm = data::normalize_rows(&base, DIMS);
    let config = IndexConfig {
        exact_threshold: 0,
        ..IndexConfig::new(DIMS)
    };
    let index = common::build(config, &base);
    // Selectivities from 50 % down to 1 % (60 ids) and a filter keeping only 3 ids.
    for (name, modulus) in [("50%", 2u64), ("10%", 10), ("1%", 100), ("3 ids", 1_000)] {
        let allowed = |id: u64| id % modulus == 1;
        let n_allowed = (0..n as u64).filter(|&i| allowed(i)).count();
        let mut total_recall = 0.0;
        for q in queries.chunks_exact(DIMS) {
            let (hits, stats) = index
                .search_with_stats(q, 10, Some(&allowed), None)
                .unwrap();
            // So few pass (at most 50 % of 3000) that scanning them beats the walk.
            assert_eq!(stats.path, SearchPath::FilterScan, "{name}: {stats:?}");
            assert_eq!(
                hits.len(),
                10.min(n_allowed),
                "{name}: wrong count (seed {seed})"
            );
            assert!(
                hits.iter().all(|(id, _)| allowed(*id)),
                "{name}: disallowed id"
            );
            let truth: Vec<u64> = data::brute_force(&norm, DIMS, q, 10, |i| allowed(i as u64))
                .iter()
                .map(|x| x.0 as u64)
                .collect();
            let got: Vec<u64> = hits.iter().map(|h| h.0).collect();
            total_recall += data::recall(&got, &truth);
        }
        let r = total_recall / 50.0;
        println!("filter {name}: recall@10 {r:.4}");
        assert!(r >= 0.95, "filter {name}: recall {r} (seed {seed})");
    }
    // A filter nothing passes.
    let q = &queries[..DIMS];
    assert!(index.search(q, 10, Some(&|_| false)).unwrap().is_empty());
}

#[test]
fn filters_and_tombstones_combine() {
    let seed = common::seed("filters_and_tombstones");
    let (base, queries) = common::dataset(seed, 2_000, 20);
    let config = IndexConfig {
        compact_ratio: 1.0,
        exact_threshold: 0,
        ..IndexConfig::new(DIMS)
    };
    let index = common::build(config, &base);
    for id in (0..2_000u64).filter(|i| i % 3 == 0) {
        index.remove(id);
    }
    let even = |id: u64| id.is_multiple_of(2);
    for q in queries.chunks_exact(DIMS) {
        let hits = index.search(q, 10, Some(&even)).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(
            hits.iter().all(|(id, _)| even(*id) && id % 3 != 0),
            "seed {seed}"
        );
    }
}

/// Above `exact_threshold`, a filter that keeps many entries is applied during the graph walk
/// (not by the exact scan), and the walk itself finds k allowed neighbours with the recall of
/// an unfiltered walk.
#[test]
fn broad_filters_are_applied_during_the_graph_walk() {
    let seed = common::seed("filtered_walk");
    let n = 5_000;
    let (base, queries) = common::dataset(seed, n, 50);
    let norm = data::normalize_rows(&base, DIMS);
    let index = common::build(IndexConfig::new(DIMS), &base);
    assert!(n > index.config().exact_threshold);
    for (name, keep) in [("50%", 2u64), ("80%", 5)] {
        // Drops every `keep`-th id (80 %) or every other one (50 %).
        let allowed = |id: u64| {
            if keep == 2 {
                id % 2 == 1
            } else {
                !id.is_multiple_of(keep)
            }
        };
        let mut total_recall = 0.0;
        for q in queries.chunks_exact(DIMS) {
            let (hits, stats) = index
                .search_with_stats(q, 10, Some(&allowed), None)
                .unwrap();
            assert_eq!(stats.path, SearchPath::GraphWalk, "{name}: {stats:?}");
            assert_eq!((hits.len(), stats.walk_hits), (10, 10), "{name}: {stats:?}");
            assert!(stats.visited > 0 && stats.visited < n, "{name}: {stats:?}");
            assert!(
                hits.iter().all(|(id, _)| allowed(*id)),
                "{name}: disallowed id"
            );
            let truth: Vec<u64> = data::brute_force(&norm, DIMS, q, 10, |i| allowed(i as u64))
                .iter()
                .map(|x| x.0 as u64)
                .collect();
            let got: Vec<u64> = hits.iter().map(|h| h.0).collect();
            total_recall += data::recall(&got, &truth);
        }
        let r = total_recall / 50.0;
        println!("filtered walk {name}: recall@10 {r:.4}");
        assert!(r >= 0.97, "filtered walk {name}: recall {r} (seed {seed})");
    }
    // A selective filter at the same size is scanned.
    let rare = |id: u64| id.is_multiple_of(100);
    let (hits, stats) = index
        .search_with_stats(&queries[..DIMS], 10, Some(&rare), None)
        .unwrap();
    assert_eq!(stats.path, SearchPath::FilterScan, "{stats:?}");
    assert_eq!(hits.len(), 10);
}
