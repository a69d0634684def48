//! Indexing: walking a folder, deciding what changed, and the decode → encode → commit pipeline.
//!
//! Per file, in order: unchanged size + mtime → skipped without reading; otherwise the bytes are
//! read and hashed (BLAKE3); known content whose old path is gone → a move (the record follows,
//! no re-encoding); else decode + preprocess (rayon, in a producer thread) while the encoder
//! works on the previous batch, then one synced store batch per encoder batch. A photo whose
//! content changed gets a new id (the old one is removed in the same batch), so the index stamp
//! `(next_id, count)` always changes with the embedding set.

use crate::absence::{certainly_gone, Absence, AbsenceCheck};
use crate::catalog::Entry;
use crate::library::Library;
use crate::metadata::{content_hash, read_exif};
use crate::model::{guard_panics, Prepared};
use crate::read::{read_file, Budget, Limits, DEFAULT_MEMORY_BUDGET};
use crate::types::{Failure, ImageId, IndexOptions, IndexReport, Progress};
use crate::walk::find_images;
use crate::{Error, Result};
use glimpse_store::{ContentHash, ImageRecord, PhotoWords};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A file that needs work beyond a stat.
struct Job {
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    /// The library's current id for this path, if any (content changed since).
    existing: Option<ImageId>,
    /// The words of the file's metadata (read with its bytes) and its RAW original, if any:
    /// committed with its record.
    words: PhotoWords,
}

impl Job {
    /// The record of this file with its content hash and decoded facts, added now.
    fn record(
        &self,
        hash: ContentHash,
        captured_at: Option<i64>,
        width: u32,
        height: u32,
        format: String,
    ) -> ImageRecord {
        ImageRecord {
            path: self.path.clone(),
            size: self.size,
            mtime_ns: self.mtime_ns,
            hash,
            width,
            height,
            format,
            captured_at,
            added_at: now_secs(),
        }
    }
}

/// What the producer made of a job.
enum Ready {
    /// Decoded and preprocessed: encode it.
    Encode {
        job: Job,
        record: ImageRecord,
        prepared: Prepared,
    },
    /// Same content as before (only the mtime moved): refresh the record.
    Touch {
        id: ImageId,
        record: ImageRecord,
    },
    /// Known content whose old path is gone: a move candidate.
    Moved {
        job: Job,
        hash: ContentHash,
        from: Vec<ImageId>,
        bytes: Vec<u8>,
    },
    Failed(Failure),
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn stat(path: &Path) -> Result<(u64, i64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    Ok((meta.len(), mtime))
}

impl Library {
    /// Indexes every image under `folder` (recursively, following symlinks safely): adds new
    /// photos, re-encodes changed ones, follows moved ones by content hash, skips unchanged ones
    /// by size + mtime, and (with [`IndexOptions::remove_missing`]) drops photos that are gone.
    ///
    /// One bad file never stops the run: it is listed in [`IndexReport::failed`] with its typed
    /// error. Work is committed batch by batch; after a cancel or a crash, the next run
    /// continues where this one stopped.
    pub fn index_folder(
        &self,
        folder: impl AsRef<Path>,
        opts: &IndexOptions,
    ) -> Result<IndexReport> {
        let folder = folder.as_ref();
        let root = std::fs::canonicalize(folder).map_err(|e| Error::io(folder, e))?;
        let _w = self.lock_writer();
        let (mut files, walk_failures) = find_images(&root, opts.follow_symlinks_outside);
        // A RAW file whose JPEG sibling is here is not indexed: it is that photo's original.
        let originals = crate::formats::raw::take_raw_siblings(&mut files);
        let mut report = IndexReport::default();
        report.failed.extend(
            walk_failures
                .into_iter()
                .map(|(path, error)| Failure { path, error }),
        );

        let mut jobs = Vec::new();
        for path in &files {
            let (size, mtime_ns) = match stat(path) {
                Ok(s) => s,
                Err(error) => {
                    report.failed.push(Failure {
                        path: path.clone(),
                        error,
                    });
                    continue;
                }
            };
            let existing = self.store.id_for_path(path)?;
            if let Some(id) = existing {
                if let Some(rec) = self.store.get(id)? {
                    if rec.size == size && rec.mtime_ns == mtime_ns {
                        report.unchanged += 1;
                        continue;
                    }
                }
            }
            jobs.push(Job {
                path: path.clone(),
                size,
                mtime_ns,
                existing,
                words: PhotoWords {
                    words: Vec::new(),
                    original: originals.get(path).cloned(),
                },
            });
        }
        let seen: HashSet<PathBuf> = files.into_iter().collect();
        let mut progress = Progress {
            seen: seen.len(),
            to_encode: jobs.len(),
            ..Progress::default()
        };
        progress.failed = report.failed.len();
        self.run_pipeline(jobs, &seen, opts, &mut report, &mut progress)?;

        if opts.remove_missing && !report.cancelled {
            // Only a certain absence removes a photo; doubt keeps it and says why, once per
            // folder in doubt.
            let mut check = AbsenceCheck::new(&root);
            let mut gone: Vec<ImageId> = Vec::new();
            let mut kept: BTreeMap<PathBuf, (usize, String)> = BTreeMap::new();
            for (id, p) in self.catalog().ids_under(&root) {
                if seen.contains(&p) {
                    continue;
                }
                match check.check(&p) {
                    Absence::Present => {}
                    Absence::Certain => gone.push(id),
                    Absence::Doubt { folder, reason } => {
                        kept.entry(folder).or_insert((0, reason)).0 += 1;
                    }
                }
            }
            for (path, (photos, reason)) in kept {
                log::warn!("kept {photos} photo(s) under {}: {reason}", path.display());
                report.failed.push(Failure {
                    path: path.clone(),
                    error: Error::KeptMissing {
                        path,
                        photos,
                        reason,
                    },
                });
            }
            report.removed += self.remove_ids(&gone)?;
        }
        if let Some(cb) = &opts.progress {
            cb(&progress);
        }
        self.save_index()?;
        Ok(report)
    }

