//! SigLIP's checkpoint key map: every tensor of a Hugging Face `SiglipModel` state dict, with
//! its shape and role, in one place. The burn loader ([`super::load`]) and the native packer
//! ([`super::pack`]) both walk it; [`crate::checkpoint::Checkpoint::validate`] checks a
//! checkpoint against it first.
//!
//! The encoder layers are CLIP's ([`StackKeys`]: same names, same layout). What differs:
//!
//! | checkpoint key | shape | role |
//! |---|---|---|
//! | `{T}.embeddings.token_embedding.weight` | `[vocab, Dt]` | token embedding |
//! | `{T}.embeddings.position_embedding.weight` | `[64, Dt]` | position embedding |
//! | `{T}.final_layer_norm.{weight,bias}` | `[Dt]` | norm of every text token |
//! | `{T}.head.{weight,bias}` | `[P, Dt]`, `[P]` | text head (linear, **with** bias), `P = Dv` |
//! | `{V}.embeddings.patch_embedding.{weight,bias}` | `[Dv, C, p, p]`, `[Dv]` | patch convolution, with bias |
//! | `{V}.embeddings.position_embedding.weight` | `[N, Dv]` | positions (no class token) |
//! | `{V}.post_layernorm.{weight,bias}` | `[Dv]` | norm of every image token |
//! | `{V}.head.probe` | `[1, 1, Dv]` | the pooling head's learned query |
//! | `{V}.head.attention.in_proj_{weight,bias}` | `[3Dv, Dv]`, `[3Dv]` | `nn.MultiheadAttention` q, k, v |
//! | `{V}.head.attention.out_proj.{weight,bias}` | `[Dv, Dv]`, `[Dv]` | its output projection |
//! | `{V}.head.layernorm.{weight,bias}` | `[Dv]` | norm before the head's MLP |
//! | `{V}.head.mlp.fc{1,2}.{weight,bias}` | `[I, Dv]`, `[Dv, I]` | the head's MLP |
//! | `logit_scale`, `logit_bias` | `[1]` | calibration: `sigmoid(exp(scale)·cos + bias)` |
//!
//! No class token, no `pre_layrnorm`, no projections outside the towers.

use crate::checkpoint::KeyMap;
use crate::clip::keys::{LinearKeys, NormKeys, StackKeys, TensorSpec};
use crate::clip::model::Towers;
use crate::config::Activation;
use crate::siglip::config::{SiglipConfig, SiglipTextConfig, SiglipVisionConfig};

/// The text tower's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct SiglipTextKeys {
    /// `[vocab, Dt]`.
    pub token_embedding: TensorSpec,
    /// `[context, Dt]`.
    pub position_embedding: TensorSpec,
    /// The (bidirectional) stack.
    pub stack: StackKeys,
    /// `text_model.final_layer_norm`.
    pub final_layer_norm: NormKeys,
    /// `text_model.head` (with bias).
    pub head: LinearKeys,
}

impl SiglipTextKeys {
    /// The text tower of a model with `config`.
    pub fn new(config: &SiglipTextConfig) -> Self {
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
            final_layer_norm: NormKeys::new("text_model.final_layer_norm", d, eps),
            head: LinearKeys::new("text_model.head", d, config.projection(), true),
        }
    }
}

/// The attention-pooling head (`vision_model.head`).
#[derive(Debug, Clone, PartialEq)]
pub struct MapHeadKeys {
    /// `probe`, `[1, 1, Dv]`.
    pub probe: TensorSpec,
    /// `attention.in_proj_weight`, `[3Dv, Dv]` (queries, keys, values).
    pub in_proj_weight: TensorSpec,
    /// `attention.in_proj_bias`, `[3Dv]`.
    pub in_proj_bias: TensorSpec,
    /// `attention.out_proj`.
    pub out_proj: LinearKeys,
    /// `layernorm`.
    pub layernorm: NormKeys,
    /// `mlp.fc1`.
    pub fc1: LinearKeys,
    /// `mlp.fc2`.
    pub fc2: LinearKeys,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub act: Activation,
}

/// The vision tower's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct SiglipVisionKeys {
    /// The patch convolution `[Dv, C, p, p]` = linear `[Dv, C·p·p]`, with its bias `[Dv]`.
    pub patch_embedding: LinearKeys,
    /// `[N, Dv]`.
    pub position_embedding: TensorSpec,
    /// The stack.
    pub stack: StackKeys,
    /// `vision_model.post_layernorm`.
    pub post_layernorm: NormKeys,
    /// `vision_model.head`.
    pub head: MapHeadKeys,
    /// Input channels.
    pub channels: usize,
    /// Patch side.
    pub patch: usize,
    /// Image side.
    pub image_size: usize,
}

