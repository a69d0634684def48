//! Plain data the library hands out and takes in: hits, options, reports, progress.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Identifier of a photo in a library. Allocated by the library, never reused.
pub type ImageId = u64;

/// One search result.
///
/// `score` is the cosine similarity between the query's and the photo's embeddings, in
/// `[-1, 1]`, higher is closer. It ranks, but it is **not calibrated**: it is comparable
/// between queries of the same kind (text–image scores of a CLIP model typically lie in
/// 0.15–0.40; image–image scores are higher), not across kinds or models, and no fixed
/// threshold on it means "relevant".
///
/// `relevance` is that calibrated meaning where the model has one: for a text query against a
/// sigmoid-trained model (SigLIP, SigLIP 2), the model's own probability that the text
/// describes the photo, `sigmoid(exp(t)·score + b)` with the checkpoint's learned `t` and `b`,
/// in `[0, 1]` and comparable across queries (filter with
/// [`SearchOptions::min_relevance`]). It is `None` for CLIP models (softmax-trained: no
/// calibration exists) and for image queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The photo's id.
    pub id: ImageId,
    /// Where the photo is.
    pub path: PathBuf,
    /// Cosine similarity to the query, in `[-1, 1]` (uncalibrated).
    pub score: f32,
    /// Calibrated probability of a match, in `[0, 1]`: text queries on SigLIP models only.
    pub relevance: Option<f32>,
    /// The photo's words that the query matched (folder or file-name words, metadata
    /// keywords, camera, capture year or month; lower case, sorted), when a hybrid text search
    /// ranked it by them too ([`SearchOptions::hybrid`]); empty otherwise.
    pub matched: Vec<String>,
}

/// Whether a text search fuses the CLIP ranking with the photos' words
/// ([`SearchOptions::hybrid`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Hybrid {
    /// Fuse (the default): a query word that names a folder, a file, a keyword, a camera or a
    /// capture month or year lifts those photos (reciprocal-rank fusion); a query no word
    /// matches ranks exactly as with [`Off`](Self::Off).
    #[default]
    On,
    /// CLIP alone.
    Off,
    /// The alternative fusion that reciprocal-rank fusion was measured against: the cosine
    /// plus this weight times the keyword score relative to the best one (docs/ARCHITECTURE.md
    /// gives the figures). Kept for experiments.
    Weighted(f32),
}

impl Hybrid {
    /// Whether the photos' words take part ([`On`](Self::On) or [`Weighted`](Self::Weighted)).
    pub fn is_on(self) -> bool {
        self != Hybrid::Off
    }
}

/// Restrictions applied *inside* the index search (so `k` results come back whenever `k`
/// photos pass them), not to the top `k` afterwards.
///
/// Start from the default (no restriction) and chain setters:
/// `SearchOptions::default().folder("/home/me/Pictures/trips").min_score(0.2)`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SearchOptions {
    /// Only photos whose path starts with this folder (component-wise).
    pub folder: Option<PathBuf>,
    /// Only photos whose EXIF capture time (seconds since the Unix epoch) is at or after this.
    /// Photos without a capture time are excluded when either bound is set.
    pub captured_after: Option<i64>,
    /// Only photos whose EXIF capture time is before this.
    pub captured_before: Option<i64>,
    /// Drop hits scoring below this cosine (any model; uncalibrated, see [`Hit`]).
    pub min_score: Option<f32>,
    /// Drop hits whose calibrated [`Hit::relevance`] is below this probability (e.g. `0.5`).
    /// Only for text queries on a calibrated (SigLIP) model: elsewhere the search fails with
    /// an invalid-input error rather than silently ignoring it (CLIP scores are not
    /// calibrated; use [`min_score`](Self::min_score)).
    pub min_relevance: Option<f32>,
    /// Override the index's search width for this call (higher: slower, more exact).
    pub ef: Option<usize>,
    /// Text searches: fuse the CLIP ranking with the photos' words ([`Hybrid::On`], the
    /// default) or rank by CLIP alone. Image searches ignore it. With it on, `min_score` drops
    /// only hits that no query word matched.
    pub hybrid: Hybrid,
    /// Only photos having this word (or words, all of them) among their keywords: folder and
    /// file-name words, the file's extension (a format filter: `"heic"`, `"nef"`), metadata
    /// keywords and titles, camera make and model, capture year and month — matched as hybrid
    /// search matches them (case, plural and stem do not matter).
    pub keyword: Option<String>,
}

