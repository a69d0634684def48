//! Opening the store and reading from it.

use crate::batch::Batch;
use crate::record::{
    decode_embedding, decode_fingerprint, decode_record, encode_fingerprint, ContentHash,
    ImageRecord, ModelFingerprint,
};
use crate::schema::{
    db_options, decode_id, hash_key, hex, id_key, path_to_bytes, CF_EMBEDDINGS, CF_HASHES,
    CF_IMAGES, CF_META, CF_PATHS, COLUMN_FAMILIES, META_COUNT, META_MODEL, META_MODEL_TAG,
    META_NEXT_ID, META_SCHEMA, SCHEMA_VERSION,
};
use crate::{Error, ImageId, Result};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, IteratorMode, DB};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

/// Free bytes the store's file system must keep before the store writes: room for RocksDB to
/// start a new log (it preallocates 1.1 × the 16 MiB write buffer) and flush a memtable. Below
/// it every write fails with [`Error::DiskFull`] and writes nothing; [`Store::open`] needs
/// [`DISK_RESERVE`] + 16 MiB. Why refuse early rather than let RocksDB fail: Debian's
/// librocksdb is built with assertions, and a write that fails after an earlier I/O failure
/// aborts the whole process (seen on a full tmpfs, even while opening) — a typed error needs
/// the write not to be attempted.
pub const DISK_RESERVE: u64 = 48 << 20;
/// What [`Store::open`] needs free: [`DISK_RESERVE`] plus the first log's preallocation.
const OPEN_RESERVE: u64 = DISK_RESERVE + (16 << 20);

/// Free bytes for an unprivileged writer on the file system holding `path`, if known.
#[cfg(unix)]
fn available_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a NUL-terminated path and `stat` a zeroed struct statvfs for the call
    // to fill.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    (rc == 0).then(|| (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
fn available_bytes(_path: &Path) -> Option<u64> {
    None
}

/// [`Error::DiskFull`] when the file system holding `path` has less than `needed` bytes free.
fn check_space(path: &Path, needed: u64) -> Result<()> {
    match available_bytes(path) {
        Some(available) if available < needed => Err(Error::DiskFull {
            path: path.to_path_buf(),
            available,
            needed,
        }),
        _ => Ok(()),
    }
}