    fn run_pipeline(
        &self,
        jobs: Vec<Job>,
        seen: &HashSet<PathBuf>,
        opts: &IndexOptions,
        report: &mut IndexReport,
        progress: &mut Progress,
    ) -> Result<()> {
        let batch_size = opts.batch_size.max(1);
        let limits = Limits {
            max_file_bytes: opts.max_file_bytes,
            max_pixels: opts.max_pixels,
        };
        let budget = Budget::new(opts.memory_budget);
        let (limits, budget) = (&limits, &budget);
        let started = Instant::now();
        let mut claimed: HashSet<ImageId> = HashSet::new();
        std::thread::scope(|scope| -> Result<()> {
            // Producer: read, hash and preprocess the next batch while this thread encodes,
            // its workers holding at most the memory budget (plus one job) between them.
            let (tx, rx) = mpsc::sync_channel::<Vec<Ready>>(1);
            let mut chunks: Vec<Vec<Job>> = Vec::new();
            let mut jobs = jobs.into_iter().peekable();
            while jobs.peek().is_some() {
                chunks.push(jobs.by_ref().take(batch_size).collect());
            }
            scope.spawn(move || {
                for chunk in chunks {
                    let ready = self.prepare_batch(chunk, seen, limits, budget);
                    if tx.send(ready).is_err() {
                        return; // consumer stopped (cancelled or failed)
                    }
                }
            });
            for ready in rx {
                if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                    report.cancelled = true;
                    break;
                }
                self.commit_ready(ready, &mut claimed, report)?;
                progress.encoded = report.encoded();
                progress.failed = report.failed.len();
                progress.rate = progress.encoded as f64 / started.elapsed().as_secs_f64().max(1e-9);
                if let Some(cb) = &opts.progress {
                    cb(progress);
                }
            }
            Ok(())
        })
    }