impl SiglipVisionKeys {
    /// The vision tower of a model with `config`.
    pub fn new(config: &SiglipVisionConfig) -> Self {
        let d = config.hidden_size;
        let inter = config.intermediate_size;
        let (c, p) = (config.num_channels, config.patch_size);
        let eps = config.layer_norm_eps;
        let mut patch_embedding = LinearKeys::new(
            "vision_model.embeddings.patch_embedding",
            c * p * p,
            d,
            true,
        );
        patch_embedding.weight.shape = vec![d, c, p, p];
        let h = "vision_model.head";
        Self {
            patch_embedding,
            position_embedding: TensorSpec::new(
                "vision_model.embeddings.position_embedding.weight",
                &[config.num_positions(), d],
            ),
            stack: StackKeys::new(
                "vision_model",
                [
                    d,
                    inter,
                    config.num_hidden_layers,
                    config.num_attention_heads,
                ],
                eps,
                config.hidden_act,
            ),
            post_layernorm: NormKeys::new("vision_model.post_layernorm", d, eps),
            head: MapHeadKeys {
                probe: TensorSpec::new(format!("{h}.probe"), &[1, 1, d]),
                in_proj_weight: TensorSpec::new(
                    format!("{h}.attention.in_proj_weight"),
                    &[3 * d, d],
                ),
                in_proj_bias: TensorSpec::new(format!("{h}.attention.in_proj_bias"), &[3 * d]),
                out_proj: LinearKeys::new(&format!("{h}.attention.out_proj"), d, d, true),
                layernorm: NormKeys::new(&format!("{h}.layernorm"), d, eps),
                fc1: LinearKeys::new(&format!("{h}.mlp.fc1"), d, inter, true),
                fc2: LinearKeys::new(&format!("{h}.mlp.fc2"), inter, d, true),
                heads: config.num_attention_heads,
                act: config.hidden_act,
            },
            channels: c,
            patch: p,
            image_size: config.image_size,
        }
    }
}

/// Every tensor of a `SiglipModel` with one configuration, for the towers asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SiglipKeys {
    /// The text tower, if loaded.
    pub text: Option<SiglipTextKeys>,
    /// The vision tower, if loaded.
    pub vision: Option<SiglipVisionKeys>,
    /// `logit_scale`, `[1]` (always read).
    pub logit_scale: TensorSpec,
    /// `logit_bias`, `[1]` (always read).
    pub logit_bias: TensorSpec,
    /// Which towers these keys cover.
    pub towers: Towers,
}

impl SiglipKeys {
    /// The key map of a model with `config`, for `towers`.
    pub fn new(config: &SiglipConfig, towers: Towers) -> Self {
        Self {
            text: towers
                .text()
                .then(|| SiglipTextKeys::new(&config.text_config)),
            vision: towers
                .vision()
                .then(|| SiglipVisionKeys::new(&config.vision_config)),
            logit_scale: TensorSpec::new("logit_scale", &[1]),
            logit_bias: TensorSpec::new("logit_bias", &[1]),
            towers,
        }
    }
}

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

impl KeyMap for SiglipKeys {
    fn specs(&self) -> Vec<&TensorSpec> {
        let mut out = Vec::new();
        if let Some(t) = &self.text {
            out.push(&t.token_embedding);
            out.push(&t.position_embedding);
            stack(&mut out, &t.stack);
            norm(&mut out, &t.final_layer_norm);
            linear(&mut out, &t.head);
        }
        if let Some(v) = &self.vision {
            linear(&mut out, &v.patch_embedding);
            out.push(&v.position_embedding);
            stack(&mut out, &v.stack);
            norm(&mut out, &v.post_layernorm);
            let h = &v.head;
            out.push(&h.probe);
            out.push(&h.in_proj_weight);
            out.push(&h.in_proj_bias);
            linear(&mut out, &h.out_proj);
            norm(&mut out, &h.layernorm);
            linear(&mut out, &h.fc1);
            linear(&mut out, &h.fc2);
        }
        out.push(&self.logit_scale);
        out.push(&self.logit_bias);
        out
    }

    fn may_skip(&self, key: &str) -> bool {
        if key.ends_with(".embeddings.position_ids") {
            return true;
        }
        (key.starts_with("text_model.") && !self.towers.text())
            || (key.starts_with("vision_model.") && !self.towers.vision())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_listed_once() {
        let keys = SiglipKeys::new(&SiglipConfig::default(), Towers::Both);
        let specs = keys.specs();
        let unique: std::collections::HashSet<&str> =
            specs.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(unique.len(), specs.len());
        // 16 per layer, text: 2 + 2 + 2, vision: 2 + 1 + 2 + head 3 + 2 + 2 + 4, 2 scalars.
        assert_eq!(specs.len(), 2 * 12 * 16 + 6 + 16 + 2);
        let patch = specs
            .iter()
            .find(|s| s.key == "vision_model.embeddings.patch_embedding.weight")
            .unwrap();
        assert_eq!(patch.shape, [768, 3, 16, 16]);
        let text_only = SiglipKeys::new(&SiglipConfig::default(), Towers::TextOnly);
        assert!(text_only.may_skip("vision_model.head.probe"));
        assert!(!text_only.may_skip("text_model.head.weight"));
        assert!(!text_only.may_skip("logit_bias"));
    }
}
