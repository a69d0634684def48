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
    /// The query model given to [`LibraryBuilder::query_model`] does not fit the library's
    /// image model: its embeddings have another dimension, it declares another image model,
    /// or (checked) it declares none. [`LibraryBuilder::query_model_unchecked`] skips the
    /// declaration check (never the dimension).
    ///
    /// [`LibraryBuilder::query_model`]: crate::LibraryBuilder::query_model
    /// [`LibraryBuilder::query_model_unchecked`]: crate::LibraryBuilder::query_model_unchecked
    #[error("query model {}: {reason}", path.display())]
    QueryModelMismatch {
        /// The query model's directory.
        path: PathBuf,
        /// What does not fit.
        reason: String,
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
    /// The path names a FIFO, socket or device, not a regular file: it was not opened for
    /// reading (a FIFO would block the reader forever).
    #[error("{} is a {kind}, not a regular file; not read", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is: `"FIFO"`, `"socket"`, `"character device"`, `"block device"`, ...
        kind: &'static str,
    },
    /// The file is larger than the limit ([`IndexOptions::max_file_bytes`]); refused from its
    /// metadata, before any byte was read.
    ///
    /// [`IndexOptions::max_file_bytes`]: crate::IndexOptions::max_file_bytes
    #[error("{} is {size} bytes, over the {limit}-byte limit; not read", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading, decoding or preprocessing this file panicked (a bug in a decoder, or in
    /// Glimpse): that file failed, the rest of the run went on.
    #[error("processing {} panicked: {message}", path.display())]
    Panic {
        /// The file.
        path: PathBuf,
        /// The panic's message.
        message: String,
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
    /// The model produced an embedding that cannot be searched (NaN or infinite values, all
    /// zeros, wrong length) — typically a broken model or `preprocessor_config.json`. Nothing
    /// was stored for this photo.
    #[error("{}: the model produced an invalid embedding ({reason}); not stored", path.display())]
    InvalidEmbedding {
        /// The photo.
        path: PathBuf,
        /// What is wrong with the embedding.
        reason: String,
    },
    /// Photos of the library were not found where they were indexed, but their absence is not
    /// certain (an unreadable or emptied folder, a vanished mount, an I/O error): their records
    /// were kept. Remove them explicitly ([`Library::remove`](crate::Library::remove)) if they
    /// are really gone.
    #[error("{photos} photo(s) under {} not found but kept: {reason}", path.display())]
    KeptMissing {
        /// The folder (or file) in doubt.
        path: PathBuf,
        /// How many photos were kept.
        photos: usize,
        /// Why their absence is in doubt.
        reason: String,
    },
    /// A Parquet file could not be written or read (feature `parquet`): not Parquet, damaged,
    /// or without the columns of an export (see `glimpse::export::schema`).
    #[error("parquet {}: {message}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A Parquet file's embeddings come from another model than the library's (or its
    /// metadata names no model): nothing of it was imported (feature `parquet`).
    #[error("{}: embeddings of {found}, the library uses {expected}; not imported", path.display())]
    ImportModelMismatch {
        /// The file.
        path: PathBuf,
        /// The model named in the file's metadata (`"no model"` when absent).
        found: String,
        /// The library's model.
        expected: String,
    },
    /// A write failed because the disk is full. What was committed before is intact; free
    /// space and run again.
    #[error("disk full while writing {}: {message}", path.display())]
    DiskFull {
        /// The file or directory being written.
        path: PathBuf,
        /// The underlying error.
        message: String,
    },
}

impl Error {
    /// This error as [`Error::DiskFull`] when it is one (ENOSPC or a quota, from the file
    /// system, the index or RocksDB); otherwise unchanged.
    pub(crate) fn disk_full(self) -> Self {
        fn full(e: &std::io::Error) -> bool {
            e.kind() == std::io::ErrorKind::StorageFull
                || e.kind() == std::io::ErrorKind::QuotaExceeded
                || matches!(e.raw_os_error(), Some(28) | Some(122))
        }
        match self {
            Error::Io { path, source } if full(&source) => Error::DiskFull {
                path,
                message: source.to_string(),
            },
            Error::Index(IndexError::Io { path, source }) if full(&source) => Error::DiskFull {
                path,
                message: source.to_string(),
            },
            Error::Store(StoreError::Io { path, source }) if full(&source) => Error::DiskFull {
                path,
                message: source.to_string(),
            },
            Error::Store(StoreError::DiskFull {
                path,
                available,
                needed,
            }) => Error::DiskFull {
                path,
                message: format!("{available} bytes free, the store needs {needed}"),
            },
            Error::Store(StoreError::Db { context, message })
                if message.contains("No space left") || message.contains("NoSpace") =>
            {
                Error::DiskFull {
                    path: PathBuf::from(crate::STORE_DIR),
                    message: format!("{context}: {message}"),
                }
            }
            e => e,
        }
    }

    /// [`Error::Panic`] for `path` from a caught panic's payload.
    pub(crate) fn panic(path: impl Into<PathBuf>, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Error::Panic {
            path: path.into(),
            message,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
