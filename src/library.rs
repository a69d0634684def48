//! The [`Library`]: opening, consistency between store and index, searching.

use crate::backend::{Backend, Precision};
use crate::catalog::{has_filter, Catalog, Entry};
use crate::model::Model;
use crate::types::{Hit, ImageId, IndexRecovery, SearchOptions};
use crate::{Error, Result};
use glimpse_index::{Index, IndexConfig};
use glimpse_store::{ModelFingerprint, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Sub-directory of the library holding the RocksDB store (the source of truth).
pub const STORE_DIR: &str = "store";
/// Sub-directory of the library holding the saved index (derived, rebuildable).
pub const INDEX_DIR: &str = "index";
/// File beside the saved index recording which store state it reflects.
const STAMP_FILE: &str = "stamp.json";

/// Which store state a saved index reflects. Embeddings only change by inserting a photo (the
/// next id grows) or removing one (the count drops), or by switching models, so equal stamps
/// mean equal embedding sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    next_id: u64,
    count: u64,
    model: String,
}

/// Configures and opens a [`Library`]: `Library::builder().model(dir).open(library_dir)`.
#[derive(Debug, Clone, Default)]
#[must_use = "a LibraryBuilder does nothing until `.open(dir)`"]
pub struct LibraryBuilder {
    model: Option<PathBuf>,
    backend: Option<Backend>,
    precision: Precision,
    index: Option<IndexConfig>,
    reembed: bool,
}

impl LibraryBuilder {
    /// The CLIP checkpoint directory (Hugging Face layout: `config.json`, `model.safetensors`,
    /// `tokenizer.json`, `preprocessor_config.json`). Without it, [`open`](Self::open) looks in
    /// `$GLIMPSE_MODEL`, then in the Hugging Face cache for `openai/clip-vit-base-patch32`,
    /// and with the `download` feature (on by default) fetches it from the Hub into that cache
    /// (see `glimpse::download_model`; `HF_HUB_OFFLINE=1` forbids it).
    pub fn model(mut self, dir: impl Into<PathBuf>) -> Self {
        self.model = Some(dir.into());
        self
    }

    /// Arithmetic precision of the CPU encoder (default [`Precision::F32`], which reproduces
    /// `transformers`). [`Precision::Bf16`] is about 1.8x faster for images on CPUs with
    /// AVX-512 BF16, with cosine >= 0.999 to the f32 embeddings (see docs/PERFORMANCE.md); its
    /// embeddings are close to, not equal to, f32 ones, so keep one precision per library
    /// for reproducible scores.
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The compute backend (default: the CPU backend).
    pub fn device(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Index parameters (default: [`IndexConfig::new`] for the model's dimension). Only the
    /// search-time fields of a saved index follow this; its graph shape is fixed when built.
    pub fn index(mut self, config: IndexConfig) -> Self {
        self.index = Some(config);
        self
    }

    /// When the library was built with another model, switch it to the given one and re-embed
    /// every photo while opening (instead of failing with [`Error::ModelMismatch`]).
    pub fn reembed_on_model_change(mut self, yes: bool) -> Self {
        self.reembed = yes;
        self
    }

    /// Opens (or creates) the library in `dir`.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Library> {
        Library::open_with(dir.as_ref(), self)
    }
}

/// An embedded photo-search library: a directory holding a RocksDB store and an HNSW index, and
/// a CLIP model to embed photos and queries.
///
/// # Durability and visibility
/// Every write ([`index_folder`](Self::index_folder) batches, [`add_image`](Self::add_image),
/// [`remove`](Self::remove)) is committed to the store — atomically and synced — before the
/// call returns (index_folder: batch by batch), and is visible to searches from then on.
/// [`commit`](Self::commit) additionally saves the index so the next open needn't bring it up to
/// date; after a crash the index is caught up or rebuilt from the store on open.
///
/// `Library` is `Send + Sync`: share it in an `Arc`; searches run while another thread indexes.
pub struct Library {
    dir: PathBuf,
    pub(crate) store: Store,
    pub(crate) index: RwLock<Arc<Index>>,
    pub(crate) catalog: RwLock<Catalog>,
    pub(crate) model: Model,
    recovery: IndexRecovery,
    /// Serialises writers (indexing, add, remove) so their plans see a stable store.
    writer: Mutex<()>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("dir", &self.dir)
            .field("images", &self.len())
            .field("model", &self.model.fingerprint().to_string())
            .finish_non_exhaustive()
    }
}

