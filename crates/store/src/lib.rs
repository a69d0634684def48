//! Durable metadata store for Glimpse (work in progress).
#![deny(missing_docs)]
