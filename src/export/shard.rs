//! Embedding a list of files into one Parquet part, without a library: the worker of a
//! cluster job. Deterministic ([`shard_of`]) and resumable (finished chunks are kept).
//!
//! While it runs, `<part>.partial/` holds `chunk-NNNNNN.parquet` files, each complete (written
//! as `.tmp` and renamed); a kill loses at most the chunk in progress. A rerun reads the
//! paths the part and its chunks hold, embeds only the others, then merges everything into
//! `<part>` (through `<part>.tmp`, renamed) and removes the chunks.

use super::reader::PartReader;
use super::schema::{path_bytes, Columns, Row};
use super::writer::{tmp_path, PartWriter};
use crate::library::LibraryBuilder;
use crate::metadata::{content_hash, read_exif};
use crate::model::Model;
use crate::types::{CancelToken, Failure, Progress, ProgressFn};
use crate::{Error, Result};
use glimpse_store::{ImageRecord, ModelFingerprint};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Rows read at once from a part or a chunk.
const READ_BATCH: usize = 1024;

/// The shard (in `0..shards`) that `path` belongs to: a hash of the path's exact bytes, so a
/// file always lands in the same shard, whatever the order or length of the list it is in.
///
/// ```
/// let a = glimpse::shard_of("/photos/2024/beach.jpg", 4);
/// assert!(a < 4);
/// assert_eq!(a, glimpse::shard_of("/photos/2024/beach.jpg", 4));
/// ```
pub fn shard_of(path: impl AsRef<Path>, shards: usize) -> usize {
    (path_hash(path.as_ref()) % shards.max(1) as u64) as usize
}

