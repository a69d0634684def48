//! CLIP dual-tower encoder for Glimpse (work in progress: see the encoder issue).
#![deny(missing_docs)]

pub mod error;
pub mod tokenize;

pub use error::{Error, Result};
pub use tokenize::ClipTokenizer;
