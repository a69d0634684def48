//! CLIP's checkpoint key map: every tensor of a Hugging Face `CLIPModel` state dict, with its
//! shape and role, in one place.
//!
//! Three readers and writers walk this one tree, so a key, a shape or a layout is written
//! once: the burn loader ([`super::load`]: checkpoint → modules), the native packer
//! ([`super::pack`]: checkpoint → packed kernels) and the state-dict writer
//! ([`super::state_dict`](mod@super::state_dict): modules → checkpoint, used by training and tests).
//! [`crate::checkpoint::Checkpoint::validate`] checks a checkpoint against it before anything
//! is read: a missing tensor, a wrong shape, an unsupported dtype or a key nothing consumes is
//! reported there, the same way for every reader.
//!
//! # Keys, shapes and layouts
//! `{T}` = `text_model`, `{V}` = `vision_model`, `{L}` = `{T|V}.encoder.layers.{i}`,
//! `i` in `0..num_hidden_layers`. Linear weights are stored as PyTorch's `nn.Linear` does,
//! `[out, in]` ([`LinearKeys`]); the burn modules hold them transposed, `[in, out]`.
//!
//! | checkpoint key | shape | role |
//! |---|---|---|
//! | `{T}.embeddings.token_embedding.weight` | `[vocab, Dt]` | token embedding |
//! | `{T}.embeddings.position_embedding.weight` | `[context, Dt]` | position embedding |
//! | `{T\|V}.embeddings.position_ids` | `[1, n]` | buffer `arange(n)`: ignored |
//! | `{L}.layer_norm1.{weight,bias}` | `[D]` | norm before attention |
//! | `{L}.self_attn.{q,k,v,out}_proj.{weight,bias}` | `[D, D]`, `[D]` | attention (linear) |
//! | `{L}.layer_norm2.{weight,bias}` | `[D]` | norm before the MLP |
//! | `{L}.mlp.fc1.{weight,bias}` | `[I, D]`, `[I]` | MLP in (linear) |
//! | `{L}.mlp.fc2.{weight,bias}` | `[D, I]`, `[D]` | MLP out (linear) |
//! | `{T}.final_layer_norm.{weight,bias}` | `[Dt]` | norm of the text output |
//! | `text_projection.weight` | `[P, Dt]` | text projection (linear, no bias) |
//! | `{V}.embeddings.patch_embedding.weight` | `[Dv, C, p, p]` | patch convolution = linear `[Dv, C·p·p]`, no bias |
//! | `{V}.embeddings.class_embedding` | `[Dv]` | class token |
//! | `{V}.embeddings.position_embedding.weight` | `[N+1, Dv]` | position embedding |
//! | `{V}.pre_layrnorm.{weight,bias}` | `[Dv]` | norm before the stack (HF's spelling) |
//! | `{V}.post_layernorm.{weight,bias}` | `[Dv]` | norm of the class token |
//! | `visual_projection.weight` | `[P, Dv]` | image projection (linear, no bias) |
//! | `logit_scale` | `[]` | temperature (log) |
//!
//! Keys of a tower that is not loaded are skipped without being read.

use crate::clip::model::Towers;
use crate::config::{Activation, ClipConfig, ClipTextConfig, ClipVisionConfig};

/// One tensor: its checkpoint key and exact shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The state-dict key.
    pub key: String,
    /// The shape the configuration implies.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub(crate) fn new(key: impl Into<String>, shape: &[usize]) -> Self {
        Self {
            key: key.into(),
            shape: shape.to_vec(),
        }
    }
}

/// A PyTorch `nn.Linear`: `weight` `[d_out, d_in]`, optional `bias` `[d_out]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearKeys {
    /// `{prefix}.weight`, `[d_out, d_in]`.
    pub weight: TensorSpec,
    /// `{prefix}.bias`, `[d_out]`, if the layer has one.
    pub bias: Option<TensorSpec>,
    /// Input width.
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
}

impl LinearKeys {
    pub(crate) fn new(prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Self {
        Self {
            weight: TensorSpec::new(format!("{prefix}.weight"), &[d_out, d_in]),
            bias: bias.then(|| TensorSpec::new(format!("{prefix}.bias"), &[d_out])),
            d_in,
            d_out,
        }
    }
}

/// A layer norm: `weight` (γ) and `bias` (β), both `[d]`, and its epsilon (from the config).
#[derive(Debug, Clone, PartialEq)]
pub struct NormKeys {
    /// `{prefix}.weight`.
    pub weight: TensorSpec,
    /// `{prefix}.bias`.
    pub bias: TensorSpec,
    /// Epsilon.
    pub eps: f64,
}

impl NormKeys {
    pub(crate) fn new(prefix: &str, d: usize, eps: f64) -> Self {
        Self {
            weight: TensorSpec::new(format!("{prefix}.weight"), &[d]),
            bias: TensorSpec::new(format!("{prefix}.bias"), &[d]),
            eps,
        }
    }
}

/// One encoder layer (`{tower}.encoder.layers.{i}`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerKeys {
    /// `layer_norm1`.
    pub layer_norm1: NormKeys,
    /// `self_attn.q_proj`.
    pub q_proj: LinearKeys,
    /// `self_attn.k_proj`.
    pub k_proj: LinearKeys,
    /// `self_attn.v_proj`.
    pub v_proj: LinearKeys,
    /// `self_attn.out_proj`.
    pub out_proj: LinearKeys,
    /// `layer_norm2`.
    pub layer_norm2: NormKeys,
    /// `mlp.fc1`.
    pub fc1: LinearKeys,
    /// `mlp.fc2`.
    pub fc2: LinearKeys,
}

