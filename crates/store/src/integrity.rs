//! A full consistency check of the store, like SQLite's `PRAGMA integrity_check`.

use crate::record::decode_record;
use crate::schema::{
    bytes_to_path, decode_id, hash_key, hex, id_key, path_to_bytes, CF_EMBEDDINGS, CF_HASHES,
    CF_IMAGES, CF_META, CF_PATHS, META_COUNT, META_NEXT_ID,
};
use crate::store::check_embedding;
use crate::{Error, ImageId, ImageRecord, Result, Store};
use rocksdb::IteratorMode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

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
                    } else {
                        match self.embedding(id) {
                            Err(e) => problems.push(e.to_string()),
                            Ok(None) => problems.push(format!(
                                "image {id}'s embedding is from another model (awaiting \
                                 re-embedding)"
                            )),
                            Ok(Some(_)) => {}
                        }
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

/// What [`Store::repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Each fix, one line.
    pub fixed: Vec<String>,
    /// Images whose embedding row was deleted because it could not be used (undecodable, wrong
    /// length, NaN, infinite or zero values): their records stay; re-embed them.
    pub reembed: Vec<ImageId>,
    /// What was left because fixing it would delete an image record (an undecodable record),
    /// one line each.
    pub unfixed: Vec<String>,
}

impl Store {
    /// Fixes what [`check_integrity`](Self::check_integrity) finds, in one synced atomic write,
    /// without ever deleting an image record: unusable embedding rows are deleted (the images
    /// are listed in [`RepairReport::reembed`]), path and hash entries are made to agree with
    /// the records (dangling ones deleted, missing ones added), and the id counter and the count
    /// are corrected. An undecodable record is kept and reported. Stale embeddings of a
    /// previous model are left for re-embedding.
    ///
    /// # Errors
    /// Only RocksDB failures; nothing is written then.
    pub fn repair(&self) -> Result<RepairReport> {
        let _writer = self.lock_writer();
        let mut report = RepairReport::default();
        let mut wb = rocksdb::WriteBatch::default();

        let mut images: BTreeMap<ImageId, ImageRecord> = BTreeMap::new();
        // Ids whose record exists but does not decode: kept, and their entries too.
        let mut undecodable: BTreeSet<ImageId> = BTreeSet::new();
        for item in self.db.iterator_cf(self.cf(CF_IMAGES), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| Error::db("scanning images", e))?;
            match decode_id(CF_IMAGES, &key) {
                Err(e) => report.unfixed.push(format!("{e}; kept")),
                Ok(id) => match decode_record(&|| format!("images/{id}"), &value) {
                    Ok(record) => {
                        images.insert(id, record);
                    }
                    Err(e) => {
                        undecodable.insert(id);
                        report.unfixed.push(format!("{e}; kept"));
                    }
                },
            }
        }
        let known = |id: ImageId| images.contains_key(&id) || undecodable.contains(&id);

        let mut has_path: BTreeSet<ImageId> = BTreeSet::new();
        let mut path_owner: HashMap<Vec<u8>, ImageId> = HashMap::new();
        for item in self.db.iterator_cf(self.cf(CF_PATHS), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| Error::db("scanning paths", e))?;
            let path = bytes_to_path(&key);
            let keep = match decode_id(CF_PATHS, &value) {
                Err(_) => false,
                Ok(id) if undecodable.contains(&id) => true,
                Ok(id) => match images.get(&id) {
                    Some(r) if r.path == path => {
                        has_path.insert(id);
                        true
                    }
                    _ => false,
                },
            };
            if keep {
                if let Ok(id) = decode_id(CF_PATHS, &value) {
                    path_owner.insert(key.to_vec(), id);
                }
            } else {
                wb.delete_cf(self.cf(CF_PATHS), &key);
                report
                    .fixed
                    .push(format!("deleted dangling path entry {path:?}"));
            }
        }

        let mut has_hash: BTreeSet<ImageId> = BTreeSet::new();
        for item in self.db.iterator_cf(self.cf(CF_HASHES), IteratorMode::Start) {
            let (key, _) = item.map_err(|e| Error::db("scanning hashes", e))?;
            let keep = key.len() == 40
                && match decode_id(CF_HASHES, &key[32..]) {
                    Err(_) => false,
                    Ok(id) if undecodable.contains(&id) => true,
                    Ok(id) => match images.get(&id) {
                        Some(r) if r.hash.0[..] == key[..32] => {
                            has_hash.insert(id);
                            true
                        }
                        _ => false,
                    },
                };
            if !keep {
                wb.delete_cf(self.cf(CF_HASHES), &key);
                report
                    .fixed
                    .push(format!("deleted dangling hash entry {}", hex(&key)));
            }
        }

        let model = self.model_state();
        for item in self
            .db
            .iterator_cf(self.cf(CF_EMBEDDINGS), IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| Error::db("scanning embeddings", e))?;
            let Ok(id) = decode_id(CF_EMBEDDINGS, &key) else {
                wb.delete_cf(self.cf(CF_EMBEDDINGS), &key);
                report
                    .fixed
                    .push(format!("deleted embedding row with bad key {}", hex(&key)));
                continue;
            };
            if !known(id) {
                wb.delete_cf(self.cf(CF_EMBEDDINGS), &key);
                report
                    .fixed
                    .push(format!("deleted embedding of missing image {id}"));
            } else if let Err(e) = check_embedding(model.as_ref(), id, &value) {
                wb.delete_cf(self.cf(CF_EMBEDDINGS), &key);
                report
                    .fixed
                    .push(format!("deleted {e}; the image awaits re-embedding"));
                report.reembed.push(id);
            }
        }

        for (&id, record) in &images {
            if !has_path.contains(&id) {
                let key = path_to_bytes(&record.path);
                match path_owner.get(&key) {
                    Some(&owner) if owner != id => report.unfixed.push(format!(
                        "image {id}'s path {:?} belongs to image {owner}",
                        record.path
                    )),
                    _ => {
                        wb.put_cf(self.cf(CF_PATHS), &key, id_key(id));
                        path_owner.insert(key, id);
                        report
                            .fixed
                            .push(format!("added the path entry of image {id}"));
                    }
                }
            }
            if !has_hash.contains(&id) {
                wb.put_cf(self.cf(CF_HASHES), hash_key(&record.hash, id), []);
                report
                    .fixed
                    .push(format!("added the hash entry of image {id}"));
            }
        }

        let max = images
            .keys()
            .chain(&undecodable)
            .copied()
            .max()
            .unwrap_or(0);
        let next_id = self.next_id().max(max + 1);
        if next_id != self.next_id() {
            wb.put_cf(self.cf(CF_META), META_NEXT_ID, next_id.to_be_bytes());
            report
                .fixed
                .push(format!("next id {} raised to {next_id}", self.next_id()));
        }
        let count = (images.len() + undecodable.len()) as u64;
        if count != self.len() {
            wb.put_cf(self.cf(CF_META), META_COUNT, count.to_be_bytes());
            report
                .fixed
                .push(format!("count {} corrected to {count}", self.len()));
        }
        if !report.fixed.is_empty() {
            self.write(wb, "writing repairs")?;
            self.next_id.store(next_id, Ordering::SeqCst);
            self.count.store(count, Ordering::SeqCst);
        }
        Ok(report)
    }
}
