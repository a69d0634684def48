//! Randomized recall against brute force on clustered 512-d data.

use glimpse_index::{IndexConfig, SearchPath};

use crate::common::{self, data, DIMS};

const N: usize = 5_000;
const QUERIES: usize = 100;

#[test]
fn recall_at_defaults_and_scores_are_exact_cosines() {
    let seed = common::seed("recall_at_defaults");
    let (base, queries) = common::dataset(seed, N, QUERIES);
    let norm = data::normalize_rows(&base, DIMS);
    let index = common::build(IndexConfig::new(DIMS), &base);
    assert_eq!(index.len(), N);
    assert!(
        N > index.config().exact_threshold,
        "this test is about the graph walk"
    );
    let r = common::mean_recall(
        &index,
        &norm,
        &queries,
        10,
        &|_| true,
        SearchPath::GraphWalk,
    );
    println!("recall@10 at defaults, n={N}: {r:.4}");
    assert!(r >= 0.98, "recall@10 {r} < 0.98 (seed {seed})");
    let stats = index.stats();
    println!("{stats:?}");
    assert_eq!(stats.unreachable, 0, "nodes no search can reach");

    // Every entry is found by its own vector: none is stranded in the graph.
    let lost: Vec<usize> = (0..N)
        .filter(|&i| {
            let hit = index
                .search(&norm[i * DIMS..(i + 1) * DIMS], 1, None)
                .unwrap();
            hit[0].0 != i as u64
        })
        .collect();
    assert!(
        lost.is_empty(),
        "not found by their own vectors: {lost:?} (seed {seed})"
    );

    for q in queries.chunks_exact(DIMS).take(20) {
        let hits = index.search(q, 10, None).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(
            hits.windows(2).all(|w| w[0].1 >= w[1].1),
            "not sorted best first"
        );
        let truth = data::brute_force(&norm, DIMS, q, N, |_| true);
        for (id, score) in hits {
            let exact = truth.iter().find(|t| t.0 as u64 == id).unwrap().1;
            assert!((score - exact).abs() < 1e-4 && (-1.0..=1.0).contains(&score));
        }
    }
}

/// Real CLIP embeddings have a few dimensions far larger than the rest. The walk scores 8-bit
/// codes quantised per dimension; recall and exact scores must survive such outliers, and a
/// single huge component in one vector (which stretches its dimension's range for all).
#[test]
fn recall_holds_with_outlier_dimensions() {
    let seed = common::seed("recall_with_outlier_dimensions");
    let (mut base, mut queries) = common::dataset(seed, N, QUERIES);
    for row in base
        .chunks_exact_mut(DIMS)
        .chain(queries.chunks_exact_mut(DIMS))
    {
        for (d, x) in row.iter_mut().enumerate().take(8) {
            *x = *x * 15.0 + if d % 2 == 0 { 6.0 } else { -4.0 };
        }
    }
    // One vector almost entirely along dimension 100.
    base[7 * DIMS + 100] = 1e4;
    let norm = data::normalize_rows(&base, DIMS);
    let index = common::build(IndexConfig::new(DIMS), &base);
    let r = common::mean_recall(
        &index,
        &norm,
        &queries,
        10,
        &|_| true,
        SearchPath::GraphWalk,
    );
    println!("recall@10 with outlier dimensions, n={N}: {r:.4}");
    assert!(r >= 0.98, "recall@10 {r} < 0.98 (seed {seed})");
    for q in queries.chunks_exact(DIMS).take(10) {
        let truth = data::brute_force(&norm, DIMS, q, N, |_| true);
        let hits = index.search(q, 10, None).unwrap();
        assert_eq!(hits.len(), 10);
        for (id, score) in hits {
            let exact = truth.iter().find(|t| t.0 as u64 == id).unwrap().1;
            assert!((score - exact).abs() < 1e-4, "score {score} != {exact}");
        }
    }
}

#[test]
fn removed_ids_never_return_and_recall_holds() {
    let seed = common::seed("removed_ids_never_return");
    const N: usize = 3_000;
    let (base, queries) = common::dataset(seed, N, QUERIES);
    let norm = data::normalize_rows(&base, DIMS);
    // Once with automatic compaction (defaults: at 25 % tombstones), once with tombstones only.
    for compact_ratio in [IndexConfig::new(DIMS).compact_ratio, 1.0] {
        // exact_threshold 0: the live count drops below the default threshold, and this test
        // is about the graph.
        let config = IndexConfig {
            compact_ratio,
            exact_threshold: 0,
            ..IndexConfig::new(DIMS)
        };
        let index = common::build(config, &base);
        let removed: Vec<bool> = (0..N as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed) % 10 < 3)
            .collect();
        let n_removed = removed.iter().filter(|r| **r).count();
        for (i, _) in removed.iter().enumerate().filter(|(_, r)| **r) {
            assert!(index.remove(i as u64));
        }
        assert!(!index.remove(u64::MAX));
        let stats = index.stats();
        assert_eq!(stats.len, N - n_removed);
        println!("compact_ratio {compact_ratio}: {stats:?}");
        if compact_ratio == 1.0 {
            assert_eq!(stats.tombstones, n_removed);
        } else {
            assert!(stats.tombstones < n_removed, "compaction did not run");
        }
        for q in queries.chunks_exact(DIMS) {
            let hits = index.search(q, 10, None).unwrap();
            assert_eq!(hits.len(), 10);
            for (id, _) in hits {
                assert!(
                    !removed[id as usize],
                    "removed id {id} returned (seed {seed})"
                );
            }
        }
        let walk = SearchPath::GraphWalk;
        let r = common::mean_recall(&index, &norm, &queries, 10, &|i| !removed[i], walk);
        println!("recall@10 with 30% removed (compact_ratio {compact_ratio}): {r:.4}");
        assert!(r >= 0.98, "recall {r} < 0.98 after removals (seed {seed})");
        index.compact();
        assert_eq!(index.stats().tombstones, 0);
        let r = common::mean_recall(&index, &norm, &queries, 10, &|i| !removed[i], walk);
        assert!(
            r >= 0.98,
            "recall {r} < 0.98 after compaction (seed {seed})"
        );
    }
}

