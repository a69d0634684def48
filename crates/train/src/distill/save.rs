//! Writing a [`StudentTower`] in the layout `SentenceTransformer.save()` writes, so that
//! `sentence_transformers.SentenceTransformer(dir)` and Glimpse's own loader
//! (`glimpse_encoder::sentence`, `LibraryBuilder::query_model`) both read it:
//!
//! | file | content |
//! |---|---|
//! | `modules.json` | `Transformer` (path `""`) → `Pooling` (`1_Pooling`) → `Dense` (`2_Dense`) |
//! | `config.json`, `model.safetensors` | the `DistilBertModel` (keys of `glimpse_encoder::bert::keys`, linear weights `[out, in]`, f32) |
//! | `tokenizer.json`, `tokenizer_config.json` | the WordPiece tokenizer (copied; `model_max_length` set to the tower's longest input) |
//! | `sentence_bert_config.json` | the Transformer module's settings (`max_seq_length`) |
//! | `config_sentence_transformers.json` | the model type and cosine similarity |
//! | `1_Pooling/config.json` | mean pooling over the encoder's width |
//! | `2_Dense/config.json`, `2_Dense/model.safetensors` | `linear.weight` `[dims, hidden]`, no bias, identity activation |
//! | `glimpse_query_tower.json` | `{"image_model": …, "dims": …}` (docs/MODELS.md) |

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use serde_json::json;

use glimpse_encoder::bert::keys::{BertKeys, BertLayerKeys};
use glimpse_encoder::bert::{BertConfig, BertFlavor};
use glimpse_encoder::clip::keys::{LinearKeys, NormKeys, TensorSpec};
use glimpse_encoder::error::{Error, Result};

use super::student::StudentTower;
use crate::checkpoint::{safetensors_bytes, write_file, write_json, SaveDType, StateDict};

/// What goes beside the weights.
#[derive(Debug, Clone)]
pub struct TowerFiles<'a> {
    /// The folder holding the tokenizer's `tokenizer.json` and `tokenizer_config.json`.
    pub tokenizer_dir: &'a Path,
    /// The longest input in ids (`max_seq_length`; at most the position table).
    pub max_seq_length: usize,
    /// The image model the tower was trained into (`glimpse_query_tower.json`).
    pub image_model: &'a str,
}

fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("reading a weight back: {e:?}")))
}

struct Writer(StateDict);

impl Writer {
    fn put<const D: usize>(&mut self, spec: &TensorSpec, tensor: Tensor<D>) -> Result<()> {
        let found = tensor.dims().to_vec();
        if found != spec.shape {
            return Err(Error::ShapeMismatch {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
                found,
            });
        }
        self.0
            .insert(spec.key.clone(), (spec.shape.clone(), values(tensor)?));
        Ok(())
    }

    /// burn's `[in, out]` weight as PyTorch's `[out, in]`.
    fn linear(&mut self, keys: &LinearKeys, linear: &Linear) -> Result<()> {
        self.put(&keys.weight, linear.weight.val().transpose())?;
        match (&keys.bias, &linear.bias) {
            (Some(spec), Some(bias)) => self.put(spec, bias.val()),
            (None, None) => Ok(()),
            _ => Err(Error::InvalidInput(format!(
                "{}: the module's bias does not match the key map",
                keys.weight.key
            ))),
        }
    }

    fn norm(&mut self, keys: &NormKeys, norm: &LayerNorm) -> Result<()> {
        self.put(&keys.weight, norm.gamma.val())?;
        let beta = match &norm.beta {
            Some(beta) => beta.val(),
            None => norm.gamma.val().zeros_like(),
        };
        self.put(&keys.bias, beta)
    }
}

/// The student's encoder as a `DistilBertModel` state dict, walking the BERT key map.
///
/// # Errors
/// [`Error::ShapeMismatch`] if a module does not have the shape `config` implies;
/// [`Error::InvalidInput`] if the layer count differs.
pub fn encoder_state_dict(tower: &StudentTower, config: &BertConfig) -> Result<StateDict> {
    let keys = BertKeys::new(config, BertFlavor::DistilBert, "");
    let model = &tower.encoder;
    if keys.layers.len() != model.layers.len() {
        return Err(Error::InvalidInput(format!(
            "the student has {} layers, its config {}",
            model.layers.len(),
            keys.layers.len()
        )));
    }
    let mut w = Writer(BTreeMap::new());
    let e = &model.embeddings;
    w.put(&keys.embeddings.word, e.word_embeddings.weight.val())?;
    w.put(
        &keys.embeddings.position,
        e.position_embeddings.weight.val(),
    )?;
    w.norm(&keys.embeddings.layer_norm, &e.layer_norm)?;
    for (k, l) in keys.layers.iter().zip(&model.layers) {
        let BertLayerKeys {
            query,
            key,
            value,
            attention_out,
            attention_norm,
            intermediate,
            output,
            output_norm,
        } = k;
        w.linear(query, &l.query)?;
        w.linear(key, &l.key)?;
        w.linear(value, &l.value)?;
        w.linear(attention_out, &l.attention_out)?;
        w.norm(attention_norm, &l.attention_norm)?;
        w.linear(intermediate, &l.intermediate)?;
        w.linear(output, &l.output)?;
        w.norm(output_norm, &l.output_norm)?;
    }
    Ok(w.0)
}