/// A durable photo-library metadata store backed by RocksDB.
///
/// Reads may run from any number of threads. Writes go through a [`Batch`] (or the one-call
/// helpers such as [`Store::insert`], which make a one-operation batch); a batch holds the writer
/// lock until it is committed or dropped, and [`Batch::commit`] returns only once the batch is
/// synced to disk: what it returned for survives a crash or a kill at any moment.
pub struct Store {
    pub(crate) db: DB,
    path: PathBuf,
    /// Held by a [`Batch`] (and model changes) for its whole life: one writer at a time.
    writer: Mutex<()>,
    /// Committed values, readable without the writer lock.
    pub(crate) next_id: AtomicU64,
    pub(crate) count: AtomicU64,
    /// The current model and the tag its embeddings carry.
    model: RwLock<Option<(ModelFingerprint, u64)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in directory `path`, creating it if missing.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`] for a store written by a newer schema, [`Error::Db`] when RocksDB
    /// cannot open it (for example another process holds its lock), [`Error::DataCorruption`]
    /// when the store's metadata cannot be decoded.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        // Opening writes (logs, manifest, options, a flush of the recovered log).
        check_space(&path, OPEN_RESERVE)?;
        let opts = db_options();
        // Open every column family on disk (a newer schema may have added some) plus ours.
        let mut names: Vec<String> = COLUMN_FAMILIES.iter().map(|s| s.to_string()).collect();
        if let Ok(existing) = DB::list_cf(&opts, &path) {
            for name in existing {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let cfs = names
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(n, db_options()));
        let db = DB::open_cf_descriptors(&opts, &path, cfs)
            .map_err(|e| Error::db(format!("opening store at {}", path.display()), e))?;
        let store = Store {
            db,
            path,
            writer: Mutex::new(()),
            next_id: AtomicU64::new(1),
            count: AtomicU64::new(0),
            model: RwLock::new(None),
        };
        store.load_state()?;
        Ok(store)
    }

    fn load_state(&self) -> Result<()> {
        let meta = self.cf(CF_META);
        match self
            .db
            .get_cf(meta, META_SCHEMA)
            .map_err(|e| Error::db("reading schema", e))?
        {
            None => {
                self.db
                    .put_cf(meta, META_SCHEMA, SCHEMA_VERSION.to_le_bytes())
                    .map_err(|e| Error::db("writing schema version", e))?;
                self.db
                    .flush_wal(true)
                    .map_err(|e| Error::db("syncing new store", e))?;
            }
            Some(bytes) => {
                let found = u32::from_le_bytes(bytes.as_slice().try_into().map_err(|_| {
                    Error::corrupt("meta/schema_version", format!("{} bytes", bytes.len()))
                })?);
                if found > SCHEMA_VERSION {
                    return Err(Error::SchemaTooNew {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        let next_id = match self.meta_get(META_NEXT_ID)? {
            Some(b) => decode_id("meta/next_id", &b)?,
            None => 1,
        };
        let count = match self.meta_get(META_COUNT)? {
            Some(b) => decode_id("meta/count", &b)?,
            None => 0,
        };
        let model = match self.meta_get(META_MODEL)? {
            Some(b) => {
                let fp = decode_fingerprint(&|| "meta/model".into(), &b)?;
                let tag = match self.meta_get(META_MODEL_TAG)? {
                    Some(t) => u64::from_le_bytes(t.as_slice().try_into().map_err(|_| {
                        Error::corrupt("meta/model_tag", format!("{} bytes", t.len()))
                    })?),
                    None => fp.tag(),
                };
                Some((fp, tag))
            }
            None => None,
        };
        self.next_id.store(next_id, Ordering::SeqCst);
        self.count.store(count, Ordering::SeqCst);
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = model;
        Ok(())
    }

    fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf(CF_META), key)
            .map_err(|e| Error::db(format!("reading meta/{}", String::from_utf8_lossy(key)), e))
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        // Every name in COLUMN_FAMILIES is created on open, so the handle always exists.
        self.db
            .cf_handle(name)
            .expect("column family opened in Store::open")
    }

    /// Takes the writer lock. Do not call write methods of the store on a thread that holds
    /// a [`Batch`]: the batch already holds this lock.
    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model whose embeddings the store holds, if one was set.
    pub fn model(&self) -> Option<ModelFingerprint> {
        self.model_state().map(|(fp, _)| fp)
    }

    pub(crate) fn model_state(&self) -> Option<(ModelFingerprint, u64)> {
        self.model.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The tag carried by the current model's embeddings (`None` before a model is set).
    /// Embeddings with another tag are stale: left by a previous model, awaiting replacement.
    pub fn model_tag(&self) -> Option<u64> {
        self.model_state().map(|(_, tag)| tag)
    }

    /// Records the model whose embeddings this store will hold. Setting the same model again is
    /// a no-op.
    ///
    /// # Errors
    /// [`Error::ModelMismatch`] if the store already holds another model's embeddings: use
    /// [`Store::replace_model`] to switch models deliberately.
    pub fn set_model(&self, model: &ModelFingerprint) -> Result<()> {
        let _writer = self.lock_writer();
        match self.model() {
            Some(stored) if &stored == model => Ok(()),
            Some(stored) => Err(Error::ModelMismatch {
                stored,
                given: model.clone(),
            }),
            None => self.write_model(model, model.tag()),
        }
    }

    /// Switches the store to another model: records the new fingerprint and its embedding tag
    /// in one atomic write. Nothing is deleted: the previous model's embeddings stay on disk,
    /// *stale* (reads skip them), until [`Batch::set_embedding`] replaces each one;
    /// [`Store::ids_without_embedding`] lists what must still be re-embedded. Switching back
    /// makes the old embeddings that were not yet replaced current again.
    pub fn replace_model(&self, model: &ModelFingerprint) -> Result<()> {
        let _writer = self.lock_writer();
        self.write_model(model, model.tag())
    }

    /// Records a new fingerprint for the *same* embeddings: the tag stays, so every embedding
    /// stays current. For a change of fingerprint scheme (the caller has established that the
    /// model is the one the embeddings came from), never for another model.
    ///
    /// # Errors
    /// [`Error::NoModel`] when the store has no model yet.
    pub fn relabel_model(&self, model: &ModelFingerprint) -> Result<()> {
        let _writer = self.lock_writer();
        let tag = self.model_tag().ok_or(Error::NoModel)?;
        self.write_model(model, tag)
    }

    fn write_model(&self, model: &ModelFingerprint, tag: u64) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        wb.put_cf(self.cf(CF_META), META_MODEL, encode_fingerprint(model));
        wb.put_cf(self.cf(CF_META), META_MODEL_TAG, tag.to_le_bytes());
        self.write(wb, "writing the model fingerprint")?;
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = Some((model.clone(), tag));
        Ok(())
    }

    pub(crate) fn write(&self, wb: rocksdb::WriteBatch, what: &str) -> Result<()> {
        check_space(&self.path, DISK_RESERVE)?;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo).map_err(|e| Error::db(what, e))
    }

    /// Starts a write batch. It holds the store's writer lock until committed or dropped.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }

    /// Adds one image with its embedding; returns its new id. Durable when it returns.
    pub fn insert(&self, record: &ImageRecord, embedding: &[f32]) -> Result<ImageId> {
        let mut batch = self.batch();
        let id = batch.insert(record, embedding)?;
        batch.commit()?;
        Ok(id)
    }

    /// Moves an image to a new path (a rename or a move detected by content hash).
    pub fn rename(&self, id: ImageId, new_path: impl AsRef<Path>) -> Result<()> {
        let mut batch = self.batch();
        batch.rename(id, new_path.as_ref())?;
        batch.commit()
    }

    /// Removes an image: its record, path entry, hash entry and embedding together. Returns the
    /// removed record, or `None` if there was no such image.
    pub fn remove(&self, id: ImageId) -> Result<Option<ImageRecord>> {
        let mut batch = self.batch();
        let removed = batch.remove(id)?;
        batch.commit()?;
        Ok(removed)
    }

    /// The record of image `id`.
    pub fn get(&self, id: ImageId) -> Result<Option<ImageRecord>> {
        let key = id_key(id);
        let bytes = self
            .db
            .get_pinned_cf(self.cf(CF_IMAGES), key)
            .map_err(|e| Error::db(format!("reading image {id}"), e))?;
        bytes
            .map(|b| decode_record(&|| format!("images/{id}"), &b))
            .transpose()
    }

    /// The id of the image at `path`.
    pub fn id_for_path(&self, path: impl AsRef<Path>) -> Result<Option<ImageId>> {
        let path = path.as_ref();
        let bytes = self
            .db
            .get_pinned_cf(self.cf(CF_PATHS), path_to_bytes(path))
            .map_err(|e| Error::db(format!("looking up path {}", path.display()), e))?;
        bytes
            .map(|b| decode_id(&format!("paths/{}", path.display()), &b))
            .transpose()
    }

    /// The ids of every image whose content has this hash (moved files, exact duplicates).
    pub fn ids_for_hash(&self, hash: &ContentHash) -> Result<Vec<ImageId>> {
        let mut ids = Vec::new();
        let start = hash_key(hash, 0);
        let iter = self.db.iterator_cf(
            self.cf(CF_HASHES),
            IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (key, _) = item.map_err(|e| Error::db("scanning hashes", e))?;
            if key.len() != 40 {
                return Err(Error::corrupt(
                    format!("hashes/{}", hex(&key)),
                    "key is not 40 bytes",
                ));
            }
            if key[..32] != hash.0 {
                break;
            }
            ids.push(decode_id(CF_HASHES, &key[32..])?);
        }
        Ok(ids)
    }

    /// The embedding of image `id` by the current model, as stored (the values given at
    /// insert). `None` when it has none, or only a stale one of a previous model.
    ///
    /// # Errors
    /// [`Error::InvalidEmbedding`] for a row that cannot be used (undecodable, wrong length,
    /// NaN, infinite or zero values).
    pub fn embedding(&self, id: ImageId) -> Result<Option<Vec<f32>>> {
        let bytes = self
            .db
            .get_pinned_cf(self.cf(CF_EMBEDDINGS), id_key(id))
            .map_err(|e| Error::db(format!("reading embedding {id}"), e))?;
        match bytes {
            None => Ok(None),
            Some(b) => check_embedding(self.model_state().as_ref(), id, &b),
        }
    }

    /// Every current `(id, embedding)` pair in id order: what the index is rebuilt from. Stale
    /// embeddings (of a previous model) are skipped. A row that cannot be used yields an error
    /// item ([`Error::InvalidEmbedding`] with its id, or [`Error::DataCorruption`] for a bad
    /// key) and iteration continues with the next.
    pub fn embeddings(&self) -> impl Iterator<Item = Result<(ImageId, Vec<f32>)>> + '_ {
        let model = self.model_state();
        self.db
            .iterator_cf(self.cf(CF_EMBEDDINGS), IteratorMode::Start)
            .filter_map(move |item| {
                let row = || -> Result<Option<(ImageId, Vec<f32>)>> {
                    let (key, value) = item.map_err(|e| Error::db("scanning embeddings", e))?;
                    let id = decode_id(CF_EMBEDDINGS, &key)?;
                    Ok(check_embedding(model.as_ref(), id, &value)?.map(|v| (id, v)))
                };
                row().transpose()
            })
    }

    /// Writes a raw value, bypassing every check. Only for tests and tools that must create
    /// the damage the store otherwise refuses (a NaN embedding left by an older version).
    #[doc(hidden)]
    pub fn put_raw(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let _writer = self.lock_writer();
        let mut wb = rocksdb::WriteBatch::default();
        wb.put_cf(self.cf(cf), key, value);
        self.write(wb, "writing a raw value")
    }

    /// Deletes a raw key. The counterpart of [`put_raw`](Self::put_raw), for tests and tools.
    #[doc(hidden)]
    pub fn delete_raw(&self, cf: &str, key: &[u8]) -> Result<()> {
        let _writer = self.lock_writer();
        let mut wb = rocksdb::WriteBatch::default();
        wb.delete_cf(self.cf(cf), key);
        self.write(wb, "deleting a raw value")
    }

    /// Every `(id, record)` pair in id order; a record that fails to decode yields an error item.
    pub fn images(&self) -> impl Iterator<Item = Result<(ImageId, ImageRecord)>> + '_ {
        self.db
            .iterator_cf(self.cf(CF_IMAGES), IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(|e| Error::db("scanning images", e))?;
                let id = decode_id(CF_IMAGES, &key)?;
                Ok((id, decode_record(&|| format!("images/{id}"), &value)?))
            })
    }

    /// Images that have no embedding of the current model: none at all, or a stale one of a
    /// previous model (after [`Store::replace_model`]). Images whose record key or embedding
    /// row is damaged are not listed: [`Store::check_integrity`] reports those.
    pub fn ids_without_embedding(&self) -> Result<Vec<ImageId>> {
        let tag = self.model_tag();
        let mut missing = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_IMAGES), IteratorMode::Start) {
            let (key, _) = item.map_err(|e| Error::db("scanning images", e))?;
            let Ok(id) = decode_id(CF_IMAGES, &key) else {
                continue;
            };
            let current = self
                .db
                .get_pinned_cf(self.cf(CF_EMBEDDINGS), &key)
                .map_err(|e| Error::db(format!("reading embedding {id}"), e))?
                .is_some_and(|b| b.len() < 9 || Some(embedding_tag(&b)) == tag);
            if !current {
                missing.push(id);
            }
        }
        Ok(missing)
    }

    /// Number of images in the store (kept in `meta`, updated atomically with every batch).
    pub fn len(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether the store holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id the next inserted image will get.
    pub fn next_id(&self) -> ImageId {
        self.next_id.load(Ordering::SeqCst)
    }

    /// Flushes memtables to table files and syncs the write-ahead log. Commits are already
    /// durable without this; it shortens recovery on the next open.
    pub fn flush(&self) -> Result<()> {
        self.db
            .flush_wal(true)
            .map_err(|e| Error::db("syncing the write-ahead log", e))?;
        for cf in COLUMN_FAMILIES {
            self.db
                .flush_cf(self.cf(cf))
                .map_err(|e| Error::db(format!("flushing {cf}"), e))?;
        }
        Ok(())
    }
}

/// The model tag of an encoded embedding (callers check the length is at least 9).
fn embedding_tag(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"))
}

/// Decodes a stored embedding and checks it against the store's model: `None` when it is a
/// stale one of another model, [`Error::InvalidEmbedding`] when it cannot be used.
pub(crate) fn check_embedding(
    model: Option<&(ModelFingerprint, u64)>,
    id: ImageId,
    bytes: &[u8],
) -> Result<Option<Vec<f32>>> {
    let invalid = |reason: String| Error::InvalidEmbedding {
        id: Some(id),
        reason,
    };
    let (tag, values) = decode_embedding(&|| format!("embeddings/{id}"), bytes).map_err(|e| {
        invalid(match e {
            Error::DataCorruption { cause, .. } => cause,
            e => e.to_string(),
        })
    })?;
    let Some((model, model_tag)) = model else {
        return Err(invalid(
            "embedding present but the store has no model fingerprint".into(),
        ));
    };
    if tag != *model_tag {
        return Ok(None);
    }
    crate::record::validate_embedding(&values, model.dims as usize).map_err(|e| match e {
        Error::InvalidEmbedding { reason, .. } => invalid(reason),
        e => invalid(e.to_string()),
    })?;
    Ok(Some(values))
}
