//! A sentence-transformers directory, read as `SentenceTransformer(dir)` reads it: `modules.json`
//! names the modules and their folders; Glimpse loads the chain Transformer → Pooling → Dense
//! [→ Normalize] and refuses anything else with [`Error::UnsupportedLayout`].
//!
//! | file | read for |
//! |---|---|
//! | `modules.json` | the module chain (the class name, last part of `type`, decides: sentence-transformers 2–5 write `sentence_transformers.models.Dense`, 6 writes `sentence_transformers.base.modules.dense.Dense`) |
//! | `<transformer>/config.json` | `model_type` (`bert`, `distilbert`) and sizes |
//! | `<transformer>/model.safetensors` | the encoder's weights |
//! | `<transformer>/tokenizer.json` (+ `tokenizer_config.json`) | ids, `model_max_length` |
//! | `<transformer>/sentence_bert_config.json` | `max_seq_length` (sentence-transformers < 6), `do_lower_case` |
//! | `<pooling>/config.json` | `pooling_mode` (6) or the `pooling_mode_*_tokens` flags (< 6) |
//! | `<dense>/config.json` + `<dense>/model.safetensors` | `in_features`, `out_features`, `bias`, `activation_function`; `linear.weight`, `linear.bias` |
//! | `config_sentence_transformers.json` | a default prompt (refused: not supported) |

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bert::{BertConfig, BertFlavor};
use crate::error::{Error, Result};

/// How the token states become one vector (sentence-transformers' `Pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// The mean of the states of the real (unpadded) tokens, [CLS] and [SEP] included
    /// (`pooling_mode: "mean"`, `pooling_mode_mean_tokens`).
    Mean,
    /// The state of the first token, [CLS] (`pooling_mode: "cls"`).
    Cls,
}

/// The activation after the Dense module's linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenseActivation {
    /// `torch.nn.modules.linear.Identity` (the multilingual CLIP towers).
    Identity,
    /// `torch.nn.modules.activation.Tanh` (sentence-transformers' default for `Dense`).
    Tanh,
}

/// The Dense module: `activation(x·Wᵀ + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseModule {
    /// Its folder (`2_Dense`).
    pub dir: PathBuf,
    /// Input width (the pooled width).
    pub in_features: usize,
    /// Output width: the tower's embedding dimension.
    pub out_features: usize,
    /// Whether `linear.bias` exists.
    pub bias: bool,
    /// The activation.
    pub activation: DenseActivation,
}

/// The Transformer module.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerModule {
    /// Its folder (the tower's root in every sentence-transformers save).
    pub dir: PathBuf,
    /// Which key layout and config names (`model_type`).
    pub flavor: BertFlavor,
    /// The encoder's sizes.
    pub config: BertConfig,
    /// Token sequences are truncated to this many ids, [CLS] and [SEP] included.
    pub max_seq_length: usize,
}

/// A sentence-transformers query tower's modules, checked to chain.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceLayout {
    /// The tower's directory.
    pub dir: PathBuf,
    /// Module 0.
    pub transformer: TransformerModule,
    /// Module 1.
    pub pooling: Pooling,
    /// Module 2.
    pub dense: DenseModule,
    /// Whether a Normalize module ends the chain (the embeddings Glimpse returns are unit
    /// vectors either way).
    pub normalize: bool,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The module kinds Glimpse loads, by class name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transformer,
    Pooling,
    Dense,
    Normalize,
}

fn layout_error(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
    Error::UnsupportedLayout {
        path: path.into(),
        message: message.into(),
    }
}

/// Reads a JSON file; `None` when it does not exist.
pub(crate) fn read_json_opt(path: &Path) -> Result<Option<serde_json::Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Config {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    read_json_opt(path)?.ok_or_else(|| Error::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    })
}

/// A module's folder, refusing a path that leaves the tower's directory.
fn module_dir(dir: &Path, path: &str, modules: &Path) -> Result<PathBuf> {
    let rel = Path::new(path);
    let safe = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !safe {
        return Err(layout_error(
            modules,
            format!("module path `{path}` is not a folder inside the model"),
        ));
    }
    Ok(dir.join(rel))
}

/// `model.safetensors` in `dir`, or a typed error saying what is there instead.
pub(crate) fn safetensors_in(dir: &Path, what: &str) -> Result<PathBuf> {
    let file = dir.join("model.safetensors");
    if file.exists() {
        return Ok(file);
    }
    let bin = dir.join("pytorch_model.bin");
    if bin.exists() {
        return Err(layout_error(
            &bin,
            format!(
                "the {what} weights are only in pytorch_model.bin; Glimpse reads safetensors. \
                 Convert once with sentence-transformers: \
                 `SentenceTransformer(DIR).save(DIR, safe_serialization=True)`"
            ),
        ));
    }
    Err(layout_error(
        dir,
        format!("no model.safetensors for the {what} weights"),
    ))
}

