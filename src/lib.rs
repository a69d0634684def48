//! Glimpse: an embedded text-to-image search engine.
//!
//! Link it, point it at a photo folder, and find photos by describing them or by showing an
//! example. The CLIP model, the HNSW index and the RocksDB metadata live in-process and on local
//! disk; nothing runs as a server.
//!
//! ```
//! use glimpse::{IndexOptions, Library};
//! # fn main() -> glimpse::Result<()> {
//! # let model = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/encoder/tests/fixtures/tiny-clip");
//! # let photos = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/encoder/tests/fixtures/images");
//! let dir = tempfile::tempdir().unwrap();
//! let library = Library::builder().model(model).open(dir.path())?;
//!
//! // Walk the folder, embed every photo, commit batch by batch.
//! let report = library.index_folder(photos, &IndexOptions::default())?;
//! assert!(report.added > 0);
//!
//! // Search by text: hits are (id, path, cosine score), best first.
//! let hits = library.search_text("a red square on a striped background", 3)?;
//! assert_eq!(hits.len(), 3);
//! assert!(hits[0].score >= hits[1].score);
//!
//! // Re-indexing an unchanged folder reads nothing and encodes nothing.
//! let again = library.index_folder(photos, &IndexOptions::default())?;
//! assert_eq!(again.encoded(), 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Concepts
//! - **Library**: a directory with `store/` (RocksDB: records, paths, content hashes,
//!   embeddings, model fingerprint — the source of truth) and `index/` (the HNSW index, derived
//!   from the store and rebuilt from it whenever it is missing, stale or corrupt).
//! - **Model**: a CLIP checkpoint in Hugging Face layout. A library remembers which model built
//!   it; opening it with another is [`Error::ModelMismatch`].
//! - **Hit**: a photo and its score, the cosine similarity of CLIP embeddings (see [`Hit`]).
//! - **Hybrid search**: a text query also matches the words photos carry — folder and file
//!   names, EXIF/IPTC/XMP keywords and titles, camera, capture year and month — fused with the
//!   CLIP ranking; each hit lists the words it [`matched`](Hit::matched). Off per search with
//!   [`SearchOptions::hybrid`]`(false)`: the order is then CLIP's alone.
//! - **Formats**: JPEG, PNG, WebP, GIF, TIFF, BMP; HEIC/HEIF and AVIF (feature `heif`, libheif);
//!   camera RAW (DNG, CR2, NEF, ARW, ORF, RW2, …) through its embedded preview JPEG.
//! - **Commit**: every write is durable in the store when its call returns; see [`Library`].
//! - **Errors**: one [`enum@Error`]. Failures of the layers below arrive inside it as
//!   [`EncoderError`], [`IndexError`] and [`StoreError`], re-exported here, so matching one
//!   (say [`EncoderError::ImageTooLarge`]) needs no dependency on the sub-crates. No type of the
//!   engines underneath (burn, hnsw_rs, RocksDB) is part of this API.
#![deny(missing_docs)]

mod absence;
mod analysis;
mod backend;
mod catalog;
#[cfg(feature = "download")]
mod download;
mod error;
#[cfg(feature = "parquet")]
pub mod export;
mod formats;
mod ingest;
mod keywords;
mod library;
mod metadata;
mod model;
mod query_model;
mod read;
mod thumbnail;
mod types;
mod walk;

pub use analysis::{Tags, PROMPT_TEMPLATE};
pub use backend::{Backend, Precision};
#[cfg(feature = "download")]
pub use download::{
    download_model, download_model_with, HubOptions, DEFAULT_MODEL_REPO, MODEL_FILES,
};
pub use error::{Error, Result};
#[cfg(feature = "parquet")]
pub use export::{
    shard_of, EmbedFilesOptions, EmbedFilesReport, ExportLayout, ExportOptions, ExportReport,
    ImportOptions, ImportReport,
};
pub use library::{
    Library, LibraryBuilder, DEFAULT_BACKGROUND_INDEX_CHECK_FROM, INDEX_DIR, STORE_DIR,
};
pub use model::default_model;
pub use thumbnail::thumbnail_jpeg;
pub use types::{
    CancelToken, CheckReport, Failure, Hit, Hybrid, ImageId, IndexOptions, IndexRecovery,
    IndexReport, OpenReport, Problem, ProblemKind, Progress, ProgressFn, RepairReport,
    SearchOptions,
};

// Types of the layers below that Glimpse's API hands out or takes. They are plain data (no
// burn, hnsw_rs or rocksdb type inside; `scripts/check_facade.sh` checks it), re-exported so
// that callers need no version-matched dependency on the sub-crates.

/// The error of the encoder layer, inside [`Error::Encoder`]: match it for e.g.
/// [`EncoderError::ImageTooLarge`].
pub use glimpse_encoder::Error as EncoderError;
/// The error of the index layer, inside [`Error::Index`].
pub use glimpse_index::Error as IndexError;
/// Index parameters for [`LibraryBuilder::index`].
pub use glimpse_index::IndexConfig;
/// The error of the store layer, inside [`Error::Store`].
pub use glimpse_store::Error as StoreError;
/// Which model a library's embeddings come from ([`Library::model_fingerprint`]).
pub use glimpse_store::ModelFingerprint;
