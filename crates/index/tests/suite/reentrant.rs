//! Filters that call back into the index they filter: reads work (also while a writer waits),
//! writes panic with a message; nothing deadlocks.
//!
//! A deadlock would hang the test, so each scenario runs on its own thread and the test fails
//! when it does not finish in time.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use glimpse_index::{Index, IndexConfig, SearchPath};

use crate::common::{self, DIMS};

/// Generous: each scenario takes well under a second when it works.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `f` on a new thread; fails the test if it does not return within [`DEADLINE`].
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: no answer after {DEADLINE:?}: deadlock"),
    }
}

fn index(seed: u64, n: usize) -> (Arc<Index>, Vec<f32>, Vec<f32>) {
    let (base, queries) = common::dataset(seed, n, 10);
    let config = IndexConfig {
        exact_threshold: 0,
        ..IndexConfig::new(DIMS)
    };
    (Arc::new(common::build(config, &base)), base, queries)
}

/// A filter keeping 80 % of the ids: broad enough to be applied during the graph walk.
fn broad(id: u64) -> bool {
    !id.is_multiple_of(5)
}

#[test]
fn a_filter_may_read_and_search_the_index() {
    let seed = common::seed("reentrant_reads");
    let n = 3_000;
    let (index, _, queries) = index(seed, n);
    within_deadline("re-entrant reads", move || {
        for q in queries.chunks_exact(DIMS).take(3) {
            let (plain, plain_stats) = index.search_with_stats(q, 10, Some(&broad), None).unwrap();
            assert_eq!(plain_stats.path, SearchPath::GraphWalk, "{plain_stats:?}");
            let calls = Cell::new(0usize);
            let nosy = |id: u64| {
                calls.set(calls.get() + 1);
                assert_eq!(index.len(), n);
                assert!(index.contains(id));
                let v = index.get(id).unwrap();
                assert_eq!(index.stats().len, n);
                // A search from inside the filter (a graph walk, itself filtered by a filter
                // that reads the index), and an exact one.
                let inner = index
                    .search(&v, 3, Some(&|other| index.contains(other)))
                    .unwrap();
                assert_eq!(inner.len(), 3);
                assert_eq!(index.search_exact(&v, 1, None).unwrap()[0].0, id);
                broad(id)
            };
            let (hits, stats) = index.search_with_stats(q, 10, Some(&nosy), None).unwrap();
            assert_eq!(stats.path, SearchPath::GraphWalk, "{stats:?}");
            assert!(calls.get() > 10);
            assert_eq!(hits, plain);
        }
    });
}

/// The search holds the read lock while its filter runs; a writer queued behind it must not
/// make the filter's own reads wait (parking_lot's fair `read` would: deadlock).
#[test]
fn a_filter_reading_the_index_while_a_writer_waits_does_not_deadlock() {
    let seed = common::seed("reentrant_writer_waits");
    let n = 3_000;
    let (index, base, queries) = index(seed, n);
    let (go, wait) = mpsc::channel::<()>();
    let writer = {
        let (index, v) = (index.clone(), base[..DIMS].to_vec());
        thread::spawn(move || {
            wait.recv().unwrap();
            // Blocks on the write lock until the search below has finished.
            index.insert(1_000_000, &v).unwrap();
        })
    };
    let searcher = index.clone();
    let hits = within_deadline("filter reads with a queued writer", move || {
        let go = Cell::new(Some(go));
        let filter = |id: u64| {
            if let Some(go) = go.take() {
                go.send(()).unwrap();
                // Let the writer reach the lock and queue behind this search.
                thread::sleep(Duration::from_millis(300));
            }
            searcher.len() >= n
                && searcher.contains(id)
                && !searcher
                    .search(&queries[..DIMS], 1, None)
                    .unwrap()
                    .is_empty()
                && broad(id)
        };
        let (hits, stats) = searcher
            .search_with_stats(&queries[DIMS..2 * DIMS], 10, Some(&filter), None)
            .unwrap();
        assert_eq!(stats.path, SearchPath::GraphWalk, "{stats:?}");
        hits
    });
    assert_eq!(hits.len(), 10);
    writer.join().unwrap();
    assert!(index.contains(1_000_000));
}

/// Several threads search with filters that read the index while another inserts and
/// removes: every search finishes.
#[test]
fn reentrant_filters_under_concurrent_writes() {
    let seed = common::seed("reentrant_concurrent");
    let n = 2_500;
    let (index, base, queries) = index(seed, n);
    let done = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (index, queries, done, searches) = (
                index.clone(),
                queries.clone(),
                done.clone(),
                searches.clone(),
            );
            thread::spawn(move || {
                let mut i = 0;
                while !done.load(Ordering::Acquire) || i < 5 {
                    let q = &queries[(i % 10) * DIMS..][..DIMS];
                    let filter = |id: u64| index.len() >= n && index.contains(id) && broad(id);
                    let hits = index.search(q, 10, Some(&filter)).unwrap();
                    assert_eq!(hits.len(), 10, "reader {r}");
                    searches.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    within_deadline("re-entrant filters with a writer", move || {
        for (i, v) in base.chunks_exact(DIMS).take(300).enumerate() {
            let id = 1_000_000 + i as u64;
            index.insert(id, v).unwrap();
            if i % 3 == 0 {
                assert!(index.remove(id));
            }
        }
        done.store(true, Ordering::Release);
        for r in readers {
            r.join().unwrap();
        }
    });
    println!("searches: {}", searches.load(Ordering::Relaxed));
}

/// A filter that changes the index cannot be served (the write would wait for the search
/// that runs the filter): it panics with a message, and the index stays usable.
#[test]
fn a_filter_that_writes_panics_instead_of_deadlocking() {
    let seed = common::seed("reentrant_write");
    let n = 3_000;
    let (index, base, queries) = index(seed, n);
    let message = within_deadline("write from a filter", move || {
        let panic = catch_unwind(AssertUnwindSafe(|| {
            index.search(&queries[..DIMS], 10, Some(&|id| index.remove(id)))
        }))
        .expect_err("a write from inside a filter must panic");
        assert_eq!(index.len(), n, "nothing was removed");
        // The lock was released by the unwinding search.
        index.insert(1_000_000, &base[..DIMS]).unwrap();
        assert!(index.remove(1_000_000));
        assert_eq!(index.search(&queries[..DIMS], 10, None).unwrap().len(), 10);
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    });
    assert!(
        message.contains("inside a search filter"),
        "unexpected panic: {message}"
    );
}
