//! The facade's view of the CLIP model: lazily loaded towers, preprocessing, fingerprint.
//!
//! A process that only answers queries loads only the text tower; the vision tower loads the
//! first time an image is embedded. Both are guarded by mutexes so `Library` stays `Sync`
//! whatever the backend's tensor types are.

use crate::read::{Limits, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS};
use crate::walk::sniff;
use crate::{Error, Result};
use glimpse_encoder::backend::Backend;
use glimpse_encoder::preprocess::decode::{decode_dynamic, inspect, Header};
use glimpse_encoder::preprocess::{DecodeOptions, Preprocessor};
use glimpse_encoder::{
    Architecture, ClipEncoder, LoadOptions, ModelConfig, Pixels, Precision, Towers,
};
use glimpse_store::ModelFingerprint;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Runs `f`, turning a panic inside it into [`Error::Panic`] for `path`: a bug in a decoder
/// costs one file, never the run. (The default panic hook still prints the panic to stderr.)
pub(crate) fn guard_panics<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::panic(path, payload.as_ref())))
}

/// A decoded, preprocessed image ready for the vision tower.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub pixels: Pixels,
    /// Size after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub format: String,
}

pub(crate) struct Model {
    dir: PathBuf,
    config: ModelConfig,
    backend: Backend,
    precision: Precision,
    fingerprint: ModelFingerprint,
    preprocessor: Preprocessor,
    text: OnceLock<ClipEncoder>,
    vision: OnceLock<ClipEncoder>,
}

/// The model directory a [`Library`](crate::Library) uses when none is given:
/// `$GLIMPSE_MODEL`, then `openai/clip-vit-base-patch32` in the Hugging Face cache, then (feature
/// `download`, on by default) that checkpoint fetched from the Hub into the cache.
///
/// # Errors
/// [`Error::Download`] when the Hub cannot be reached (or `HF_HUB_OFFLINE=1`);
/// [`Error::NoModel`] without the `download` feature.
pub fn default_model() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("GLIMPSE_MODEL") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = cached_default_model() {
        return Ok(dir);
    }
    #[cfg(feature = "download")]
    {
        crate::download::download_model(crate::download::DEFAULT_MODEL_REPO)
    }
    #[cfg(not(feature = "download"))]
    Err(Error::NoModel(
        "give a CLIP checkpoint directory (LibraryBuilder::model or $GLIMPSE_MODEL); none found \
         in the Hugging Face cache for openai/clip-vit-base-patch32, and this build has no \
         `download` feature to fetch it"
            .into(),
    ))
}

/// The Hugging Face hub cache directory, as `huggingface_hub` finds it: `$HF_HUB_CACHE`, else
/// `$HF_HOME/hub`, else `~/.cache/huggingface/hub` (empty variables count as unset).
pub(crate) fn hf_hub_cache() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| var("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub")))
}

/// A complete snapshot of `openai/clip-vit-base-patch32` in the Hugging Face cache, if any.
fn cached_default_model() -> Option<PathBuf> {
    let hub = hf_hub_cache()?;
    let snapshots = hub.join("models--openai--clip-vit-base-patch32/snapshots");
    // Prefer the snapshot `refs/main` names; else any complete one.
    let main = std::fs::read_to_string(hub.join("models--openai--clip-vit-base-patch32/refs/main"))
        .ok()
        .map(|commit| snapshots.join(commit.trim()));
    let complete = |dir: &Path| {
        ["config.json", "model.safetensors", "tokenizer.json"]
            .iter()
            .all(|f| dir.join(f).exists())
    };
    if let Some(dir) = main.filter(|d| complete(d)) {
        return Some(dir);
    }
    std::fs::read_dir(&snapshots)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|d| complete(d))
}

/// Prefix of the content digest scheme (see [`digest`]); stored digests without it are of the
/// legacy scheme ([`legacy_digest`]).
pub(crate) const DIGEST_SCHEME: &str = "content-v2:";

/// The files besides the weights that the encoder reads and that shape an embedding.
const MODEL_FILES: [&str; 3] = ["config.json", "preprocessor_config.json", "tokenizer.json"];