impl Library {
    /// A builder for the model, device and index settings.
    pub fn builder() -> LibraryBuilder {
        LibraryBuilder::default()
    }

    /// Opens (or creates) the library in `dir` with the default model lookup.
    pub fn open(dir: impl AsRef<Path>) -> Result<Library> {
        Self::builder().open(dir)
    }

    fn open_with(dir: &Path, b: LibraryBuilder) -> Result<Library> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let model_dir = match b.model {
            Some(m) => m,
            None => crate::model::default_model()?,
        };
        let backend = b.backend.unwrap_or(Backend::Flex).to_encoder();
        let model = Model::open(&model_dir, backend, b.precision.to_encoder())?;
        let store = Store::open(dir.join(STORE_DIR))?;
        let given = model.fingerprint().clone();
        let mut reembed = false;
        match store.model() {
            None => store.set_model(&given)?,
            Some(stored) if stored == given => {}
            Some(stored) if b.reembed => {
                log::warn!(
                    "switching library {} from {stored} to {given}",
                    dir.display()
                );
                store.replace_model(&given)?;
                reembed = true;
            }
            Some(stored) => {
                return Err(Error::ModelMismatch {
                    stored: stored.to_string(),
                    given: given.to_string(),
                })
            }
        }
        // An earlier re-embedding may have been interrupted: finish it.
        reembed |= !store.ids_without_embedding()?.is_empty();

