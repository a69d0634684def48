//! Atomic multi-operation writes.

use crate::record::{encode_embedding, encode_record, ImageRecord};
use crate::schema::{
    hash_key, id_key, path_to_bytes, CF_EMBEDDINGS, CF_HASHES, CF_IMAGES, CF_META, CF_PATHS,
    CF_WORDS, META_COUNT, META_NEXT_ID,
};
use crate::{Error, ImageId, PhotoWords, Result, Store};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

/// A set of writes applied atomically by [`Batch::commit`]: all of them or none survive a
/// crash. Id allocation is part of the batch, so a crash never leaks or reuses an id.
///
/// A batch holds the store's writer lock from [`Store::batch`] until it is committed or
/// dropped (dropping discards it). Reads through the batch ([`Batch::get`]) see its own
/// uncommitted changes; reads through the [`Store`] see only committed data.
pub struct Batch<'s> {
    store: &'s Store,
    _writer: MutexGuard<'s, ()>,
    wb: rocksdb::WriteBatch,
    next_id: ImageId,
    count: u64,
    /// Uncommitted path assignments (`None`: path freed).
    paths: HashMap<Vec<u8>, Option<ImageId>>,
    /// Uncommitted records (`None`: removed).
    records: HashMap<ImageId, Option<ImageRecord>>,
    ops: usize,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.ops)
            .finish_non_exhaustive()
    }
}