impl SentenceLayout {
    /// Reads and checks the layout of the tower in `dir`.
    ///
    /// # Errors
    /// [`Error::UnsupportedLayout`] naming the file and what is wrong; [`Error::Io`],
    /// [`Error::Config`] for unreadable files; [`Error::UnsupportedArchitecture`] for a
    /// Transformer that is not BERT or DistilBERT.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let modules_path = dir.join("modules.json");
        let value = read_json_opt(&modules_path)?.ok_or_else(|| {
            layout_error(
                &modules_path,
                "no modules.json: not a sentence-transformers model directory",
            )
        })?;
        let entries: Vec<ModuleEntry> =
            serde_json::from_value(value).map_err(|e| Error::Config {
                path: modules_path.clone(),
                message: e.to_string(),
            })?;
        let mut chain = Vec::new();
        for entry in &entries {
            let class = entry.kind.rsplit('.').next().unwrap_or_default();
            let kind = match class {
                "Transformer" => Kind::Transformer,
                "Pooling" => Kind::Pooling,
                "Dense" => Kind::Dense,
                "Normalize" => Kind::Normalize,
                _ => {
                    return Err(layout_error(
                        &modules_path,
                        format!(
                            "module `{}` is not supported (Glimpse loads Transformer → Pooling → \
                             Dense [→ Normalize])",
                            entry.kind
                        ),
                    ))
                }
            };
            chain.push((kind, module_dir(&dir, &entry.path, &modules_path)?));
        }
        let kinds: Vec<Kind> = chain.iter().map(|(k, _)| *k).collect();
        let supported = matches!(
            kinds.as_slice(),
            [Kind::Transformer, Kind::Pooling, Kind::Dense]
                | [
                    Kind::Transformer,
                    Kind::Pooling,
                    Kind::Dense,
                    Kind::Normalize
                ]
        );
        if !supported {
            return Err(layout_error(
                &modules_path,
                format!(
                    "modules {kinds:?}; Glimpse loads Transformer → Pooling → Dense \
                     [→ Normalize] (a query tower needs its Dense projection into the image \
                     space)"
                ),
            ));
        }
        refuse_default_prompt(&dir)?;
        let transformer = transformer(&chain[0].1)?;
        let (pooling, pooled) = pooling(&chain[1].1)?;
        let dense = dense(&chain[2].1)?;
        let hidden = transformer.config.hidden_size;
        if pooled != hidden {
            return Err(layout_error(
                chain[1].1.join("config.json"),
                format!(
                    "pooling embedding dimension {pooled}, but the transformer's width is {hidden}"
                ),
            ));
        }
        if dense.in_features != hidden {
            return Err(layout_error(
                chain[2].1.join("config.json"),
                format!(
                    "Dense in_features {}, but the pooled embedding has {hidden}",
                    dense.in_features
                ),
            ));
        }
        Ok(Self {
            dir,
            transformer,
            pooling,
            dense,
            normalize: kinds.len() == 4,
        })
    }

    /// The tower's embedding dimension (the Dense module's `out_features`).
    pub fn dims(&self) -> usize {
        self.dense.out_features
    }
}

/// sentence-transformers prepends a default prompt to every text; Glimpse does not.
fn refuse_default_prompt(dir: &Path) -> Result<()> {
    let path = dir.join("config_sentence_transformers.json");
    let Some(config) = read_json_opt(&path)? else {
        return Ok(());
    };
    let Some(name) = config.get("default_prompt_name").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    let prompt = config
        .get("prompts")
        .and_then(|p| p.get(name))
        .and_then(|p| p.as_str())
        .unwrap_or_default();
    if prompt.is_empty() {
        return Ok(());
    }
    Err(layout_error(
        path,
        format!("a default prompt (`{name}`: {prompt:?}) is not supported"),
    ))
}

