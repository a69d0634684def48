//! The BERT-family key map: every tensor of a `BertModel` or `DistilBertModel` state dict
//! (under an optional prefix such as `text_model`), with its shape and role. The burn loader
//! ([`super::load`]) and the native packer ([`super::pack`]) both walk it, and
//! [`crate::checkpoint::Checkpoint::validate`] checks a checkpoint against it first.
//!
//! Both layouts hold the same post-LayerNorm layer; only the names differ. `{P}` is the prefix
//! (`text_model.` for Chinese-CLIP, empty for a bare `BertModel` / `DistilBertModel`), `{L}` is
//! `{P}encoder.layer.{i}` (BERT) or `{P}transformer.layer.{i}` (DistilBERT). Linear weights
//! are `[out, in]`.
//!
//! | role | `BertModel` key | `DistilBertModel` key | shape |
//! |---|---|---|---|
//! | token embedding | `{P}embeddings.word_embeddings.weight` | same | `[vocab, D]` |
//! | position embedding | `{P}embeddings.position_embeddings.weight` | same | `[positions, D]` |
//! | token-type embedding | `{P}embeddings.token_type_embeddings.weight` | — | `[types, D]` |
//! | embedding norm | `{P}embeddings.LayerNorm.{weight,bias}` | same | `[D]` |
//! | query, key, value | `{L}.attention.self.{query,key,value}.{weight,bias}` | `{L}.attention.{q,k,v}_lin.*` | `[D, D]`, `[D]` |
//! | attention output | `{L}.attention.output.dense.*` | `{L}.attention.out_lin.*` | `[D, D]`, `[D]` |
//! | norm after attention | `{L}.attention.output.LayerNorm.*` | `{L}.sa_layer_norm.*` | `[D]` |
//! | MLP in | `{L}.intermediate.dense.*` | `{L}.ffn.lin1.*` | `[I, D]`, `[I]` |
//! | MLP out | `{L}.output.dense.*` | `{L}.ffn.lin2.*` | `[D, I]`, `[D]` |
//! | norm after the MLP | `{L}.output.LayerNorm.*` | `{L}.output_layer_norm.*` | `[D]` |
//!
//! Not read, and allowed in a checkpoint: the `position_ids` / `token_type_ids` buffers and
//! `{P}pooler.dense.*` (`BertModel`'s tanh pooler, which neither Chinese-CLIP nor mean
//! pooling uses).

use crate::checkpoint::KeyMap;
use crate::clip::keys::{LinearKeys, NormKeys, TensorSpec};
use crate::config::Activation;

use super::config::{BertConfig, BertFlavor};

/// The embedding block's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct BertEmbeddingKeys {
    /// `word_embeddings.weight`, `[vocab, D]`.
    pub word: TensorSpec,
    /// `position_embeddings.weight`, `[positions, D]`.
    pub position: TensorSpec,
    /// `token_type_embeddings.weight`, `[types, D]` (BERT only).
    pub token_type: Option<TensorSpec>,
    /// `LayerNorm`.
    pub layer_norm: NormKeys,
}

/// One post-LN encoder layer's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct BertLayerKeys {
    /// Query projection.
    pub query: LinearKeys,
    /// Key projection.
    pub key: LinearKeys,
    /// Value projection.
    pub value: LinearKeys,
    /// Attention output projection.
    pub attention_out: LinearKeys,
    /// Norm of `x + attention(x)`.
    pub attention_norm: NormKeys,
    /// MLP input layer (activation after it).
    pub intermediate: LinearKeys,
    /// MLP output layer.
    pub output: LinearKeys,
    /// Norm of `h + mlp(h)`.
    pub output_norm: NormKeys,
}

/// Every tensor of a BERT-family encoder with one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BertKeys {
    /// The key layout.
    pub flavor: BertFlavor,
    /// The prefix with its trailing dot (`"text_model."`), or empty.
    pub prefix: String,
    /// Embeddings.
    pub embeddings: BertEmbeddingKeys,
    /// The layers, in order.
    pub layers: Vec<BertLayerKeys>,
    /// Width.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub act: Activation,
}

