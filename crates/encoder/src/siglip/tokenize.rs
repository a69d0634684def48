//! SigLIP tokenization: the checkpoint's `tokenizer.json`, run by the `tokenizers` crate with
//! the settings `SiglipProcessor` uses: `truncation=True, padding="max_length", max_length=64`
//! (the text tower's context), padded with the **tokenizer's** pad token.
//!
//! SigLIP's text tower attends to the padding and pools the last position, so the pad id is
//! part of the embedding: SigLIP pads with `</s>` (id 1), SigLIP 2's Gemma tokenizer with
//! `<pad>` (id 0). The pad token is read from `tokenizer_config.json` (`pad_token`), else
//! `special_tokens_map.json`, else the `padding` section of `tokenizer.json`; the config's
//! `text_config.pad_token_id` is not used, as `transformers` does not use it either.
//!
//! Everything else — normalisation, pre-tokenisation, the Unigram (SentencePiece) or BPE model,
//! the `</s>` or `<bos>` post-processor — is in `tokenizer.json`, so loading the same file
//! with the same library gives the same ids. Checkpoints that ship only a SentencePiece
//! `spiece.model` (the original `google/siglip-*` repositories) need a `tokenizer.json`
//! converted from it first (see `docs/MODELS.md`).

use std::path::Path;

use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, TruncationParams};

use crate::error::{Error, Result};
use crate::hub_tokenizer::HubTokenizer;

/// A SigLIP tokenizer: `tokenizer.json` with truncation and padding to the context.
#[derive(Debug, Clone)]
pub struct SiglipTokenizer {
    hub: HubTokenizer,
    context_length: usize,
    pad_id: u32,
}

/// The `content` of a special token as `tokenizer_config.json` or `special_tokens_map.json`
/// write it: a string, or an `AddedToken` object.
fn token_content(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Tokenizer {
                path: path.to_owned(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl SiglipTokenizer {
    /// Loads `dir/tokenizer.json` with the pad token of `dir/tokenizer_config.json` (or
    /// `special_tokens_map.json`), padding and truncating to `context_length` ids.
    ///
    /// # Errors
    /// [`Error::Io`] without `tokenizer.json` (saying so where only `spiece.model` exists);
    /// [`Error::Tokenizer`] for an unreadable file or no pad token.
    pub fn from_dir(dir: impl AsRef<Path>, context_length: usize) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join("tokenizer.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && dir.join("spiece.model").exists() =>
            {
                return Err(Error::Tokenizer {
                    path,
                    message: "missing; this checkpoint has only a SentencePiece `spiece.model`: \
                              convert it once with transformers (see docs/MODELS.md)"
                        .into(),
                })
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        let mut pad_token = None;
        for file in ["tokenizer_config.json", "special_tokens_map.json"] {
            if let Some(value) = read_json(&dir.join(file))? {
                pad_token = value.get("pad_token").and_then(token_content);
            }
            if pad_token.is_some() {
                break;
            }
        }
        Self::from_bytes(&bytes, &path, pad_token.as_deref(), context_length)
    }

    /// Parses a `tokenizer.json`; `pad_token` names the padding token (else the file's own
    /// `padding` section is used). `path` only labels errors.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] for an unreadable file, an unknown pad token or none at all;
    /// [`Error::InvalidInput`] for a context length of 0.
    pub fn from_bytes(
        bytes: &[u8],
        path: impl AsRef<Path>,
        pad_token: Option<&str>,
        context_length: usize,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let error = |message: String| Error::Tokenizer {
            path: path.clone(),
            message,
        };
        if context_length == 0 {
            return Err(Error::InvalidInput(
                "context length must be positive".into(),
            ));
        }
        let mut inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| error(e.to_string()))?;
        let (pad_token, pad_id) =
            match pad_token {
                Some(token) => {
                    let id = inner.token_to_id(token).ok_or_else(|| {
                        error(format!("the pad token `{token}` is not in the vocabulary"))
                    })?;
                    (token.to_owned(), id)
                }
                None => match inner.get_padding() {
                    Some(p) => (p.pad_token.clone(), p.pad_id),
                    None => return Err(error(
                        "no pad token: neither tokenizer_config.json, special_tokens_map.json nor \
                         tokenizer.json names one"
                            .into(),
                    )),
                },
            };
        inner
            .with_truncation(Some(TruncationParams {
                max_length: context_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| error(e.to_string()))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(context_length),
            direction: PaddingDirection::Right,
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        Ok(Self {
            hub: HubTokenizer::new(inner, path),
            context_length,
            pad_id,
        })
    }

    /// Every sequence's length: the context.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The padding id.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.hub.vocab_size()
    }

    /// Tokenizes one text: exactly [`context_length`](Self::context_length) ids, truncated and
    /// padded as `SiglipProcessor` does.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.hub.encode(text)
    }

    /// Tokenizes several texts (in parallel), each as [`encode`](Self::encode) would.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        self.hub.encode_batch(texts)
    }
}
