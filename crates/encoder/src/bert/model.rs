//! The BERT-family encoder as burn modules: embeddings (word + token type + position, then a
//! layer norm) and post-LayerNorm layers (`x = LN(x + attn(x)); x = LN(x + mlp(x))`), with
//! padded tokens masked out of attention. Backend-free like every burn 0.22 module: the
//! device (flex, wgpu, or an autodiff device for training) carries the backend.

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::config::{BertConfig, BertFlavor};
use crate::clip::mlp::activate;
use crate::config::Activation;
use crate::error::{Error, Result};

/// `BertEmbeddings` / DistilBERT's `Embeddings`: `LN(word[id] + type[t] + position[i])`.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `word_embeddings`, `[vocab, hidden]`.
    pub word_embeddings: Embedding,
    /// `position_embeddings`, `[positions, hidden]`.
    pub position_embeddings: Embedding,
    /// `token_type_embeddings`, `[types, hidden]`; `None` for DistilBERT.
    pub token_type_embeddings: Option<Embedding>,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
}

impl BertEmbeddings {
    /// # Shapes
    /// - ids, token_type_ids: `[batch, seq]` (`seq <= positions`)
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [batch, seq] = ids.dims();
        let words = self.word_embeddings.forward(ids.clone()); // [batch, seq, hidden]
        let x = match &self.token_type_embeddings {
            Some(table) => {
                // Absent token types are all 0, as `transformers`' zero buffer.
                let types =
                    token_type_ids.unwrap_or_else(|| Tensor::zeros([batch, seq], &ids.device()));
                words + table.forward(types)
            }
            None => words,
        };
        let positions = self.position_embeddings.weight.val().narrow(0, 0, seq); // [seq, hidden]
        self.layer_norm.forward(x + positions.unsqueeze::<3>()) // [batch, seq, hidden]
    }
}

/// One post-LN layer (`BertLayer` / `TransformerBlock`).
#[derive(Module, Debug)]
pub struct BertLayer {
    /// `attention.self.query` / `attention.q_lin`.
    pub query: Linear,
    /// `attention.self.key` / `attention.k_lin`.
    pub key: Linear,
    /// `attention.self.value` / `attention.v_lin`.
    pub value: Linear,
    /// `attention.output.dense` / `attention.out_lin`.
    pub attention_out: Linear,
    /// `attention.output.LayerNorm` / `sa_layer_norm`.
    pub attention_norm: LayerNorm,
    /// `intermediate.dense` / `ffn.lin1`.
    pub intermediate: Linear,
    /// `output.dense` / `ffn.lin2`.
    pub output: Linear,
    /// `output.LayerNorm` / `output_layer_norm`.
    pub output_norm: LayerNorm,
    /// Attention heads.
    pub num_heads: usize,
    /// MLP activation.
    #[module(skip)]
    pub activation: Activation,
}

