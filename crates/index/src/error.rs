//! The crate's error type.

use std::path::PathBuf;

/// `Result` with this crate's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in `glimpse-index`.
///
/// Vector errors carry the id being inserted (`None` for a query); file errors carry the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field is out of range.
    #[error("invalid index configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A vector does not have the index's dimension.
    #[error("vector{} has {got} dimensions, the index expects {expected}", for_id(*.id))]
    DimensionMismatch {
        /// The id being inserted, `None` for a query.
        id: Option<u64>,
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A vector contains NaN or an infinity.
    #[error("vector{} has a non-finite component at position {position}", for_id(*.id))]
    NonFinite {
        /// The id being inserted, `None` for a query.
        id: Option<u64>,
        /// Position of the first non-finite component.
        position: usize,
    },
    /// A vector is all zeros (or so small that it cannot be normalised).
    #[error("vector{} is all zeros and has no direction", for_id(*.id))]
    ZeroVector {
        /// The id being inserted, `None` for a query.
        id: Option<u64>,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a Glimpse index (wrong magic bytes) or is missing.
    #[error("{} is not a glimpse index file", path.display())]
    NotAnIndex {
        /// The file.
        path: PathBuf,
    },
    /// The file was written in a format version this build does not read.
    #[error("{} has format version {found}, this build reads version {supported}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// The file is truncated or its contents fail the checksum or consistency checks.
    #[error("index file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// The file is intact but does not match what the caller expected (e.g. its dimension).
    #[error("index file {} is incompatible: {reason}", path.display())]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The graph library failed to dump or reload its graph.
    #[error("graph {operation} failed: {reason}")]
    Graph {
        /// `"dump"` or `"reload"`.
        operation: &'static str,
        /// The library's message.
        reason: String,
    },
}

fn for_id(id: Option<u64>) -> String {
    id.map(|id| format!(" for id {id}")).unwrap_or_default()
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