impl SearchOptions {
    /// Sets [`folder`](Self::folder).
    #[must_use = "setters return the changed options"]
    pub fn folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.folder = Some(folder.into());
        self
    }

    /// Sets [`captured_after`](Self::captured_after) (seconds since the Unix epoch).
    #[must_use = "setters return the changed options"]
    pub fn captured_after(mut self, seconds: i64) -> Self {
        self.captured_after = Some(seconds);
        self
    }

    /// Sets [`captured_before`](Self::captured_before) (seconds since the Unix epoch).
    #[must_use = "setters return the changed options"]
    pub fn captured_before(mut self, seconds: i64) -> Self {
        self.captured_before = Some(seconds);
        self
    }

    /// Sets [`min_score`](Self::min_score).
    #[must_use = "setters return the changed options"]
    pub fn min_score(mut self, score: f32) -> Self {
        self.min_score = Some(score);
        self
    }

    /// Sets [`min_relevance`](Self::min_relevance).
    #[must_use = "setters return the changed options"]
    pub fn min_relevance(mut self, probability: f32) -> Self {
        self.min_relevance = Some(probability);
        self
    }

    /// Sets [`hybrid`](Self::hybrid): `true` for [`Hybrid::On`], `false` for CLIP alone.
    #[must_use = "setters return the changed options"]
    pub fn hybrid(mut self, on: bool) -> Self {
        self.hybrid = if on { Hybrid::On } else { Hybrid::Off };
        self
    }

    /// Sets [`keyword`](Self::keyword), e.g. `"oma"`, `"canon"`, `"june"`.
    #[must_use = "setters return the changed options"]
    pub fn keyword(mut self, word: impl Into<String>) -> Self {
        self.keyword = Some(word.into());
        self
    }

    /// Sets [`ef`](Self::ef).
    #[must_use = "setters return the changed options"]
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }
}

/// A progress callback, called from the indexing thread.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How [`Library::index_folder`](crate::Library::index_folder) treats a folder.
///
/// Start from the default and chain setters: `IndexOptions::default().batch_size(32)`.
#[derive(Clone)]
#[non_exhaustive]
pub struct IndexOptions {
    /// Remove from the library the photos under this folder that no longer exist (default
    /// true). Only a *certain* absence removes a photo: its own lookup says "not found" and the
    /// nearest folder above it that exists lists without error and is not empty. An unreadable
    /// folder, an I/O error, a folder replaced by a file or a dangling link, or a folder that
    /// now lists as empty (what an unmounted disk's mount point looks like) keeps the photos
    /// and reports [`Error::KeptMissing`](crate::Error::KeptMissing) in
    /// [`IndexReport::failed`].
    pub remove_missing: bool,
    /// Photos per encoder batch (default 16).
    pub batch_size: usize,
    /// Called after every batch and at the end.
    pub progress: Option<ProgressFn>,
    /// Stops the run between batches; what was committed stays.
    pub cancel: Option<CancelToken>,
    /// Follow symbolic links that lead outside the indexed folder (default false: such a link,
    /// to a file or a folder, is skipped — not indexed, not reported as a failure — and logged
    /// at `info` level). Links that stay inside the folder are always followed; a link back to
    /// one of its ancestors is reported as [`Error::SymlinkLoop`](crate::Error::SymlinkLoop)
    /// either way.
    pub follow_symlinks_outside: bool,
    /// Largest photo file read, in bytes (default 256 MiB). A larger file is
    /// [`Error::FileTooLarge`](crate::Error::FileTooLarge), refused from its metadata before a
    /// byte is read.
    pub max_file_bytes: u64,
    /// Largest decoded image, in pixels (default 64 Mi pixels, e.g. 8192 × 8192; a large
    /// JPEG counts the size it is decoded at, about 1/4 to 1/64 of its pixels). Checked from the
    /// file's header before any pixel buffer is allocated; a larger image is
    /// [`EncoderError::ImageTooLarge`](crate::EncoderError::ImageTooLarge).
    pub max_pixels: u64,
    /// Bytes the indexing workers may hold at once for files being read and images being
    /// decoded (default 512 MiB), whatever the number of cores; a single file that needs more
    /// runs alone.
    pub memory_budget: u64,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            remove_missing: true,
            batch_size: 16,
            progress: None,
            cancel: None,
            follow_symlinks_outside: false,
            max_file_bytes: crate::read::DEFAULT_MAX_FILE_BYTES,
            max_pixels: crate::read::DEFAULT_MAX_PIXELS,
            memory_budget: crate::read::DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl IndexOptions {
    /// Sets [`remove_missing`](Self::remove_missing).
    #[must_use = "setters return the changed options"]
    pub fn remove_missing(mut self, yes: bool) -> Self {
        self.remove_missing = yes;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    #[must_use = "setters return the changed options"]
    pub fn batch_size(mut self, photos: usize) -> Self {
        self.batch_size = photos;
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

    /// Sets [`follow_symlinks_outside`](Self::follow_symlinks_outside).
    #[must_use = "setters return the changed options"]
    pub fn follow_symlinks_outside(mut self, yes: bool) -> Self {
        self.follow_symlinks_outside = yes;
        self
    }

    /// Sets [`max_file_bytes`](Self::max_file_bytes).
    #[must_use = "setters return the changed options"]
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Sets [`max_pixels`](Self::max_pixels).
    #[must_use = "setters return the changed options"]
    pub fn max_pixels(mut self, pixels: u64) -> Self {
        self.max_pixels = pixels;
        self
    }

    /// Sets [`memory_budget`](Self::memory_budget).
    #[must_use = "setters return the changed options"]
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }
}

impl std::fmt::Debug for IndexOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexOptions")
            .field("remove_missing", &self.remove_missing)
            .field("batch_size", &self.batch_size)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .field("follow_symlinks_outside", &self.follow_symlinks_outside)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("max_pixels", &self.max_pixels)
            .field("memory_budget", &self.memory_budget)
            .finish()
    }
}

