//! Parquet as the contract with engines past one machine (feature `parquet`).
//!
//! - [`Library::export`] writes a library's photos and embeddings as Parquet, streamed from
//!   the store one row group at a time ([`ExportLayout::Parquet`], schema in [`schema`]), or in
//!   clip-retrieval's layout (`img_emb/img_emb_N.npy` + `metadata/metadata_N.parquet`,
//!   [`ExportLayout::ClipRetrieval`]) which autofaiss and clip-retrieval's back end read
//!   unchanged.
//! - [`Library::import`] builds or extends a library from such files computed elsewhere with the
//!   same model, in atomic batches; a rerun after a kill skips what is already there.
//! - [`LibraryBuilder::embed_files`](crate::LibraryBuilder::embed_files) embeds a list of files
//!   without a library into one Parquet part: the worker of a Spark, Ray or Slurm job (see
//!   `examples/shard.rs` and docs/SCALE.md), with [`shard_of`] choosing each file's shard.
//!
//! ```
//! use glimpse::{ExportOptions, ImportOptions, IndexOptions, Library};
//! # fn main() -> glimpse::Result<()> {
//! # let model = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/encoder/tests/fixtures/tiny-clip");
//! # let photos = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/encoder/tests/fixtures/images");
//! let dir = tempfile::tempdir().unwrap();
//! let library = Library::builder().model(model).open(dir.path().join("a"))?;
//! library.index_folder(photos, &IndexOptions::default())?;
//!
//! let file = dir.path().join("photos.parquet");
//! let exported = library.export(&file, &ExportOptions::default())?;
//! assert_eq!(exported.rows, library.len() as u64);
//!
//! // Elsewhere, with the same model: a library with the same photos, nothing re-embedded.
//! let copy = Library::builder().model(model).open(dir.path().join("b"))?;
//! let imported = copy.import(&[&file], &ImportOptions::default())?;
//! assert_eq!(imported.added, library.len());
//! let hits = |l: &Library| -> glimpse::Result<Vec<_>> {
//!     let hits = l.search_text("a red square", 3)?;
//!     Ok(hits.into_iter().map(|h| (h.path, h.score)).collect())
//! };
//! assert_eq!(hits(&copy)?, hits(&library)?);
//! # Ok(())
//! # }
//! ```

mod import;
mod npy;
mod reader;
pub mod schema;
mod shard;
mod writer;

pub use import::{ImportOptions, ImportReport};
pub use shard::{shard_of, EmbedFilesOptions, EmbedFilesReport};

use crate::library::Library;
use crate::{Error, Result};
use schema::{Columns, Row};
use std::path::{Path, PathBuf};
use writer::PartWriter;

/// Which files [`Library::export`] writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportLayout {
    /// One Parquet file (the given path) holding every column of [`schema`], the embedding
    /// included: what [`Library::import`], DuckDB, Spark, pyarrow and Milvus read.
    #[default]
    Parquet,
    /// clip-retrieval's layout under the given folder: `img_emb/img_emb_N.npy` (`float32`,
    /// rows × dims) and `metadata/metadata_N.parquet` (column `image_path`, then the columns of
    /// [`schema`] but the embedding), row `k` of one the photo of row `k` of the other, at most
    /// [`ExportOptions::rows_per_file`] rows per pair. `autofaiss build_index
    /// --embeddings=<dir>/img_emb` reads it as it reads clip-retrieval's own output.
    ClipRetrieval,
}

/// How [`Library::export`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The files to write (default [`ExportLayout::Parquet`]).
    pub layout: ExportLayout,
    /// Rows per Parquet row group (default 4096): the export holds at most this many rows in
    /// memory, about `rows_per_group × (8 × dims + 2 × path length + 120)` bytes at the peak
    /// (the rows and their column buffers): 21 MB at 512 dims and 4096 rows.
    pub rows_per_group: usize,
    /// Rows per `img_emb_N.npy` / `metadata_N.parquet` pair of [`ExportLayout::ClipRetrieval`]
    /// (default 1,000,000, as clip-retrieval writes).
    pub rows_per_file: usize,
    /// Compress the Parquet files with snappy (default false). The embeddings barely shrink;
    /// paths and hashes do. Every reader of Parquet reads snappy.
    pub snappy: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            layout: ExportLayout::Parquet,
            rows_per_group: 4096,
            rows_per_file: 1_000_000,
            snappy: false,
        }
    }
}

impl ExportOptions {
    /// Sets [`layout`](Self::layout).
    #[must_use = "setters return the changed options"]
    pub fn layout(mut self, layout: ExportLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets [`rows_per_group`](Self::rows_per_group).
    #[must_use = "setters return the changed options"]
    pub fn rows_per_group(mut self, rows: usize) -> Self {
        self.rows_per_group = rows.max(1);
        self
    }

    /// Sets [`snappy`](Self::snappy).
    #[must_use = "setters return the changed options"]
    pub fn snappy(mut self, yes: bool) -> Self {
        self.snappy = yes;
        self
    }

    /// Sets [`rows_per_file`](Self::rows_per_file).
    #[must_use = "setters return the changed options"]
    pub fn rows_per_file(mut self, rows: usize) -> Self {
        self.rows_per_file = rows.max(1);
        self
    }
}

/// What [`Library::export`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportReport {
    /// Photos written.
    pub rows: u64,
    /// Photos of the library left out: no usable embedding (see [`Library::check`]) or an
    /// unreadable record.
    pub skipped: u64,
    /// The files written, in order.
    pub files: Vec<PathBuf>,
    /// Their total size in bytes.
    pub bytes: u64,
}

