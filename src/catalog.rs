//! An in-memory view of the store's records that filters and hits need on every search:
//! id → (path, capture time). Loaded from the store on open, updated with every commit.
//! About 100 bytes per photo: 100 MB for a million photos.

use crate::keywords::extract::record_words;
use crate::keywords::index::KeywordIndex;
use crate::types::{ImageId, SearchOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: PathBuf,
    pub captured_at: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    entries: HashMap<ImageId, Entry>,
    /// The keyword side of hybrid search; the words derived from an entry follow it here.
    pub words: KeywordIndex,
}

impl Catalog {
    pub fn insert(&mut self, id: ImageId, entry: Entry) {
        self.words
            .set_derived(id, &record_words(&entry.path, entry.captured_at));
        self.entries.insert(id, entry);
    }

    pub fn remove(&mut self, id: ImageId) -> Option<Entry> {
        self.words.remove(id);
        self.entries.remove(&id)
    }

    pub fn get(&self, id: ImageId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    pub fn set_path(&mut self, id: ImageId, path: PathBuf) {
        if let Some(e) = self.entries.get_mut(&id) {
            self.words
                .set_derived(id, &record_words(&path, e.captured_at));
            e.path = path;
        }
    }

    /// Ids whose path lies under `root` (component-wise prefix).
    pub fn ids_under(&self, root: &Path) -> Vec<(ImageId, PathBuf)> {
        let mut ids: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.path.starts_with(root))
            .map(|(&id, e)| (id, e.path.clone()))
            .collect();
        ids.sort();
        ids
    }

    pub fn ids(&self) -> Vec<ImageId> {
        let mut ids: Vec<_> = self.entries.keys().copied().collect();
        ids.sort();
        ids
    }

    /// Whether photo `id` passes the options' folder and capture-time restrictions.
    pub fn allows(&self, id: ImageId, opts: &SearchOptions) -> bool {
        let Some(e) = self.entries.get(&id) else {
            return false;
        };
        if let Some(folder) = &opts.folder {
            if !e.path.starts_with(folder) {
                return false;
            }
        }
        if let Some(word) = &opts.keyword {
            if !self.words.has(id, word) {
                return false;
            }
        }
        if opts.captured_after.is_some() || opts.captured_before.is_some() {
            let Some(t) = e.captured_at else { return false };
            if opts.captured_after.is_some_and(|a| t < a)
                || opts.captured_before.is_some_and(|b| t >= b)
            {
                return false;
            }
        }
        true
    }
}

/// Whether the options restrict anything inside the search.
pub(crate) fn has_filter(opts: &SearchOptions) -> bool {
    opts.folder.is_some()
        || opts.captured_after.is_some()
        || opts.captured_before.is_some()
        || opts.keyword.is_some()
}