impl BertKeys {
    /// The key map of an encoder with `config` in `flavor`'s layout under `prefix`
    /// (`"text_model"`, or `""` for none; a trailing dot is optional).
    pub fn new(config: &BertConfig, flavor: BertFlavor, prefix: &str) -> Self {
        let prefix = match prefix.trim_end_matches('.') {
            "" => String::new(),
            p => format!("{p}."),
        };
        let (d, inter, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let e = format!("{prefix}embeddings");
        let embeddings = BertEmbeddingKeys {
            word: TensorSpec::new(
                format!("{e}.word_embeddings.weight"),
                &[config.vocab_size, d],
            ),
            position: TensorSpec::new(
                format!("{e}.position_embeddings.weight"),
                &[config.max_position_embeddings, d],
            ),
            token_type: (flavor == BertFlavor::Bert).then(|| {
                TensorSpec::new(
                    format!("{e}.token_type_embeddings.weight"),
                    &[config.type_vocab_size, d],
                )
            }),
            layer_norm: NormKeys::new(&format!("{e}.LayerNorm"), d, eps),
        };
        let linear = |name: String, d_in, d_out| LinearKeys::new(&name, d_in, d_out, true);
        let norm = |name: String| NormKeys::new(&name, d, eps);
        let layers = (0..config.num_hidden_layers)
            .map(|i| match flavor {
                BertFlavor::Bert => {
                    let l = format!("{prefix}encoder.layer.{i}");
                    BertLayerKeys {
                        query: linear(format!("{l}.attention.self.query"), d, d),
                        key: linear(format!("{l}.attention.self.key"), d, d),
                        value: linear(format!("{l}.attention.self.value"), d, d),
                        attention_out: linear(format!("{l}.attention.output.dense"), d, d),
                        attention_norm: norm(format!("{l}.attention.output.LayerNorm")),
                        intermediate: linear(format!("{l}.intermediate.dense"), d, inter),
                        output: linear(format!("{l}.output.dense"), inter, d),
                        output_norm: norm(format!("{l}.output.LayerNorm")),
                    }
                }
                BertFlavor::DistilBert => {
                    let l = format!("{prefix}transformer.layer.{i}");
                    BertLayerKeys {
                        query: linear(format!("{l}.attention.q_lin"), d, d),
                        key: linear(format!("{l}.attention.k_lin"), d, d),
                        value: linear(format!("{l}.attention.v_lin"), d, d),
                        attention_out: linear(format!("{l}.attention.out_lin"), d, d),
                        attention_norm: norm(format!("{l}.sa_layer_norm")),
                        intermediate: linear(format!("{l}.ffn.lin1"), d, inter),
                        output: linear(format!("{l}.ffn.lin2"), inter, d),
                        output_norm: norm(format!("{l}.output_layer_norm")),
                    }
                }
            })
            .collect();
        Self {
            flavor,
            prefix,
            embeddings,
            layers,
            hidden: d,
            heads: config.num_attention_heads,
            act: config.hidden_act,
        }
    }

    /// Every tensor, in load order (embeddings, then each layer).
    pub fn specs(&self) -> Vec<&TensorSpec> {
        let mut out = Vec::new();
        let e = &self.embeddings;
        out.push(&e.word);
        out.push(&e.position);
        out.extend(e.token_type.as_ref());
        push_norm(&mut out, &e.layer_norm);
        for l in &self.layers {
            for linear in [&l.query, &l.key, &l.value, &l.attention_out] {
                push_linear(&mut out, linear);
            }
            push_norm(&mut out, &l.attention_norm);
            push_linear(&mut out, &l.intermediate);
            push_linear(&mut out, &l.output);
            push_norm(&mut out, &l.output_norm);
        }
        out
    }

    /// Whether `key` (under this prefix) may be present without being read: the
    /// `position_ids` / `token_type_ids` buffers and the pooler.
    pub fn may_skip(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        matches!(
            rest,
            "embeddings.position_ids" | "embeddings.token_type_ids"
        ) || rest.starts_with("pooler.")
    }
}

pub(crate) fn push_linear<'a>(out: &mut Vec<&'a TensorSpec>, l: &'a LinearKeys) {
    out.push(&l.weight);
    out.extend(l.bias.as_ref());
}

pub(crate) fn push_norm<'a>(out: &mut Vec<&'a TensorSpec>, n: &'a NormKeys) {
    out.push(&n.weight);
    out.push(&n.bias);
}

impl KeyMap for BertKeys {
    fn specs(&self) -> Vec<&TensorSpec> {
        BertKeys::specs(self)
    }

    fn may_skip(&self, key: &str) -> bool {
        BertKeys::may_skip(self, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_list_every_tensor_once() {
        let config = BertConfig::default();
        for (flavor, prefix, first_layer_key, count) in [
            (
                BertFlavor::Bert,
                "text_model",
                "text_model.encoder.layer.0.attention.self.query.weight",
                3 + 2 + 12 * 16,
            ),
            (
                BertFlavor::DistilBert,
                "",
                "transformer.layer.0.attention.q_lin.weight",
                2 + 2 + 12 * 16,
            ),
        ] {
            let keys = BertKeys::new(&config, flavor, prefix);
            let specs = keys.specs();
            let unique: std::collections::HashSet<&str> =
                specs.iter().map(|s| s.key.as_str()).collect();
            assert_eq!(unique.len(), specs.len());
            assert_eq!(specs.len(), count);
            assert!(unique.contains(first_layer_key), "{first_layer_key}");
        }
        let keys = BertKeys::new(&config, BertFlavor::Bert, "text_model.");
        assert_eq!(keys.prefix, "text_model.");
        assert!(keys.may_skip("text_model.pooler.dense.weight"));
        assert!(keys.may_skip("text_model.embeddings.position_ids"));
        assert!(!keys.may_skip("pooler.dense.weight"));
        assert!(!keys.may_skip("text_model.embeddings.word_embeddings.weight"));
    }
}
