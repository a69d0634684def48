//! The crate's error type.
//!
//! Every failure names what it was about: the file, the checkpoint key and both shapes, the
//! backend that could not start. Nothing in this crate panics on bad input or a missing device.

use std::path::PathBuf;

/// Everything that can go wrong in `glimpse-encoder`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, mapped or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A model's `config.json` is not valid JSON or does not describe a supported CLIP model.
    #[error("invalid model config {path}: {message}")]
    Config {
        /// The config file (empty for a config built in code).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A safetensors file is malformed (bad header, offsets outside the file, ...).
    #[error("malformed checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// The checkpoint lacks a tensor the model needs.
    #[error("checkpoint is missing `{key}` (expected shape {expected:?})")]
    MissingWeight {
        /// The checkpoint key, e.g. `text_model.final_layer_norm.weight`.
        key: String,
        /// The shape the model expected for it.
        expected: Vec<usize>,
    },

    /// The checkpoint holds a tensor that no module of the loaded towers consumes.
    #[error("checkpoint has unexpected tensor `{key}` with shape {shape:?}")]
    UnexpectedWeight {
        /// The checkpoint key.
        key: String,
        /// Its shape in the checkpoint.
        shape: Vec<usize>,
    },

    /// A checkpoint tensor's shape disagrees with the config.
    #[error("`{key}` has shape {found:?} in the checkpoint but the config implies {expected:?}")]
    ShapeMismatch {
        /// The checkpoint key.
        key: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape found in the checkpoint.
        found: Vec<usize>,
    },

    /// A checkpoint tensor is stored in a dtype the loader cannot convert to `f32`.
    #[error("`{key}` has unsupported dtype {dtype}")]
    UnsupportedDType {
        /// The checkpoint key.
        key: String,
        /// The safetensors dtype name, e.g. `I8`.
        dtype: String,
    },

    /// The asked-for compute backend is not compiled in or has no usable device.
    #[error("backend `{backend}` is unavailable: {reason}")]
    BackendUnavailable {
        /// The backend's name (`flex`, `wgpu`).
        backend: &'static str,
        /// Why it cannot be used (feature not compiled, no adapter, ...).
        reason: String,
    },

    /// The model was loaded without the tower this call needs.
    #[error("the {tower} tower was not loaded (see `Towers`)")]
    TowerNotLoaded {
        /// `"text"` or `"vision"`.
        tower: &'static str,
    },

    /// An input has the wrong shape or size for the model (e.g. pixels of the wrong resolution,
    /// a token sequence longer than the model's context).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The backend failed while computing or reading back a result.
    #[error("backend execution failed: {0}")]
    Execution(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
