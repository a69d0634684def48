//! A full consistency check of the store, like SQLite's `PRAGMA integrity_check`.

use crate::record::decode_record;
use crate::schema::{bytes_to_path, decode_id, hex, CF_EMBEDDINGS, CF_HASHES, CF_IMAGES, CF_PATHS};
use crate::{Error, ImageId, ImageRecord, Result, Store};
use rocksdb::IteratorMode;
use std::collections::{BTreeMap, HashMap};

/// What [`Store::check_integrity`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Number of image records read.
    pub images: u64,
    /// Every broken invariant, one line each. Empty when the store is consistent.
    pub problems: Vec<String>,
}

impl IntegrityReport {
    /// Whether every invariant holds.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Reads the whole store and checks its invariants: every image has exactly one path entry,
    /// one hash entry and one embedding of the store's model; paths ↔ ids is a bijection; hash
    /// entries point at live images with that hash; the next id is above every id; the stored
    /// count equals the number of images. Cost: one scan of every column family.
    ///
    /// # Errors
    /// Only RocksDB read failures; broken invariants are listed in the report.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        let mut problems = Vec::new();
        let mut images: BTreeMap<ImageId, ImageRecord> = BTreeMap::new();
        for item in self.db.iterator_cf(self.cf(CF_IMAGES), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| Error::db("scanning images", e))?;
            let decoded = decode_id(CF_IMAGES, &key)
                .and_then(|id| Ok((id, decode_record(&|| format!("images/{id}"), &value)?)));
            match decoded {
                Ok((id, record)) => {
                    images.insert(id, record);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }

        let mut path_entries: HashMap<ImageId, usize> = HashMap::new();
        for item in self.db.iterator_cf(self.cf(CF_PATHS), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| Error::db("scanning paths", e))?;
            let path = bytes_to_path(&key);
            match decode_id(CF_PATHS, &value) {
                Err(e) => problems.push(e.to_string()),
                Ok(id) => {
                    *path_entries.entry(id).or_default() += 1;
                    match images.get(&id) {
                        None => {
                            problems.push(format!("path {path:?} points at missing image {id}"))
                        }
                        Some(r) if r.path != path => problems.push(format!(
                            "path {path:?} points at image {id}, whose record says {:?}",
                            r.path
                        )),
                        Some(_) => {}
                    }
                }
            }
        }

        let mut hash_entries: HashMap<ImageId, usize> = HashMap::new();
        for item in self.db.iterator_cf(self.cf(CF_HASHES), IteratorMode::Start) {
            let (key, _) = item.map_err(|e| Error::db("scanning hashes", e))?;
            if key.len() != 40 {
                problems.push(format!("hash key {} is not 40 bytes", hex(&key)));
                continue;
            }
            let id = decode_id(CF_HASHES, &key[32..])?;
            *hash_entries.entry(id).or_default() += 1;
            match images.get(&id) {
                None => problems.push(format!("hash entry points at missing image {id}")),
                Some(r) if r.hash.0[..] != key[..32] => {
                    problems.push(format!("hash entry for image {id} differs from its record"))
                }
                Some(_) => {}
            }
        }

        let mut embedded: HashMap<ImageId, usize> = HashMap::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_EMBEDDINGS), IteratorMode::Start)
        {
            let (key, _) = item.map_err(|e| Error::db("scanning embeddings", e))?;
            match decode_id(CF_EMBEDDINGS, &key) {
                Err(e) => problems.push(e.to_string()),
                Ok(id) => {
                    *embedded.entry(id).or_default() += 1;
                    if !images.contains_key(&id) {
                        problems.push(format!("embedding of missing image {id}"));
                    } else if let Err(e) = self.embedding(id) {
                        problems.push(e.to_string());
                    }
                }
            }
        }

        for id in images.keys() {
            for (what, map) in [
                ("path", &path_entries),
                ("hash", &hash_entries),
                ("embedding", &embedded),
            ] {
                let n = map.get(id).copied().unwrap_or(0);
                if n != 1 {
                    problems.push(format!("image {id} has {n} {what} entries, expected 1"));
                }
            }
        }
        if let Some((&max, _)) = images.last_key_value() {
            if self.next_id() <= max {
                problems.push(format!(
                    "next id {} is not above image {max}",
                    self.next_id()
                ));
            }
        }
        if self.len() != images.len() as u64 {
            problems.push(format!(
                "stored count {} but {} images",
                self.len(),
                images.len()
            ));
        }
        Ok(IntegrityReport {
            images: images.len() as u64,
            problems,
        })
    }
}
