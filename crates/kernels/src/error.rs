//! The kernels' one error: an input the towers cannot take.

/// What the native towers reject.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input the model cannot take (wrong size, id outside the vocabulary, empty batch).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