/// Digest of everything that determines the model's embeddings, independent of where the files
/// are: BLAKE3 over the precision, then each of [`MODEL_FILES`] (name, length, content; or
/// "absent"), then every weights file in full (`model.safetensors`, or the shard index and its
/// shards in name order; each as its own BLAKE3, see [`weights_digest`]). Two folders holding
/// the same files give the same digest; another preprocessor config or precision gives another
/// one. Cost: one read of the weights, unless `cache` knows the file.
fn digest(
    dir: &Path,
    architecture: Architecture,
    precision: Precision,
    cache: Option<&Path>,
) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"glimpse model content v2\0");
    // The architecture is named explicitly (config.json, hashed below, names it too); CLIP's
    // digests stay those of the libraries written before other architectures existed.
    if architecture != Architecture::Clip {
        hasher.update(format!("architecture={}\0", architecture.class_name()).as_bytes());
    }
    hasher.update(format!("precision={precision:?}\0").as_bytes());
    let add_file = |hasher: &mut blake3::Hasher, name: &str, path: &Path| -> Result<()> {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        match std::fs::File::open(path) {
            Ok(mut file) => {
                let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
                hasher.update(&len.to_le_bytes());
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                hasher.update(b"absent");
            }
            Err(e) => return Err(Error::io(path, e)),
        }
        Ok(())
    };
    for name in MODEL_FILES {
        add_file(&mut hasher, name, &dir.join(name))?;
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        add_weights(&mut hasher, "model.safetensors", &single, cache)?;
    } else {
        // Sharded: the index, then each shard it names, in name order.
        let index = dir.join("model.safetensors.index.json");
        add_file(&mut hasher, "model.safetensors.index.json", &index)?;
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let shards: std::collections::BTreeSet<String> =
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("weight_map")?.as_object().map(|m| {
                        m.values()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                })
                .unwrap_or_default();
        for shard in shards {
            add_weights(&mut hasher, &shard, &dir.join(&shard), cache)?;
        }
    }
    Ok(format!("{DIGEST_SCHEME}{}", hasher.finalize().to_hex()))
}

/// Feeds a weights file to `hasher` as its name, length and [`weights_digest`].
fn add_weights(
    hasher: &mut blake3::Hasher,
    name: &str,
    path: &Path,
    cache: Option<&Path>,
) -> Result<()> {
    let (len, digest) = weights_digest(path, cache)?;
    hasher.update(name.as_bytes());
    hasher.update(b"\0");
    hasher.update(&len.to_le_bytes());
    hasher.update(digest.as_bytes());
    Ok(())
}

/// One remembered weights digest: the file's identity and state, and its BLAKE3.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CachedDigest {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    blake3: String,
}

/// The identity and state of a file as [`CachedDigest`] records it (`blake3` empty). On Unix the
/// device, inode, size, mtime and ctime: rewriting the file changes its ctime, which no tool can
/// set back, so an equal state means equal content.
fn file_state(path: &Path, meta: &std::fs::Metadata) -> CachedDigest {
    #[cfg(unix)]
    let (dev, ino, ctime_ns) = {
        use std::os::unix::fs::MetadataExt;
        (
            meta.dev(),
            meta.ino(),
            i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        )
    };
    #[cfg(not(unix))]
    let (dev, ino, ctime_ns) = (0, 0, -1);
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_nanos() as i128);
    CachedDigest {
        path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        dev,
        ino,
        len: meta.len(),
        mtime_ns,
        ctime_ns,
        blake3: String::new(),
    }
}

