//! Integration tests for `glimpse-index`: one binary, topic modules under `suite/`.

mod common;

#[path = "suite/concurrency.rs"]
mod concurrency;
#[path = "suite/errors.rs"]
mod errors;
#[path = "suite/filter.rs"]
mod filter;
#[path = "suite/persistence.rs"]
mod persistence;
#[path = "suite/recall.rs"]
mod recall;
#[path = "suite/reentrant.rs"]
mod reentrant;