fn transformer(dir: &Path) -> Result<TransformerModule> {
    let config_path = dir.join("config.json");
    let json = read_json(&config_path)?;
    let model_type = json
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let flavor = match model_type {
        "bert" => BertFlavor::Bert,
        "distilbert" => BertFlavor::DistilBert,
        other => {
            return Err(Error::UnsupportedArchitecture {
                path: config_path,
                found: format!(
                    "sentence-transformers Transformer `{other}` (supported: bert, distilbert)"
                ),
            })
        }
    };
    let config = BertConfig::from_value(&json, flavor).map_err(|e| match e {
        Error::Config { message, .. } => Error::Config {
            path: config_path.clone(),
            message,
        },
        other => other,
    })?;
    safetensors_in(dir, "Transformer")?;
    let sbert_path = dir.join("sentence_bert_config.json");
    let sbert = read_json_opt(&sbert_path)?.unwrap_or_default();
    if sbert.get("do_lower_case").and_then(|v| v.as_bool()) == Some(true) {
        return Err(layout_error(
            sbert_path,
            "do_lower_case: true is not supported (lowercase in the tokenizer's normaliser)",
        ));
    }
    let positions = config.max_position_embeddings;
    // sentence-transformers < 6 writes max_seq_length here; 6 writes the tokenizer's
    // model_max_length instead, capped at the model's positions when it loads.
    let max_seq_length = match sbert.get("max_seq_length").and_then(|v| v.as_u64()) {
        Some(n) => n as usize,
        None => {
            let tok = read_json_opt(&dir.join("tokenizer_config.json"))?.unwrap_or_default();
            let n = tok
                .get("model_max_length")
                .and_then(|v| v.as_f64())
                .filter(|n| *n >= 1.0 && *n < 1e9)
                .map_or(positions, |n| n as usize);
            n.min(positions)
        }
    };
    if max_seq_length < 2 || max_seq_length > positions {
        return Err(layout_error(
            sbert_path,
            format!("max_seq_length {max_seq_length} is outside 2..={positions} (the model's positions)"),
        ));
    }
    Ok(TransformerModule {
        dir: dir.to_owned(),
        flavor,
        config,
        max_seq_length,
    })
}

/// The pooling mode and the width it pools.
fn pooling(dir: &Path) -> Result<(Pooling, usize)> {
    let path = dir.join("config.json");
    let json = read_json(&path)?;
    let dim = json
        .get("embedding_dimension")
        .or_else(|| json.get("word_embedding_dimension"))
        .and_then(|v| v.as_u64())
        .ok_or_else(|| layout_error(&path, "no embedding_dimension"))? as usize;
    let modes: Vec<String> = match json.get("pooling_mode") {
        Some(serde_json::Value::String(m)) => vec![m.clone()],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .map(|m| m.as_str().unwrap_or("?").to_owned())
            .collect(),
        Some(other) => {
            return Err(layout_error(
                &path,
                format!("pooling_mode {other} is not a mode"),
            ))
        }
        None => {
            // sentence-transformers < 6: one flag per mode; none set means mean.
            const FLAGS: [(&str, &str); 6] = [
                ("pooling_mode_cls_token", "cls"),
                ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_tokens", "mean"),
                ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                ("pooling_mode_weightedmean_tokens", "weightedmean"),
                ("pooling_mode_lasttoken", "lasttoken"),
            ];
            let set: Vec<String> = FLAGS
                .iter()
                .filter(|(key, _)| json.get(key).and_then(|v| v.as_bool()) == Some(true))
                .map(|(_, mode)| (*mode).to_owned())
                .collect();
            if set.is_empty() {
                vec!["mean".to_owned()]
            } else {
                set
            }
        }
    };
    let pooling = match modes.as_slice() {
        [m] if m == "mean" => Pooling::Mean,
        [m] if m == "cls" => Pooling::Cls,
        _ => {
            return Err(layout_error(
                &path,
                format!("pooling mode {modes:?} is not supported (supported: mean, cls)"),
            ))
        }
    };
    Ok((pooling, dim))
}

fn dense(dir: &Path) -> Result<DenseModule> {
    let path = dir.join("config.json");
    let json = read_json(&path)?;
    let size = |key: &str| {
        json.get(key)
            .and_then(|v| v.as_u64())
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| layout_error(&path, format!("Dense has no positive `{key}`")))
    };
    let (in_features, out_features) = (size("in_features")?, size("out_features")?);
    let bias = json.get("bias").and_then(|v| v.as_bool()).unwrap_or(true);
    let activation = match json.get("activation_function").and_then(|v| v.as_str()) {
        None => DenseActivation::Tanh,
        Some(a) if a.ends_with(".Identity") || a == "Identity" => DenseActivation::Identity,
        Some(a) if a.ends_with(".Tanh") || a == "Tanh" => DenseActivation::Tanh,
        Some(other) => {
            return Err(layout_error(
                &path,
                format!("Dense activation `{other}` is not supported (supported: Identity, Tanh)"),
            ))
        }
    };
    if json.get("use_residual").and_then(|v| v.as_bool()) == Some(true) {
        return Err(layout_error(&path, "Dense use_residual is not supported"));
    }
    for key in ["module_input_name", "module_output_name"] {
        if let Some(name) = json.get(key).and_then(|v| v.as_str()) {
            if name != "sentence_embedding" {
                return Err(layout_error(
                    &path,
                    format!("Dense {key} `{name}` is not supported (only sentence_embedding)"),
                ));
            }
        }
    }
    safetensors_in(dir, "Dense")?;
    Ok(DenseModule {
        dir: dir.to_owned(),
        in_features,
        out_features,
        bias,
        activation,
    })
}
