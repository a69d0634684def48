//! The [`Library`]: opening, consistency between store and index, searching.

use crate::backend::{Backend, Precision};
use crate::catalog::{has_filter, Catalog, Entry};
use crate::model::Model;
use crate::query_model::QueryModel;
use crate::types::{
    CheckReport, Hit, ImageId, IndexRecovery, OpenReport, Problem, ProblemKind, RepairReport,
    SearchOptions,
};
use crate::{EncoderError, Error, IndexError, Result};
use glimpse_index::{Index, IndexConfig};
use glimpse_store::{ModelFingerprint, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Sub-directory of the library holding the RocksDB store (the source of truth).
pub const STORE_DIR: &str = "store";
/// Sub-directory of the library holding the saved index (derived, rebuildable).
pub const INDEX_DIR: &str = "index";
/// File beside the saved index recording which store state it reflects.
const STAMP_FILE: &str = "stamp.json";
/// File in the library remembering the digests of model weights files by their state, so that
/// opening does not read the weights again (see `model::weights_digest`).
const DIGEST_CACHE_FILE: &str = "model-digest.json";

/// Which store state a saved index reflects. Embeddings only change by inserting a photo (the
/// next id grows) or removing one (the count drops), by switching models (the tag changes), or
/// by re-embedding a photo that was left out (it is in `excluded`, which the next open checks
/// again), so equal stamps mean equal embedding sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    next_id: u64,
    count: u64,
    /// The model's fingerprint as displayed (informational; what stamps compared before `tag`).
    model: String,
    /// The store's embedding tag (`Store::model_tag`); absent in stamps of older versions.
    #[serde(default)]
    tag: Option<u64>,
    /// Photos of the store left out of the index (unusable or missing embeddings).
    #[serde(default)]
    excluded: Vec<u64>,
}

impl Stamp {
    /// Whether the index was built from the embeddings the store now calls current. A stamp
    /// of an older version names the model by its displayed fingerprint: it matches when that
    /// was the store's fingerprint when this open began and the tag has not changed since (a
    /// fingerprint migration keeps the tag; a model switch does not).
    fn same_embeddings_model(
        &self,
        tag: Option<u64>,
        at_open: &(Option<String>, Option<u64>),
    ) -> bool {
        match self.tag {
            Some(t) => Some(t) == tag,
            None => at_open.0.as_deref() == Some(self.model.as_str()) && at_open.1 == tag,
        }
    }

    /// Whether two stamps describe the same embedding set (the displayed model, a label that
    /// follows the model folder's name, aside).
    fn same_state(&self, other: &Stamp) -> bool {
        (self.next_id, self.count, self.tag) == (other.next_id, other.count, other.tag)
            && self.excluded == other.excluded
    }
}

/// A [`Problem`] from an error.
fn problem(kind: ProblemKind, id: Option<ImageId>, e: impl std::fmt::Display) -> Problem {
    Problem {
        kind,
        id,
        path: None,
        detail: e.to_string(),
    }
}

/// Keeps the first problem per photo and kind (re-embedding and the index both report a photo
/// that has no usable embedding).
fn dedup_problems(problems: &mut Vec<Problem>) {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| p.id.is_none() || seen.insert((p.id, p.kind)));
}

/// What an interrupted index save leaves in `dir`: the index's own leftovers (a temp manifest,
/// graph files no manifest names, format 1's scratch folders; see
/// [`glimpse_index::persist::leftovers`]) and the stamp's temp file.
fn index_temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = glimpse_index::persist::leftovers(dir);
    let stamp_tmp = dir.join("stamp.json.tmp");
    if stamp_tmp.exists() {
        found.push(stamp_tmp);
    }
    found
}

/// Removes [`index_temp_files`]; returns how many it removed. Call only while holding the
/// store's lock (no other process then saves this index).
fn clean_index_temp(dir: &Path) -> usize {
    let mut n = 0;
    for path in index_temp_files(dir) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => n += 1,
            Err(e) => log::warn!("cannot remove {}: {e}", path.display()),
        }
    }
    n
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
    /// The query model's directory and whether its declared image model is checked.
    query_model: Option<(PathBuf, bool)>,
    /// Saved indexes whose vectors file is larger are checksummed in the background
    /// (`None`: [`DEFAULT_BACKGROUND_INDEX_CHECK_FROM`]).
    background_check_from: Option<u64>,
}

