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
use glimpse_encoder::{ClipConfig, ClipEncoder, LoadOptions, Pixels, Precision, Towers};
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
    config: ClipConfig,
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

/// Digest of the model: `config.json`, the weights' size, and their first and last MiB (the
/// safetensors header lists every tensor; the edges catch re-trained weights of one config).
fn digest(dir: &Path) -> Result<String> {
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
    /// Reads the config and preprocessor settings and fingerprints the weights; loads no tower.
    pub fn open(dir: &Path, backend: Backend, precision: Precision) -> Result<Model> {
        let config = ClipConfig::from_file(dir.join("config.json"))?;
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
            dims: config.projection_dim as u32,
            config_digest: digest(dir)?,
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

    pub fn dims(&self) -> usize {
        self.config.projection_dim
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
        Ok(self
            .tower(&self.text, Towers::TextOnly)?
            .model()
            .logit_scale_exp())
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
    /// Its [`Header::peak_bytes`] is what [`prepare_with`](Self::prepare_with) will hold.
    pub fn inspect(&self, path: &Path, bytes: &[u8], limits: &Limits) -> Result<Header> {
        Ok(inspect(bytes, path, &self.decode_options(limits))?)
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
            let image = decode_dynamic(bytes, path, &options)?;
            let (width, height) = (image.width(), image.height());
            let format = sniff(bytes).unwrap_or("unknown").to_string();
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
