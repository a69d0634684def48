//! CLIP dual-tower encoder for Glimpse (work in progress: see the encoder issue).
#![deny(missing_docs)]

pub mod attention;
pub mod backend;
pub mod config;
pub mod encoder;
pub mod error;
pub mod loader;
pub mod mlp;
pub mod model;
pub mod synth;
pub mod text;
pub mod preprocess;
pub mod tokenize;
#[cfg(feature = "train")]
pub mod train;
pub mod vision;

pub use backend::Backend;
pub use burn::tensor::Device;
pub use config::{Activation, ClipConfig, ClipTextConfig, ClipVisionConfig};
pub use error::{Error, Result};
pub use model::{ClipModel, Towers};
pub use preprocess::{Pixels, PreprocessConfig, Preprocessor};
pub use tokenize::ClipTokenizer;