/// BLAKE3 of the path's bytes, as a u64.
fn path_hash(path: &Path) -> u64 {
    let h = blake3::hash(&path_bytes(path));
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// How [`LibraryBuilder::embed_files`] works.
#[derive(Clone)]
#[non_exhaustive]
pub struct EmbedFilesOptions {
    /// Images per encoder batch (default 16).
    pub batch_size: usize,
    /// Rows per chunk file (default 1024): the most work a kill can lose.
    pub rows_per_chunk: usize,
    /// Rows per row group of the finished part (default 4096).
    pub rows_per_group: usize,
    /// Largest file read, in bytes (default 256 MiB).
    pub max_file_bytes: u64,
    /// Called after every batch ([`Progress::seen`]: files in the list, `to_encode`: those
    /// not yet in the part).
    pub progress: Option<ProgressFn>,
    /// Stops between batches; the finished chunks stay for the next run.
    pub cancel: Option<CancelToken>,
}

impl Default for EmbedFilesOptions {
    fn default() -> Self {
        EmbedFilesOptions {
            batch_size: 16,
            rows_per_chunk: 1024,
            rows_per_group: 4096,
            max_file_bytes: crate::read::DEFAULT_MAX_FILE_BYTES,
            progress: None,
            cancel: None,
        }
    }
}

impl std::fmt::Debug for EmbedFilesOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedFilesOptions")
            .field("batch_size", &self.batch_size)
            .field("rows_per_chunk", &self.rows_per_chunk)
            .field("rows_per_group", &self.rows_per_group)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl EmbedFilesOptions {
    /// Sets [`batch_size`](Self::batch_size).
    #[must_use = "setters return the changed options"]
    pub fn batch_size(mut self, images: usize) -> Self {
        self.batch_size = images.max(1);
        self
    }

    /// Sets [`rows_per_chunk`](Self::rows_per_chunk).
    #[must_use = "setters return the changed options"]
    pub fn rows_per_chunk(mut self, rows: usize) -> Self {
        self.rows_per_chunk = rows.max(1);
        self
    }

    /// Sets [`progress`](Self::progress).
    #[must_use = "setters return the changed options"]
    pub fn progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Sets [`cancel`](Self::cancel).
    #[must_use = "setters return the changed options"]
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

/// What [`LibraryBuilder::embed_files`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct EmbedFilesReport {
    /// Files embedded by this run.
    pub embedded: usize,
    /// Files of the list the part (or its chunks) already held: not read again.
    pub present: usize,
    /// Files that could not be embedded (absent, unreadable, not an image, ...): not in the
    /// part; a rerun tries them again.
    pub failed: Vec<Failure>,
    /// Rows in the finished part (0 when cancelled: the part is not finished).
    pub rows: u64,
    /// The finished part's size in bytes.
    pub bytes: u64,
    /// Whether the run was cancelled (the chunks written stay for the next run).
    pub cancelled: bool,
}

impl LibraryBuilder {
    /// Embeds `files` with this builder's model (and precision, device) into the Parquet part
    /// `out`, in the layout of [`Library::export`](crate::Library::export) (so
    /// [`Library::import`](crate::Library::import) reads it), without a library: the worker
    /// of a cluster job. Paths are recorded as given (give absolute ones); `id` is a 63-bit
    /// hash of the path. Resumable: files already in `out` or in its finished chunks are not
    /// read again (see the module docs), so rerunning a killed job, or the same job with a
    /// longer list, embeds only what is missing. Files that fail are reported and left out.
    ///
    /// Memory: the model, one encoder batch of decoded images and one chunk of rows (at 512
    /// dims, about 2.5 MB per 1024 rows), plus the paths already done (their bytes plus ~50 per
    /// path) — see docs/SCALE.md for measured figures.
    ///
    /// # Errors
    /// The model's errors (it does not load or run); [`Error::ImportModelMismatch`] when `out`
    /// or its chunks were written with another model; I/O and Parquet errors writing the part.
    pub fn embed_files<P: AsRef<Path>>(
        &self,
        files: &[P],
        out: impl AsRef<Path>,
        opts: &EmbedFilesOptions,
    ) -> Result<EmbedFilesReport> {
        let out = out.as_ref();
        let model = self.open_model(None)?;
        let fingerprint = model.fingerprint().clone();
        let dims = model.dims();
        let partial = partial_dir(out);
        std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
        remove_tmp_files(&partial);
        let _ = std::fs::remove_file(tmp_path(out));

        // What the part and its finished chunks already hold.
        let mut chunks = chunk_files(&partial)?;
        let mut done: HashSet<Vec<u8>> = HashSet::new();
        let existing: Vec<PathBuf> = out
            .exists()
            .then(|| out.to_path_buf())
            .into_iter()
            .collect();
        for file in existing.iter().chain(&chunks) {
            let reader = open_checked(file, &fingerprint)?;
            for g in 0..reader.row_groups() {
                reader.for_each_batch(g, dims, READ_BATCH, |rows| {
                    done.extend(rows.iter().map(|r| path_bytes(&r.record.path)));
                    Ok(true)
                })?;
            }
        }
        let mut report = EmbedFilesReport::default();
        let mut queued: HashSet<Vec<u8>> = HashSet::new();
        let todo: Vec<&Path> = files
            .iter()
            .map(|f| f.as_ref())
            .filter(|p| {
                let key = path_bytes(p);
                !done.contains(&key) && queued.insert(key)
            })
            .collect();
        drop(queued);
        report.present = files.len() - todo.len();
        let mut progress = Progress {
            seen: files.len(),
            to_encode: todo.len(),
            ..Progress::default()
        };
        let started = Instant::now();

        let mut next_chunk = chunks.len();
        let mut chunk: Option<(PartWriter, PathBuf)> = None;
        for batch in todo.chunks(opts.batch_size.max(1)) {
            if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                report.cancelled = true;
                break;
            }
            let prepared: Vec<_> = batch
                .par_iter()
                .map(|path| prepare(&model, path, opts.max_file_bytes))
                .collect();
            let mut records = Vec::new();
            let mut pixels = Vec::new();
            for p in prepared {
                match p {
                    Ok((record, px)) => {
                        records.push(record);
                        pixels.push(px);
                    }
                    Err(failure) => report.failed.push(*failure),
                }
            }
            let embeddings = model.embed_pixels(&pixels)?;
            drop(pixels);
            for (record, embedding) in records.into_iter().zip(embeddings) {
                if let Err(e) = glimpse_store::validate_embedding(&embedding, dims) {
                    let path = record.path.clone();
                    report.failed.push(Failure {
                        path: path.clone(),
                        error: Error::InvalidEmbedding {
                            path,
                            reason: e.to_string(),
                        },
                    });
                    continue;
                }
                if chunk.is_none() {
                    let path = partial.join(format!("chunk-{next_chunk:06}.parquet"));
                    next_chunk += 1;
                    let w = PartWriter::create(
                        &path,
                        Columns::Full,
                        &fingerprint,
                        opts.rows_per_chunk,
                    )?;
                    chunk = Some((w, path));
                }
                let (writer, _) = chunk.as_mut().expect("opened above");
                let id = (path_hash(&record.path) >> 1) as i64;
                writer.push(Row {
                    id,
                    record,
                    embedding,
                    keywords: Vec::new(),
                })?;
                report.embedded += 1;
                if writer.len() >= opts.rows_per_chunk.max(1) {
                    let (w, path) = chunk.take().expect("open");
                    w.finish()?;
                    chunks.push(path);
                }
            }
            progress.encoded = report.embedded;
            progress.failed = report.failed.len();
            progress.rate = progress.encoded as f64 / started.elapsed().as_secs_f64().max(1e-9);
            if let Some(cb) = &opts.progress {
                cb(&progress);
            }
        }
        if let Some((w, path)) = chunk.take() {
            w.finish()?;
            chunks.push(path);
        }
        if report.cancelled {
            return Ok(report);
        }
        if chunks.is_empty() && !existing.is_empty() {
            // Nothing new: the part stays as it is, untouched.
            report.rows = PartReader::open(out)?.rows();
            report.bytes = std::fs::metadata(out).map_err(|e| Error::io(out, e))?.len();
            std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
            return Ok(report);
        }

        // Merge: the part as it was, then every chunk, into a new part renamed over it.
        let mut merged = PartWriter::create(out, Columns::Full, &fingerprint, opts.rows_per_group)?;
        for file in existing.iter().chain(&chunks) {
            let reader = open_checked(file, &fingerprint)?;
            for g in 0..reader.row_groups() {
                reader.for_each_batch(g, dims, READ_BATCH, |rows| {
                    rows.into_iter().try_for_each(|row| merged.push(row))?;
                    Ok(true)
                })?;
            }
        }
        report.rows = merged.len() as u64;
        report.bytes = merged.finish()?;
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
        Ok(report)
    }
}