/// A tower's transformer stack: its layers and sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct StackKeys {
    /// The layers, in order.
    pub layers: Vec<LayerKeys>,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation (`hidden_act`).
    pub act: Activation,
}

impl StackKeys {
    pub(crate) fn new(tower: &str, sizes: [usize; 4], eps: f64, act: Activation) -> Self {
        let [d, inter, layers, heads] = sizes;
        let layers = (0..layers)
            .map(|n| {
                let l = format!("{tower}.encoder.layers.{n}");
                let a = format!("{l}.self_attn");
                LayerKeys {
                    layer_norm1: NormKeys::new(&format!("{l}.layer_norm1"), d, eps),
                    q_proj: LinearKeys::new(&format!("{a}.q_proj"), d, d, true),
                    k_proj: LinearKeys::new(&format!("{a}.k_proj"), d, d, true),
                    v_proj: LinearKeys::new(&format!("{a}.v_proj"), d, d, true),
                    out_proj: LinearKeys::new(&format!("{a}.out_proj"), d, d, true),
                    layer_norm2: NormKeys::new(&format!("{l}.layer_norm2"), d, eps),
                    fc1: LinearKeys::new(&format!("{l}.mlp.fc1"), d, inter, true),
                    fc2: LinearKeys::new(&format!("{l}.mlp.fc2"), inter, d, true),
                }
            })
            .collect();
        Self {
            layers,
            hidden: d,
            heads,
            act,
        }
    }
}

/// The text tower's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct TextKeys {
    /// `[vocab, Dt]`.
    pub token_embedding: TensorSpec,
    /// `[context, Dt]`.
    pub position_embedding: TensorSpec,
    /// The causal stack.
    pub stack: StackKeys,
    /// `text_model.final_layer_norm`.
    pub final_layer_norm: NormKeys,
    /// `text_projection` (no bias).
    pub projection: LinearKeys,
    /// End-of-text token id (selects the pooled position; not a tensor).
    pub eos_token_id: u32,
}

impl TextKeys {
    /// The text tower of a model with `config`, projecting to `projection` dimensions.
    pub fn new(config: &ClipTextConfig, projection: usize) -> Self {
        let d = config.hidden_size;
        let eps = config.layer_norm_eps;
        Self {
            token_embedding: TensorSpec::new(
                "text_model.embeddings.token_embedding.weight",
                &[config.vocab_size, d],
            ),
            position_embedding: TensorSpec::new(
                "text_model.embeddings.position_embedding.weight",
                &[config.max_position_embeddings, d],
            ),
            stack: StackKeys::new(
                "text_model",
                [
                    d,
                    config.intermediate_size,
                    config.num_hidden_layers,
                    config.num_attention_heads,
                ],
                eps,
                config.hidden_act,
            ),
            eos_token_id: config.eos_token_id,
            final_layer_norm: NormKeys::new("text_model.final_layer_norm", d, eps),
            projection: LinearKeys::new("text_projection", d, projection, false),
        }
    }
}

/// The vision tower's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionKeys {
    /// The patch convolution `[Dv, C, p, p]`, which is the linear layer `[Dv, C·p·p]` over
    /// unfolded patches (no bias).
    pub patch_embedding: LinearKeys,
    /// `[Dv]`.
    pub class_embedding: TensorSpec,
    /// `[N+1, Dv]`.
    pub position_embedding: TensorSpec,
    /// `vision_model.pre_layrnorm`.
    pub pre_layrnorm: NormKeys,
    /// The stack.
    pub stack: StackKeys,
    /// `vision_model.post_layernorm`.
    pub post_layernorm: NormKeys,
    /// `visual_projection` (no bias).
    pub projection: LinearKeys,
    /// Input channels.
    pub channels: usize,
    /// Patch side.
    pub patch: usize,
    /// Image side.
    pub image_size: usize,
}

impl VisionKeys {
    /// The vision tower of a model with `config`, projecting to `projection` dimensions.
    pub fn new(config: &ClipVisionConfig, projection: usize) -> Self {
        let d = config.hidden_size;
        let (c, p) = (config.num_channels, config.patch_size);
        let eps = config.layer_norm_eps;
        let mut patch_embedding = LinearKeys::new(
            "vision_model.embeddings.patch_embedding",
            c * p * p,
            d,
            false,
        );
        patch_embedding.weight.shape = vec![d, c, p, p];
        Self {
            patch_embedding,
            class_embedding: TensorSpec::new("vision_model.embeddings.class_embedding", &[d]),
            position_embedding: TensorSpec::new(
                "vision_model.embeddings.position_embedding.weight",
                &[config.num_positions(), d],
            ),
            pre_layrnorm: NormKeys::new("vision_model.pre_layrnorm", d, eps),
            stack: StackKeys::new(
                "vision_model",
                [
                    d,
                    config.intermediate_size,
                    config.num_hidden_layers,
                    config.num_attention_heads,
                ],
                eps,
                config.hidden_act,
            ),
            post_layernorm: NormKeys::new("vision_model.post_layernorm", d, eps),
            projection: LinearKeys::new("visual_projection", d, projection, false),
            channels: c,
            patch: p,
            image_size: config.image_size,
        }
    }
}

