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

    /// A model's `config.json` names an architecture Glimpse does not load.
    #[error(
        "{path}: unsupported model architecture `{found}` (supported: {})",
        crate::architecture::Architecture::SUPPORTED
    )]
    UnsupportedArchitecture {
        /// The config file.
        path: PathBuf,
        /// The `model_type` / `architectures` entry found.
        found: String,
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

    /// A sentence-transformers directory that Glimpse does not load as a query tower: modules
    /// other than Transformer → Pooling → Dense [→ Normalize], an unsupported pooling mode or
    /// activation, weights only in `pytorch_model.bin`, sizes that do not chain.
    #[error("{path}: unsupported sentence-transformers layout: {message}")]
    UnsupportedLayout {
        /// The file (or directory) at fault.
        path: PathBuf,
        /// What is wrong, and what is supported.
        message: String,
    },

    /// A `tokenizer.json` could not be loaded, lacks CLIP's special tokens, or failed to encode.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A `preprocessor_config.json` is not valid JSON or has a missing, mistyped or unsupported
    /// key.
    #[error("invalid preprocessor config {path}: {message}")]
    PreprocessorConfig {
        /// The config file (empty for a config built in code).
        path: PathBuf,
        /// What is wrong with it, naming the key.
        message: String,
    },

    /// An image file is empty (zero bytes).
    #[error("empty image file {path}")]
    EmptyImage {
        /// The image (a label such as `<memory>` for in-memory bytes).
        path: PathBuf,
    },

    /// The path names something other than a regular file (a FIFO, socket, device or
    /// directory); it was not opened for reading.
    #[error("{path} is a {kind}, not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is: `"FIFO"`, `"socket"`, `"character device"`, ...
        kind: &'static str,
    },

    /// The bytes are not in any image format the decoder knows.
    #[error("{path} is not a supported image")]
    UnsupportedImage {
        /// The image (a label such as `<memory>` for in-memory bytes).
        path: PathBuf,
    },

    /// The image declares dimensions beyond the decoding limits (a decompression bomb or
    /// simply too large); rejected before its pixels are allocated.
    #[error("image {path} is too large to decode: {message}")]
    ImageTooLarge {
        /// The image (a label such as `<memory>` for in-memory bytes).
        path: PathBuf,
        /// The declared size or the limit that was hit.
        message: String,
    },

    /// The image is corrupt or truncated.
    #[error("cannot decode image {path}: {message}")]
    ImageDecode {
        /// The image (a label such as `<memory>` for in-memory bytes).
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },

    /// An input has the wrong shape or size for the model (e.g. pixels of the wrong resolution,
    /// a token sequence longer than the model's context).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A training data set is malformed (a bad `captions.tsv` line, no images, ...).
    #[error("invalid training data {path}: {message}")]
    Dataset {
        /// The data set's caption file or folder.
        path: PathBuf,
        /// What is wrong with it, naming the line where there is one.
        message: String,
    },

    /// The backend failed while computing or reading back a result.
    #[error("backend execution failed: {0}")]
    Execution(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<glimpse_kernels::Error> for Error {
    fn from(e: glimpse_kernels::Error) -> Self {
        match e {
            glimpse_kernels::Error::InvalidInput(message) => Error::InvalidInput(message),
            other => Error::Execution(other.to_string()),
        }
    }
}