/// The folder of finished chunks of part `out`: `<out>.partial`.
fn partial_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Removes the `.tmp` files an interrupted chunk write left in `dir`.
fn remove_tmp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The finished chunks in `dir`, in order.
fn chunk_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut chunks: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("chunk-") && name.ends_with(".parquet")
        })
        .collect();
    chunks.sort();
    Ok(chunks)
}

/// Opens a part or chunk and checks it holds `expected`'s embeddings.
fn open_checked(path: &Path, expected: &ModelFingerprint) -> Result<PartReader> {
    let reader = PartReader::open(path)?;
    match reader.fingerprint() {
        Some(found) if found == expected => Ok(reader),
        found => Err(Error::ImportModelMismatch {
            path: path.to_path_buf(),
            found: found.map_or_else(|| "no model".into(), |f| f.to_string()),
            expected: expected.to_string(),
        }),
    }
}

/// Reads, hashes and preprocesses one file: its record and pixels, or why not.
fn prepare(
    model: &Model,
    path: &Path,
    max_file_bytes: u64,
) -> std::result::Result<(ImageRecord, glimpse_encoder::Pixels), Box<Failure>> {
    let fail = |error: Error| {
        Box::new(Failure {
            path: path.to_path_buf(),
            error,
        })
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(Error::io(path, e)))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    let bytes = crate::read::read_file(path, max_file_bytes).map_err(fail)?;
    let hash = content_hash(&bytes);
    let exif = read_exif(&bytes);
    let prepared = model.prepare(path, &bytes).map_err(fail)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let record = ImageRecord {
        path: path.to_path_buf(),
        size: bytes.len() as u64,
        mtime_ns,
        hash,
        width: prepared.width,
        height: prepared.height,
        format: prepared.format,
        captured_at: exif.captured_at,
        added_at: now,
    };
    Ok((record, prepared.pixels))
}
