//! Chinese-CLIP's key map: a `ChineseCLIPModel` state dict is CLIP's vision tower
//! ([`VisionKeys`]: `vision_model.*`, `visual_projection.weight`), a BERT text tower under
//! `text_model.` ([`BertKeys`], `BertModel` layout, no pooler: `ChineseCLIPModel` builds its
//! text model without one), `text_projection.weight` `[P, Dt]` (no bias) and `logit_scale`.
//!
//! | checkpoint key | shape | role |
//! |---|---|---|
//! | `text_model.embeddings.{word,position,token_type}_embeddings.weight` | `[vocab\|positions\|types, Dt]` | see [`crate::bert::keys`] |
//! | `text_model.encoder.layer.{i}.…` | | post-LN BERT layers |
//! | `text_projection.weight` | `[P, Dt]` | `[CLS]` state → embedding (no bias) |
//! | `vision_model.…`, `visual_projection.weight` | | CLIP's ViT, see [`crate::clip::keys`] |
//! | `logit_scale` | `[]` | temperature (log) |

use crate::bert::{BertConfig, BertFlavor, BertKeys};
use crate::checkpoint::KeyMap;
use crate::clip::keys::{LinearKeys, TensorSpec, VisionKeys};
use crate::clip::model::Towers;

use super::config::ChineseClipConfig;

/// The text tower's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct ChineseClipTextKeys {
    /// The BERT encoder under `text_model.`.
    pub bert: BertKeys,
    /// `text_projection` (no bias).
    pub projection: LinearKeys,
}

impl ChineseClipTextKeys {
    /// The text tower of a model with `config`, projecting to `projection` dimensions.
    pub fn new(config: &BertConfig, projection: usize) -> Self {
        Self {
            bert: BertKeys::new(config, BertFlavor::Bert, "text_model"),
            projection: LinearKeys::new("text_projection", config.hidden_size, projection, false),
        }
    }
}

/// Every tensor of a `ChineseCLIPModel` with one configuration, for the towers asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ChineseClipKeys {
    /// The text tower, if loaded.
    pub text: Option<ChineseClipTextKeys>,
    /// The vision tower, if loaded.
    pub vision: Option<VisionKeys>,
    /// `logit_scale`, a 0-d tensor (always read).
    pub logit_scale: TensorSpec,
    /// Which towers these keys cover.
    pub towers: Towers,
}

impl ChineseClipKeys {
    /// The key map of a model with `config`, for `towers`.
    pub fn new(config: &ChineseClipConfig, towers: Towers) -> Self {
        Self {
            text: towers
                .text()
                .then(|| ChineseClipTextKeys::new(&config.text_config, config.projection_dim)),
            vision: towers
                .vision()
                .then(|| VisionKeys::new(&config.vision_config, config.projection_dim)),
            logit_scale: TensorSpec::new("logit_scale", &[]),
            towers,
        }
    }
}

impl KeyMap for ChineseClipKeys {
    /// The text tower (BERT, projection), the vision tower (CLIP's order), `logit_scale`.
    fn specs(&self) -> Vec<&TensorSpec> {
        let mut out = Vec::new();
        if let Some(t) = &self.text {
            out.extend(t.bert.specs());
            out.push(&t.projection.weight);
        }
        if let Some(v) = &self.vision {
            out.extend(vision_specs(v));
        }
        out.push(&self.logit_scale);
        out
    }

    fn may_skip(&self, key: &str) -> bool {
        if key.ends_with(".embeddings.position_ids") || key.ends_with(".embeddings.token_type_ids")
        {
            return true;
        }
        if key.starts_with("text_model.pooler.") {
            return true;
        }
        let text_key = key.starts_with("text_model.") || key.starts_with("text_projection.");
        let vision_key = key.starts_with("vision_model.") || key.starts_with("visual_projection.");
        (text_key && !self.towers.text()) || (vision_key && !self.towers.vision())
    }
}

/// Every tensor of CLIP's vision tower, in the order of `ClipKeys::specs`.
fn vision_specs(v: &VisionKeys) -> Vec<&TensorSpec> {
    use crate::bert::keys::{push_linear, push_norm};
    let mut out = Vec::new();
    push_linear(&mut out, &v.patch_embedding);
    out.push(&v.class_embedding);
    out.push(&v.position_embedding);
    push_norm(&mut out, &v.pre_layrnorm);
    for l in &v.stack.layers {
        push_norm(&mut out, &l.layer_norm1);
        for p in [&l.q_proj, &l.k_proj, &l.v_proj, &l.out_proj] {
            push_linear(&mut out, p);
        }
        push_norm(&mut out, &l.layer_norm2);
        push_linear(&mut out, &l.fc1);
        push_linear(&mut out, &l.fc2);
    }
    push_norm(&mut out, &v.post_layernorm);
    push_linear(&mut out, &v.projection);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_listed_once() {
        let config = ChineseClipConfig::default();
        let keys = ChineseClipKeys::new(&config, Towers::Both);
        let specs = keys.specs();
        let unique: std::collections::HashSet<&str> =
            specs.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(unique.len(), specs.len());
        // BERT: 3 tables + norm + 12 × 16; projection; vision: 8 + 12 × 16; scale.
        assert_eq!(specs.len(), (5 + 12 * 16) + 1 + (8 + 12 * 16) + 1);
        assert!(unique.contains("text_model.encoder.layer.11.output.LayerNorm.bias"));
        assert!(unique.contains("vision_model.encoder.layers.11.mlp.fc2.weight"));
        let text_only = ChineseClipKeys::new(&config, Towers::TextOnly);
        assert!(text_only.may_skip("visual_projection.weight"));
        assert!(!text_only.may_skip("text_projection.weight"));
        assert!(text_only.may_skip("text_model.pooler.dense.weight"));
    }
}
