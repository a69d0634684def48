//! Durable metadata for a Glimpse photo library, in RocksDB.
//!
//! ```
//! use glimpse_store::{ContentHash, ImageRecord, ModelFingerprint, Store};
//!
//! # fn main() -> glimpse_store::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path())?;
//! store.set_model(&ModelFingerprint {
//!     name: "openai/clip-vit-base-patch32".into(),
//!     dims: 4,
//!     config_digest: "9f2c".into(),
//! })?;
//!
//! let record = ImageRecord {
//!     path: "/photos/beach.jpg".into(),
//!     size: 123_456,
//!     mtime_ns: 1_700_000_000_000_000_000,
//!     hash: ContentHash([1; 32]),
//!     width: 640,
//!     height: 480,
//!     format: "jpeg".into(),
//!     captured_at: None,
//!     added_at: 1_700_000_000,
//! };
//! // Record, path, hash entry, embedding and the id counter: one atomic, synced write.
//! let id = store.insert(&record, &[0.5, 0.5, 0.5, 0.5])?;
//! assert_eq!(store.id_for_path("/photos/beach.jpg")?, Some(id));
//!
//! store.rename(id, "/photos/2024/beach.jpg")?;
//! assert_eq!(store.ids_for_hash(&record.hash)?, vec![id]);
//!
//! // The index is rebuilt from here.
//! let all: Vec<_> = store.embeddings().collect::<Result<_, _>>()?;
//! assert_eq!(all, vec![(id, vec![0.5; 4])]);
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//! - **The store is the source of truth.** Everything the search index holds can be rebuilt
//!   from [`Store::embeddings`]; the index may be lost or stale, the store may not.
//! - **One atomic write per batch.** A [`Batch`] collects inserts, updates, renames and removals,
//!   including the id counter and image count, into one RocksDB `WriteBatch` committed with
//!   `sync`: after [`Batch::commit`] returns, a kill at any moment loses nothing of it, and a
//!   kill before leaves no half of it.
//! - **Typed corruption.** Every value carries a format-version byte; a value that does not
//!   decode is [`Error::DataCorruption`] naming its key, and the other records stay readable.
//! - **Embeddings are tagged** with the model that produced them ([`ModelFingerprint`]): writing
//!   one of the wrong length, or with a NaN, infinite or all-zero value, is a typed error
//!   ([`validate_embedding`]). After a model switch ([`Store::replace_model`]) the previous
//!   model's embeddings stay, *stale*, until each is replaced: reads skip them and
//!   [`Store::ids_without_embedding`] lists them.
//! - **Nothing bad on disk stops a read**: an undecodable or invalid row is an error item for
//!   that row ([`Error::InvalidEmbedding`] names its id) and the scan goes on;
//!   [`Store::check_integrity`] lists every problem and [`Store::repair`] fixes what it can
//!   without deleting an image record.
//! - **Paths are bytes**: non-UTF-8 file names round-trip exactly (on Unix).
//!
//! The on-disk layout is in [`schema`].
#![deny(missing_docs)]

mod batch;
mod error;
mod integrity;
mod record;
pub mod schema;
mod store;
mod words;

pub use batch::Batch;
pub use error::{Error, Result};
pub use integrity::{IntegrityReport, RepairReport};
pub use record::{validate_embedding, ContentHash, ImageRecord, ModelFingerprint};
pub use store::{Store, DISK_RESERVE};
pub use words::PhotoWords;

/// Identifier of an image in a store. Allocated by the store, never reused.
pub type ImageId = u64;