/// Saved indexes whose vectors file is larger than this (256 MiB: ~130k photos at 512
/// dimensions) are opened before their vectors' checksum is verified; smaller ones are verified
/// first (the check took 0.1–0.25 s for a 147 MiB file on a loaded 2-core machine). See
/// [`LibraryBuilder::background_index_check_from`].
pub const DEFAULT_BACKGROUND_INDEX_CHECK_FROM: u64 = 256 << 20;

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
    /// `transformers`). [`Precision::Bf16`] was about 1.8x faster for images on an AMD Zen 4,
    /// but 0.63-0.74x f32 on an Intel Xeon with AVX-512 BF16 (family 6 model 207), with
    /// cosines of at least 0.999 to the f32 embeddings; [`Precision::Int8`] is about 3x
    /// faster than PyTorch f32 where VNNI runs (see docs/PERFORMANCE.md). Their embeddings are
    /// close to, not equal to, f32 ones, so keep one precision per library for reproducible
    /// scores.
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

    /// From which size of the saved index's vectors file (in bytes; default
    /// [`DEFAULT_BACKGROUND_INDEX_CHECK_FROM`], 256 MiB) [`open`](Self::open) returns before that
    /// file's checksum is verified, so that a big library answers its first search at once
    /// (about 0.5 s instead of about 1 s at a million photos).
    ///
    /// Below it, open verifies every index file first and rebuilds a damaged index from the
    /// store before returning, so no search ever reads an unverified vector. Above it, the
    /// vectors' checksum runs on a background thread: until it ends, searches rescore their
    /// candidates with vectors not yet verified (a damaged vector could change a score or an
    /// order for that moment); once it has found damage, the next search or save rebuilds the
    /// index from the store, and [`Library::check`] waits for it and reports it. `0` defers
    /// the check always, `u64::MAX` never.
    pub fn background_index_check_from(mut self, bytes: u64) -> Self {
        self.background_check_from = Some(bytes);
        self
    }

    /// When the library was built with another model, switch it to the given one and re-embed
    /// every photo while opening (instead of failing with [`Error::ModelMismatch`]).
    pub fn reembed_on_model_change(mut self, yes: bool) -> Self {
        self.reembed = yes;
        self
    }

    /// A query-only text tower in sentence-transformers layout (`modules.json`: Transformer →
    /// Pooling → Dense, BERT or DistilBERT, e.g.
    /// `sentence-transformers/clip-ViT-B-32-multilingual-v1`) that embeds text queries
    /// ([`Library::search_text`], [`Library::embed_text`]) instead of the model's own text
    /// tower, e.g. to search a CLIP B/32 library in 50+ languages. Photos are still embedded
    /// by the image model and nothing already stored is re-embedded; the library's model
    /// fingerprint stays the image model's.
    ///
    /// Checked on [`open`](Self::open): the tower's dimension must equal the model's, and the
    /// image model it declares (`glimpse_query_tower.json`, else its model card; see
    /// docs/MODELS.md) must be the library's model, by fingerprint digest, Hugging Face
    /// repository id or folder name. Otherwise opening fails with
    /// [`Error::QueryModelMismatch`] and changes nothing. The tower's weights load on the first
    /// text query. Its scores are cosines, not calibrated: `min_relevance` is refused.
    /// Zero-shot labels ([`Library::classify`], [`Library::tag_all`]) keep the model's own
    /// text tower and its logit scale.
    ///
    /// ```
    /// # fn main() -> glimpse::Result<()> {
    /// # let root = env!("CARGO_MANIFEST_DIR");
    /// # let model = format!("{root}/crates/encoder/tests/fixtures/tiny-clip");
    /// # let tower = format!("{root}/crates/encoder/tests/fixtures/sentence/tiny-distilbert");
    /// # let dir = tempfile::tempdir().unwrap();
    /// // tiny-distilbert's glimpse_query_tower.json says {"image_model": "tiny-clip", "dims": 24}.
    /// let library = glimpse::Library::builder()
    ///     .model(&model)
    ///     .query_model(&tower)
    ///     .open(dir.path())?;
    /// assert_eq!(library.embed_text("一只猫")?.len(), 24);
    /// # Ok(()) }
    /// ```
    pub fn query_model(mut self, dir: impl Into<PathBuf>) -> Self {
        self.query_model = Some((dir.into(), true));
        self
    }

    /// [`query_model`](Self::query_model) without checking which image model the tower
    /// declares (for a tower that declares none, or one trained for a copy of the model under
    /// another name). The dimension is still checked. Whether its queries mean anything in
    /// this library's space is then the caller's responsibility.
    pub fn query_model_unchecked(mut self, dir: impl Into<PathBuf>) -> Self {
        self.query_model = Some((dir.into(), false));
        self
    }

    /// Opens (or creates) the library in `dir`.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Library> {
        Library::open_with(dir.as_ref(), self)
    }

    /// The model this builder names, fingerprinted, no tower loaded yet (for work without a
    /// library, e.g. `embed_files`); `digests` remembers weights digests as in a library.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn open_model(&self, digests: Option<&Path>) -> Result<Model> {
        let model_dir = match &self.model {
            Some(m) => m.clone(),
            None => crate::model::default_model()?,
        };
        let backend = self.backend.unwrap_or(Backend::Flex).to_encoder();
        Model::open(&model_dir, backend, self.precision.to_encoder(), digests)
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
    /// The query tower that embeds text queries, if one was given.
    query: Option<QueryModel>,
    report: OpenReport,
    /// Photos of the store left out of the index (see [`Stamp::excluded`]).
    excluded: Mutex<BTreeSet<ImageId>>,
    /// The stamp of the index files on disk, when they reflect the in-memory index.
    saved: Mutex<Option<Stamp>>,
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
        Self::open_inner(dir, b).map_err(Error::disk_full)
    }

    fn open_inner(dir: &Path, b: LibraryBuilder) -> Result<Library> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let model_dir = match b.model {
            Some(m) => m,
            None => crate::model::default_model()?,
        };
        let backend = b.backend.unwrap_or(Backend::Flex).to_encoder();
        let digests = dir.join(DIGEST_CACHE_FILE);
        let model = Model::open(
            &model_dir,
            backend,
            b.precision.to_encoder(),
            Some(&digests),
        )?;
        // Checked against the model before anything is written.
        let query = b
            .query_model
            .as_ref()
            .map(|(q, checked)| {
                QueryModel::open(q, &model, backend, b.precision.to_encoder(), *checked)
            })
            .transpose()?;
        let store = Store::open(dir.join(STORE_DIR))?;
        // The store's lock is held from here: no other process uses this library, so temp
        // files in its index directory are leftovers of an interrupted save.
        let cleaned = clean_index_temp(&dir.join(INDEX_DIR));
        let given = model.fingerprint().clone();
        // What a stamp written before stamps carried the tag names (see `Stamp::same_embeddings_model`).
        let at_open = (store.model().map(|m| m.to_string()), store.model_tag());
        match store.model() {
            None => store.set_model(&given)?,
            Some(stored) if stored == given => {}
            Some(stored) if model.is_legacy_of(&stored) => {
                // Same files, fingerprinted by the old scheme: adopt the content fingerprint;
                // the embeddings stay current (same tag), nothing is re-embedded.
                log::info!(
                    "library {}: model fingerprint {stored} -> {given}",
                    dir.display()
                );
                store.relabel_model(&given)?;
            }
            Some(stored) if b.reembed => {
                // Load the new model before anything changes: a model that does not load
                // leaves the library as it was.
                model.load_vision()?;
                log::warn!(
                    "switching library {} from {stored} to {given}",
                    dir.display()
                );
                // The old embeddings stay (stale) until each replacement is committed.
                store.replace_model(&given)?;
            }
            Some(stored) => {
                return Err(Error::ModelMismatch {
                    stored: stored.to_string(),
                    given: given.to_string(),
                })
            }
        }

        let mut quarantined = Vec::new();
        let mut catalog = Catalog::default();
        for item in store.images() {
            match item {
                Ok((id, rec)) => catalog.insert(
                    id,
                    Entry {
                        path: rec.path,
                        captured_at: rec.captured_at,
                    },
                ),
                Err(e) => quarantined.push(problem(ProblemKind::UnreadableRecord, None, e)),
            }
        }
        crate::keywords::load_stored(&store, &mut catalog);
        let config = b.index.unwrap_or_else(|| IndexConfig::new(model.dims()));
        let mut library = Library {
            dir: dir.to_path_buf(),
            store,
            index: RwLock::new(Arc::new(Index::new(config.clone())?)),
            catalog: RwLock::new(catalog),
            model,
            query,
            report: OpenReport {
                index: IndexRecovery::Loaded,
                quarantined: Vec::new(),
                cleaned,
            },
            excluded: Mutex::new(BTreeSet::new()),
            saved: Mutex::new(None),
            writer: Mutex::new(()),
        };
        // A model switch, an interrupted one, or photos whose re-embedding failed before.
        let pending = library.store.ids_without_embedding()?;
        if !pending.is_empty() {
            let (_, failed) = library.reembed_missing(&pending)?;
            quarantined.extend(failed);
        }
        let background_check_from = b
            .background_check_from
            .unwrap_or(DEFAULT_BACKGROUND_INDEX_CHECK_FROM);
        let (recovery, problems) =
            library.restore_index(&config, &at_open, background_check_from)?;
        quarantined.extend(problems);
        dedup_problems(&mut quarantined);
        if recovery != IndexRecovery::Loaded {
            log::info!("library {}: index {recovery:?}", dir.display());
        }
        for p in &quarantined {
            log::warn!("library {}: quarantined: {p}", dir.display());
        }
        // Saved only when it differs from the file (the stamp says); a failed save (a full
        // disk) costs a catch-up on the next open, not this open.
        if let Err(e) = library.save_index() {
            log::warn!("library {}: index not saved: {e}", dir.display());
            quarantined.push(problem(ProblemKind::Index, None, e));
        }
        library.report.index = recovery;
        library.report.quarantined = quarantined;
        Ok(library)
    }

    /// Re-embeds photos from their files (after a model change or a repair) and commits each
    /// embedding over the stale one. A photo whose file cannot be read or whose embedding is
    /// invalid keeps its record (and its stale embedding): it is returned as a problem and
    /// retried on the next open. Returns how many were re-embedded.
    fn reembed_missing(&self, ids: &[ImageId]) -> Result<(usize, Vec<Problem>)> {
        let mut done = 0;
        let mut failed = Vec::new();
        let dims = self.model.dims();
        for chunk in ids.chunks(16) {
            let mut pixels = Vec::new();
            let mut ok = Vec::new();
            for &id in chunk {
                let rec = match self.store.get(id) {
                    Ok(Some(rec)) => rec,
                    Ok(None) => continue,
                    Err(e) => {
                        failed.push(problem(ProblemKind::UnreadableRecord, Some(id), e));
                        continue;
                    }
                };
                let prepared =
                    crate::read::read_file(&rec.path, crate::read::DEFAULT_MAX_FILE_BYTES)
                        .and_then(|bytes| self.model.prepare(&rec.path, &bytes));
                match prepared {
                    Ok(p) => {
                        pixels.push(p.pixels);
                        ok.push((id, rec.path));
                    }
                    Err(e) => {
                        log::warn!("re-embedding {}: {e}; kept", rec.path.display());
                        failed.push(Problem {
                            kind: ProblemKind::MissingEmbedding,
                            id: Some(id),
                            path: Some(rec.path),
                            detail: format!("not re-embedded: {e}"),
                        });
                    }
                }
            }
            let embeddings = match self.model.embed_pixels(&pixels) {
                Ok(e) => e,
                Err(e) => {
                    // The model does not run: every photo of the chunk waits for a next try.
                    failed.extend(ok.into_iter().map(|(id, path)| Problem {
                        kind: ProblemKind::MissingEmbedding,
                        id: Some(id),
                        path: Some(path),
                        detail: format!("not re-embedded: {e}"),
                    }));
                    continue;
                }
            };
            let mut batch = self.store.batch();
            for ((id, path), e) in ok.into_iter().zip(&embeddings) {
                match glimpse_store::validate_embedding(e, dims) {
                    Ok(()) => {
                        batch.set_embedding(id, e)?;
                        done += 1;
                    }
                    Err(err) => failed.push(Problem {
                        kind: ProblemKind::MissingEmbedding,
                        id: Some(id),
                        path: Some(path),
                        detail: format!(
                            "not re-embedded: the model produced an invalid embedding ({err})"
                        ),
                    }),
                }
            }
            batch.commit()?;
        }
        Ok((done, failed))
    }

    fn stamp(&self) -> Stamp {
        let catalog = self.catalog();
        let excluded = self
            .excluded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .filter(|id| catalog.get(*id).is_some())
            .collect();
        Stamp {
            next_id: self.store.next_id(),
            count: self.store.len(),
            model: self
                .store
                .model()
                .map(|m| m.to_string())
                .unwrap_or_default(),
            tag: self.store.model_tag(),
            excluded,
        }
    }

    /// Whether photo `id`'s stored embedding can go into the index: `Ok(vector)`, or the
    /// problem that keeps it out.
    fn usable_embedding(&self, id: ImageId) -> std::result::Result<Vec<f32>, Problem> {
        let path = self.catalog().get(id).map(|e| e.path.clone());
        let (kind, detail) = match self.store.embedding(id) {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => (
                ProblemKind::MissingEmbedding,
                "no embedding of the library's model".to_string(),
            ),
            Err(e) => (ProblemKind::InvalidEmbedding, e.to_string()),
        };
        Err(Problem {
            kind,
            id: Some(id),
            path,
            detail,
        })
    }

    /// Inserts `items` into `index`; when the batch is refused, one by one, quarantining the
    /// vectors the index refuses. Returns the ids inserted.
    fn insert_checked(
        &self,
        index: &Index,
        items: Vec<(ImageId, Vec<f32>)>,
        problems: &mut Vec<Problem>,
    ) -> usize {
        if items.is_empty() || index.insert_batch(&items).is_ok() {
            return items.len();
        }
        let mut n = 0;
        for (id, v) in items {
            match index.insert(id, &v) {
                Ok(()) => n += 1,
                Err(e) => {
                    self.exclude(id);
                    problems.push(Problem {
                        kind: ProblemKind::InvalidEmbedding,
                        id: Some(id),
                        path: self.catalog().get(id).map(|e| e.path.clone()),
                        detail: e.to_string(),
                    });
                }
            }
        }
        n
    }

    fn exclude(&self, id: ImageId) {
        self.excluded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
    }

    /// Loads the saved index and brings it in step with the store (inserting what it lacks,
    /// removing what the store no longer has), or rebuilds it. Photos whose embedding cannot
    /// be used are left out and returned as problems; nothing here fails on a bad row.
    fn restore_index(
        &self,
        config: &IndexConfig,
        at_open: &(Option<String>, Option<u64>),
        background_check_from: u64,
    ) -> Result<(IndexRecovery, Vec<Problem>)> {
        let dir = self.dir.join(INDEX_DIR);
        if self.store.is_empty() && !dir.join(glimpse_index::persist::FILE_NAME).exists() {
            // A new library: the empty index is right (and needs no file yet).
            *self.saved.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.stamp());
            return Ok((IndexRecovery::Loaded, Vec::new()));
        }
        // `open`, not `load`: the vectors file's checksum runs in the background while the
        // library catches up and answers searches. Damage it finds later surfaces as
        // `IndexError::Corrupt` from a search or a save, and the library then rebuilds from
        // its store (`search_vector`, `save_index`); `check` waits for it. A small index is
        // verified before anything reads it: the wait is short there and buys nothing.
        let loaded = match Index::open_expecting(&dir, config) {
            Ok(index) => index,
            Err(e) => return self.rebuild_index(config, format!("{e}")),
        };
        let vector_bytes = (loaded.len() as u64) * (config.dims as u64) * 4;
        if vector_bytes <= background_check_from {
            if let Err(e) = loaded.verify() {
                return self.rebuild_index(config, format!("{e}"));
            }
        }
        let stamp: Option<Stamp> = std::fs::read(dir.join(STAMP_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(stamp) = stamp else {
            return self.rebuild_index(config, "no readable stamp beside the index".into());
        };
        if !stamp.same_embeddings_model(self.store.model_tag(), at_open) {
            return self.rebuild_index(config, "built with another model".into());
        }
        let mut problems = Vec::new();
        let mut inserted = 0;
        let ids = self.catalog().ids();
        let known_excluded = stamp.next_id == self.store.next_id()
            && stamp.count == self.store.len()
            && loaded.len() + stamp.excluded.len() == ids.len();
        // Ids to look at: with an identical stamp, only the ones left out last time (a repair
        // may have fixed them since); otherwise every photo the index lacks.
        let candidates: Vec<ImageId> = if known_excluded {
            stamp.excluded.clone()
        } else {
            ids.iter()
                .copied()
                .filter(|id| !loaded.contains(*id))
                .collect()
        };
        let mut items = Vec::new();
        for id in candidates {
            if loaded.contains(id) || self.catalog().get(id).is_none() {
                continue;
            }
            match self.usable_embedding(id) {
                Ok(v) => items.push((id, v)),
                Err(p) => {
                    self.exclude(id);
                    problems.push(p);
                }
            }
        }
        inserted += self.insert_checked(&loaded, items, &mut problems);
        // Drop what the store removed after the index was saved (ids are never reused, and
        // the index holds no id at or above the store's next id).
        let mut removed = 0;
        if !known_excluded {
            let catalog = self.catalog();
            for id in 1..self.store.next_id() {
                if loaded.contains(id) && catalog.get(id).is_none() {
                    loaded.remove(id);
                    removed += 1;
                }
            }
        }
        let excluded = self
            .excluded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        if loaded.len() + excluded != ids.len() {
            return self.rebuild_index(
                config,
                format!(
                    "the index holds {} photos after catching up, the store {} usable",
                    loaded.len(),
                    ids.len() - excluded
                ),
            );
        }
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        if known_excluded && inserted == 0 {
            *self.saved.lock().unwrap_or_else(|p| p.into_inner()) = Some(stamp);
            return Ok((IndexRecovery::Loaded, problems));
        }
        if inserted == 0 && removed == 0 {
            // Only the stamp was behind (e.g. a kill between the index and its stamp).
            log::debug!("index matched the store; stamp refreshed");
        }
        log::info!("index caught up: {inserted} inserted, {removed} removed");
        Ok((IndexRecovery::CaughtUp { inserted }, problems))
    }

    /// Rebuilds the index from the store after its opened files turned out damaged (the
    /// background checksum of `Index::open`); callers hold the writer lock.
    fn rebuild_damaged_index(&self) -> Result<()> {
        let config = self.index().config().clone();
        let reason = match self.index().verify() {
            Err(e) => e.to_string(),
            Ok(()) => "the index reported damage".into(),
        };
        log::warn!(
            "library {}: index damaged ({reason}); rebuilding from the store",
            self.dir.display()
        );
        let (_, problems) = self.rebuild_index(&config, reason)?;
        for p in &problems {
            log::warn!("library {}: quarantined: {p}", self.dir.display());
        }
        Ok(())
    }

    /// Builds the index from every usable embedding in the store.
    fn rebuild_index(
        &self,
        config: &IndexConfig,
        reason: String,
    ) -> Result<(IndexRecovery, Vec<Problem>)> {
        let index = Index::new(config.clone())?;
        self.excluded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let mut problems = Vec::new();
        let mut chunk = Vec::with_capacity(1024);
        for item in self.store.embeddings() {
            match item {
                Ok((id, v)) if self.catalog().get(id).is_some() => chunk.push((id, v)),
                Ok(_) => {} // an embedding without a record: `check` reports it
                Err(glimpse_store::Error::InvalidEmbedding {
                    id: Some(id),
                    reason,
                }) => {
                    problems.push(Problem {
                        kind: ProblemKind::InvalidEmbedding,
                        id: Some(id),
                        path: self.catalog().get(id).map(|e| e.path.clone()),
                        detail: reason,
                    });
                }
                Err(e) => problems.push(problem(ProblemKind::Store, None, e)),
            }
            if chunk.len() == 1024 {
                self.insert_checked(&index, std::mem::take(&mut chunk), &mut problems);
            }
        }
        self.insert_checked(&index, chunk, &mut problems);
        // Every photo the index lacks is left out until it is re-embedded.
        for id in self.catalog().ids() {
            if !index.contains(id) {
                self.exclude(id);
                if !problems.iter().any(|p| p.id == Some(id)) {
                    if let Err(p) = self.usable_embedding(id) {
                        problems.push(p);
                    }
                }
            }
        }
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
        *self.saved.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok((IndexRecovery::Rebuilt { reason }, problems))
    }

    /// Saves the index and its stamp, unless the saved ones already reflect the store (an
    /// unchanged run rewrites nothing). Index first: a kill in between leaves an old stamp,
    /// which costs a catch-up on the next open. A full disk is [`Error::DiskFull`]; the files
    /// on disk then stay as they were.
    pub(crate) fn save_index(&self) -> Result<()> {
        let stamp = self.stamp();
        let mut saved = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        if saved.as_ref().is_some_and(|s| s.same_state(&stamp)) {
            return Ok(());
        }
        let dir = self.dir.join(INDEX_DIR);
        match self.index().save(&dir) {
            Err(IndexError::Corrupt { .. }) => {
                // The background check of the opened files found damage: the store rebuilds
                // the index (the caller holds the writer lock, or the library is opening),
                // which then saves under a new stamp.
                drop(saved);
                self.rebuild_damaged_index()?;
                return self.save_index();
            }
            other => other.map_err(|e| Error::from(e).disk_full())?,
        }
        let json = serde_json::to_vec(&stamp).expect("stamp serialises");
        let tmp = dir.join("stamp.json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join(STAMP_FILE))
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e).disk_full());
        }
        *saved = Some(stamp);
        Ok(())
    }

    /// Persists the index (the store is already durable): the next open then loads it as is.
    pub fn commit(&self) -> Result<()> {
        let _w = self.lock_writer();
        self.save_index()
    }

    /// How the index was restored when the library opened.
    pub fn index_recovery(&self) -> &IndexRecovery {
        &self.report.index
    }

    /// How the library opened: the index's recovery, the photos quarantined (left out of the
    /// index because their stored record or embedding cannot be used, or because they still
    /// await re-embedding), and the leftover temp files removed. Opening never fails because
    /// of one bad row; this lists them. [`repair`](Self::repair) fixes what it can.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Lists everything wrong with the library without changing it: the store's invariants
    /// (`Store::check_integrity`: paths, hashes, counts), each photo's embedding (missing,
    /// invalid), the index against the store, and leftover temp files. Reads the whole store.
    pub fn check(&self) -> Result<CheckReport> {
        let _w = self.lock_writer();
        self.check_locked()
    }

    fn check_locked(&self) -> Result<CheckReport> {
        let mut problems = Vec::new();
        let integrity = self.store.check_integrity()?;
        for line in integrity.problems {
            // Embedding rows are reported per photo below.
            if line.starts_with("invalid embedding") || line.contains("from another model") {
                continue;
            }
            problems.push(Problem {
                kind: ProblemKind::Store,
                id: None,
                path: None,
                detail: line,
            });
        }
        let index = self.index();
        // An opened index verifies its vectors file in the background: wait for that check.
        if let Err(e) = index.verify() {
            problems.push(Problem {
                kind: ProblemKind::Index,
                id: None,
                path: None,
                detail: e.to_string(),
            });
        }
        let ids = self.catalog().ids();
        let mut usable = 0;
        for &id in &ids {
            match self.usable_embedding(id) {
                Ok(_) => {
                    usable += 1;
                    if !index.contains(id) {
                        problems.push(Problem {
                            kind: ProblemKind::Index,
                            id: Some(id),
                            path: self.path(id),
                            detail: "has a usable embedding but is not in the index".into(),
                        });
                    }
                }
                Err(p) => problems.push(p),
            }
        }
        if index.len() != usable {
            problems.push(Problem {
                kind: ProblemKind::Index,
                id: None,
                path: None,
                detail: format!(
                    "the index holds {} photos, the store {usable} with usable embeddings",
                    index.len()
                ),
            });
        }
        for path in index_temp_files(&self.dir.join(INDEX_DIR)) {
            problems.push(Problem {
                kind: ProblemKind::TempFile,
                id: None,
                path: Some(path),
                detail: "leftover of an interrupted index save".into(),
            });
        }
        Ok(CheckReport {
            photos: self.len(),
            problems,
        })
    }

    /// Fixes what [`check`](Self::check) finds, never deleting a photo's record: the store's
    /// path, hash and count entries are made consistent (`Store::repair`), unusable embeddings
    /// are deleted and every photo without a usable one is re-embedded from its file (one that
    /// cannot be read keeps its record and stays listed), leftover temp files are removed, and
    /// the index is rebuilt from the store and saved. Returns what it did and what remains.
    pub fn repair(&self) -> Result<RepairReport> {
        let _w = self.lock_writer();
        self.repair_locked().map_err(Error::disk_full)
    }

    fn repair_locked(&self) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let cleaned = clean_index_temp(&self.dir.join(INDEX_DIR));
        if cleaned > 0 {
            report
                .fixed
                .push(format!("removed {cleaned} leftover index temp file(s)"));
        }
        let store = self.store.repair()?;
        report.fixed.extend(store.fixed);
        let pending = self.store.ids_without_embedding()?;
        let (done, _) = self.reembed_missing(&pending)?;
        report.reembedded = done;
        // A sound library is left as it was: the index is rebuilt only when something changed
        // or the check still finds a problem with it.
        let index_wrong = || -> Result<bool> {
            Ok(self
                .check_locked()?
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::Index))
        };
        if !report.fixed.is_empty() || done > 0 || index_wrong()? {
            let config = self.index().config().clone();
            let (recovery, _) = self.rebuild_index(&config, "repair".into())?;
            log::info!("library {}: index {recovery:?}", self.dir.display());
            report
                .fixed
                .push(format!("rebuilt the index ({} photos)", self.index().len()));
            self.save_index()?;
        }
        report.remaining = self.check_locked()?.problems;
        Ok(report)
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
        let q = self.embed_text(query)?;
        let hits = self.search_hybrid(query, &q, k, opts)?;
        self.with_relevance(hits, opts)
    }

    /// Adds the calibrated relevance to text-query hits (SigLIP) and applies
    /// [`SearchOptions::min_relevance`].
    fn with_relevance(&self, mut hits: Vec<Hit>, opts: &SearchOptions) -> Result<Vec<Hit>> {
        if self.query.is_some() {
            // The model's calibration belongs to its own text tower, not to the query model.
            return match opts.min_relevance {
                None => Ok(hits),
                Some(_) => Err(Error::Encoder(EncoderError::InvalidInput(
                    "min_relevance needs a calibrated model; the query model's scores are \
                     not calibrated (use min_score)"
                        .into(),
                ))),
            };
        }
        let calibrated = self.model.relevance(0.0)?.is_some();
        if !calibrated {
            return match opts.min_relevance {
                None => Ok(hits),
                Some(_) => Err(Error::Encoder(EncoderError::InvalidInput(format!(
                    "min_relevance needs a calibrated model; {} scores are not calibrated \
                     (use min_score)",
                    self.model.architecture()
                )))),
            };
        }
        for hit in &mut hits {
            hit.relevance = self.model.relevance(hit.score)?;
        }
        if let Some(min) = opts.min_relevance {
            hits.retain(|h| h.relevance.is_some_and(|r| r >= min));
        }
        Ok(hits)
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
        no_relevance_for_images(opts)?;
        let q = self.embed_image(path.as_ref())?;
        self.search_vector(&q, k, opts, None)
    }

    /// Photos most similar to photo `id` of the library (itself excluded).
    pub fn similar(&self, id: ImageId, k: usize, opts: &SearchOptions) -> Result<Vec<Hit>> {
        no_relevance_for_images(opts)?;
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

    /// The L2-normalised embedding of a text, as text queries use it: by the query model
    /// when the library has one ([`LibraryBuilder::query_model`]), else by the model's text
    /// tower.
    pub fn embed_text(&self, text: &str) -> Result<Vec<f32>> {
        let texts = [text.to_string()];
        let mut e = match &self.query {
            Some(q) => q.embed_texts(&texts)?,
            None => self.model.embed_texts(&texts)?,
        };
        Ok(e.remove(0))
    }

    /// The query model's directory, when text queries go through one
    /// ([`LibraryBuilder::query_model`]).
    pub fn query_model_dir(&self) -> Option<&Path> {
        self.query.as_ref().map(QueryModel::dir)
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
            Some(ef) => index.search_with_ef(query, k, f, ef),
            None => index.search(query, k, f),
        };
        let found = match found {
            Err(IndexError::Corrupt { .. }) => {
                // The background check of the opened index found its vectors file damaged:
                // rebuild from the store (once, whoever gets here first), then search again.
                drop(catalog);
                {
                    let _w = self.lock_writer();
                    if Arc::ptr_eq(&index, &self.index()) {
                        self.rebuild_damaged_index()?;
                    }
                }
                return self.search_vector(query, k, opts, exclude);
            }
            other => other?,
        };
        Ok(found
            .into_iter()
            .filter(|&(_, score)| opts.min_score.is_none_or(|m| score >= m))
            .filter_map(|(id, score)| {
                catalog.get(id).map(|e| Hit {
                    id,
                    path: e.path.clone(),
                    score,
                    relevance: None,
                    matched: Vec::new(),
                })
            })
            .collect())
    }
}

/// [`SearchOptions::min_relevance`] is a text–image probability: image queries refuse it.
fn no_relevance_for_images(opts: &SearchOptions) -> Result<()> {
    match opts.min_relevance {
        None => Ok(()),
        Some(_) => Err(Error::Encoder(EncoderError::InvalidInput(
            "min_relevance applies to text queries only (relevance is the probability that a \
             text describes a photo); use min_score"
                .into(),
        ))),
    }
}