impl BertLayer {
    /// `mask` is `true` at the (query, key) pairs to leave out: padded keys.
    ///
    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - mask: `[batch, heads, seq, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let heads = self.num_heads;
        let head_dim = hidden / heads;
        let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone())); // [batch, heads, seq, head_dim]
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let options = AttentionModuleOptions {
            scale: Some((head_dim as f64).powf(-0.5)),
            ..Default::default()
        };
        let context = attention(q, k, v, Some(mask), None, options); // [batch, heads, seq, head_dim]
        let context = context.swap_dims(1, 2).reshape([batch, seq, hidden]);
        let x = self
            .attention_norm
            .forward(x + self.attention_out.forward(context)); // [batch, seq, hidden]
        let h = activate(self.activation, self.intermediate.forward(x.clone())); // [batch, seq, inter]
        self.output_norm.forward(x + self.output.forward(h)) // [batch, seq, hidden]
    }
}

/// A BERT-family encoder (`BertModel` without its pooler, or `DistilBertModel`): token ids in,
/// the last hidden states out. Poolings (`[CLS]` for Chinese-CLIP, the mean for
/// sentence-transformers) are the caller's.
#[derive(Module, Debug)]
pub struct BertModel {
    /// The embedding block.
    pub embeddings: BertEmbeddings,
    /// The layers, layer 0 first.
    pub layers: Vec<BertLayer>,
}

impl BertModel {
    /// A randomly initialised encoder (burn's default initialisers; for training from
    /// scratch and tests; real weights come from [`crate::checkpoint::Checkpoint::load_bert`]).
    /// DistilBERT has no token-type table.
    pub fn init(config: &BertConfig, flavor: BertFlavor, device: &Device) -> Self {
        let d = config.hidden_size;
        let norm = || {
            LayerNormConfig::new(d)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let embeddings = BertEmbeddings {
            word_embeddings: EmbeddingConfig::new(config.vocab_size, d).init(device),
            position_embeddings: EmbeddingConfig::new(config.max_position_embeddings, d)
                .init(device),
            token_type_embeddings: (flavor == BertFlavor::Bert)
                .then(|| EmbeddingConfig::new(config.type_vocab_size.max(1), d).init(device)),
            layer_norm: norm(),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| BertLayer {
                query: linear(d, d),
                key: linear(d, d),
                value: linear(d, d),
                attention_out: linear(d, d),
                attention_norm: norm(),
                intermediate: linear(d, config.intermediate_size),
                output: linear(config.intermediate_size, d),
                output_norm: norm(),
                num_heads: config.num_attention_heads,
                activation: config.hidden_act,
            })
            .collect();
        Self { embeddings, layers }
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.embeddings.word_embeddings.weight.dims()[0]
    }

    /// Longest sequence (rows of the position table).
    pub fn max_positions(&self) -> usize {
        self.embeddings.position_embeddings.weight.dims()[0]
    }

    /// The last hidden states, as `BertModel(...).last_hidden_state`.
    ///
    /// `attention_mask` is 1 for real tokens and 0 for padding (as the tokenizer returns it):
    /// no position attends to a padded one. `token_type_ids` default to 0 (ignored by
    /// DistilBERT, which has none).
    ///
    /// # Shapes
    /// - ids, attention_mask, token_type_ids: `[batch, seq]`, `seq <= max_positions`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [batch, seq] = ids.dims();
        let heads = self.layers.first().map_or(1, |l| l.num_heads);
        let mask = attention_mask
            .equal_elem(0)
            .reshape([batch, 1, 1, seq])
            .expand([batch, heads, seq, seq]); // [batch, heads, seq, seq]
        let x = self.embeddings.forward(ids, token_type_ids); // [batch, seq, hidden]
        self.layers
            .iter()
            .fold(x, |x, layer| layer.forward(x, mask.clone()))
    }

    /// Runs unpadded id sequences as one right-padded batch (pad id `pad_id`, masked) and
    /// returns the hidden states `[batch, longest, hidden]`; `token_types`, if given, has one
    /// sequence per id sequence of the same lengths.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty batch, an empty or over-long sequence, an id
    /// outside the vocabulary, or token types that do not match the ids.
    pub fn forward_ids<S: AsRef<[u32]>>(
        &self,
        ids: &[S],
        token_types: Option<&[S]>,
        pad_id: u32,
    ) -> Result<Tensor<3>> {
        let device = self.embeddings.word_embeddings.weight.device();
        let (vocab, positions) = (self.vocab_size(), self.max_positions());
        if ids.is_empty() {
            return Err(Error::InvalidInput("no token sequences".into()));
        }
        for (i, row) in ids.iter().enumerate() {
            check_ids(row.as_ref(), i, vocab, positions)?;
        }
        if let Some(types) = token_types {
            let same = types.len() == ids.len()
                && types
                    .iter()
                    .zip(ids)
                    .all(|(t, i)| t.as_ref().len() == i.as_ref().len());
            if !same {
                return Err(Error::InvalidInput(
                    "token type ids do not match the token ids' lengths".into(),
                ));
            }
        }
        let seq = ids.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
        let pad = |rows: &[S], fill: u32| -> Tensor<2, Int> {
            let mut flat = Vec::with_capacity(rows.len() * seq);
            for row in rows {
                let row = row.as_ref();
                flat.extend(row.iter().map(|&id| i64::from(id)));
                flat.extend(std::iter::repeat_n(i64::from(fill), seq - row.len()));
            }
            Tensor::from_data(TensorData::new(flat, [rows.len(), seq]), &device)
        };
        let mut mask = Vec::with_capacity(ids.len() * seq);
        for row in ids {
            let n = row.as_ref().len();
            mask.extend((0..seq).map(|i| i64::from(i < n)));
        }
        let mask = Tensor::from_data(TensorData::new(mask, [ids.len(), seq]), &device);
        Ok(self.forward(pad(ids, pad_id), mask, token_types.map(|t| pad(t, 0))))
    }
}

/// Checks one id sequence (number `index` of a batch): `1..=positions` ids inside the
/// vocabulary.
///
/// # Errors
/// [`Error::InvalidInput`] saying what is wrong.
pub fn check_ids(ids: &[u32], index: usize, vocab: usize, positions: usize) -> Result<()> {
    if ids.is_empty() || ids.len() > positions {
        return Err(Error::InvalidInput(format!(
            "token sequence {index} has {} ids; the model takes 1..={positions}",
            ids.len()
        )));
    }
    if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::InvalidInput(format!(
            "token sequence {index} has id {id}, outside the vocabulary of {vocab}"
        )));
    }
    Ok(())
}
