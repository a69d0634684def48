//! Whether an index's files were found intact, for [`Index::open`](crate::Index::open), which
//! checks the vectors file's checksum on a background thread instead of before returning.
//!
//! Until that check ends, searches run on the mapped vectors unverified (a damaged vector can
//! only change a rescored score); once it has found damage, every search, exact scan and save
//! fails with [`Error::Corrupt`] (a save would otherwise write the damage under a fresh, valid
//! checksum), and [`Index::verify`](crate::Index::verify) says so.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

#[derive(Debug)]
pub(crate) struct Integrity {
    /// Set once damage was found: the searches' fast path.
    damaged: AtomicBool,
    state: Mutex<Check>,
    done: Condvar,
}

#[derive(Debug, Clone)]
enum Check {
    Verified,
    Pending,
    Damaged { path: PathBuf, reason: String },
}

impl Integrity {
    /// Everything was checked already (a new index, or [`Index::load`](crate::Index::load)).
    pub(crate) fn verified() -> Self {
        Integrity {
            damaged: AtomicBool::new(false),
            state: Mutex::new(Check::Verified),
            done: Condvar::new(),
        }
    }

    /// A check is running.
    pub(crate) fn pending() -> Self {
        Integrity {
            state: Mutex::new(Check::Pending),
            ..Integrity::verified()
        }
    }

    /// Records the background check's outcome: `Err((path, reason))` for damage.
    pub(crate) fn finish(&self, outcome: std::result::Result<(), (PathBuf, String)>) {
        let mut state = self.state.lock();
        *state = match outcome {
            Ok(()) => Check::Verified,
            Err((path, reason)) => {
                self.damaged.store(true, Ordering::Release);
                Check::Damaged { path, reason }
            }
        };
        self.done.notify_all();
    }

    /// `Err` once damage was found; never waits.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        if self.damaged.load(Ordering::Acquire) {
            self.wait()
        } else {
            Ok(())
        }
    }

    /// Waits for a running check; `Err` when it found damage.
    pub(crate) fn wait(&self) -> Result<()> {
        let mut state = self.state.lock();
        while matches!(*state, Check::Pending) {
            self.done.wait(&mut state);
        }
        match &*state {
            Check::Damaged { path, reason } => Err(Error::Corrupt {
                path: path.clone(),
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// True while the check runs.
    pub(crate) fn is_pending(&self) -> bool {
        matches!(*self.state.lock(), Check::Pending)
    }
}
