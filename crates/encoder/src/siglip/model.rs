//! SigLIP's towers as burn modules (`SiglipTextTransformer`, `SiglipVisionTransformer` with its
//! `SiglipMultiheadAttentionPoolingHead`), reusing CLIP's encoder layers, which are the same
//! (`SiglipEncoderLayer` = `CLIPEncoderLayer`: pre-LN, biased q/k/v/out, fc1 → act → fc2).

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::clip::layers::ClipLayers;
use crate::clip::mlp::ClipMlp;
use crate::clip::model::l2_normalize;
use crate::clip::text::ClipTextEmbeddings;
use crate::error::{Error, Result};

/// `SiglipTextModel` (`text_model.*`): embeddings, a bidirectional stack, the final layer norm,
/// the last position, `head`.
#[derive(Module, Debug)]
pub struct SiglipTextTower {
    /// Token and position embeddings (same module as CLIP's).
    pub embeddings: ClipTextEmbeddings,
    /// The encoder stack, run without a mask (SigLIP's text attention is not causal).
    pub encoder: ClipLayers,
    /// `final_layer_norm`.
    pub final_layer_norm: LayerNorm,
    /// `head`: `[hidden, projection]`, with bias.
    pub head: Linear,
}

impl SiglipTextTower {
    /// The context length: every sequence is padded to it.
    pub fn context_length(&self) -> usize {
        self.embeddings.position_embedding.weight.dims()[0]
    }

    /// The vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.embeddings.token_embedding.weight.dims()[0]
    }

    /// Unnormalised text features (`SiglipModel.get_text_features`).
    ///
    /// # Shapes
    /// - ids: `[batch, context]`, already padded
    /// - output: `[batch, projection]`
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let [batch, seq] = ids.dims();
        let x = self.embeddings.forward(ids); // [batch, seq, hidden]
        let x = self.encoder.forward(x, false); // [batch, seq, hidden]
        let [_, _, hidden] = x.dims();
        let last = x.narrow(1, seq - 1, 1).reshape([batch, hidden]); // [batch, hidden]
                                                                     // Layer norm is per token: normalising only the last one is the same.
        let last = self.final_layer_norm.forward(last);
        self.head.forward(last) // [batch, projection]
    }
}

/// `SiglipMultiheadAttentionPoolingHead`: the learned `probe` attends over every token
/// (`nn.MultiheadAttention`, whose packed `in_proj` is split into three linears here), then
/// `r + mlp(layernorm(r))`.
#[derive(Module, Debug)]
pub struct SiglipMapHead {
    /// `probe`, `[hidden]`.
    pub probe: Param<Tensor<1>>,
    /// Rows `0..D` of `in_proj`.
    pub q_proj: Linear,
    /// Rows `D..2D` of `in_proj`.
    pub k_proj: Linear,
    /// Rows `2D..3D` of `in_proj`.
    pub v_proj: Linear,
    /// `attention.out_proj`.
    pub out_proj: Linear,
    /// `layernorm`.
    pub layernorm: LayerNorm,
    /// `mlp`.
    pub mlp: ClipMlp,
    /// Attention heads.
    #[module(skip)]
    pub num_heads: usize,
}

impl SiglipMapHead {
    /// # Shapes
    /// - x: `[batch, tokens, hidden]`
    /// - output: `[batch, hidden]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [batch, tokens, hidden] = x.dims();
        let heads = self.num_heads;
        let head_dim = hidden / heads;
        let probe = self.probe.val().reshape([1, hidden]);
        let q = self
            .q_proj
            .forward(probe) // [1, hidden]
            .reshape([1, heads, 1, head_dim])
            .repeat_dim(0, batch); // [batch, heads, 1, head_dim]
        let split = |t: Tensor<3>| t.reshape([batch, tokens, heads, head_dim]).swap_dims(1, 2);
        let k = split(self.k_proj.forward(x.clone())); // [batch, heads, tokens, head_dim]
        let v = split(self.v_proj.forward(x)); // [batch, heads, tokens, head_dim]
        let options = AttentionModuleOptions {
            scale: Some((head_dim as f64).powf(-0.5)),
            is_causal: false,
            ..Default::default()
        };
        let context = attention(q, k, v, None, None, options); // [batch, heads, 1, head_dim]
        let context = context.reshape([batch, hidden]);
        let r = self.out_proj.forward(context); // [batch, hidden]
        let h = self
            .mlp
            .forward(self.layernorm.forward(r.clone()).unsqueeze_dim(1));
        r + h.reshape([batch, hidden]) // [batch, hidden]
    }
}

/// `SiglipVisionModel` (`vision_model.*`): patch convolution with bias, positions (no class
/// token, no pre-norm), the stack, `post_layernorm` on every token, the pooling head.
#[derive(Module, Debug)]
pub struct SiglipVisionTower {
    /// `[channels · patch · patch, hidden]`: the convolution kernel flattened in
    /// `(channel, y, x)` order and transposed.
    pub patch_embedding: Param<Tensor<2>>,
    /// The convolution's bias, `[hidden]`.
    pub patch_bias: Param<Tensor<1>>,
    /// `[patches, hidden]`, patches in row-major order.
    pub position_embedding: Embedding,
    /// The encoder stack.
    pub encoder: ClipLayers,
    /// `post_layernorm`.
    pub post_layernorm: LayerNorm,
    /// `head`.
    pub head: SiglipMapHead,
    /// Input channels.
    #[module(skip)]
    pub num_channels: usize,
    /// Patch side in pixels.
    #[module(skip)]
    pub patch_size: usize,
    /// Input side in pixels.
    #[module(skip)]
    pub image_size: usize,
}

