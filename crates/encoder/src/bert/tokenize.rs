//! WordPiece tokenization for BERT-family towers, as `transformers`' `BertTokenizer` (the
//! tokenizers-backed class, formerly `BertTokenizerFast`) does it: the checkpoint's
//! `tokenizer.json` run by the `tokenizers` crate — `BertNormalizer` (clean text, spaces around
//! CJK characters, lowercase, accents), `BertPreTokenizer`, `WordPiece` (`##` continuations),
//! `[CLS] $A [SEP]` — truncated to the model's longest sequence, unpadded (the encoder pads and
//! masks).
//!
//! A checkpoint with only a `vocab.txt` (many BERT and Chinese-CLIP repositories) gets the
//! pipeline `BertTokenizer(vocab_file)` builds, with `do_lower_case`,
//! `tokenize_chinese_chars` and `strip_accents` from `tokenizer_config.json` (defaults
//! `true`, `true`, unset) and its special tokens.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tokenizers::TruncationParams;

use crate::error::{Error, Result};
use crate::hub_tokenizer::HubTokenizer;

/// A BERT WordPiece tokenizer: unpadded ids, `[CLS] … [SEP]`, at most
/// [`context_length`](Self::context_length) of them.
#[derive(Debug, Clone)]
pub struct BertTokenizer {
    hub: HubTokenizer,
    context_length: usize,
    pad_id: u32,
}

fn read_json(path: &Path) -> Result<Option<Value>> {
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

/// A special token's text as `tokenizer_config.json` writes it (a string or an `AddedToken`).
fn token_content(config: &Value, key: &str, default: &str) -> String {
    match config.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned(),
        _ => default.to_owned(),
    }
}

/// The `tokenizer.json` that `transformers`' `BertTokenizer` builds from a `vocab.txt`.
fn from_vocab_txt(vocab: &str, config: &Value) -> Value {
    let flag =
        |key: &str, default: bool| config.get(key).and_then(Value::as_bool).unwrap_or(default);
    let lowercase = flag("do_lower_case", true);
    let chinese = flag("tokenize_chinese_chars", true);
    let strip_accents = config.get("strip_accents").and_then(Value::as_bool);
    let mut map = serde_json::Map::new();
    for (id, line) in vocab.split_terminator('\n').enumerate() {
        // `load_vocab` keeps the last index of a repeated line, as a dict assignment does.
        map.insert(line.to_owned(), json!(id));
    }
    let [pad, unk, cls, sep, mask] = [
        ("pad_token", "[PAD]"),
        ("unk_token", "[UNK]"),
        ("cls_token", "[CLS]"),
        ("sep_token", "[SEP]"),
        ("mask_token", "[MASK]"),
    ]
    .map(|(k, d)| token_content(config, k, d));
    let mut specials: Vec<(String, u64)> = [&pad, &unk, &cls, &sep, &mask]
        .iter()
        .filter_map(|t| {
            map.get(t.as_str())
                .and_then(Value::as_u64)
                .map(|id| ((*t).clone(), id))
        })
        .collect();
    specials.sort_by_key(|(_, id)| *id);
    let added: Vec<Value> = specials
        .iter()
        .map(|(t, id)| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let id_of = |t: &str| map.get(t).cloned().unwrap_or(json!(0));
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
                       "handle_chinese_chars": chinese, "strip_accents": strip_accents,
                       "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": cls, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": sep, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": cls, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": sep, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": sep, "type_id": 1}}],
            "special_tokens": {
                cls.clone(): {"id": cls, "ids": [id_of(&cls)], "tokens": [cls]},
                sep.clone(): {"id": sep, "ids": [id_of(&sep)], "tokens": [sep]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": map}
    })
}

impl BertTokenizer {
    /// Loads `dir/tokenizer.json` (else `dir/vocab.txt` with `dir/tokenizer_config.json`),
    /// truncating to `max_length` ids — or fewer, if `tokenizer_config.json`'s
    /// `model_max_length` is smaller.
    ///
    /// # Errors
    /// [`Error::Io`] with neither file; [`Error::Tokenizer`] for an unreadable one;
    /// [`Error::InvalidInput`] for a `max_length` below 2.
    pub fn from_dir(dir: impl AsRef<Path>, max_length: usize) -> Result<Self> {
        let dir = dir.as_ref();
        let config = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(json!({}));
        let path = dir.join("tokenizer.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let vocab_path = dir.join("vocab.txt");
                let vocab = std::fs::read_to_string(&vocab_path).map_err(|source| {
                    if source.kind() == std::io::ErrorKind::NotFound {
                        Error::Io { path, source }
                    } else {
                        Error::Io {
                            path: vocab_path.clone(),
                            source,
                        }
                    }
                })?;
                return Self::build(
                    from_vocab_txt(&vocab, &config).to_string().as_bytes(),
                    vocab_path,
                    &config,
                    max_length,
                );
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        Self::build(&bytes, path, &config, max_length)
    }

    /// Parses a `tokenizer.json` (`path` only labels errors), truncating to `max_length`.
    ///
    /// # Errors
    /// As [`from_dir`](Self::from_dir).
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>, max_length: usize) -> Result<Self> {
        Self::build(bytes, path.as_ref().to_owned(), &json!({}), max_length)
    }

    fn build(bytes: &[u8], path: PathBuf, config: &Value, max_length: usize) -> Result<Self> {
        let error = |message: String| Error::Tokenizer {
            path: path.clone(),
            message,
        };
        let model_max = config
            .get("model_max_length")
            .and_then(Value::as_u64)
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let context_length = max_length.min(model_max);
        if context_length < 2 {
            return Err(Error::InvalidInput(format!(
                "a BERT sequence needs at least [CLS] and [SEP]; the context is {context_length}"
            )));
        }
        let mut inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| error(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: context_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| error(e.to_string()))?;
        let pad_token = token_content(config, "pad_token", "[PAD]");
        let pad_id = inner.token_to_id(&pad_token).unwrap_or(0);
        Ok(Self {
            hub: HubTokenizer::new(inner, path),
            context_length,
            pad_id,
        })
    }

    /// The most ids a sequence has.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The padding id (`[PAD]`).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.hub.vocab_size()
    }

    /// Tokenizes one text: `[CLS] … [SEP]`, truncated.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.hub.encode(text)
    }

    /// Tokenizes several texts (in parallel).
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        self.hub.encode_batch(texts)
    }
}
