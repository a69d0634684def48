//! When is a photo certainly gone? The rule behind `IndexOptions::remove_missing` and move
//! detection: Glimpse never deletes a record on doubt.
//!
//! A photo whose file the walk did not find is **certainly gone** only when
//! 1. its own lookup (`symlink_metadata`, so a dangling link counts as present) says
//!    "not found", every folder between it and the nearest existing folder above it says "not
//!    found" too, and
//! 2. that nearest existing folder lists without error and is not empty.
//!
//! Anything else is **doubt** and keeps the record: a lookup that fails otherwise (permission
//! denied, I/O error, a folder replaced by a file), a folder that cannot be listed (unreadable,
//! a dangling link to an unmounted disk), or one that now lists as empty — what the mount point
//! of an unmounted disk looks like. The known limit: a mount point that vanishes entirely
//! beneath a non-empty folder (some automounters remove it) looks like a deleted folder.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// What the disk says about a photo the walk did not find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Absence {
    /// The file is there (it may have been skipped by the walk, or it is a dangling link).
    Present,
    /// Certainly gone.
    Certain,
    /// Perhaps gone: keep the record.
    Doubt {
        /// The folder (or file) whose state is in doubt.
        folder: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Checks many photos under one root, listing each folder once.
#[derive(Debug)]
pub(crate) struct AbsenceCheck {
    root: PathBuf,
    /// Folder → `None` when it lists and is not empty, or why it is in doubt.
    folders: HashMap<PathBuf, Option<String>>,
}

impl AbsenceCheck {
    /// A check of photos under `root` (an existing, canonical folder): the walk up from a
    /// photo stops there.
    pub fn new(root: &Path) -> Self {
        AbsenceCheck {
            root: root.to_path_buf(),
            folders: HashMap::new(),
        }
    }

    /// Whether the photo at `path` is certainly gone.
    pub fn check(&mut self, path: &Path) -> Absence {
        let folders = &mut self.folders;
        absence(path, Some(&self.root), &mut |dir: &Path| {
            folders
                .entry(dir.to_path_buf())
                .or_insert_with(|| listing_doubt(dir))
                .clone()
        })
    }
}

/// Whether the photo at `path` is certainly gone (no folder cache; `root`, if given, bounds the
/// walk up).
pub(crate) fn certainly_gone(path: &Path, root: Option<&Path>) -> bool {
    absence(path, root, &mut listing_doubt) == Absence::Certain
}

fn absence(
    path: &Path,
    root: Option<&Path>,
    listing: &mut dyn FnMut(&Path) -> Option<String>,
) -> Absence {
    match std::fs::symlink_metadata(path) {
        Ok(_) => return Absence::Present,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Absence::Doubt {
                folder: path.parent().unwrap_or(path).to_path_buf(),
                reason: format!("looking up {} failed: {e}", path.display()),
            }
        }
    }
    // The nearest existing folder above it.
    let mut dir = path;
    loop {
        let Some(parent) = dir.parent() else {
            return Absence::Doubt {
                folder: dir.to_path_buf(),
                reason: "no folder above it exists".into(),
            };
        };
        dir = parent;
        match std::fs::symlink_metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if root.is_some_and(|r| dir == r || !dir.starts_with(r)) {
                    return Absence::Doubt {
                        folder: dir.to_path_buf(),
                        reason: "the indexed folder itself is gone".into(),
                    };
                }
            }
            Err(e) => {
                return Absence::Doubt {
                    folder: dir.to_path_buf(),
                    reason: format!("looking up {} failed: {e}", dir.display()),
                }
            }
        }
    }
    match listing(dir) {
        None => Absence::Certain,
        Some(reason) => Absence::Doubt {
            folder: dir.to_path_buf(),
            reason,
        },
    }
}

/// `None` when `dir` is a folder that lists completely and holds at least one entry;
/// otherwise why its listing cannot be trusted to show what is gone.
fn listing_doubt(dir: &Path) -> Option<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Some(format!("cannot list {}: {e}", dir.display())),
    };
    let mut n = 0;
    for entry in entries {
        if let Err(e) = entry {
            return Some(format!("listing {} failed: {e}", dir.display()));
        }
        n += 1;
    }
    (n == 0).then(|| {
        format!(
            "{} is empty now (an unmounted disk?); remove its photos explicitly if they are gone",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certain_only_beside_a_listable_non_empty_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let full = root.join("full");
        std::fs::create_dir_all(&full).unwrap();
        std::fs::write(full.join("other.jpg"), b"x").unwrap();
        let mut check = AbsenceCheck::new(&root);
        assert_eq!(check.check(&full.join("other.jpg")), Absence::Present);
        assert_eq!(check.check(&full.join("gone.jpg")), Absence::Certain);
        // A deleted sub-folder of a non-empty folder: certain.
        assert_eq!(check.check(&full.join("deleted/x.jpg")), Absence::Certain);

        // An emptied folder (a mount point without its disk): doubt.
        let empty = root.join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(matches!(
            check.check(&empty.join("a.jpg")),
            Absence::Doubt { .. }
        ));
        assert!(matches!(
            check.check(&empty.join("sub/a.jpg")),
            Absence::Doubt { .. }
        ));

        // A folder replaced by a file: doubt.
        std::fs::write(root.join("file"), b"x").unwrap();
        assert!(matches!(
            check.check(&root.join("file/a.jpg")),
            Absence::Doubt { .. }
        ));

        // A dangling folder link: doubt.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("nowhere"), root.join("link")).unwrap();
            assert!(matches!(
                check.check(&root.join("link/a.jpg")),
                Absence::Doubt { .. }
            ));
            // A dangling file link is a file that is there.
            std::os::unix::fs::symlink(root.join("nowhere.jpg"), full.join("l.jpg")).unwrap();
            assert_eq!(check.check(&full.join("l.jpg")), Absence::Present);
        }
        assert!(certainly_gone(&full.join("gone.jpg"), None));
        assert!(!certainly_gone(&empty.join("a.jpg"), Some(&root)));
    }
}