impl SiglipVisionTower {
    /// Unnormalised image features (`SiglipModel.get_image_features`).
    ///
    /// # Shapes
    /// - pixels: `[batch, channels, image, image]`
    /// - output: `[batch, hidden]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let [batch, channels, height, width] = pixels.dims();
        let p = self.patch_size;
        let (rows, cols) = (height / p, width / p);
        // A stride-p convolution drops the pixels no patch covers (So400m/14 at 384).
        let pixels = pixels.narrow(2, 0, rows * p).narrow(3, 0, cols * p);
        let weight = self.patch_embedding.val(); // [patch_len, hidden]
        let [patch_len, hidden] = weight.dims();
        let patches = pixels
            .reshape([batch, channels, rows, p, cols, p])
            .permute([0, 2, 4, 1, 3, 5]) // [batch, rows, cols, channels, p, p]
            .reshape([batch * rows * cols, patch_len]);
        let x = patches.matmul(weight) + self.patch_bias.val().unsqueeze::<2>(); // [batch·patches, hidden]
        let x = x.reshape([batch, rows * cols, hidden])
            + self.position_embedding.weight.val().unsqueeze::<3>(); // [batch, patches, hidden]
        let x = self.encoder.forward(x, false);
        let x = self.post_layernorm.forward(x);
        self.head.forward(x) // [batch, hidden]
    }
}

/// SigLIP: a text tower and a vision tower embedding into one space, with the learned
/// calibration of their cosine (`sigmoid(exp(logit_scale)·cos + logit_bias)`).
#[derive(Module, Debug)]
pub struct SiglipModel {
    /// The text tower, if loaded.
    pub text: Option<SiglipTextTower>,
    /// The vision tower, if loaded.
    pub vision: Option<SiglipVisionTower>,
    /// `logit_scale` as stored (the log of the multiplier).
    #[module(skip)]
    pub logit_scale: f32,
    /// `logit_bias`.
    #[module(skip)]
    pub logit_bias: f32,
}

impl SiglipModel {
    /// The text tower, or [`Error::TowerNotLoaded`].
    pub fn text_tower(&self) -> Result<&SiglipTextTower> {
        self.text
            .as_ref()
            .ok_or(Error::TowerNotLoaded { tower: "text" })
    }

    /// The vision tower, or [`Error::TowerNotLoaded`].
    pub fn vision_tower(&self) -> Result<&SiglipVisionTower> {
        self.vision
            .as_ref()
            .ok_or(Error::TowerNotLoaded { tower: "vision" })
    }

    /// L2-normalised image embeddings.
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] for pixels of the wrong shape.
    pub fn encode_images(&self, pixels: Tensor<4>) -> Result<Tensor<2>> {
        let tower = self.vision_tower()?;
        let [batch, channels, height, width] = pixels.dims();
        let s = tower.image_size;
        if batch == 0 || channels != tower.num_channels || height != s || width != s {
            return Err(Error::InvalidInput(format!(
                "pixels have shape {:?}, the model takes [batch >= 1, {}, {s}, {s}]",
                pixels.dims(),
                tower.num_channels
            )));
        }
        Ok(l2_normalize(tower.forward(pixels)))
    }

    /// L2-normalised text embeddings. Each sequence is padded to the context with `pad_id`
    /// (as `SiglipProcessor` pads, `padding="max_length"`): the tower attends to the padding,
    /// so the pad id matters.
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] for an empty batch, an empty or
    /// over-long sequence, or an id (the pad id included) outside the vocabulary.
    pub fn encode_texts<S: AsRef<[u32]>>(&self, ids: &[S], pad_id: u32) -> Result<Tensor<2>> {
        let tower = self.text_tower()?;
        let device = tower.head.weight.device();
        let (context, vocab) = (tower.context_length(), tower.vocab_size());
        if ids.is_empty() {
            return Err(Error::InvalidInput("no token sequences".into()));
        }
        if pad_id as usize >= vocab {
            return Err(Error::InvalidInput(format!(
                "pad id {pad_id} is outside the vocabulary of {vocab}"
            )));
        }
        let mut flat = Vec::with_capacity(ids.len() * context);
        for (i, row) in ids.iter().enumerate() {
            let row = row.as_ref();
            if row.is_empty() || row.len() > context {
                return Err(Error::InvalidInput(format!(
                    "token sequence {i} has {} ids; the model takes 1..={context}",
                    row.len()
                )));
            }
            if let Some(&id) = row.iter().find(|&&id| id as usize >= vocab) {
                return Err(Error::InvalidInput(format!(
                    "token sequence {i} has id {id}, outside the vocabulary of {vocab}"
                )));
            }
            flat.extend(row.iter().map(|&id| i64::from(id)));
            flat.extend(std::iter::repeat_n(i64::from(pad_id), context - row.len()));
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [ids.len(), context]), &device);
        Ok(l2_normalize(tower.forward(ids)))
    }
}
