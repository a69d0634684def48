//! CLIP tokenization: the checkpoint's `tokenizer.json`, run by the `tokenizers` crate.
//!
//! The reference is `transformers`' `CLIPTokenizer` (the tokenizers-backed tokenizer that used to
//! be called `CLIPTokenizerFast`) called with `truncation=True, max_length=77`. Its whole pipeline
//! — NFC, `\s+` → one space, lowercasing, CLIP's split regex, byte-level BPE with the `</w>`
//! suffix, and the `<|startoftext|> … <|endoftext|>` post-processor — lives in `tokenizer.json`,
//! so loading that file with the same library reproduces the ids exactly. What this module adds
//! is the truncation rule: a sequence longer than the context keeps its first
//! `context_length - 1` ids and ends with `<|endoftext|>`, as `transformers` does.
//!
//! Ids are returned as `Vec<u32>` **without padding**: the text tower is causal and pools at the
//! end-of-text token, so padding after it changes nothing, and a batch need only be as long as
//! its longest sequence. Pad with [`ClipTokenizer::pad_id`] (the end-of-text id, as in
//! openai/clip-vit-base-patch32) where a rectangular batch is needed.
//!
//! Note: HTML entities such as `&amp;` are tokenized literally — the Hugging Face reference does
//! not unescape them (openai's original Python tokenizer did).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// CLIP's start-of-text token.
pub const START_OF_TEXT: &str = "<|startoftext|>";
/// CLIP's end-of-text token (also the padding token).
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// The context length of every released CLIP text tower.
pub const DEFAULT_CONTEXT_LENGTH: usize = 77;

/// A CLIP tokenizer loaded from a checkpoint's `tokenizer.json`.
///
/// ```no_run
/// # fn main() -> glimpse_encoder::Result<()> {
/// use glimpse_encoder::tokenize::ClipTokenizer;
/// let tok = ClipTokenizer::from_dir("models/clip-vit-base-patch32")?;
/// let ids = tok.encode("a photo of a cat")?;
/// assert_eq!(ids, [49406, 320, 1125, 539, 320, 2368, 49407]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    context_length: usize,
    bos_id: u32,
    eos_id: u32,
}

