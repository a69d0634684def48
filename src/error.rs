//! The library's error type.

use crate::{EncoderError, IndexError, StoreError};
use std::path::PathBuf;

/// `Result` with Glimpse's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in a [`Library`](crate::Library). Errors about one photo name
/// its path; errors from the layers below keep their own context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The metadata store failed (I/O, corruption, schema).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The nearest-neighbour index failed.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// The model failed to load or run, or an image failed to decode or preprocess (e.g.
    /// [`EncoderError::ImageTooLarge`]).
    #[error("encoder: {0}")]
    Encoder(#[from] EncoderError),
    /// The library was built with another model. Open it with that model, or ask the builder
    /// to re-embed every photo with the new one ([`LibraryBuilder::reembed_on_model_change`]).
    ///
    /// [`LibraryBuilder::reembed_on_model_change`]: crate::LibraryBuilder::reembed_on_model_change
    #[error("model mismatch: the library was built with {stored}, given {given}")]
    ModelMismatch {
        /// The model the library's embeddings come from.
        stored: String,
        /// The model given now.
        given: String,
    },
    /// Reading a file or directory failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file that should be an image is not one of the supported formats.
    #[error("{} is not an image: {reason}", path.display())]
    NotAnImage {
        /// The file.
        path: PathBuf,
        /// Why (empty file, unknown signature).
        reason: String,
    },
    /// A symbolic link leads back to one of its own ancestors; it was not followed.
    #[error("symlink loop: {} leads back to {}", path.display(), ancestor.display())]
    SymlinkLoop {
        /// The link.
        path: PathBuf,
        /// The ancestor it points to.
        ancestor: PathBuf,
    },
    /// No model directory was given and none could be found.
    #[error("no model: {0}")]
    NoModel(String),
    /// A model file could not be fetched from the Hugging Face Hub (feature `download`): no
    /// network, offline mode, or no such repository or file.
    #[error("downloading {repo}/{file}: {message}")]
    Download {
        /// The repository, e.g. `openai/clip-vit-base-patch32`.
        repo: String,
        /// The file that failed.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// No image with this id or path in the library.
    #[error("not in the library: {0}")]
    NotFound(String),
    /// The operation was cancelled through its [`CancelToken`](crate::CancelToken).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
