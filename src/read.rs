//! Reading photo files within bounds: regular files only, a size limit checked before a byte
//! is read, and the memory budget the indexing pipeline's workers share.
//!
//! Why each bound exists: a FIFO named `photo.jpg` would block a reader forever, a sparse 3 GB
//! file that starts with a JPEG signature would be read whole before its decoder refused it, and
//! `n` workers each decoding the largest image the limits allow would need memory in proportion
//! to the number of cores. So: the file type is checked (and the file opened non-blocking, so a
//! FIFO swapped in after the check cannot block either), the size is checked from the metadata
//! of the opened file, and every read and decode leases its bytes from one [`Budget`].

use crate::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Default [`IndexOptions::max_file_bytes`](crate::IndexOptions::max_file_bytes): 256 MiB.
pub(crate) const DEFAULT_MAX_FILE_BYTES: u64 = 256 << 20;
/// Default [`IndexOptions::max_pixels`](crate::IndexOptions::max_pixels): 64 Mi pixels
/// (8192 × 8192).
pub(crate) const DEFAULT_MAX_PIXELS: u64 = 1 << 26;
/// Default [`IndexOptions::memory_budget`](crate::IndexOptions::memory_budget): 512 MiB.
pub(crate) const DEFAULT_MEMORY_BUDGET: u64 = 512 << 20;

/// The per-file limits of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Largest decoded image, in pixels.
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// [`Error::NotAFile`] unless `meta` is a regular file's.
fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    Err(Error::NotAFile {
        path: path.to_path_buf(),
        kind: glimpse_encoder::preprocess::decode::file_kind(&meta.file_type()),
    })
}

/// Opens `path` for reading if it is a regular file. The type is checked before opening, and
/// the open is non-blocking (on Unix), so a FIFO put in its place in between cannot block.
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    check_regular(path, &meta)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    check_regular(path, &file.metadata().map_err(|e| Error::io(path, e))?)?;
    Ok(file)
}

/// Reads a whole regular file of at most `limit` bytes. The size is checked from the opened
/// file's metadata before reading ([`Error::FileTooLarge`]), and again while reading, in case
/// the file grows.
pub(crate) fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let too_large = |size: u64| Error::FileTooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Bytes the indexing pipeline's workers may hold at once (file contents being read and hashed,
/// images being decoded), shared by all of them: memory that does not grow with the number of
/// cores.
///
/// A job first [`lease`](Self::lease)s its file's size, then, once the image's header is known,
/// [`grow`](Lease::grow)s the lease by the decode's estimated peak. A lease that does not fit
/// waits for others to end, with two exceptions that keep the pipeline moving: a first lease is
/// granted when nothing else is held (one file larger than the budget then runs alone), and a
/// growing lease is granted when every other holder is waiting too (else they would wait for
/// each other forever). The memory held is thus at most the budget plus one job's.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes leased.
    used: u64,
    /// Holders of a lease not waiting to grow it.
    running: usize,
    /// The most bytes ever leased at once (for tests).
    peak: u64,
}

/// Bytes leased from a [`Budget`]; returned when dropped.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Budget {
            limit,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.freed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// A new job's lease of `bytes`: waits until they fit, or until nothing else is leased.
    pub(crate) fn lease(&self, bytes: u64) -> Lease<'_> {
        let mut s = self.lock();
        while s.used != 0 && s.used.saturating_add(bytes) > self.limit {
            s = self.wait(s);
        }
        s.used = s.used.saturating_add(bytes);
        s.peak = s.peak.max(s.used);
        s.running += 1;
        Lease {
            budget: self,
            bytes,
        }
    }

    /// The most bytes leased at once so far.
    #[cfg(test)]
    fn peak(&self) -> u64 {
        self.lock().peak
    }
}

impl Lease<'_> {
    /// Adds `bytes` to the lease: waits until they fit, or until every other holder is waiting.
    pub(crate) fn grow(&mut self, bytes: u64) {
        let budget = self.budget;
        let mut s = budget.lock();
        s.running -= 1;
        while s.running != 0 && s.used.saturating_add(bytes) > budget.limit {
            s = budget.wait(s);
        }
        s.running += 1;
        s.used = s.used.saturating_add(bytes);
        s.peak = s.peak.max(s.used);
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut s = self.budget.lock();
        s.used -= self.bytes.min(s.used);
        s.running -= 1;
        drop(s);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn the_budget_bounds_what_many_threads_hold_and_never_deadlocks() {
        // 16 threads, each leasing 30 then growing by 50, under a budget of 100: at most the
        // budget plus one job (80) is ever held, and every job ends.
        let budget = Budget::new(100);
        let done = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let mut lease = budget.lease(30);
                        std::thread::yield_now();
                        lease.grow(50);
                        std::thread::yield_now();
                        drop(lease);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 16 * 20);
        assert!(budget.peak() <= 100 + 80, "peak {}", budget.peak());
        assert_eq!(budget.lock().used, 0);
    }

    #[test]
    fn a_lease_larger_than_the_budget_runs_alone() {
        let budget = Budget::new(10);
        let lease = budget.lease(1000);
        drop(lease);
        let mut a = budget.lease(5);
        a.grow(1000); // the only holder: granted
        assert_eq!(budget.peak(), 1005);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.jpg");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: mkfifo is not available");
            return;
        }
        let e = read_file(&fifo, 1 << 20).unwrap_err();
        assert!(matches!(e, Error::NotAFile { kind: "FIFO", .. }), "{e:?}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jpg");
        let file = File::create(&path).unwrap();
        file.set_len(3 << 30).unwrap(); // sparse: nothing is written
        let e = read_file(&path, 1 << 20).unwrap_err();
        assert!(
            matches!(e, Error::FileTooLarge { size, limit, .. } if size == 3 << 30 && limit == 1 << 20),
            "{e:?}"
        );
    }
}
