//! Filters that call back into the index they filter.
//!
//! A search runs the caller's filter while it holds the state's read lock. parking_lot's
//! `RwLock` is fair: once a writer waits, a new `read()` waits behind it, even on a thread
//! that already holds a read lock. A filter calling `index.len()` (or another `search`) while
//! an insert waits would then wait for the insert, which waits for the search: a deadlock.
//!
//! So a search marks its thread while its filter may run ([`FilterScope`]), and the index's
//! read paths take the lock with `read_recursive` on a marked thread — which never blocks
//! while a read lock is held, and this thread holds one — and with the fair `read` everywhere
//! else, so writers are not starved by ordinary searches. Writes from inside a filter cannot
//! be made to work (the writer would wait for the very search that called it); they panic
//! with a message instead of deadlocking ([`assert_not_filtering`]).
//!
//! The mark is per thread: a filter that hands the index to *another* thread and waits for it
//! is not covered (that thread's read waits behind a queued writer as usual).

use std::cell::RefCell;

thread_local! {
    /// Addresses of the indexes whose state this thread holds a read lock on while it runs a
    /// caller's filter (a stack: filters may nest).
    static FILTERING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks the current thread as running a filter of the index at `key` until dropped (also
/// when the filter panics).
pub(crate) struct FilterScope {
    key: usize,
}

impl FilterScope {
    /// Enter while holding the index's state read lock, before any filter runs.
    pub(crate) fn enter(key: usize) -> Self {
        FILTERING.with(|f| f.borrow_mut().push(key));
        FilterScope { key }
    }
}

impl Drop for FilterScope {
    fn drop(&mut self) {
        FILTERING.with(|f| {
            let mut f = f.borrow_mut();
            if let Some(at) = f.iter().rposition(|&k| k == self.key) {
                f.remove(at);
            }
        });
    }
}

/// True when this thread is inside a filter of the index at `key` (and so holds its read
/// lock).
pub(crate) fn filtering(key: usize) -> bool {
    FILTERING.with(|f| f.borrow().contains(&key))
}

/// Panics when this thread is inside a filter of the index at `key`: `operation` would wait
/// for the lock that the search running the filter holds.
pub(crate) fn assert_not_filtering(key: usize, operation: &str) {
    assert!(
        !filtering(key),
        "Index::{operation} called from inside a search filter of the same index: a filter may \
         read the index (len, contains, get, stats, search) but not change or save it"
    );
}
