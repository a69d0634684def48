//! The BERT-family text encoder's configuration, read from a `config.json` (or a
//! `text_config` inside one) in either flavour's field names ([`BertFlavor`]).
//!
//! [`BertConfig`] is the flavour-neutral form the modules, the key map and the packer use.
//! Absent fields take `transformers`' class defaults: `BertConfig` / `ChineseCLIPTextConfig`
//! (vocabulary 30522, width 768, 12 layers, 12 heads, MLP 3072, 512 positions, 2 token types,
//! `gelu`, epsilon 1e-12) and `DistilBertConfig` (`dim` 768, `hidden_dim` 3072, `n_layers` 6,
//! `n_heads` 12, `activation` `gelu`, no token types, every layer norm at epsilon 1e-12, which
//! `DistilBertModel` hard-codes).

use serde::Deserialize;

use crate::config::Activation;
use crate::error::{Error, Result};

/// Which key layout (and config field names) a checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BertFlavor {
    /// `BertModel` (and `ChineseCLIPTextModel`, RoBERTa-wwm towers, `XLMRobertaModel`-free
    /// BERT exports): word, position and token-type embeddings;
    /// `encoder.layer.{i}.attention.self.{query,key,value}`, `attention.output.dense`,
    /// `attention.output.LayerNorm`, `intermediate.dense`, `output.dense`, `output.LayerNorm`.
    Bert,
    /// `DistilBertModel`: word and position embeddings, no token types;
    /// `transformer.layer.{i}.attention.{q,k,v,out}_lin`, `sa_layer_norm`, `ffn.lin{1,2}`,
    /// `output_layer_norm`.
    DistilBert,
}

/// A post-LayerNorm BERT-family encoder's sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads (divides `hidden_size`).
    pub num_attention_heads: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// MLP activation (`gelu` is the exact, erf-based GELU).
    pub hidden_act: Activation,
    /// Rows of the position table (longest sequence).
    pub max_position_embeddings: usize,
    /// Rows of the token-type table; 0 for DistilBERT (no token types).
    pub type_vocab_size: usize,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
    /// The padding id (`pad_token_id`; the tokenizer's own pad id is what pads).
    pub pad_token_id: u32,
}

impl Default for BertConfig {
    /// `transformers.BertConfig()`'s defaults (BERT-base).
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
        }
    }
}

/// `BertConfig` / `ChineseCLIPTextConfig` field names.
#[derive(Deserialize)]
#[serde(default)]
struct BertJson {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: Activation,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    pad_token_id: Option<u32>,
    position_embedding_type: Option<String>,
}

impl Default for BertJson {
    fn default() -> Self {
        let c = BertConfig::default();
        Self {
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            intermediate_size: c.intermediate_size,
            hidden_act: c.hidden_act,
            max_position_embeddings: c.max_position_embeddings,
            type_vocab_size: c.type_vocab_size,
            layer_norm_eps: c.layer_norm_eps,
            pad_token_id: Some(0),
            position_embedding_type: None,
        }
    }
}

/// `DistilBertConfig` field names.
#[derive(Deserialize)]
#[serde(default)]
struct DistilBertJson {
    vocab_size: usize,
    dim: usize,
    n_layers: usize,
    n_heads: usize,
    hidden_dim: usize,
    activation: Activation,
    max_position_embeddings: usize,
    pad_token_id: Option<u32>,
}

impl Default for DistilBertJson {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            dim: 768,
            n_layers: 6,
            n_heads: 12,
            hidden_dim: 3072,
            activation: Activation::Gelu,
            max_position_embeddings: 512,
            pad_token_id: Some(0),
        }
    }
}

impl BertConfig {
    /// Reads a config object in `flavor`'s field names (a whole `config.json`, or the
    /// `text_config` of a dual model); absent fields take the class defaults. The result is
    /// [validated](Self::validate).
    ///
    /// # Errors
    /// [`Error::Config`] (with an empty path) for an unreadable field (an unsupported
    /// `hidden_act` included), a `position_embedding_type` other than `absolute`, or
    /// inconsistent sizes.
    pub fn from_value(value: &serde_json::Value, flavor: BertFlavor) -> Result<Self> {
        let fail = |message: String| Error::Config {
            path: Default::default(),
            message,
        };
        let config = match flavor {
            BertFlavor::Bert => {
                let j = BertJson::deserialize(value).map_err(|e| fail(e.to_string()))?;
                if let Some(kind) = j.position_embedding_type.filter(|k| k != "absolute") {
                    return Err(fail(format!(
                        "position_embedding_type \"{kind}\" is not supported (only \"absolute\")"
                    )));
                }
                Self {
                    vocab_size: j.vocab_size,
                    hidden_size: j.hidden_size,
                    num_hidden_layers: j.num_hidden_layers,
                    num_attention_heads: j.num_attention_heads,
                    intermediate_size: j.intermediate_size,
                    hidden_act: j.hidden_act,
                    max_position_embeddings: j.max_position_embeddings,
                    type_vocab_size: j.type_vocab_size,
                    layer_norm_eps: j.layer_norm_eps,
                    pad_token_id: j.pad_token_id.unwrap_or(0),
                }
            }
            BertFlavor::DistilBert => {
                let j = DistilBertJson::deserialize(value).map_err(|e| fail(e.to_string()))?;
                Self {
                    vocab_size: j.vocab_size,
                    hidden_size: j.dim,
                    num_hidden_layers: j.n_layers,
                    num_attention_heads: j.n_heads,
                    intermediate_size: j.hidden_dim,
                    hidden_act: j.activation,
                    max_position_embeddings: j.max_position_embeddings,
                    type_vocab_size: 0,
                    // `DistilBertModel` hard-codes its layer norms' epsilon.
                    layer_norm_eps: 1e-12,
                    pad_token_id: j.pad_token_id.unwrap_or(0),
                }
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the sizes: nothing zero (token types may be), heads divide the width.
    ///
    /// # Errors
    /// [`Error::Config`] (with an empty path) naming the problem.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| {
            Err(Error::Config {
                path: Default::default(),
                message,
            })
        };
        for (name, size) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if size == 0 {
                return fail(format!("text {name} must be positive"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return fail(format!(
                "text hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// The width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_flavours_read_their_field_names() {
        let bert = BertConfig::from_value(&serde_json::json!({}), BertFlavor::Bert).unwrap();
        assert_eq!(bert, BertConfig::default());
        let distil = BertConfig::from_value(
            &serde_json::json!({"dim": 32, "hidden_dim": 64, "n_layers": 2, "n_heads": 4,
                                "vocab_size": 100, "max_position_embeddings": 40}),
            BertFlavor::DistilBert,
        )
        .unwrap();
        assert_eq!(
            (
                distil.hidden_size,
                distil.intermediate_size,
                distil.type_vocab_size
            ),
            (32, 64, 0)
        );
        assert_eq!(distil.layer_norm_eps, 1e-12);
    }

    #[test]
    fn unsupported_settings_are_errors() {
        for json in [
            serde_json::json!({"hidden_act": "relu"}),
            serde_json::json!({"position_embedding_type": "relative_key"}),
            serde_json::json!({"hidden_size": 100, "num_attention_heads": 12}),
        ] {
            assert!(
                BertConfig::from_value(&json, BertFlavor::Bert).is_err(),
                "{json}"
            );
        }
    }
}