        let mut catalog = Catalog::default();
        for item in store.images() {
            let (id, rec) = item?;
            catalog.insert(
                id,
                Entry {
                    path: rec.path,
                    captured_at: rec.captured_at,
                },
            );
        }
        let config = b.index.unwrap_or_else(|| IndexConfig::new(model.dims()));
        let mut library = Library {
            dir: dir.to_path_buf(),
            store,
            index: RwLock::new(Arc::new(Index::new(config.clone())?)),
            catalog: RwLock::new(catalog),
            model,
            recovery: IndexRecovery::Loaded,
            writer: Mutex::new(()),
        };
        if reembed {
            library.reembed_missing()?;
        }
        library.recovery = library.restore_index(&config)?;
        if library.recovery != IndexRecovery::Loaded {
            log::info!("library {}: index {:?}", dir.display(), library.recovery);
            library.save_index()?;
        }
        Ok(library)
    }

    /// Re-embeds every photo that has no embedding (after a model change).
    fn reembed_missing(&self) -> Result<()> {
        let ids = self.store.ids_without_embedding()?;
        for chunk in ids.chunks(16) {
            let mut pixels = Vec::new();
            let mut ok = Vec::new();
            for &id in chunk {
                let Some(rec) = self.store.get(id)? else {
                    continue;
                };
                let prepared = std::fs::read(&rec.path)
                    .map_err(|e| Error::io(&rec.path, e))
                    .and_then(|bytes| self.model.prepare(&rec.path, &bytes));
                match prepared {
                    Ok(p) => {
                        pixels.push(p.pixels);
                        ok.push(id);
                    }
                    Err(e) => {
                        log::warn!("re-embedding {}: {e}; removing it", rec.path.display());
                        self.store.remove(id)?;
                        self.catalog_mut().remove(id);
                    }
                }
            }
            let embeddings = self.model.embed_pixels(&pixels)?;
            let mut batch = self.store.batch();
            for (id, e) in ok.iter().zip(&embeddings) {
                batch.set_embedding(*id, e)?;
            }
            batch.commit()?;
        }
        Ok(())
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            next_id: self.store.next_id(),
            count: self.store.len(),
            model: self.model.fingerprint().to_string(),
        }
    }

    /// Loads the saved index and brings it in step with the store, or rebuilds it.
    fn restore_index(&self, config: &IndexConfig) -> Result<IndexRecovery> {
        let dir = self.dir.join(INDEX_DIR);
        if self.store.is_empty() && !dir.exists() {
            return Ok(IndexRecovery::Loaded); // a new library: the empty index is right
        }
        let loaded = match Index::load_expecting(&dir, config) {
            Ok(index) => index,
            Err(e) => return self.rebuild_index(config, format!("{e}")),
        };
        let stamp: Option<Stamp> = std::fs::read(dir.join(STAMP_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if stamp
            .as_ref()
            .is_some_and(|s| s.model != self.stamp().model)
        {
            return self.rebuild_index(config, "built with another model".into());
        }
        if stamp.as_ref() == Some(&self.stamp()) && loaded.len() as u64 == self.store.len() {
            *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
            return Ok(IndexRecovery::Loaded);
        }
        // Behind the store: add what it lacks; if it holds what the store no longer has,
        // rebuild (ids are never reused, so a count check after catching up is exact).
        let mut inserted = 0;
        let ids = self.catalog().ids();
        for id in &ids {
            if !loaded.contains(*id) {
                let Some(e) = self.store.embedding(*id)? else {
                    continue;
                };
                loaded.insert(*id, &e)?;
                inserted += 1;
            }
        }
        if loaded.len() != ids.len() {
            return self.rebuild_index(config, "the index holds photos the store removed".into());
        }
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(IndexRecovery::CaughtUp { inserted })
    }

    fn rebuild_index(&self, config: &IndexConfig, reason: String) -> Result<IndexRecovery> {
        let index = Index::new(config.clone())?;
        let mut chunk = Vec::with_capacity(1024);
        for item in self.store.embeddings() {
            chunk.push(item?);
            if chunk.len() == 1024 {
                index.insert_batch(&chunk)?;
                chunk.clear();
            }
        }
        index.insert_batch(&chunk)?;
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
        Ok(IndexRecovery::Rebuilt { reason })
    }

    /// Saves the index and its stamp (index first: a crash in between leaves an old stamp,
    /// which only costs a catch-up on the next open).
    pub(crate) fn save_index(&self) -> Result<()> {
        let dir = self.dir.join(INDEX_DIR);
        let stamp = self.stamp();
        self.index().save(&dir)?;
        let json = serde_json::to_vec(&stamp).expect("stamp serialises");
        let tmp = dir.join("stamp.json.tmp");
        std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join(STAMP_FILE)).map_err(|e| Error::io(&dir, e))?;
        Ok(())
    }

    /// Persists the index (the store is already durable): the next open then loads it as is.
    pub fn commit(&self) -> Result<()> {
        let _w = self.lock_writer();
        self.save_index()
    }

    /// How the index was restored when the library opened.
    pub fn index_recovery(&self) -> &IndexRecovery {
        &self.recovery
    }

    /// The library directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model the library's embeddings come from, as `name (dims-d, digest)`.
    pub fn model_name(&self) -> String {
        self.model.fingerprint().to_string()
    }

    /// The model fingerprint stored with the library.
    pub fn model_fingerprint(&self) -> &ModelFingerprint {
        self.model.fingerprint()
    }

    /// Number of photos in the library.
    pub fn len(&self) -> usize {
        self.store.len() as usize
    }

    /// Whether the library holds no photo.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path of photo `id`.
    pub fn path(&self, id: ImageId) -> Option<PathBuf> {
        self.catalog().get(id).map(|e| e.path.clone())
    }

    /// Every photo in the library as `(id, path)`, in id order.
    pub fn photos(&self) -> Vec<(ImageId, PathBuf)> {
        let catalog = self.catalog();
        catalog
            .ids()
            .into_iter()
            .filter_map(|id| Some((id, catalog.get(id)?.path.clone())))
            .collect()
    }

    /// The stored embedding of photo `id` (L2-normalised, as the model produced it).
    pub fn embedding(&self, id: ImageId) -> Result<Option<Vec<f32>>> {
        Ok(self.store.embedding(id)?)
    }

    /// The id of the photo at `path`.
    pub fn id(&self, path: impl AsRef<Path>) -> Result<Option<ImageId>> {
        Ok(self.store.id_for_path(path)?)
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn index(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn catalog_mut(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Photos best matching a text description, best first.
    pub fn search_text(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        self.search_text_with(query, k, &SearchOptions::default())
    }

    /// [`search_text`](Self::search_text) with folder, time and score restrictions.
    pub fn search_text_with(
        &self,
        query: &str,
        k: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        let q = self.model.embed_texts(&[query.to_string()])?.remove(0);
        self.search_vector(&q, k, opts, None)
    }

    /// Photos most similar to an example photo (which need not be in the library).
    pub fn search_image(&self, path: impl AsRef<Path>, k: usize) -> Result<Vec<Hit>> {
        self.search_image_with(path, k, &SearchOptions::default())
    }

    /// [`search_image`](Self::search_image) with restrictions.
    pub fn search_image_with(
        &self,
        path: impl AsRef<Path>,
        k: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        let q = self.embed_image(path.as_ref())?;
        self.search_vector(&q, k, opts, None)
    }

    /// Photos most similar to photo `id` of the library (itself excluded).
    pub fn similar(&self, id: ImageId, k: usize, opts: &SearchOptions) -> Result<Vec<Hit>> {
        let q = match self.index().get(id) {
            Some(v) => v,
            None => self
                .store
                .embedding(id)?
                .ok_or_else(|| Error::NotFound(format!("id {id}")))?,
        };
        self.search_vector(&q, k, opts, Some(id))
    }

    /// The L2-normalised embedding of an image file: a regular file of at most 256 MiB
    /// ([`Error::NotAFile`], [`Error::FileTooLarge`]; a FIFO is never opened).
    pub fn embed_image(&self, path: &Path) -> Result<Vec<f32>> {
        let bytes = crate::read::read_file(path, crate::read::DEFAULT_MAX_FILE_BYTES)?;
        let prepared = self.model.prepare(path, &bytes)?;
        Ok(self.model.embed_pixels(&[prepared.pixels])?.remove(0))
    }

    /// The L2-normalised embedding of a text.
    pub fn embed_text(&self, text: &str) -> Result<Vec<f32>> {
        Ok(self.model.embed_texts(&[text.to_string()])?.remove(0))
    }

    pub(crate) fn search_vector(
        &self,
        query: &[f32],
        k: usize,
        opts: &SearchOptions,
        exclude: Option<ImageId>,
    ) -> Result<Vec<Hit>> {
        let index = self.index();
        let catalog = self.catalog();
        // No search returns more hits than the library holds: a huge `k` allocates nothing.
        let k = k.min(index.len());
        let filter = |id: u64| Some(id) != exclude && catalog.allows(id, opts);
        let use_filter = has_filter(opts) || exclude.is_some();
        let f: Option<&dyn Fn(u64) -> bool> = if use_filter { Some(&filter) } else { None };
        let found = match opts.ef {
            Some(ef) => index.search_with_ef(query, k, f, ef)?,
            None => index.search(query, k, f)?,
        };
        Ok(found
            .into_iter()
            .filter(|&(_, score)| opts.min_score.is_none_or(|m| score >= m))
            .filter_map(|(id, score)| {
                catalog.get(id).map(|e| Hit {
                    id,
                    path: e.path.clone(),
                    score,
                })
            })
            .collect())
    }
}