impl<'s> Batch<'s> {
    pub(crate) fn new(store: &'s Store) -> Batch<'s> {
        let writer = store.lock_writer();
        Batch {
            store,
            _writer: writer,
            wb: rocksdb::WriteBatch::default(),
            next_id: store.next_id.load(Ordering::SeqCst),
            count: store.count.load(Ordering::SeqCst),
            paths: HashMap::new(),
            records: HashMap::new(),
            ops: 0,
        }
    }

    /// Number of operations queued.
    pub fn len(&self) -> usize {
        self.ops
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }

    /// The record of `id` as this batch would leave it.
    pub fn get(&self, id: ImageId) -> Result<Option<ImageRecord>> {
        match self.records.get(&id) {
            Some(r) => Ok(r.clone()),
            None => self.store.get(id),
        }
    }

    /// The image at `path` as this batch would leave it.
    pub fn id_for_path(&self, path: &Path) -> Result<Option<ImageId>> {
        match self.paths.get(&path_to_bytes(path)) {
            Some(id) => Ok(*id),
            None => self.store.id_for_path(path),
        }
    }

    fn check_embedding(&self, embedding: &[f32]) -> Result<u64> {
        let model = self.store.model().ok_or(Error::NoModel)?;
        crate::record::validate_embedding(embedding, model.dims as usize)?;
        self.store.model_tag().ok_or(Error::NoModel)
    }

    fn claim_path(&mut self, path: &Path, id: ImageId) -> Result<()> {
        if let Some(owner) = self.id_for_path(path)? {
            if owner != id {
                return Err(Error::PathTaken {
                    path: path.to_path_buf(),
                    id: owner,
                });
            }
        }
        let key = path_to_bytes(path);
        self.wb.put_cf(self.store.cf(CF_PATHS), &key, id_key(id));
        self.paths.insert(key, Some(id));
        Ok(())
    }

    fn release_path(&mut self, path: &Path) {
        let key = path_to_bytes(path);
        self.wb.delete_cf(self.store.cf(CF_PATHS), &key);
        self.paths.insert(key, None);
    }

    fn put_embedding(&mut self, id: ImageId, tag: u64, embedding: &[f32]) {
        let cf = self.store.cf(CF_EMBEDDINGS);
        self.wb
            .put_cf(cf, id_key(id), encode_embedding(tag, embedding));
    }

    /// Queues a new image with its embedding and returns the id it will have.
    ///
    /// # Errors
    /// [`Error::NoModel`] before [`Store::set_model`], [`Error::DimensionMismatch`] for an
    /// embedding of the wrong length, [`Error::InvalidEmbedding`] for NaN, infinite or all-zero
    /// values (see [`validate_embedding`](crate::validate_embedding)), [`Error::PathTaken`] if
    /// another image has this path. Nothing is queued on an error.
    pub fn insert(&mut self, record: &ImageRecord, embedding: &[f32]) -> Result<ImageId> {
        let tag = self.check_embedding(embedding)?;
        let id = self.next_id;
        self.claim_path(&record.path, id)?;
        self.next_id += 1;
        self.count += 1;
        let st = self.store;
        self.wb
            .put_cf(st.cf(CF_IMAGES), id_key(id), encode_record(record));
        self.wb
            .put_cf(st.cf(CF_HASHES), hash_key(&record.hash, id), []);
        self.put_embedding(id, tag, embedding);
        self.records.insert(id, Some(record.clone()));
        self.ops += 1;
        Ok(id)
    }

    /// Queues a new version of image `id`'s record (a changed file: new size, mtime, hash, …),
    /// and its new embedding when given. Path and hash indexes follow the record.
    pub fn update(
        &mut self,
        id: ImageId,
        record: &ImageRecord,
        embedding: Option<&[f32]>,
    ) -> Result<()> {
        let tag = embedding.map(|e| self.check_embedding(e)).transpose()?;
        let old = self.get(id)?.ok_or(Error::NotFound(id))?;
        if old.path != record.path {
            self.claim_path(&record.path, id)?;
            self.release_path(&old.path);
        }
        let st = self.store;
        if old.hash != record.hash {
            self.wb.delete_cf(st.cf(CF_HASHES), hash_key(&old.hash, id));
            self.wb
                .put_cf(st.cf(CF_HASHES), hash_key(&record.hash, id), []);
        }
        self.wb
            .put_cf(st.cf(CF_IMAGES), id_key(id), encode_record(record));
        if let (Some(tag), Some(embedding)) = (tag, embedding) {
            self.put_embedding(id, tag, embedding);
        }
        self.records.insert(id, Some(record.clone()));
        self.ops += 1;
        Ok(())
    }

    /// Queues a move of image `id` to `new_path`; content, hash and embedding are unchanged.
    pub fn rename(&mut self, id: ImageId, new_path: &Path) -> Result<()> {
        let mut record = self.get(id)?.ok_or(Error::NotFound(id))?;
        record.path = new_path.to_path_buf();
        self.update(id, &record, None)
    }

    /// Queues a new embedding for an existing image (re-embedding after a model change): it
    /// replaces the image's previous (stale) embedding when the batch commits.
    pub fn set_embedding(&mut self, id: ImageId, embedding: &[f32]) -> Result<()> {
        let tag = self.check_embedding(embedding)?;
        self.get(id)?.ok_or(Error::NotFound(id))?;
        self.put_embedding(id, tag, embedding);
        self.ops += 1;
        Ok(())
    }

    /// Queues the removal of image `id`: record, path entry, hash entry and embedding. Returns
    /// the record it removes, or `None` (and queues nothing) if there is no such image.
    pub fn remove(&mut self, id: ImageId) -> Result<Option<ImageRecord>> {
        let Some(old) = self.get(id)? else {
            return Ok(None);
        };
        self.release_path(&old.path);
        let st = self.store;
        self.wb.delete_cf(st.cf(CF_IMAGES), id_key(id));
        self.wb.delete_cf(st.cf(CF_HASHES), hash_key(&old.hash, id));
        self.wb.delete_cf(st.cf(CF_EMBEDDINGS), id_key(id));
        self.wb.delete_cf(st.cf(CF_WORDS), id_key(id));
        self.records.insert(id, None);
        self.count -= 1;
        self.ops += 1;
        Ok(Some(old))
    }

    /// Queues `words` as image `id`'s words (replacing any it had), in this batch: they commit
    /// with the record or not at all. `id` may be one this batch inserts.
    pub fn set_words(&mut self, id: ImageId, words: &PhotoWords) -> Result<()> {
        self.get(id)?.ok_or(Error::NotFound(id))?;
        let value = crate::words::encode(words);
        self.wb.put_cf(self.store.cf(CF_WORDS), id_key(id), value);
        self.ops += 1;
        Ok(())
    }

    /// Applies every queued write atomically and syncs it to disk. When this returns `Ok`, the
    /// batch survives a crash or kill at any later moment.
    pub fn commit(mut self) -> Result<()> {
        if self.ops == 0 {
            return Ok(());
        }
        let st = self.store;
        self.wb
            .put_cf(st.cf(CF_META), META_NEXT_ID, self.next_id.to_be_bytes());
        self.wb
            .put_cf(st.cf(CF_META), META_COUNT, self.count.to_be_bytes());
        let wb = std::mem::take(&mut self.wb);
        st.write(
            wb,
            &format!("committing a batch of {} operations", self.ops),
        )?;
        st.next_id.store(self.next_id, Ordering::SeqCst);
        st.count.store(self.count, Ordering::SeqCst);
        Ok(())
    }
}
