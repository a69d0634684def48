//! The distillation data: student texts (Chinese captions and, optionally, the English ones)
//! tokenised with the tower's WordPiece tokenizer, each paired with the teacher's embedding
//! of the same scene's **English** caption.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::error::{Error, Result};
use glimpse_encoder::{ClipConfig, ClipTokenizer, Device, Towers};
use glimpse_synth::Captions;

/// Texts per teacher forward pass.
const TEACHER_BATCH: usize = 256;

/// The tower's tokenizer (`tokenizer.json`, a BERT WordPiece tokenizer with `[CLS] $A [SEP]`),
/// truncating to the tower's longest input as sentence-transformers does.
#[derive(Debug, Clone)]
pub struct StudentTokenizer {
    inner: tokenizers::Tokenizer,
    max_length: usize,
    pad_id: u32,
}

impl StudentTokenizer {
    /// Loads `path` (a `tokenizer.json`); sequences are cut to `max_length` ids (the last one
    /// kept as `[SEP]`, as `truncation="longest_first"` does with special tokens).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the file cannot be read or has no `[PAD]` token.
    pub fn from_file(path: impl AsRef<Path>, max_length: usize) -> Result<Self> {
        let path = path.as_ref();
        let bad = |message: String| Error::Tokenizer {
            path: path.to_owned(),
            message,
        };
        let mut inner = tokenizers::Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
        inner
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| bad(e.to_string()))?;
        inner.with_padding(None);
        let pad_id = inner
            .token_to_id("[PAD]")
            .ok_or_else(|| bad("no [PAD] token".into()))?;
        Ok(Self {
            inner,
            max_length,
            pad_id,
        })
    }

    /// Token ids of each text, `[CLS] … [SEP]`, unpadded.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if a text cannot be encoded.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings =
            self.inner
                .encode_batch(texts.to_vec(), true)
                .map_err(|e| Error::Tokenizer {
                    path: PathBuf::new(),
                    message: e.to_string(),
                })?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// The padding id.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The vocabulary size (with added tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The longest sequence, in ids.
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

/// The teacher: the text tower of the CLIP checkpoint whose image space the student learns.
#[derive(Debug)]
pub struct Teacher {
    model: glimpse_encoder::ClipModel,
    tokenizer: ClipTokenizer,
    dims: usize,
}

impl Teacher {
    /// Loads the text tower of the checkpoint in `dir` on the flex CPU device.
    ///
    /// # Errors
    /// Those of loading the config, checkpoint and tokenizer.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = ClipConfig::from_file(dir.join("config.json"))?;
        let model =
            Checkpoint::open_dir(dir)?.load_model(&config, Towers::TextOnly, &Device::flex())?;
        Ok(Self {
            model,
            tokenizer: ClipTokenizer::from_dir(dir)?,
            dims: config.projection_dim,
        })
    }

    /// The embedding dimension.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The L2-normalised embeddings of `texts` (what a library built on the teacher gives
    /// them), `[texts, dims]` flattened.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] or the text tower's errors.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(texts.len() * self.dims);
        for chunk in texts.chunks(TEACHER_BATCH) {
            let ids = self.tokenizer.encode_batch(chunk)?;
            let rows = self.model.encode_texts(&ids)?;
            out.extend(
                rows.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| Error::Execution(format!("reading embeddings: {e:?}")))?,
            );
        }
        Ok(out)
    }
}

/// Student inputs and teacher targets.
#[derive(Debug, Clone, Default)]
pub struct DistillSet {
    /// The student's texts.
    pub texts: Vec<String>,
    /// Their token ids.
    pub ids: Vec<Vec<u32>>,
    /// The teacher's embedding of each text's English caption, `[texts, dims]` flattened.
    pub targets: Vec<f32>,
    /// The target dimension.
    pub dims: usize,
}

impl DistillSet {
    /// Pairs every Chinese caption (and, with `with_english`, every English caption too, as
    /// sentence-transformers' multilingual training does, so that the tower keeps answering
    /// English) with the teacher's embedding of the scene's English caption. The teacher
    /// embeds each distinct English caption once.
    ///
    /// # Errors
    /// Those of [`Teacher::embed`] and [`StudentTokenizer::encode_batch`].
    pub fn build(
        captions: &[Captions],
        with_english: bool,
        teacher: &Teacher,
        tokenizer: &StudentTokenizer,
    ) -> Result<Self> {
        let mut distinct: HashMap<&str, usize> = HashMap::new();
        let mut english: Vec<&str> = Vec::new();
        for c in captions {
            distinct.entry(c.en.as_str()).or_insert_with(|| {
                english.push(&c.en);
                english.len() - 1
            });
        }
        let embedded = teacher.embed(&english)?;
        let dims = teacher.dims();
        let mut set = Self {
            dims,
            ..Self::default()
        };
        for c in captions {
            let row = distinct[c.en.as_str()];
            let target = &embedded[row * dims..(row + 1) * dims];
            let texts = std::iter::once(&c.zh).chain(with_english.then_some(&c.en));
            for text in texts {
                set.texts.push(text.clone());
                set.targets.extend_from_slice(target);
            }
        }
        let refs: Vec<&str> = set.texts.iter().map(String::as_str).collect();
        set.ids = tokenizer.encode_batch(&refs)?;
        Ok(set)
    }

    /// Number of (text, target) pairs.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The target of pair `i`.
    pub fn target(&self, i: usize) -> &[f32] {
        &self.targets[i * self.dims..(i + 1) * self.dims]
    }
}
