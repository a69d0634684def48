//! HNSW approximate nearest-neighbour index for Glimpse (work in progress: see the index issue).
#![deny(missing_docs)]
