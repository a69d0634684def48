//! Multi-head self-attention (`CLIPAttention`), optionally causal.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

/// `CLIPAttention`: query/key/value projections, scaled dot-product attention over
/// `num_heads` heads with scale `head_dim^-0.5`, and the output projection.
///
/// Checkpoint keys: `{layer}.self_attn.{q,k,v,out}_proj.{weight,bias}`.
#[derive(Module, Debug)]
pub struct ClipAttention {
    /// Query projection, `[hidden, hidden]`.
    pub q_proj: Linear,
    /// Key projection, `[hidden, hidden]`.
    pub k_proj: Linear,
    /// Value projection, `[hidden, hidden]`.
    pub v_proj: Linear,
    /// Output projection, `[hidden, hidden]`.
    pub out_proj: Linear,
    /// Number of heads (`hidden` is a multiple of it).
    pub num_heads: usize,
}

impl ClipAttention {
    /// A randomly initialised block (for tests; real weights come from the loader).
    pub fn init(hidden: usize, num_heads: usize, device: &Device) -> Self {
        let linear = || LinearConfig::new(hidden, hidden).init(device);
        Self {
            q_proj: linear(),
            k_proj: linear(),
            v_proj: linear(),
            out_proj: linear(),
            num_heads,
        }
    }

    /// Self-attention over the sequence. With `causal`, position `i` attends only to positions
    /// `0..=i` (the text tower), so outputs at `i` never depend on tokens after `i`.
    ///
    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let heads = self.num_heads;
        let head_dim = hidden / heads;
        let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone())); // [batch, heads, seq, head_dim]
        let k = split(self.k_proj.forward(x.clone())); // [batch, heads, seq, head_dim]
        let v = split(self.v_proj.forward(x)); // [batch, heads, seq, head_dim]
        let options = AttentionModuleOptions {
            scale: Some((head_dim as f64).powf(-0.5)),
            is_causal: causal,
            ..Default::default()
        };
        let context = attention(q, k, v, None, None, options); // [batch, heads, seq, head_dim]
        let context = context.swap_dims(1, 2).reshape([batch, seq, hidden]);
        self.out_proj.forward(context) // [batch, seq, hidden]
    }
}
