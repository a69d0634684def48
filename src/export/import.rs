//! [`Library::import`]: photos and embeddings computed elsewhere, committed like indexing.

use super::reader::PartReader;
use super::schema::Row;
use crate::catalog::Entry;
use crate::library::Library;
use crate::types::{CancelToken, Failure, ImageId, Progress, ProgressFn};
use crate::{Error, Result};
use std::path::Path;

/// How [`Library::import`] commits.
#[derive(Clone)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Photos per atomic, synced store batch (default 256). A kill loses at most the batch in
    /// flight; the rerun imports it.
    pub batch_size: usize,
    /// Stops the import between batches; what was committed stays.
    pub cancel: Option<CancelToken>,
    /// Called after every committed batch ([`Progress::seen`]: rows in the files,
    /// [`Progress::encoded`]: rows added so far).
    pub progress: Option<ProgressFn>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch_size: 256,
            cancel: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("batch_size", &self.batch_size)
            .field("cancel", &self.cancel)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl ImportOptions {
    /// Sets [`batch_size`](Self::batch_size).
    #[must_use = "setters return the changed options"]
    pub fn batch_size(mut self, photos: usize) -> Self {
        self.batch_size = photos.max(1);
        self
    }

    /// Sets [`cancel`](Self::cancel).
    #[must_use = "setters return the changed options"]
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Sets [`progress`](Self::progress).
    #[must_use = "setters return the changed options"]
    pub fn progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// What [`Library::import`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ImportReport {
    /// Photos added, each with its embedding from the file.
    pub added: usize,
    /// Rows skipped because the library already holds their path (an earlier, interrupted
    /// import; an overlapping file; or the photo was indexed here).
    pub present: usize,
    /// Rows refused (an embedding that is not finite, not unit length or the wrong length);
    /// nothing was stored for them.
    pub failed: Vec<Failure>,
    /// Whether the import was cancelled before the end.
    pub cancelled: bool,
}

/// How far an imported embedding's norm may be from 1 (the model's embeddings are
/// L2-normalised; f32 rounding leaves them within ~1e-6).
const NORM_TOLERANCE: f32 = 1e-3;

impl Library {
    /// Adds the photos of Parquet `files` (written by [`export`](Self::export) or
    /// [`LibraryBuilder::embed_files`](crate::LibraryBuilder::embed_files), with the same
    /// model) with their embeddings: nothing is re-embedded and the photo files need not be
    /// here. Every file's model fingerprint is checked before anything is written. Rows are
    /// committed in atomic, synced batches, as indexing commits, each visible to searches
    /// once committed; a row whose path the library already holds is skipped, so a rerun
    /// after a kill or a cancel imports exactly what is missing. Imported photos get new ids
    /// of this library (the file's `id` column is not kept). Memory: `batch_size` rows at a
    /// time, whatever the files' row groups.
    ///
    /// # Errors
    /// [`Error::ImportModelMismatch`] when a file's embeddings come from another model (or
    /// its metadata names none); [`Error::Parquet`] for a file that is not such an export;
    /// [`Error::Store`] / [`Error::DiskFull`] when a batch cannot be committed (the batches
    /// before it stay).
    pub fn import<P: AsRef<Path>>(
        &self,
        files: &[P],
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        let expected = self.model_fingerprint().clone();
        let dims = expected.dims as usize;
        let mut readers = Vec::with_capacity(files.len());
        for file in files {
            let file = file.as_ref();
            let reader = PartReader::open(file)?;
            match reader.fingerprint() {
                Some(found) if *found == expected => {}
                found => {
                    return Err(Error::ImportModelMismatch {
                        path: file.to_path_buf(),
                        found: found.map_or_else(|| "no model".into(), |f| f.to_string()),
                        expected: expected.to_string(),
                    })
                }
            }
            readers.push(reader);
        }
        let _w = self.lock_writer();
        let mut report = ImportReport::default();
        let started = std::time::Instant::now();
        let total = readers.iter().map(|r| r.rows() as usize).sum();
        let mut progress = Progress {
            seen: total,
            to_encode: total,
            ..Progress::default()
        };
        let batch_size = opts.batch_size.max(1);
        'files: for reader in &readers {
            for group in 0..reader.row_groups() {
                let finished = reader.for_each_batch(group, dims, batch_size, |chunk| {
                    if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                        return Ok(false);
                    }
                    self.import_batch(chunk, dims, &mut report)?;
                    progress.encoded = report.added;
                    progress.failed = report.failed.len();
                    progress.rate = report.added as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    if let Some(cb) = &opts.progress {
                        cb(&progress);
                    }
                    Ok(true)
                })?;
                if !finished {
                    report.cancelled = true;
                    break 'files;
                }
            }
        }
        self.save_index()?;
        Ok(report)
    }

    /// Commits one batch of rows: store first (atomic, synced), then catalog and index.
    fn import_batch(&self, rows: Vec<Row>, dims: usize, report: &mut ImportReport) -> Result<()> {
        let mut batch = self.store.batch();
        // Each committed row: its new id and the row (record, embedding, keywords).
        let mut added: Vec<(ImageId, Row)> = Vec::new();
        for row in rows {
            let path = row.record.path.clone();
            if batch.id_for_path(&path)?.is_some() {
                report.present += 1;
                continue;
            }
            if let Err(reason) = check_embedding(&row.embedding, dims) {
                report.failed.push(Failure {
                    path: path.clone(),
                    error: Error::InvalidEmbedding { path, reason },
                });
                continue;
            }
            let id = batch.insert(&row.record, &row.embedding)?;
            if !row.keywords.is_empty() {
                // In the same atomic batch as the record, as indexing writes them.
                let words = glimpse_store::PhotoWords {
                    words: row.keywords.clone(),
                    original: None,
                };
                batch.set_words(id, &words)?;
            }
            added.push((id, row));
        }
        batch.commit().map_err(|e| Error::from(e).disk_full())?;
        report.added += added.len();
        let mut catalog = self.catalog_mut();
        for (id, row) in &added {
            catalog.insert(
                *id,
                Entry {
                    path: row.record.path.clone(),
                    captured_at: row.record.captured_at,
                },
            );
            if !row.keywords.is_empty() {
                catalog.words.set_stored(*id, &row.keywords);
            }
        }
        drop(catalog);
        let items: Vec<(u64, Vec<f32>)> = added
            .into_iter()
            .map(|(id, row)| (id, row.embedding))
            .collect();
        self.index().insert_batch(&items)?;
        Ok(())
    }
}

/// Why an embedding read from a file cannot be stored: the store's checks (length, finite,
/// not zero) and unit length, as the model writes them.
fn check_embedding(embedding: &[f32], dims: usize) -> std::result::Result<(), String> {
    glimpse_store::validate_embedding(embedding, dims).map_err(|e| e.to_string())?;
    let norm = embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
    if (norm - 1.0).abs() > NORM_TOLERANCE {
        return Err(format!("norm {norm}, expected 1 (L2-normalised)"));
    }
    Ok(())
}