/// `(length, BLAKE3 hex)` of a weights file. With a `cache` file (the library keeps one,
/// `model-digest.json`), a file whose state (see [`file_state`]) is remembered is not read
/// again: a query process opening a library with 600 MB of weights pays a stat, not a read.
fn weights_digest(path: &Path, cache: Option<&Path>) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let state = file_state(path, &meta);
    let mut known: Vec<CachedDigest> = cache
        .and_then(|c| std::fs::read(c).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let same = |k: &CachedDigest| {
        (k.path == state.path && k.dev == state.dev && k.ino == state.ino)
            && (k.len == state.len && k.mtime_ns == state.mtime_ns && k.ctime_ns == state.ctime_ns)
    };
    if let Some(hit) = known.iter().find(|k| cfg!(unix) && same(k)) {
        return Ok((state.len, hit.blake3.clone()));
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize().to_hex().to_string();
    // A file changed within the last seconds could change again within the file system's
    // timestamp granularity without its state changing (git's "racily clean" entries): such
    // a file is not remembered.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let settled = now_ns - state.mtime_ns.max(state.ctime_ns) > 2_000_000_000;
    if let (Some(cache), true) = (cache, cfg!(unix) && settled) {
        // Best effort: a cache that cannot be written costs a read next time.
        known.retain(|k| k.path != state.path);
        known.truncate(7);
        known.insert(
            0,
            CachedDigest {
                blake3: digest.clone(),
                ..state.clone()
            },
        );
        let tmp = cache.with_extension("json.tmp");
        let written = serde_json::to_vec(&known)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(&tmp, json))
            .and_then(|()| std::fs::rename(&tmp, cache));
        if let Err(e) = written {
            log::debug!("model digest cache {}: {e}", cache.display());
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok((state.len, digest))
}

/// The fingerprint digest of Glimpse before the content scheme: `config.json`, the weights'
/// size, and their first and last MiB. Kept to recognise libraries written then (see
/// [`Model::is_legacy_of`]).
fn legacy_digest(dir: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let config = dir.join("config.json");
    hasher.update(&std::fs::read(&config).map_err(|e| Error::io(&config, e))?);
    let weights = dir.join("model.safetensors");
    let mut file = std::fs::File::open(&weights).map_err(|e| Error::io(&weights, e))?;
    let len = file.metadata().map_err(|e| Error::io(&weights, e))?.len();
    hasher.update(&len.to_le_bytes());
    const EDGE: u64 = 1 << 20;
    let mut buf = Vec::new();
    file.by_ref()
        .take(EDGE)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(&weights, e))?;
    if len > EDGE {
        file.seek(SeekFrom::Start(len.saturating_sub(EDGE).max(EDGE)))
            .map_err(|e| Error::io(&weights, e))?;
        file.read_to_end(&mut buf)
            .map_err(|e| Error::io(&weights, e))?;
    }
    hasher.update(&buf);
    Ok(hasher.finalize().to_hex().to_string())
}

impl Model {
    /// Reads the config and preprocessor settings and fingerprints the model (see [`digest`];
    /// `digest_cache`: where weights digests are remembered); loads no tower.
    pub fn open(
        dir: &Path,
        backend: Backend,
        precision: Precision,
        digest_cache: Option<&Path>,
    ) -> Result<Model> {
        let config = ModelConfig::from_file(dir.join("config.json"))?;
        // Library photos are shown upright: apply EXIF orientation before preprocessing. The
        // limits are the library's defaults (`IndexOptions` changes them per run); no single
        // decode may allocate more than 1 GiB.
        let decode = DecodeOptions {
            apply_exif_orientation: true,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_alloc: 1 << 30,
            ..DecodeOptions::default()
        };
        // Large JPEGs decode at a reduced DCT scale that keeps the shorter side at least twice
        // the model's input (cosine >= 0.999 to the full decode; see docs/PERFORMANCE.md).
        let preprocessor = Preprocessor::from_dir(dir)?
            .with_decode_options(decode)
            .with_reduced_jpeg(2);
        let name = std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "clip".into());
        let fingerprint = ModelFingerprint {
            name,
            dims: config.embedding_dim() as u32,
            config_digest: digest(dir, config.architecture(), precision, digest_cache)?,
        };
        Ok(Model {
            dir: dir.to_path_buf(),
            config,
            backend,
            precision,
            fingerprint,
            preprocessor,
            text: OnceLock::new(),
            vision: OnceLock::new(),
        })
    }

    pub fn fingerprint(&self) -> &ModelFingerprint {
        &self.fingerprint
    }

    /// Whether `stored`, a fingerprint of the legacy scheme (a bare digest), was made from this
    /// model's files: same dimension and the same legacy digest of this folder. The legacy
    /// scheme read neither the tokenizer, the preprocessor config nor the precision, so a
    /// library written then is taken to have used the ones given now.
    pub fn is_legacy_of(&self, stored: &ModelFingerprint) -> bool {
        !stored.config_digest.contains(':')
            && stored.dims == self.fingerprint.dims
            && legacy_digest(&self.dir).is_ok_and(|d| d == stored.config_digest)
    }

    /// The names this model is known by, for matching a query tower's declared image model:
    /// its folder name, the Hugging Face repository id when the folder is a snapshot in the
    /// hub cache (`models--{owner}--{name}/snapshots/…`), and `config.json`'s `_name_or_path`
    /// when that is a repository id.
    pub fn identities(&self) -> Vec<String> {
        let mut names = vec![self.fingerprint.name.clone()];
        let canonical = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        for part in canonical.iter().filter_map(|p| p.to_str()) {
            if let Some(repo) = part.strip_prefix("models--") {
                if let Some((owner, name)) = repo.split_once("--") {
                    names.push(format!("{owner}/{name}"));
                }
            }
        }
        let name_or_path = std::fs::read(self.dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("_name_or_path")?.as_str().map(str::to_owned));
        if let Some(n) = name_or_path {
            let repo_like =
                n.split('/').count() == 2 && !n.starts_with('.') && !Path::new(&n).exists();
            if repo_like {
                names.push(n);
            }
        }
        names.dedup();
        names
    }

    /// The model's fingerprint digests a query tower may declare: at the library's precision
    /// and at f32 (a tower trained against the f32 model fits a bf16 library of it).
    pub fn digests(&self) -> Result<Vec<String>> {
        let mut digests = vec![self.fingerprint.config_digest.clone()];
        if self.precision != Precision::F32 {
            digests.push(digest(
                &self.dir,
                self.architecture(),
                Precision::F32,
                None,
            )?);
        }
        Ok(digests)
    }

    /// Loads the vision tower now (it otherwise loads on first use): a model whose weights do
    /// not load fails here, before anything is written.
    pub fn load_vision(&self) -> Result<()> {
        self.tower(&self.vision, Towers::VisionOnly).map(|_| ())
    }

    pub fn dims(&self) -> usize {
        self.config.embedding_dim()
    }

    /// The model's architecture (CLIP, SigLIP).
    pub fn architecture(&self) -> Architecture {
        self.config.architecture()
    }

    /// The calibrated relevance of a text–image cosine (SigLIP's
    /// `sigmoid(exp(t)·cos + b)`); `None` for CLIP, whose scores are not calibrated. Loads
    /// the text tower (which holds the calibration) for SigLIP.
    pub fn relevance(&self, cosine: f32) -> Result<Option<f32>> {
        if self.config.architecture() == Architecture::Clip {
            return Ok(None);
        }
        Ok(self.tower(&self.text, Towers::TextOnly)?.relevance(cosine))
    }

    /// The tower in `cell`, loading it on first use (only that tower's weights are read).
    fn tower<'a>(
        &'a self,
        cell: &'a OnceLock<ClipEncoder>,
        towers: Towers,
    ) -> Result<&'a ClipEncoder> {
        if let Some(m) = cell.get() {
            return Ok(m);
        }
        let device = self.backend.device()?;
        let options = LoadOptions::default()
            .towers(towers)
            .precision(self.precision);
        let encoder = ClipEncoder::load_with(&self.dir, &device, &options)?;
        Ok(cell.get_or_init(|| encoder))
    }

    /// `exp(logit_scale)`: the multiplier of cosines in zero-shot logits.
    pub fn logit_scale(&self) -> Result<f32> {
        Ok(self.tower(&self.text, Towers::TextOnly)?.logit_scale_exp())
    }

    /// L2-normalised embeddings of texts.
    pub fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(self
            .tower(&self.text, Towers::TextOnly)?
            .embed_texts(texts)?)
    }

    /// The decoding options under `limits`.
    fn decode_options(&self, limits: &Limits) -> DecodeOptions {
        DecodeOptions {
            max_pixels: limits.max_pixels,
            max_file_bytes: limits.max_file_bytes,
            ..*self.preprocessor.decode_options()
        }
    }

    /// Reads an image file's header and checks it against the limits; allocates no pixels.
    /// Returns what [`prepare_with`](Self::prepare_with) will hold at most ([`Header::peak_bytes`];
    /// HEIF and RAW files through [`crate::formats`]).
    pub fn inspect(&self, path: &Path, bytes: &[u8], limits: &Limits) -> Result<u64> {
        let options = self.decode_options(limits);
        crate::formats::peak_bytes(path, bytes, limits, |b| {
            Ok(inspect(b, path, &options).map(|h: Header| h.peak_bytes())?)
        })
    }

    /// [`prepare_with`](Self::prepare_with) under the default limits.
    pub fn prepare(&self, path: &Path, bytes: &[u8]) -> Result<Prepared> {
        self.prepare_with(path, bytes, &Limits::default())
    }

    /// Decodes (with the decoder's limits, EXIF orientation applied) and preprocesses an image
    /// file's bytes. Pure CPU work, safe to run on many threads. A panic inside is
    /// [`Error::Panic`] for this file.
    pub fn prepare_with(&self, path: &Path, bytes: &[u8], limits: &Limits) -> Result<Prepared> {
        let options = self.decode_options(limits);
        let run = || -> Result<Prepared> {
            let image = crate::formats::decode(path, bytes, limits, |b| {
                Ok(decode_dynamic(b, path, &options)?)
            })?;
            let (width, height) = (image.width(), image.height());
            let format = crate::formats::format_name(path, bytes)
                .unwrap_or_else(|| sniff(bytes).unwrap_or("unknown").to_string());
            let pixels = self.preprocessor.preprocess_image(image);
            Ok(Prepared {
                pixels,
                width,
                height,
                format,
            })
        };
        guard_panics(path, run)
    }

    /// L2-normalised embeddings of preprocessed images.
    pub fn embed_pixels(&self, pixels: &[Pixels]) -> Result<Vec<Vec<f32>>> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .tower(&self.vision, Towers::VisionOnly)?
            .embed_pixels(pixels)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_that_files_error() {
        let path = Path::new("bad.gif");
        let r: Result<()> = guard_panics(path, || panic!("index out of bounds: {}", 7));
        match r {
            Err(Error::Panic { path: p, message }) => {
                assert_eq!(p, path);
                assert_eq!(message, "index out of bounds: 7");
            }
            other => panic!("{other:?}"),
        }
        let r: Result<()> = guard_panics(path, || std::panic::panic_any("static"));
        assert!(matches!(r, Err(Error::Panic { message, .. }) if message == "static"));
        assert_eq!(guard_panics(path, || Ok(5)).unwrap(), 5);
    }
}