impl Library {
    /// Writes the library's photos and embeddings to `out` (a file, or a folder for
    /// [`ExportLayout::ClipRetrieval`]), streamed from the store in id order one row group at a
    /// time: memory stays bounded by [`ExportOptions::rows_per_group`] whatever the library's
    /// size. Photos without a usable embedding are left out and counted
    /// ([`ExportReport::skipped`]). Each file is written beside its final name and renamed
    /// into place when complete. Indexing waits while an export runs; searches do not.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::DiskFull`] writing the files, [`Error::Parquet`] from the
    /// Parquet writer, [`Error::Store`] when the store cannot be scanned.
    pub fn export(&self, out: impl AsRef<Path>, opts: &ExportOptions) -> Result<ExportReport> {
        let out = out.as_ref();
        let _w = self.lock_writer();
        let fingerprint = self.model_fingerprint().clone();
        let mut report = ExportReport::default();
        let mut skipped = 0;
        let rows = self.export_rows(&mut skipped);
        match opts.layout {
            ExportLayout::Parquet => {
                if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                let mut w = PartWriter::create_with(
                    out,
                    Columns::Full,
                    &fingerprint,
                    opts.rows_per_group,
                    opts.snappy,
                )?;
                for row in rows {
                    w.push(row?)?;
                }
                report.rows = w.len() as u64;
                report.bytes = w.finish()?;
                report.files.push(out.to_path_buf());
            }
            ExportLayout::ClipRetrieval => {
                let (emb_dir, meta_dir) = (out.join("img_emb"), out.join("metadata"));
                for d in [&emb_dir, &meta_dir] {
                    std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
                }
                let dims = fingerprint.dims as usize;
                let mut part: Option<(npy::NpyWriter, PartWriter)> = None;
                let mut n = 0;
                let mut in_part = 0;
                let close = |part: (npy::NpyWriter, PartWriter),
                             n: usize,
                             report: &mut ExportReport|
                 -> Result<()> {
                    report.bytes += part.0.finish()?;
                    report.bytes += part.1.finish()?;
                    report.files.push(emb_dir.join(format!("img_emb_{n}.npy")));
                    report
                        .files
                        .push(meta_dir.join(format!("metadata_{n}.parquet")));
                    Ok(())
                };
                for row in rows {
                    let row = row?;
                    if part.is_none() {
                        part = Some((
                            npy::NpyWriter::create(
                                &emb_dir.join(format!("img_emb_{n}.npy")),
                                dims,
                            )?,
                            PartWriter::create_with(
                                &meta_dir.join(format!("metadata_{n}.parquet")),
                                Columns::ClipMetadata,
                                &fingerprint,
                                opts.rows_per_group,
                                opts.snappy,
                            )?,
                        ));
                    }
                    let (emb, meta) = part.as_mut().expect("opened above");
                    emb.push(&row.embedding)?;
                    meta.push(row)?;
                    report.rows += 1;
                    in_part += 1;
                    if in_part == opts.rows_per_file.max(1) {
                        close(part.take().expect("open"), n, &mut report)?;
                        n += 1;
                        in_part = 0;
                    }
                }
                if let Some(p) = part.take() {
                    close(p, n, &mut report)?;
                }
            }
        }
        report.skipped = skipped;
        Ok(report)
    }

    /// The rows to export, in id order: each photo with a usable embedding; `skipped` counts
    /// the others. Reads the store as it goes.
    fn export_rows<'a>(&'a self, skipped: &'a mut u64) -> impl Iterator<Item = Result<Row>> + 'a {
        self.store.images().filter_map(move |item| {
            let (id, record) = match item {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("export: skipping an unreadable record: {e}");
                    *skipped += 1;
                    return None;
                }
            };
            match self.store.embedding(id) {
                Ok(Some(embedding)) => {
                    let keywords = match self.store.words(id) {
                        Ok(w) => w.map(|w| w.words).unwrap_or_default(),
                        Err(e) => {
                            log::warn!("export: photo {id}'s keywords are unreadable: {e}");
                            Vec::new()
                        }
                    };
                    Some(Ok(Row {
                        id: id as i64,
                        record,
                        embedding,
                        keywords,
                    }))
                }
                Ok(None) => {
                    *skipped += 1;
                    None
                }
                Err(glimpse_store::Error::InvalidEmbedding { .. }) => {
                    *skipped += 1;
                    None
                }
                Err(e) => Some(Err(Error::from(e))),
            }
        })
    }
}
