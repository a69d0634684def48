//! Fetching a CLIP checkpoint from the Hugging Face Hub (feature `download`).
//!
//! Files land in the usual Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `~/.cache/huggingface/hub`), in the same `models--{org}--{name}/snapshots/{commit}/` layout
//! that Python's `huggingface_hub` writes, so a model downloaded by either is found by both.
//! A file already in the cache is never fetched again; with `HF_HUB_OFFLINE=1` nothing is
//! fetched at all. `HF_ENDPOINT` points at a mirror, `HF_TOKEN` (or the token file) at
//! private repositories.
//!
//! ```no_run
//! # fn main() -> glimpse::Result<()> {
//! let dir = glimpse::download_model(glimpse::DEFAULT_MODEL_REPO)?;
//! let library = glimpse::Library::builder().model(dir).open("photos.glimpse")?;
//! # Ok(()) }
//! ```

use crate::{Error, Result};
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use std::path::PathBuf;

/// The checkpoint a library uses when no model is given: OpenAI's CLIP ViT-B/32.
pub const DEFAULT_MODEL_REPO: &str = "openai/clip-vit-base-patch32";

/// The files a model directory needs, in the order they are fetched (small ones first, so a
/// wrong repository fails before the large download).
pub const MODEL_FILES: [&str; 4] = [
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "model.safetensors",
];

/// Where and how [`download_model_with`] fetches: [`HubOptions::from_env`], or
/// [`HubOptions::new`] and the chainable setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubOptions {
    /// The cache directory (the `hub` folder itself).
    pub cache_dir: PathBuf,
    /// The Hub's address; `None` for `https://huggingface.co`.
    pub endpoint: Option<String>,
    /// Look only in the cache; never touch the network.
    pub offline: bool,
    /// Access token for private or gated repositories.
    pub token: Option<String>,
}

impl HubOptions {
    /// Fetch into `cache_dir` (the `hub` folder itself) from `https://huggingface.co`, online,
    /// without a token; the environment is not read.
    pub fn new(cache_dir: impl Into<PathBuf>) -> HubOptions {
        HubOptions {
            cache_dir: cache_dir.into(),
            endpoint: None,
            offline: false,
            token: None,
        }
    }

    /// Sets [`cache_dir`](Self::cache_dir).
    #[must_use = "setters return the changed options"]
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// Sets [`endpoint`](Self::endpoint), e.g. a mirror's address.
    #[must_use = "setters return the changed options"]
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Sets [`offline`](Self::offline).
    #[must_use = "setters return the changed options"]
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Sets [`token`](Self::token).
    #[must_use = "setters return the changed options"]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Settings from the environment, as `huggingface_hub` reads them: `HF_HUB_CACHE`,
    /// `HF_HOME`, `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_TOKEN` (else the cache's token file).
    pub fn from_env() -> HubOptions {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let cache_dir =
            crate::model::hf_hub_cache().unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        let offline = var("HF_HUB_OFFLINE")
            .map(|v| matches!(v.to_str(), Some("1" | "true" | "TRUE" | "yes" | "on")))
            .unwrap_or(false);
        let token = var("HF_TOKEN")
            .and_then(|t| t.into_string().ok())
            .or_else(|| Cache::new(cache_dir.clone()).token());
        HubOptions {
            cache_dir,
            endpoint: var("HF_ENDPOINT").and_then(|e| e.into_string().ok()),
            offline,
            token,
        }
    }
}

/// The directory of `repo`'s checkpoint in the cache, fetching missing files from the Hub
/// (settings from the environment, see [`HubOptions::from_env`]).
///
/// # Errors
/// [`Error::Download`] naming the repository and file when a file is neither cached nor
/// fetchable (no network, offline mode, no such repository or file).
pub fn download_model(repo: &str) -> Result<PathBuf> {
    download_model_with(repo, &HubOptions::from_env())
}

/// [`download_model`] with explicit settings.
///
/// # Errors
/// As [`download_model`].
pub fn download_model_with(repo: &str, options: &HubOptions) -> Result<PathBuf> {
    let cache = Cache::new(options.cache_dir.clone());
    let hub_repo = Repo::new(repo.to_owned(), RepoType::Model);
    let cached = cache.repo(hub_repo.clone());
    let fail = |file: &str, message: String| Error::Download {
        repo: repo.to_owned(),
        file: file.to_owned(),
        message,
    };
    let api = if options.offline {
        None
    } else {
        let mut builder = ApiBuilder::from_cache(cache.clone())
            .with_progress(false)
            .with_token(options.token.clone())
            .with_retries(2);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        Some(
            builder
                .build()
                .map_err(|e| fail(MODEL_FILES[0], e.to_string()))?,
        )
    };
    let mut dir: Option<PathBuf> = None;
    for file in MODEL_FILES {
        let path = match (cached.get(file), &api) {
            (Some(path), _) => path,
            (None, None) => {
                return Err(fail(
                    file,
                    format!(
                        "not in the cache at {} and HF_HUB_OFFLINE forbids fetching it",
                        options.cache_dir.display()
                    ),
                ))
            }
            (None, Some(api)) => {
                log::info!("downloading {repo}/{file}");
                api.repo(hub_repo.clone())
                    .download(file)
                    .map_err(|e| fail(file, e.to_string()))?
            }
        };
        let parent = path.parent().map(PathBuf::from).unwrap_or_default();
        match &dir {
            None => dir = Some(parent),
            Some(d) if *d == parent => {}
            Some(d) => {
                // The repository moved on between two files: the snapshot would mix commits.
                return Err(fail(
                    file,
                    format!(
                        "files came from two revisions ({} and {}); run again",
                        d.display(),
                        parent.display()
                    ),
                ));
            }
        }
    }
    Ok(dir.unwrap_or_default())
}
