//! The pre-LN transformer stack shared by both towers (`CLIPEncoder`).

use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::clip::attention::ClipAttention;
use crate::clip::mlp::ClipMlp;
use crate::config::Activation;

/// Sizes of one tower's transformer stack.
#[derive(Config, Debug)]
pub struct ClipLayersConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// Layer norm epsilon.
    pub layer_norm_eps: f64,
}

impl ClipLayersConfig {
    /// A layer norm of the stack's width and epsilon (ones and zeros).
    pub fn layer_norm(&self, device: &Device) -> LayerNorm {
        LayerNormConfig::new(self.hidden_size)
            .with_epsilon(self.layer_norm_eps)
            .init(device)
    }

    /// A randomly initialised stack (for tests; real weights come from the loader).
    pub fn init(&self, device: &Device) -> ClipLayers {
        let layers = (0..self.num_hidden_layers)
            .map(|_| ClipEncoderLayer {
                layer_norm1: self.layer_norm(device),
                self_attn: ClipAttention::init(self.hidden_size, self.num_attention_heads, device),
                layer_norm2: self.layer_norm(device),
                mlp: ClipMlp::init(
                    self.hidden_size,
                    self.intermediate_size,
                    self.hidden_act,
                    device,
                ),
            })
            .collect();
        ClipLayers { layers }
    }
}

/// `CLIPEncoderLayer`: `x += attn(ln1(x)); x += mlp(ln2(x))`.
///
/// Checkpoint keys under `{tower}.encoder.layers.{i}`: `layer_norm1`, `self_attn`, `layer_norm2`,
/// `mlp`.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    /// Norm before attention.
    pub layer_norm1: LayerNorm,
    /// Self-attention.
    pub self_attn: ClipAttention,
    /// Norm before the MLP.
    pub layer_norm2: LayerNorm,
    /// Feed-forward block.
    pub mlp: ClipMlp,
}

impl ClipEncoderLayer {
    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let h = self
            .self_attn
            .forward(self.layer_norm1.forward(x.clone()), causal);
        let x = x + h; // [batch, seq, hidden]
        let h = self.mlp.forward(self.layer_norm2.forward(x.clone()));
        x + h // [batch, seq, hidden]
    }
}

/// `CLIPEncoder`: the layers in order.
#[derive(Module, Debug)]
pub struct ClipLayers {
    /// The layers, `{tower}.encoder.layers.0` first.
    pub layers: Vec<ClipEncoderLayer>,
}

impl ClipLayers {
    /// Runs every layer (causal attention for the text tower).
    ///
    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        self.layers
            .iter()
            .fold(x, |x, layer| layer.forward(x, causal))
    }
}
