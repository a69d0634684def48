//! Searches from several threads while another thread inserts and removes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use glimpse_index::{IndexConfig, SearchPath};

use crate::common::{self, data, DIMS};

#[test]
fn concurrent_searches_during_inserts_and_removes() {
    let seed = common::seed("concurrency");
    let (n0, n1) = (2_000usize, 400usize);
    let (base, queries) = common::dataset(seed, n0 + n1, 50);
    let config = IndexConfig {
        exact_threshold: 0,
        ..IndexConfig::new(DIMS)
    };
    let index = Arc::new(common::build(config, &base[..n0 * DIMS]));
    let done = Arc::new(AtomicBool::new(false));
    // Ids >= 1_000_000 are inserted then removed by the writer; readers may see them only
    // transiently, never after the writer finished.
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (index, done, queries) = (index.clone(), done.clone(), queries.clone());
            thread::spawn(move || {
                let mut searches = 0usize;
                while !done.load(Ordering::Acquire) || searches < 20 {
                    let q = &queries[(searches % 50) * DIMS..][..DIMS];
                    let hits = index.search(q, 10, None).unwrap();
                    assert_eq!(hits.len(), 10, "reader {r}");
                    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
                    let filtered = index.search(q, 5, Some(&|id| id % 2 == 0)).unwrap();
                    assert_eq!(filtered.len(), 5, "reader {r}");
                    assert!(filtered.iter().all(|(id, _)| id % 2 == 0));
                    searches += 1;
                }
                searches
            })
        })
        .collect();
    let writer = {
        let (index, base) = (index.clone(), base.clone());
        thread::spawn(move || {
            for (i, v) in base[n0 * DIMS..].chunks_exact(DIMS).enumerate() {
                let id = (n0 + i) as u64;
                if i % 2 == 0 {
                    index.insert(id, v).unwrap();
                } else {
                    index.insert_batch(&[(id, v), (1_000_000 + id, v)]).unwrap();
                    assert!(index.remove(1_000_000 + id));
                }
            }
        })
    };
    writer.join().unwrap();
    done.store(true, Ordering::Release);
    for r in readers {
        println!("reader searches: {}", r.join().unwrap());
    }
    assert_eq!(index.len(), n0 + n1);
    let norm = data::normalize_rows(&base, DIMS);
    let walk = SearchPath::GraphWalk;
    let recall = common::mean_recall(&index, &norm, &queries, 10, &|_| true, walk);
    println!("recall@10 after concurrent build: {recall:.4}");
    assert!(recall >= 0.97, "recall {recall} (seed {seed})");
    for q in queries.chunks_exact(DIMS) {
        assert!(index
            .search(q, 10, None)
            .unwrap()
            .iter()
            .all(|h| h.0 < 1_000_000));
    }
}
