//! The store's error type: every failure names what it was doing and on which key or path.

use crate::record::ModelFingerprint;
use crate::ImageId;
use std::path::PathBuf;

/// Result alias used throughout `glimpse-store`.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the metadata store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// RocksDB reported an error (I/O, lock held by another process, corruption it detected).
    #[error("rocksdb error while {context}: {message}")]
    Db {
        /// What the store was doing.
        context: String,
        /// RocksDB's own message (its error type is kept out of our API).
        message: String,
    },
    /// Creating the store directory failed.
    #[error("cannot create store directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored value could not be decoded. Other records remain readable.
    #[error("data corruption at {key}: {cause}")]
    DataCorruption {
        /// Column family and key, human-readable.
        key: String,
        /// Why decoding failed.
        cause: String,
    },
    /// The store was written by a newer Glimpse whose schema this version does not know.
    #[error("store schema version {found} is newer than the supported version {supported}")]
    SchemaTooNew {
        /// Version found on disk.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// An embedding was written or read for a model other than the store's model.
    #[error("model mismatch: the store holds embeddings of {stored}, given {given}")]
    ModelMismatch {
        /// The store's model.
        stored: ModelFingerprint,
        /// The model the caller used.
        given: ModelFingerprint,
    },
    /// An embedding was written before the store was given a model fingerprint.
    #[error("no model fingerprint set: call Store::set_model before writing embeddings")]
    NoModel,
    /// An embedding's length differs from the model's dimension.
    #[error("embedding has {got} dimensions, the model has {expected}")]
    DimensionMismatch {
        /// The model's dimension.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The file system holding the store has less free space than the store keeps in reserve
    /// ([`DISK_RESERVE`](crate::DISK_RESERVE)): nothing was written, what was committed before
    /// is intact.
    #[error("disk full: {available} bytes free at {}, the store needs {needed}", path.display())]
    DiskFull {
        /// The store directory.
        path: PathBuf,
        /// Free bytes for an unprivileged writer.
        available: u64,
        /// The reserve the store needs.
        needed: u64,
    },
    /// An embedding that cannot be searched: NaN or infinite values, all zeros, or (when read
    /// back) a value of the wrong length or encoding. Refused on write; on read the row is
    /// reported and skipped, the other rows stay readable.
    #[error("invalid embedding{}: {reason}", id.map(|i| format!(" of image {i}")).unwrap_or_default())]
    InvalidEmbedding {
        /// The image, when known.
        id: Option<ImageId>,
        /// What is wrong.
        reason: String,
    },
    /// Another image already has this path.
    #[error("path {path:?} already belongs to image {id}")]
    PathTaken {
        /// The path.
        path: PathBuf,
        /// The image that owns it.
        id: ImageId,
    },
    /// No image with this id.
    #[error("no image with id {0}")]
    NotFound(ImageId),
}

impl Error {
    /// Wraps a RocksDB error with what the store was doing.
    pub(crate) fn db(context: impl Into<String>, err: rocksdb::Error) -> Self {
        Error::Db {
            context: context.into(),
            message: err.into_string(),
        }
    }

    pub(crate) fn corrupt(key: impl Into<String>, cause: impl Into<String>) -> Self {
        Error::DataCorruption {
            key: key.into(),
            cause: cause.into(),
        }
    }
}