/// `DistilBertConfig` as `transformers` 5 writes it.
fn distilbert_json(config: &BertConfig) -> serde_json::Value {
    json!({
        "activation": "gelu",
        "architectures": ["DistilBertModel"],
        "attention_dropout": 0.1,
        "bos_token_id": null,
        "dim": config.hidden_size,
        "dropout": 0.1,
        "dtype": "float32",
        "eos_token_id": null,
        "hidden_dim": config.intermediate_size,
        "initializer_range": 0.02,
        "max_position_embeddings": config.max_position_embeddings,
        "model_type": "distilbert",
        "n_heads": config.num_attention_heads,
        "n_layers": config.num_hidden_layers,
        "pad_token_id": config.pad_token_id,
        "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2,
        "sinusoidal_pos_embds": false,
        "tie_word_embeddings": true,
        "vocab_size": config.vocab_size,
    })
}

/// Writes `tower` (with `config`'s encoder sizes) into `dir` in sentence-transformers layout;
/// see the [module docs](self).
///
/// # Errors
/// [`Error::Io`] if a file cannot be read or written; [`Error::Tokenizer`] for an unreadable
/// `tokenizer_config.json`; those of [`encoder_state_dict`].
pub fn save_tower(
    tower: &StudentTower,
    config: &BertConfig,
    files: &TowerFiles<'_>,
    dir: impl AsRef<Path>,
) -> Result<()> {
    let dir = dir.as_ref();
    let mkdir = |path: &Path| {
        fs::create_dir_all(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
    };
    for sub in ["", "1_Pooling", "2_Dense"] {
        mkdir(&dir.join(sub))?;
    }
    let (hidden, dims) = (config.hidden_size, tower.dims());
    if files.max_seq_length > config.max_position_embeddings {
        return Err(Error::InvalidInput(format!(
            "max_seq_length {} exceeds the {} positions",
            files.max_seq_length, config.max_position_embeddings
        )));
    }

    // The Transformer module: the encoder and its tokenizer, in the root.
    let state = encoder_state_dict(tower, config)?;
    write_file(
        &dir.join("model.safetensors"),
        &safetensors_bytes(&state, SaveDType::F32),
    )?;
    write_json(&dir.join("config.json"), &distilbert_json(config))?;
    let read = |name: &str| {
        let path = files.tokenizer_dir.join(name);
        fs::read(&path).map_err(|source| Error::Io { path, source })
    };
    write_file(&dir.join("tokenizer.json"), &read("tokenizer.json")?)?;
    let tc_path = files.tokenizer_dir.join("tokenizer_config.json");
    let mut tokenizer_config: serde_json::Value =
        serde_json::from_slice(&read("tokenizer_config.json")?).map_err(|e| Error::Tokenizer {
            path: tc_path,
            message: e.to_string(),
        })?;
    tokenizer_config["model_max_length"] = json!(files.max_seq_length);
    write_json(&dir.join("tokenizer_config.json"), &tokenizer_config)?;
    write_json(
        &dir.join("sentence_bert_config.json"),
        &json!({
            "transformer_task": "feature-extraction",
            "modality_config": {
                "text": {"method": "forward", "method_output_name": "last_hidden_state"}
            },
            "module_output_name": "token_embeddings",
        }),
    )?;
    write_json(
        &dir.join("config_sentence_transformers.json"),
        &json!({
            // The versions whose `save()` this layout reproduces (and that
            // scripts/check_zh_tower.py loads it with). sentence-transformers 6 keeps
            // `max_seq_length` as the tokenizer's `model_max_length`.
            "__version__": {
                "pytorch": "2.15.0",
                "sentence_transformers": "6.2.0",
                "transformers": "5.24.0",
            },
            "default_prompt_name": null,
            "model_type": "SentenceTransformer",
            "prompts": {"document": "", "query": ""},
            "similarity_fn_name": "cosine",
        }),
    )?;
    write_json(
        &dir.join("modules.json"),
        &json!([
            {"idx": 0, "name": "0", "path": "",
             "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense",
             "type": "sentence_transformers.base.modules.dense.Dense"},
        ]),
    )?;

    // Pooling: the mean over real tokens.
    write_json(
        &dir.join("1_Pooling/config.json"),
        &json!({
            "embedding_dimension": hidden,
            "pooling_mode": "mean",
            "include_prompt": true,
        }),
    )?;

    // Dense: hidden → dims, no bias, identity.
    let mut dense = Writer(BTreeMap::new());
    let keys = LinearKeys {
        weight: TensorSpec {
            key: "linear.weight".into(),
            shape: vec![dims, hidden],
        },
        bias: None,
        d_in: hidden,
        d_out: dims,
    };
    dense.linear(&keys, &tower.dense)?;
    write_file(
        &dir.join("2_Dense/model.safetensors"),
        &safetensors_bytes(&dense.0, SaveDType::F32),
    )?;
    write_json(
        &dir.join("2_Dense/config.json"),
        &json!({
            "in_features": hidden,
            "out_features": dims,
            "bias": false,
            "activation_function": "torch.nn.modules.linear.Identity",
            "module_input_name": "sentence_embedding",
            "module_output_name": "sentence_embedding",
        }),
    )?;
    write_json(
        &dir.join("glimpse_query_tower.json"),
        &json!({ "image_model": files.image_model, "dims": dims }),
    )
}
