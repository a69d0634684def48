//! The text tower (`CLIPTextTransformer`): token and position embeddings, a causal encoder, the
//! final layer norm and pooling at the end-of-text token.
//!
//! # Sequence length
//! The tower is causal: the hidden state at position `i` depends only on tokens `0..=i`. The
//! pooled state sits at the end-of-text token, so whatever follows it (padding) cannot change
//! it. A batch is therefore run only as long as its longest sequence, never padded to the
//! 77-token context: a 10-token query costs about a seventh of a full-context pass, with the
//! same result.

use burn::nn::{Embedding, LayerNorm};
use burn::prelude::*;
pub use glimpse_kernels::pooled_position;

use crate::clip::layers::{ClipLayers, ClipLayersConfig};
use crate::config::ClipTextConfig;

impl ClipTextConfig {
    /// The encoder-stack sizes of this tower.
    pub fn encoder_config(&self) -> ClipLayersConfig {
        ClipLayersConfig::new(
            self.hidden_size,
            self.intermediate_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.hidden_act,
            self.layer_norm_eps,
        )
    }

    /// A randomly initialised text transformer (for tests; real weights come from the loader).
    pub fn init(&self, device: &Device) -> ClipTextTransformer {
        let encoder = self.encoder_config();
        let embedding = |rows| burn::nn::EmbeddingConfig::new(rows, self.hidden_size).init(device);
        ClipTextTransformer {
            embeddings: ClipTextEmbeddings {
                token_embedding: embedding(self.vocab_size),
                position_embedding: embedding(self.max_position_embeddings),
            },
            encoder: encoder.init(device),
            final_layer_norm: encoder.layer_norm(device),
            eos_token_id: self.eos_token_id,
        }
    }

    /// The position of the pooled (end-of-text) token in each unpadded sequence, exactly as
    /// `transformers`' `CLIPTextTransformer` picks it:
    ///
    /// - `eos_token_id == 2` (the legacy value in OpenAI's configs): the position of the largest
    ///   id, first occurrence (`input_ids.argmax(-1)`; the end-of-text token has CLIP's largest
    ///   id);
    /// - otherwise the first position holding `eos_token_id`, or 0 if there is none
    ///   (`(input_ids == eos_token_id).int().argmax(-1)`).
    pub fn pooled_position(&self, ids: &[u32]) -> usize {
        pooled_position(ids, self.eos_token_id)
    }
}

/// `CLIPTextEmbeddings`: token embedding plus learned absolute position embedding.
///
/// Checkpoint keys: `text_model.embeddings.token_embedding.weight` `[vocab, hidden]`,
/// `text_model.embeddings.position_embedding.weight` `[context, hidden]`.
#[derive(Module, Debug)]
pub struct ClipTextEmbeddings {
    /// `[vocab, hidden]`.
    pub token_embedding: Embedding,
    /// `[context, hidden]`; row `i` is added at position `i`.
    pub position_embedding: Embedding,
}

impl ClipTextEmbeddings {
    /// # Shapes
    /// - ids: `[batch, seq]` with `seq <= context`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = ids.dims();
        let tokens = self.token_embedding.forward(ids); // [batch, seq, hidden]
        let positions = self.position_embedding.weight.val().narrow(0, 0, seq); // [seq, hidden]
        tokens + positions.unsqueeze::<3>() // [batch, seq, hidden]
    }
}

/// `CLIPTextTransformer` (`text_model.*` in the checkpoint).
#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    /// Token and position embeddings.
    pub embeddings: ClipTextEmbeddings,
    /// The causal encoder stack.
    pub encoder: ClipLayers,
    /// Layer norm after the last layer.
    pub final_layer_norm: LayerNorm,
    /// End-of-text token id (selects the pooling rule, see
    /// [`ClipTextConfig::pooled_position`]).
    #[module(skip)]
    pub eos_token_id: u32,
}

impl ClipTextTransformer {
    /// The context length (number of position embeddings).
    pub fn context_length(&self) -> usize {
        self.embeddings.position_embedding.weight.dims()[0]
    }

    /// Runs the tower over `ids` and returns the final-layer-normed hidden state at each
    /// sequence's pooled position (`pooled[b]` for row `b`; see
    /// [`ClipTextConfig::pooled_position`]). Tokens after a row's pooled position, such as
    /// padding, do not affect its output.
    ///
    /// # Shapes
    /// - ids: `[batch, seq]` with `seq <= context`
    /// - pooled: `batch` positions, each `< seq`
    /// - output: `[batch, hidden]`
    pub fn forward(&self, ids: Tensor<2, Int>, pooled: &[usize]) -> Tensor<2> {
        let [batch, seq] = ids.dims();
        let device = ids.device();
        let x = self.embeddings.forward(ids); // [batch, seq, hidden]
        let x = self.encoder.forward(x, true); // [batch, seq, hidden]
        let [_, _, hidden] = x.dims();
        let rows: Vec<i64> = pooled
            .iter()
            .enumerate()
            .map(|(b, &p)| (b * seq + p) as i64)
            .collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &device);
        let x = x.reshape([batch * seq, hidden]).select(0, rows); // [batch, hidden]
                                                                  // Layer norm is per token, so normalising only the pooled rows is the same as
                                                                  // normalising everything and then pooling.
        self.final_layer_norm.forward(x) // [batch, hidden]
    }
}
