//! The vision tower (`CLIPVisionTransformer`): patch embedding, class token, position
//! embeddings, pre-LN, encoder, post-LN on the class token.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::prelude::*;

use crate::clip::layers::{ClipLayers, ClipLayersConfig};
use crate::config::ClipVisionConfig;

impl ClipVisionConfig {
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

    /// A randomly initialised vision transformer (for tests; real weights come from the loader).
    pub fn init(&self, device: &Device) -> ClipVisionTransformer {
        let encoder = self.encoder_config();
        let patch_len = self.num_channels * self.patch_size * self.patch_size;
        let scale = (patch_len as f64).powf(-0.5);
        ClipVisionTransformer {
            embeddings: ClipVisionEmbeddings {
                patch_embedding: Param::from_tensor(Tensor::random(
                    [patch_len, self.hidden_size],
                    burn::tensor::Distribution::Uniform(-scale, scale),
                    device,
                )),
                class_embedding: Param::from_tensor(Tensor::random(
                    [self.hidden_size],
                    burn::tensor::Distribution::Normal(0.0, 1.0),
                    device,
                )),
                position_embedding: EmbeddingConfig::new(self.num_positions(), self.hidden_size)
                    .init(device),
                num_channels: self.num_channels,
                patch_size: self.patch_size,
                image_size: self.image_size,
            },
            pre_layrnorm: encoder.layer_norm(device),
            encoder: encoder.init(device),
            post_layernorm: encoder.layer_norm(device),
        }
    }
}

/// `CLIPVisionEmbeddings`: non-overlapping patches projected to the model width (the
/// checkpoint's stride-`patch` convolution, computed as one matmul over unfolded patches), the
/// class token in front, plus learned position embeddings.
///
/// Checkpoint keys: `vision_model.embeddings.patch_embedding.weight` `[hidden, channels, patch,
/// patch]` (no bias), `vision_model.embeddings.class_embedding` `[hidden]`,
/// `vision_model.embeddings.position_embedding.weight` `[patches + 1, hidden]`.
#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings {
    /// `[channels * patch * patch, hidden]`: the convolution kernel flattened in
    /// `(channel, y, x)` order and transposed.
    pub patch_embedding: Param<Tensor<2>>,
    /// `[hidden]`: the class token's embedding.
    pub class_embedding: Param<Tensor<1>>,
    /// `[patches + 1, hidden]`: row 0 for the class token, then patches in row-major order.
    pub position_embedding: Embedding,
    /// Input channels.
    pub num_channels: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Input side in pixels.
    pub image_size: usize,
}

impl ClipVisionEmbeddings {
    /// # Shapes
    /// - pixels: `[batch, channels, image, image]`
    /// - output: `[batch, 1 + patches, hidden]`, `patches = (image / patch)²`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        let [batch, channels, height, width] = pixels.dims();
        let p = self.patch_size;
        let (rows, cols) = (height / p, width / p);
        let patch_len = channels * p * p;
        let weight = self.patch_embedding.val(); // [patch_len, hidden]
        let [_, hidden] = weight.dims();
        let patches = pixels
            .reshape([batch, channels, rows, p, cols, p])
            .permute([0, 2, 4, 1, 3, 5]) // [batch, rows, cols, channels, p, p]
            .reshape([batch * rows * cols, patch_len]);
        let patches = patches.matmul(weight).reshape([batch, rows * cols, hidden]); // [batch, patches, hidden]
        let class = self
            .class_embedding
            .val()
            .reshape([1, 1, hidden])
            .repeat_dim(0, batch); // [batch, 1, hidden]
        let x = Tensor::cat(vec![class, patches], 1); // [batch, 1 + patches, hidden]
        x + self.position_embedding.weight.val().unsqueeze::<3>() // [batch, 1 + patches, hidden]
    }
}

/// `CLIPVisionTransformer` (`vision_model.*` in the checkpoint).
#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    /// Patch, class and position embeddings.
    pub embeddings: ClipVisionEmbeddings,
    /// Layer norm before the encoder (`pre_layrnorm`, sic, in the checkpoint).
    pub pre_layrnorm: LayerNorm,
    /// The encoder stack (bidirectional attention).
    pub encoder: ClipLayers,
    /// Layer norm applied to the class token's final state.
    pub post_layernorm: LayerNorm,
}

impl ClipVisionTransformer {
    /// Returns the post-layer-normed final state of the class token.
    ///
    /// # Shapes
    /// - pixels: `[batch, channels, image, image]`
    /// - output: `[batch, hidden]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let x = self.embeddings.forward(pixels); // [batch, tokens, hidden]
        let x = self.pre_layrnorm.forward(x);
        let x = self.encoder.forward(x, false); // [batch, tokens, hidden]
        let [batch, _, hidden] = x.dims();
        let class = x.narrow(1, 0, 1).reshape([batch, hidden]); // [batch, hidden]
        self.post_layernorm.forward(class) // [batch, hidden]
    }
}