/// Progress of an indexing run.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Image files found so far.
    pub seen: usize,
    /// Photos that need encoding in this run.
    pub to_encode: usize,
    /// Photos encoded so far.
    pub encoded: usize,
    /// Failures so far.
    pub failed: usize,
    /// Encoding rate, photos per second.
    pub rate: f64,
}

/// Cancels a running [`Library::index_folder`](crate::Library::index_folder) from another
/// thread. Cheap to clone; all clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the run to stop after the batch in progress.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// One photo that could not be indexed, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub error: crate::Error,
}

/// What an indexing run did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct IndexReport {
    /// New photos encoded and added.
    pub added: usize,
    /// Photos whose content changed and were re-encoded.
    pub updated: usize,
    /// Photos whose size and modification time were unchanged (not read).
    pub unchanged: usize,
    /// Photos found at a new path with known content: moved, not re-encoded.
    pub moved: usize,
    /// Records of photos that disappeared, removed.
    pub removed: usize,
    /// Photos that could not be indexed; the rest of the folder was.
    pub failed: Vec<Failure>,
    /// Whether the run was cancelled before the end.
    pub cancelled: bool,
}

impl IndexReport {
    /// Photos that were encoded in this run (`added + updated`).
    pub fn encoded(&self) -> usize {
        self.added + self.updated
    }
}

/// How a library opened: whether its index had to be rebuilt or caught up from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexRecovery {
    /// The saved index matched the store.
    Loaded,
    /// The saved index was behind the store and was brought up to date.
    CaughtUp {
        /// Embeddings added from the store.
        inserted: usize,
    },
    /// The index was missing, corrupt or incompatible and was rebuilt from the store.
    Rebuilt {
        /// Why.
        reason: String,
    },
}

/// What kind of problem a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A stored embedding cannot be used (NaN, infinite, zero, wrong length, undecodable): the
    /// photo is left out of searches until it is re-embedded ([`Library::repair`]).
    ///
    /// [`Library::repair`]: crate::Library::repair
    InvalidEmbedding,
    /// A photo has no embedding of the library's model yet (its re-embedding after a model
    /// change or a repair failed, e.g. its file cannot be read): kept, left out of searches,
    /// retried on every open.
    MissingEmbedding,
    /// A stored photo record cannot be decoded: kept, left out of searches.
    UnreadableRecord,
    /// A store invariant is broken (see `Store::check_integrity`).
    Store,
    /// The index disagrees with the store, or could not be saved.
    Index,
    /// A leftover temporary file of an interrupted index save.
    TempFile,
}

/// One thing wrong with a library, found while opening it or by [`Library::check`].
///
/// [`Library::check`]: crate::Library::check
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The photo concerned, if one is.
    pub id: Option<ImageId>,
    /// Its path, when known.
    pub path: Option<PathBuf>,
    /// What exactly is wrong.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if let Some(id) = self.id {
            write!(f, " (photo {id}")?;
            if let Some(p) = &self.path {
                write!(f, ", {}", p.display())?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How a library opened ([`Library::open_report`](crate::Library::open_report)): nothing
/// found in the store stops an open; what could not be used is quarantined — left out of the
/// index and searches, kept in the store — and listed here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// How the index was restored.
    pub index: IndexRecovery,
    /// Photos left out of the index, and other problems met while opening.
    pub quarantined: Vec<Problem>,
    /// Leftover temporary files of interrupted index saves that were removed.
    pub cleaned: usize,
}

/// What [`Library::check`](crate::Library::check) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Photos in the store.
    pub photos: usize,
    /// Every problem found; empty when the library is sound.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What [`Library::repair`](crate::Library::repair) did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RepairReport {
    /// Each fix, one line.
    pub fixed: Vec<String>,
    /// Photos re-embedded from their files.
    pub reembedded: usize,
    /// What is still wrong afterwards (a fresh [`Library::check`](crate::Library::check)).
    pub remaining: Vec<Problem>,
}
