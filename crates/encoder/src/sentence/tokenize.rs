//! A query tower's tokenizer: its `tokenizer.json` (a BERT WordPiece tokenizer for BERT and
//! DistilBERT towers), run by the `tokenizers` crate with the truncation
//! sentence-transformers asks of it (`truncation="longest_first"`, `max_length =
//! max_seq_length`, special tokens included), no padding.

use std::path::Path;

use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::hub_tokenizer::HubTokenizer;

/// A sentence-transformers tower's tokenizer.
#[derive(Debug, Clone)]
pub struct SentenceTokenizer {
    hub: HubTokenizer,
    max_length: usize,
    pad_id: u32,
}

impl SentenceTokenizer {
    /// Loads `dir/tokenizer.json`; sequences are truncated to `max_length` ids.
    ///
    /// # Errors
    /// [`Error::Io`] for a missing file (a tower with only `vocab.txt` says how to convert
    /// it), [`Error::Tokenizer`] for one the `tokenizers` crate cannot load.
    pub fn from_dir(dir: impl AsRef<Path>, max_length: usize) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join("tokenizer.json");
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound && dir.join("vocab.txt").exists() {
                return Error::Tokenizer {
                    path: path.clone(),
                    message: "only vocab.txt is present; Glimpse reads tokenizer.json. Write it \
                              once with transformers: \
                              `AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)`"
                        .into(),
                };
            }
            Error::Io {
                path: path.clone(),
                source,
            }
        })?;
        let mut inner =
            tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| Error::Tokenizer {
                path: path.clone(),
                message: e.to_string(),
            })?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer {
                path: path.clone(),
                message: e.to_string(),
            })?;
        inner.with_padding(None);
        let pad_id = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .unwrap_or(0);
        Ok(Self {
            hub: HubTokenizer::new(inner, path),
            max_length,
            pad_id,
        })
    }

    /// The most ids a sequence has.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The padding id (`[PAD]`; padded positions are masked, so it does not change an
    /// embedding).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The ids of one text, special tokens included, unpadded.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.hub.encode(text)
    }

    /// The ids of several texts.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        self.hub.encode_batch(texts)
    }
}