/// Every tensor of a `CLIPModel` with one configuration, for the towers asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipKeys {
    /// The text tower, if loaded.
    pub text: Option<TextKeys>,
    /// The vision tower, if loaded.
    pub vision: Option<VisionKeys>,
    /// `logit_scale`, a 0-d tensor (always read).
    pub logit_scale: TensorSpec,
    /// Which towers these keys cover.
    pub towers: Towers,
}

impl ClipKeys {
    /// The key map of a model with `config`, for `towers`.
    pub fn new(config: &ClipConfig, towers: Towers) -> Self {
        Self {
            text: towers
                .text()
                .then(|| TextKeys::new(&config.text_config, config.projection_dim)),
            vision: towers
                .vision()
                .then(|| VisionKeys::new(&config.vision_config, config.projection_dim)),
            logit_scale: TensorSpec::new("logit_scale", &[]),
            towers,
        }
    }

    /// Every tensor these keys cover, in the order the loaders read them: the text tower
    /// (embeddings, layers, final norm, projection), the vision tower (patch, class and
    /// position embeddings, pre-norm, layers, post-norm, projection), then `logit_scale`.
    pub fn specs(&self) -> Vec<&TensorSpec> {
        fn linear<'a>(out: &mut Vec<&'a TensorSpec>, l: &'a LinearKeys) {
            out.push(&l.weight);
            out.extend(l.bias.as_ref());
        }
        fn norm<'a>(out: &mut Vec<&'a TensorSpec>, n: &'a NormKeys) {
            out.push(&n.weight);
            out.push(&n.bias);
        }
        fn stack<'a>(out: &mut Vec<&'a TensorSpec>, s: &'a StackKeys) {
            for l in &s.layers {
                norm(out, &l.layer_norm1);
                for p in [&l.q_proj, &l.k_proj, &l.v_proj, &l.out_proj] {
                    linear(out, p);
                }
                norm(out, &l.layer_norm2);
                linear(out, &l.fc1);
                linear(out, &l.fc2);
            }
        }
        let mut out = Vec::new();
        if let Some(t) = &self.text {
            out.push(&t.token_embedding);
            out.push(&t.position_embedding);
            stack(&mut out, &t.stack);
            norm(&mut out, &t.final_layer_norm);
            linear(&mut out, &t.projection);
        }
        if let Some(v) = &self.vision {
            linear(&mut out, &v.patch_embedding);
            out.push(&v.class_embedding);
            out.push(&v.position_embedding);
            norm(&mut out, &v.pre_layrnorm);
            stack(&mut out, &v.stack);
            norm(&mut out, &v.post_layernorm);
            linear(&mut out, &v.projection);
        }
        out.push(&self.logit_scale);
        out
    }

    /// Whether a checkpoint may hold `key` without any reader consuming it: the
    /// `position_ids` buffers, and every tensor of a tower these keys do not cover.
    pub fn may_skip(&self, key: &str) -> bool {
        if key.ends_with(".embeddings.position_ids") {
            return true;
        }
        let text_key = key.starts_with("text_model.") || key.starts_with("text_projection.");
        let vision_key = key.starts_with("vision_model.") || key.starts_with("visual_projection.");
        (text_key && !self.towers.text()) || (vision_key && !self.towers.vision())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_listed_once_and_in_load_order() {
        let config = ClipConfig::default();
        let keys = ClipKeys::new(&config, Towers::Both);
        let specs = keys.specs();
        let unique: std::collections::HashSet<&str> =
            specs.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(unique.len(), specs.len(), "a key is listed twice");
        // 12 layers × 16 tensors per tower, plus 5 text and 8 vision tensors, plus the scale.
        assert_eq!(specs.len(), 2 * 12 * 16 + 5 + 8 + 1);
        assert_eq!(specs[0].key, "text_model.embeddings.token_embedding.weight");
        assert_eq!(specs.last().unwrap().key, "logit_scale");
        let patch = specs
            .iter()
            .find(|s| s.key == "vision_model.embeddings.patch_embedding.weight")
            .unwrap();
        assert_eq!(patch.shape, [768, 3, 32, 32]);
        let text_only = ClipKeys::new(&config, Towers::TextOnly);
        assert!(text_only.may_skip("visual_projection.weight"));
        assert!(!text_only.may_skip("text_projection.weight"));
        assert!(!text_only.may_skip("logit_scale"));
        assert!(text_only.may_skip("text_model.embeddings.position_ids"));
    }
}
