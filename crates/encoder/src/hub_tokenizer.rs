//! What every `tokenizer.json`-backed tokenizer shares (SigLIP's, BERT's, the
//! sentence-transformers towers'): one `tokenizers::Tokenizer`, already configured by its
//! owner (truncation, padding), encoding with the special tokens, errors naming the file.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// A configured `tokenizers::Tokenizer` and the file it came from (for errors).
#[derive(Debug, Clone)]
pub(crate) struct HubTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl HubTokenizer {
    pub(crate) fn new(inner: tokenizers::Tokenizer, path: PathBuf) -> Self {
        Self { inner, path }
    }

    /// The size of the vocabulary, added tokens included.
    pub(crate) fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The ids of one text, special tokens included.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, true).map_err(|e| self.error(e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The ids of several texts (encoded in parallel), each as [`encode`](Self::encode) would.
    pub(crate) fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .inner
            .encode_batch(inputs, true)
            .map_err(|e| self.error(e))?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    fn error(&self, e: tokenizers::Error) -> Error {
        Error::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}
