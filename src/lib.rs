//! Glimpse: an embedded text-to-image search engine (work in progress).
#![deny(missing_docs)]
