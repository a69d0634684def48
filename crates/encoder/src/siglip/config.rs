//! SigLIP's configuration, read from a checkpoint's `config.json` (`model_type: "siglip"`).
//!
//! The structs mirror `transformers`' `SiglipConfig`, `SiglipTextConfig` and
//! `SiglipVisionConfig`: same field names, and every field a `config.json` may omit defaults to
//! the value `transformers` uses (`google/siglip-base-patch16-224`'s sizes). Keys the model
//! does not need are ignored.

use serde::{Deserialize, Serialize};

use crate::config::Activation;
use crate::error::{Error, Result};

/// The text tower (`text_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiglipTextConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Context length (64): every sequence is padded to it.
    pub max_position_embeddings: usize,
    /// MLP activation (`gelu_pytorch_tanh`).
    pub hidden_act: Activation,
    /// Epsilon of every layer norm in the tower.
    pub layer_norm_eps: f64,
    /// Padding id of the *config* (`transformers` ignores it when embedding: the tokenizer's
    /// own pad id is what pads; see [`crate::siglip::SiglipTokenizer`]).
    pub pad_token_id: Option<u32>,
    /// Output width of `text_model.head`; `None` means `hidden_size`, as in `transformers`.
    pub projection_size: Option<usize>,
}

impl Default for SiglipTextConfig {
    /// `transformers.SiglipTextConfig()`'s defaults.
    fn default() -> Self {
        Self {
            vocab_size: 32000,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 64,
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
            pad_token_id: Some(1),
            projection_size: None,
        }
    }
}

impl SiglipTextConfig {
    /// Output width of the text head.
    pub fn projection(&self) -> usize {
        self.projection_size.unwrap_or(self.hidden_size)
    }
}

/// The vision tower (`vision_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiglipVisionConfig {
    /// Width of the transformer (and of the embedding).
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads (also the pooling head's).
    pub num_attention_heads: usize,
    /// Input channels (3).
    pub num_channels: usize,
    /// Side of the square input image, in pixels.
    pub image_size: usize,
    /// Side of a square patch, in pixels.
    pub patch_size: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// Epsilon of every layer norm in the tower.
    pub layer_norm_eps: f64,
    /// Whether the attention-pooling head exists (it must: it makes the image embedding).
    pub vision_use_head: bool,
}

impl Default for SiglipVisionConfig {
    /// `transformers.SiglipVisionConfig()`'s defaults.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 16,
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
            vision_use_head: true,
        }
    }
}

impl SiglipVisionConfig {
    /// Patches per side (`image_size / patch_size`, rounded down: the convolution drops the
    /// pixels a patch does not cover).
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Number of positions: one per patch (no class token).
    pub fn num_positions(&self) -> usize {
        self.grid_size() * self.grid_size()
    }
}

/// `SiglipConfig`: both towers. The embedding width is the vision tower's `hidden_size`,
/// which the text head projects to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SiglipConfig {
    /// The text tower.
    pub text_config: SiglipTextConfig,
    /// The vision tower.
    pub vision_config: SiglipVisionConfig,
}

impl SiglipConfig {
    /// The width of the shared embedding space (the vision tower's width).
    pub fn embedding_dim(&self) -> usize {
        self.vision_config.hidden_size
    }

    /// Checks that the sizes are consistent (heads divide widths, patches tile the image, the
    /// text head projects to the image width, no zero sizes, the pooling head present).
    ///
    /// # Errors
    /// [`Error::Config`] (with an empty path) naming the problem.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| {
            Err(Error::Config {
                path: Default::default(),
                message,
            })
        };
        let t = &self.text_config;
        let v = &self.vision_config;
        let nonzero = [
            ("text_config.vocab_size", t.vocab_size),
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.intermediate_size", t.intermediate_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
            ),
            ("text_config.projection_size", t.projection()),
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.num_channels", v.num_channels),
            ("vision_config.image_size", v.image_size),
            ("vision_config.patch_size", v.patch_size),
        ];
        for (name, size) in nonzero {
            if size == 0 {
                return fail(format!("{name} must be positive"));
            }
        }
        for (tower, width, heads) in [
            ("text", t.hidden_size, t.num_attention_heads),
            ("vision", v.hidden_size, v.num_attention_heads),
        ] {
            if !width.is_multiple_of(heads) {
                return fail(format!(
                    "{tower}_config.hidden_size {width} is not a multiple of num_attention_heads {heads}"
                ));
            }
        }
        // Not necessarily a multiple: So400m/14 at 384 pixels has 27 patches a side, and the
        // stride-14 convolution drops the last 6 pixels, as here.
        if v.patch_size > v.image_size {
            return fail(format!(
                "vision_config.patch_size {} is larger than image_size {}",
                v.patch_size, v.image_size
            ));
        }
        if t.projection() != v.hidden_size {
            return fail(format!(
                "text_config.projection_size {} differs from vision_config.hidden_size {}: the \
                 towers would not embed into one space",
                t.projection(),
                v.hidden_size
            ));
        }
        if !v.vision_use_head {
            return fail(
                "vision_config.vision_use_head is false: the image embedding is the pooling \
                 head's output, so a SiglipModel needs it"
                    .into(),
            );
        }
        Ok(())
    }
}