#[test]
fn small_collections_are_exact() {
    let seed = common::seed("small_collections_are_exact");
    let (base, queries) = common::dataset(seed, 500, 50);
    let norm = data::normalize_rows(&base, DIMS);
    let index = common::build(IndexConfig::new(DIMS), &base);
    let r = common::mean_recall(
        &index,
        &norm,
        &queries,
        10,
        &|_| true,
        SearchPath::ExactScan,
    );
    assert_eq!(r, 1.0, "below exact_threshold the search must be exact");
}

/// The per-call `ef` reaches the walk: a wider candidate list visits more nodes and finds
/// more true neighbours on data where the narrow one misses some (weakly clustered, noisy:
/// the walk's greedy steps mislead more often), and an `ef` below `k` is raised to `k`.
#[test]
fn per_call_ef_trades_recall() {
    let seed = common::seed("per_call_ef");
    let hard = data::Mixture {
        clusters: 1_000,
        spread: 1.0,
        noise: 1.0,
        ..data::Mixture::default()
    };
    let mut g = data::Generator::with_mixture(DIMS, seed, hard);
    let (base, queries) = (g.points(3_000), g.points(100));
    let config = IndexConfig {
        exact_threshold: 0,
        ..IndexConfig::new(DIMS)
    };
    let index = common::build(config, &base);
    let norm = data::normalize_rows(&base, DIMS);
    // (mean recall@10, mean nodes visited) at `ef`.
    let run = |ef: usize| {
        let (mut recall, mut visited) = (0.0, 0usize);
        for q in queries.chunks_exact(DIMS) {
            let truth: Vec<u64> = data::brute_force(&norm, DIMS, q, 10, |_| true)
                .iter()
                .map(|x| x.0 as u64)
                .collect();
            let (hits, stats) = index.search_with_stats(q, 10, None, Some(ef)).unwrap();
            assert_eq!(stats.path, SearchPath::GraphWalk, "{stats:?}");
            assert_eq!(stats.ef, ef.max(10), "{stats:?}");
            assert_eq!(hits.len(), 10);
            let got: Vec<u64> = hits.iter().map(|x| x.0).collect();
            recall += data::recall(&got, &truth);
            visited += stats.visited;
        }
        (recall / 100.0, visited as f64 / 100.0)
    };
    let ((low, low_visits), (high, high_visits)) = (run(10), run(400));
    println!(
        "recall@10: ef=10 {low:.4} ({low_visits:.0} nodes), ef=400 {high:.4} ({high_visits:.0} nodes)"
    );
    assert!(
        high_visits > 4.0 * low_visits,
        "ef 400 visited {high_visits} nodes, ef 10 {low_visits} (seed {seed})"
    );
    assert!(high >= 0.99, "recall at ef 400: {high} (seed {seed})");
    assert!(
        high - low >= 0.05,
        "ef 10 recall {low} vs ef 400 {high}: ef made no difference (seed {seed})"
    );
    // An ef below k is raised to k.
    for q in queries.chunks_exact(DIMS).take(10) {
        assert_eq!(
            index.search_with_ef(q, 10, None, 1).unwrap(),
            index.search_with_ef(q, 10, None, 10).unwrap()
        );
    }
}

/// The largest `m` the configuration allows: layer-0 lists of `2·m` links plus the snapshot's
/// repair slots pass 256 (the walk's scratch once held 256), and searches still walk and find.
#[test]
fn the_largest_m_walks_and_finds() {
    let seed = common::seed("largest_m");
    let dims = 64;
    let mut g = data::Generator::new(dims, seed);
    let (base, queries) = (g.points(2_000), g.points(20));
    let norm = data::normalize_rows(&base, dims);
    for m in [127, 128] {
        let config = IndexConfig {
            m,
            ef_construction: 256,
            exact_threshold: 0,
            ..IndexConfig::new(dims)
        };
        let index = glimpse_index::Index::new(config).unwrap();
        let items: Vec<(u64, &[f32])> = base
            .chunks_exact(dims)
            .enumerate()
            .map(|(i, v)| (i as u64, v))
            .collect();
        index.insert_batch(&items).unwrap();
        let stats = index.stats();
        println!("m = {m}: {stats:?}");
        let mut total = 0.0;
        for q in queries.chunks_exact(dims) {
            let (hits, s) = index.search_with_stats(q, 10, None, None).unwrap();
            assert_eq!(s.path, SearchPath::GraphWalk, "m = {m}: {s:?}");
            assert_eq!(hits.len(), 10);
            let truth: Vec<u64> = data::brute_force(&norm, dims, q, 10, |_| true)
                .iter()
                .map(|x| x.0 as u64)
                .collect();
            let got: Vec<u64> = hits.iter().map(|h| h.0).collect();
            total += data::recall(&got, &truth);
        }
        let r = total / 20.0;
        assert!(r >= 0.95, "m = {m}: recall@10 {r} (seed {seed})");
    }
}