impl ClipTokenizer {
    /// Loads `dir/tokenizer.json`, taking the context length from
    /// `dir/config.json`'s `text_config.max_position_embeddings` when that file exists (77
    /// otherwise).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let tok = Self::from_file(dir.join("tokenizer.json"))?;
        let config = dir.join("config.json");
        if !config.exists() {
            return Ok(tok);
        }
        let text = std::fs::read_to_string(&config).map_err(|source| Error::Io {
            path: config.clone(),
            source,
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: config.clone(),
            message: e.to_string(),
        })?;
        match value
            .get("text_config")
            .and_then(|t| t.get("max_position_embeddings"))
        {
            None => Ok(tok),
            Some(v) => {
                let n = v
                    .as_u64()
                    .filter(|&n| n >= 2)
                    .ok_or_else(|| Error::Config {
                        path: config.clone(),
                        message: format!(
                        "`text_config.max_position_embeddings` must be an integer >= 2, got {v}"
                    ),
                    })?;
                Ok(tok.with_context_length(n as usize))
            }
        }
    }

    /// Loads a `tokenizer.json` file, with the default context length of 77.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses the contents of a `tokenizer.json`; `path` only labels errors.
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let id = |token: &str| {
            inner.token_to_id(token).ok_or_else(|| Error::Tokenizer {
                path: path.clone(),
                message: format!("vocabulary has no `{token}` token"),
            })
        };
        let bos_id = id(START_OF_TEXT)?;
        let eos_id = id(END_OF_TEXT)?;
        Ok(Self {
            inner,
            path,
            context_length: DEFAULT_CONTEXT_LENGTH,
            bos_id,
            eos_id,
        })
    }

    /// Sets the context length (the text tower's `max_position_embeddings`).
    ///
    /// # Panics
    /// If `context_length < 2` (there must be room for the start and end tokens).
    #[must_use]
    pub fn with_context_length(mut self, context_length: usize) -> Self {
        assert!(context_length >= 2, "context length must be at least 2");
        self.context_length = context_length;
        self
    }

    /// The maximum number of ids [`encode`](Self::encode) returns, special tokens included.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The id of `<|startoftext|>` (49406 in CLIP's vocabulary).
    pub fn bos_id(&self) -> u32 {
        self.bos_id
    }

    /// The id of `<|endoftext|>` (49407 in CLIP's vocabulary).
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// The id to pad with: `<|endoftext|>`, as openai/clip-vit-base-patch32 does.
    pub fn pad_id(&self) -> u32 {
        self.eos_id
    }

    /// The size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokenizes one text: `<|startoftext|>`, the text's ids, `<|endoftext|>`, at most
    /// [`context_length`](Self::context_length) ids in all (longer texts are cut and still end
    /// with `<|endoftext|>`). No padding.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, true).map_err(|e| self.error(e))?;
        Ok(self.finish(encoding.get_ids()))
    }

    /// Tokenizes several texts (in parallel), each as [`encode`](Self::encode) would.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .inner
            .encode_batch(inputs, true)
            .map_err(|e| self.error(e))?;
        Ok(encodings.iter().map(|e| self.finish(e.get_ids())).collect())
    }

    /// Pads sequences with [`pad_id`](Self::pad_id) to the longest one's length and flattens
    /// them row-major: returns `(ids, seq_len)` with `ids.len() == seqs.len() * seq_len`.
    pub fn pad_batch(&self, seqs: &[Vec<u32>]) -> (Vec<u32>, usize) {
        let seq_len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len() * seq_len);
        for seq in seqs {
            ids.extend_from_slice(seq);
            ids.resize(ids.len() + seq_len - seq.len(), self.pad_id());
        }
        (ids, seq_len)
    }

    fn finish(&self, ids: &[u32]) -> Vec<u32> {
        if ids.len() <= self.context_length {
            return ids.to_vec();
        }
        let mut out = ids[..self.context_length - 1].to_vec();
        out.push(self.eos_id);
        out
    }

    fn error(&self, e: tokenizers::Error) -> Error {
        Error::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

/// The tokenizer of a loaded checkpoint, whichever its architecture.
#[derive(Debug, Clone)]
pub enum TextTokenizer {
    /// CLIP: unpadded ids, `<|startoftext|> … <|endoftext|>`.
    Clip(ClipTokenizer),
    /// SigLIP: ids padded to the context with the tokenizer's pad id.
    Siglip(crate::siglip::SiglipTokenizer),
    /// BERT WordPiece (Chinese-CLIP): unpadded ids, `[CLS] … [SEP]`.
    Bert(crate::bert::BertTokenizer),
}

impl TextTokenizer {
    /// Tokenizes one text as the architecture's processor does.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            TextTokenizer::Clip(t) => t.encode(text),
            TextTokenizer::Siglip(t) => t.encode(text),
            TextTokenizer::Bert(t) => t.encode(text),
        }
    }

    /// Tokenizes several texts.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        match self {
            TextTokenizer::Clip(t) => t.encode_batch(texts),
            TextTokenizer::Siglip(t) => t.encode_batch(texts),
            TextTokenizer::Bert(t) => t.encode_batch(texts),
        }
    }

    /// The most ids a sequence has (SigLIP: every sequence has exactly this many).
    pub fn context_length(&self) -> usize {
        match self {
            TextTokenizer::Clip(t) => t.context_length(),
            TextTokenizer::Siglip(t) => t.context_length(),
            TextTokenizer::Bert(t) => t.context_length(),
        }
    }

    /// The padding id.
    pub fn pad_id(&self) -> u32 {
        match self {
            TextTokenizer::Clip(t) => t.pad_id(),
            TextTokenizer::Siglip(t) => t.pad_id(),
            TextTokenizer::Bert(t) => t.pad_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> ClipTokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-clip");
        ClipTokenizer::from_dir(dir).expect("fixture tokenizer")
    }

    #[test]
    fn special_ids_and_context() {
        let tok = fixture();
        assert_eq!(
            (tok.bos_id(), tok.eos_id(), tok.pad_id()),
            (49406, 49407, 49407)
        );
        assert_eq!(tok.context_length(), 77);
        assert_eq!(tok.vocab_size(), 49408);
    }

    #[test]
    fn truncation_keeps_end_of_text() {
        let tok = fixture().with_context_length(5);
        let ids = tok.encode("one two three four five six").unwrap();
        assert_eq!(ids.len(), 5);
        assert_eq!(ids[0], 49406);
        assert_eq!(ids[4], 49407);
        let short = tok.encode("one").unwrap();
        assert_eq!(short.len(), 3);
    }

    #[test]
    fn pad_batch_pads_with_eos() {
        let tok = fixture();
        let (ids, len) = tok.pad_batch(&[vec![1, 2, 3], vec![4]]);
        assert_eq!(len, 3);
        assert_eq!(ids, [1, 2, 3, 4, 49407, 49407]);
        assert_eq!(tok.pad_batch(&[]), (vec![], 0));
    }

    #[test]
    fn missing_and_bad_files_are_typed_errors() {
        let err = ClipTokenizer::from_file("/nonexistent/tokenizer.json").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        let err = ClipTokenizer::from_bytes(b"{not json", "bad.json").unwrap_err();
        assert!(matches!(err, Error::Tokenizer { .. }), "{err}");
        assert!(err.to_string().contains("bad.json"));
    }
}