    /// Producer side of one batch: [`prepare_job`](Self::prepare_job) on as many worker
    /// threads as rayon has (plain threads, not rayon's: a worker may wait for the memory
    /// budget, and a rayon worker that waits could be the one another job's nested parallel
    /// work needs). Results in job order.
    fn prepare_batch(
        &self,
        jobs: Vec<Job>,
        seen: &HashSet<PathBuf>,
        limits: &Limits,
        budget: &Budget,
    ) -> Vec<Ready> {
        let n = jobs.len();
        let queue = Mutex::new(jobs.into_iter().enumerate());
        let done = AtomicUsize::new(0);
        let mut ready: Vec<(usize, Ready)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..rayon::current_num_threads().clamp(1, n.max(1)))
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                            let Some((i, job)) = next else { break };
                            out.push((i, self.prepare_guarded(job, seen, limits, budget)));
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        out
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        debug_assert_eq!(done.load(Ordering::Relaxed), n);
        ready.sort_by_key(|(i, _)| *i);
        ready.into_iter().map(|(_, r)| r).collect()
    }

    /// [`prepare_job`](Self::prepare_job), a panic inside becoming this file's
    /// [`Error::Panic`]: one bad file never ends the run.
    fn prepare_guarded(
        &self,
        job: Job,
        seen: &HashSet<PathBuf>,
        limits: &Limits,
        budget: &Budget,
    ) -> Ready {
        let path = job.path.clone();
        let run = || Ok(self.prepare_job(job, seen, limits, budget));
        guard_panics(&path, run).unwrap_or_else(|error| Ready::Failed(Failure { path, error }))
    }

    /// Producer side of one file: read (a regular file within the size limit), hash, detect
    /// moves, then decode and preprocess, leasing the bytes held from `budget`.
    fn prepare_job(
        &self,
        job: Job,
        seen: &HashSet<PathBuf>,
        limits: &Limits,
        budget: &Budget,
    ) -> Ready {
        let fail = |path: &Path, error: Error| {
            Ready::Failed(Failure {
                path: path.to_path_buf(),
                error,
            })
        };
        if job.size > limits.max_file_bytes {
            // Known from the walk's stat: refused before leasing or opening anything.
            let error = Error::FileTooLarge {
                path: job.path.clone(),
                size: job.size,
                limit: limits.max_file_bytes,
            };
            return fail(&job.path, error);
        }
        let mut lease = budget.lease(job.size);
        let bytes = match read_file(&job.path, limits.max_file_bytes) {
            Ok(b) => b,
            Err(e) => return fail(&job.path, e),
        };
        let hash = content_hash(&bytes);
        let exif = read_exif(&bytes);
        let mut job = job;
        job.words.words = crate::keywords::extract::file_words(&bytes);
        let record = |width: u32, height: u32, format: String| {
            job.record(hash, exif.captured_at, width, height, format)
        };
        if let Some(id) = job.existing {
            if let Ok(Some(old)) = self.store.get(id) {
                if old.hash == hash {
                    let mut rec = record(old.width, old.height, old.format.clone());
                    rec.added_at = old.added_at;
                    return Ready::Touch { id, record: rec };
                }
            }
        } else {
            // Same content at a path that no longer exists (and is not part of this walk).
            let from: Vec<ImageId> = match self.store.ids_for_hash(&hash) {
                Ok(ids) => ids
                    .into_iter()
                    .filter(|id| {
                        self.catalog().get(*id).is_some_and(|e| {
                            !seen.contains(&e.path) && certainly_gone(&e.path, None)
                        })
                    })
                    .collect(),
                Err(e) => return fail(&job.path, e.into()),
            };
            if !from.is_empty() {
                // The bytes travel to the consumer outside the budget (the lease ends here): a
                // move is usually a rename, and only a copy of a moved photo decodes them.
                return Ready::Moved {
                    job,
                    hash,
                    from,
                    bytes,
                };
            }
        }
        // The header first (no pixels allocated), then the decode's memory from the budget.
        match self.model.inspect(&job.path, &bytes, limits) {
            Ok(peak) => lease.grow(peak),
            Err(error) => return fail(&job.path, error),
        }
        match self.model.prepare_with(&job.path, &bytes, limits) {
            Ok(prepared) => {
                let rec = record(prepared.width, prepared.height, prepared.format.clone());
                Ready::Encode {
                    job,
                    record: rec,
                    prepared,
                }
            }
            Err(error) => fail(&job.path, error),
        }
    }

    /// Consumer side of one batch: resolve moves, encode, commit, update index and catalog.
    fn commit_ready(
        &self,
        ready: Vec<Ready>,
        claimed: &mut HashSet<ImageId>,
        report: &mut IndexReport,
    ) -> Result<()> {
        let mut to_encode: Vec<(Job, ImageRecord, Prepared)> = Vec::new();
        let mut batch = self.store.batch();
        let mut renames: Vec<(ImageId, PathBuf)> = Vec::new();
        let mut touched = 0;
        for item in ready {
            match item {
                Ready::Failed(f) => report.failed.push(f),
                Ready::Touch { id, record } => {
                    batch.update(id, &record, None)?;
                    touched += 1;
                }
                Ready::Moved {
                    job,
                    hash,
                    from,
                    bytes,
                } => {
                    if let Some(&id) = from.iter().find(|id| !claimed.contains(id)) {
                        claimed.insert(id);
                        let mut rec = batch.get(id)?.ok_or(Error::NotFound(format!("id {id}")))?;
                        rec.path = job.path.clone();
                        rec.size = job.size;
                        rec.mtime_ns = job.mtime_ns;
                        rec.hash = hash;
                        batch.update(id, &rec, None)?;
                        renames.push((id, job.path));
                    } else {
                        // Every old copy was claimed by another new path: this one is a copy.
                        let exif = read_exif(&bytes);
                        match self.model.prepare(&job.path, &bytes) {
                            Ok(prepared) => {
                                let rec = job.record(
                                    hash,
                                    exif.captured_at,
                                    prepared.width,
                                    prepared.height,
                                    prepared.format.clone(),
                                );
                                to_encode.push((job, rec, prepared));
                            }
                            Err(error) => report.failed.push(Failure {
                                path: job.path,
                                error,
                            }),
                        }
                    }
                }
                Ready::Encode {
                    job,
                    record,
                    prepared,
                } => to_encode.push((job, record, prepared)),
            }
        }
        let pixels: Vec<_> = to_encode.iter().map(|(_, _, p)| p.pixels.clone()).collect();
        let embeddings = if pixels.is_empty() {
            Vec::new()
        } else {
            self.model.embed_pixels(&pixels)?
        };
        let mut removed_ids = Vec::new();
        let mut added = Vec::new();
        let mut added_words = Vec::new();
        let dims = self.model.dims();
        for ((job, record, _), embedding) in to_encode.into_iter().zip(embeddings) {
            // Nothing the index would refuse reaches the store: such a photo is a failure
            // (and a changed photo keeps its previous version).
            if let Err(e) = glimpse_store::validate_embedding(&embedding, dims) {
                report.failed.push(Failure {
                    path: job.path.clone(),
                    error: Error::InvalidEmbedding {
                        path: job.path,
                        reason: e.to_string(),
                    },
                });
                continue;
            }
            if let Some(old) = job.existing {
                batch.remove(old)?;
                removed_ids.push(old);
                report.updated += 1;
            } else {
                report.added += 1;
            }
            let id = batch.insert(&record, &embedding)?;
            if !job.words.words.is_empty() || job.words.original.is_some() {
                batch.set_words(id, &job.words)?;
            }
            added_words.push((id, job.words.words));
            added.push((id, record, embedding));
        }
        batch.commit().map_err(|e| Error::from(e).disk_full())?;
        report.unchanged += touched;
        report.moved += renames.len();

        let index = self.index();
        let mut catalog = self.catalog_mut();
        for id in removed_ids {
            index.remove(id);
            catalog.remove(id);
        }
        for (id, path) in renames {
            catalog.set_path(id, path);
        }
        for (id, record, _) in &added {
            catalog.insert(
                *id,
                Entry {
                    path: record.path.clone(),
                    captured_at: record.captured_at,
                },
            );
        }
        for (id, words) in &added_words {
            catalog.words.set_stored(*id, words);
        }
        drop(catalog);
        let items: Vec<(u64, Vec<f32>)> = added.into_iter().map(|(id, _, e)| (id, e)).collect();
        index.insert_batch(&items)?;
        Ok(())
    }

    /// Removes photos by id from store, index and catalog; returns how many existed.
    fn remove_ids(&self, ids: &[ImageId]) -> Result<usize> {
        let mut n = 0;
        for chunk in ids.chunks(256) {
            let mut batch = self.store.batch();
            let mut gone = Vec::new();
            for &id in chunk {
                if batch.remove(id)?.is_some() {
                    gone.push(id);
                }
            }
            batch.commit().map_err(|e| Error::from(e).disk_full())?;
            let index = self.index();
            let mut catalog = self.catalog_mut();
            for id in gone {
                index.remove(id);
                catalog.remove(id);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Adds (or re-indexes) one image file. Returns its id. Durable when it returns.
    pub fn add_image(&self, path: impl AsRef<Path>) -> Result<ImageId> {
        let path = path.as_ref();
        let path = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let _w = self.lock_writer();
        let (size, mtime_ns) = stat(&path)?;
        let existing = self.store.id_for_path(&path)?;
        let job = Job {
            path: path.clone(),
            size,
            mtime_ns,
            existing,
            words: PhotoWords::default(),
        };
        let mut report = IndexReport::default();
        let mut claimed = HashSet::new();
        let budget = Budget::new(DEFAULT_MEMORY_BUDGET);
        let ready = self.prepare_guarded(job, &HashSet::new(), &Limits::default(), &budget);
        self.commit_ready(vec![ready], &mut claimed, &mut report)?;
        if let Some(f) = report.failed.pop() {
            return Err(f.error);
        }
        self.store
            .id_for_path(&path)?
            .ok_or_else(|| Error::NotFound(path.display().to_string()))
    }

    /// Removes a photo by id. Returns whether it was in the library. Durable when it returns.
    pub fn remove(&self, id: ImageId) -> Result<bool> {
        let _w = self.lock_writer();
        Ok(self.remove_ids(&[id])? == 1)
    }

    /// Removes the photo at `path` (as indexed: absolute). Returns whether it was there.
    pub fn remove_path(&self, path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let Some(id) = self.store.id_for_path(&abs)? else {
            return Ok(false);
        };
        self.remove(id)
    }
}
