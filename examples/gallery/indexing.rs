//! Indexing a folder in the background while the page searches, with live progress.

use glimpse::{IndexOptions, Library, Progress};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Failures listed on the page (the count is always complete).
const MAX_LISTED_ERRORS: usize = 100;

/// What the page shows about indexing (`/api/status`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexStatus {
    /// The folder being (or last) indexed; `None` when the gallery was started without one.
    pub folder: Option<String>,
    /// Whether a run is in progress.
    pub running: bool,
    /// Whether a run has finished (successfully or not).
    pub finished: bool,
    /// Image files found so far.
    pub seen: usize,
    /// Photos that need encoding in this run.
    pub to_encode: usize,
    /// Photos encoded so far.
    pub encoded: usize,
    /// Photos that could not be indexed so far.
    pub failed: usize,
    /// Encoding rate, photos per second.
    pub rate: f64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// The run's summary once finished.
    pub summary: Option<String>,
    /// `path: error` of the first failures (the report's, once finished).
    pub errors: Vec<String>,
    /// Why the run stopped, when it failed as a whole.
    pub error: Option<String>,
}

/// Shared between the indexing thread and the request handlers.
pub type SharedStatus = Arc<Mutex<IndexStatus>>;

/// Starts indexing `folder` on a thread of its own and returns at once; `status` follows it.
/// Thumbnails of photos the run removed are pruned from `thumbs` when it ends.
pub fn start(
    lib: Arc<Library>,
    folder: PathBuf,
    status: SharedStatus,
    thumbs: crate::thumbs::Thumbnails,
) {
    let started = Instant::now();
    {
        let mut s = lock(&status);
        *s = IndexStatus {
            folder: Some(folder.display().to_string()),
            running: true,
            ..IndexStatus::default()
        };
    }
    let progress_status = status.clone();
    // A testing aid: `GLIMPSE_GALLERY_PAUSE_MS` pauses indexing that long after each committed
    // batch, so that a browser test can watch the progress even where indexing a folder takes
    // less time than loading the page (the demo model on a fast CPU).
    let pause = std::env::var("GLIMPSE_GALLERY_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    let progress = Arc::new(move |p: &Progress| {
        if let Some(pause) = pause {
            std::thread::sleep(pause);
        }
        let mut s = lock(&progress_status);
        s.seen = p.seen;
        s.to_encode = p.to_encode;
        s.encoded = p.encoded;
        s.failed = p.failed;
        s.rate = p.rate;
        s.elapsed_s = started.elapsed().as_secs_f64();
    });
    let options = IndexOptions::default().progress(progress);
    std::thread::spawn(move || {
        let result = lib.index_folder(&folder, &options);
        // Save the index so that the next start needs no catch-up.
        let committed = lib.commit();
        thumbs.prune(|id| lib.path(id).is_some());
        let mut s = lock(&status);
        s.running = false;
        s.finished = true;
        s.elapsed_s = started.elapsed().as_secs_f64();
        match result {
            Ok(r) => {
                let summary = format!(
                    "{} added, {} updated, {} unchanged, {} moved, {} removed, {} failed",
                    r.added,
                    r.updated,
                    r.unchanged,
                    r.moved,
                    r.removed,
                    r.failed.len()
                );
                eprintln!("gallery: indexed {}: {summary}", folder.display());
                s.summary = Some(summary);
                s.failed = r.failed.len();
                s.errors = r
                    .failed
                    .iter()
                    .take(MAX_LISTED_ERRORS)
                    .map(|f| format!("{}: {}", f.path.display(), f.error))
                    .collect();
            }
            Err(e) => {
                eprintln!("gallery: indexing {} failed: {e}", folder.display());
                s.error = Some(e.to_string());
            }
        }
        if let Err(e) = committed {
            s.error
                .get_or_insert_with(|| format!("saving the index: {e}"));
        }
    });
}

/// The status, also after a panic elsewhere (it is plain data).
pub fn lock(status: &SharedStatus) -> std::sync::MutexGuard<'_, IndexStatus> {
    status.lock().unwrap_or_else(|p| p.into_inner())
}
