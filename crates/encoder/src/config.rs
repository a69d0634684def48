//! Model configuration, read from a checkpoint's Hugging Face `config.json`.
//!
//! The structs mirror `transformers`' `CLIPConfig`, `CLIPTextConfig` and `CLIPVisionConfig`:
//! same field names, and every field that a `config.json` may omit defaults to the value
//! `transformers` uses (so a sparse config means what it means to the reference). Keys the
//! model does not need (`architectures`, `torch_dtype`, dropout rates, ...) are ignored.
//!
//! Old checkpoints (e.g. `openai/clip-vit-large-patch14`) also carry `text_config_dict` /
//! `vision_config_dict`; as in `transformers`, their entries override `text_config` /
//! `vision_config`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use glimpse_kernels::Activation;

/// The text tower's configuration (`text_config` in `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    /// Number of token ids (rows of the token embedding).
    pub vocab_size: usize,
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads (`hidden_size` must be a multiple).
    pub num_attention_heads: usize,
    /// Context length: the most tokens a sequence may have (77 for CLIP).
    pub max_position_embeddings: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// Epsilon of every layer norm in the tower.
    pub layer_norm_eps: f64,
    /// Padding token id.
    pub pad_token_id: u32,
    /// Beginning-of-text token id.
    pub bos_token_id: u32,
    /// End-of-text token id. The value `2` is the legacy marker of OpenAI's configs: the pooled
    /// token is then the position of the largest id (the end-of-text token has the largest id in
    /// CLIP's vocabulary), exactly as `transformers` does.
    pub eos_token_id: u32,
}

impl Default for ClipTextConfig {
    /// `transformers.CLIPTextConfig()`'s defaults.
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            pad_token_id: 1,
            bos_token_id: 49406,
            eos_token_id: 49407,
        }
    }
}

/// The vision tower's configuration (`vision_config` in `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads (`hidden_size` must be a multiple).
    pub num_attention_heads: usize,
    /// Input channels (3).
    pub num_channels: usize,
    /// Side of the square input image, in pixels.
    pub image_size: usize,
    /// Side of a square patch, in pixels (`image_size` must be a multiple).
    pub patch_size: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// Epsilon of every layer norm in the tower.
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    /// `transformers.CLIPVisionConfig()`'s defaults.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// Patches per side of the image.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Number of positions: one per patch plus the class token.
    pub fn num_positions(&self) -> usize {
        self.grid_size() * self.grid_size() + 1
    }
}

/// The dual model's configuration: both towers and the shared embedding width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipConfig {
    /// The text tower.
    pub text_config: ClipTextConfig,
    /// The vision tower.
    pub vision_config: ClipVisionConfig,
    /// Width of the shared embedding space (output of both projections).
    pub projection_dim: usize,
    /// Initial value of `logit_scale` (only used for randomly initialised models; a checkpoint
    /// carries its trained value).
    pub logit_scale_init_value: f64,
}

impl Default for ClipConfig {
    /// `transformers.CLIPConfig()`'s defaults (which are ViT-B/32's sizes).
    fn default() -> Self {
        Self {
            text_config: ClipTextConfig::default(),
            vision_config: ClipVisionConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
        }
    }
}

/// The `eos_token_id` / `bos_token_id` / `pad_token_id` that OpenAI's `config.json` files carry
/// (legacy values; see [`ClipTextConfig::eos_token_id`]).
fn openai_text(hidden: usize, heads: usize) -> ClipTextConfig {
    ClipTextConfig {
        hidden_size: hidden,
        intermediate_size: 4 * hidden,
        num_attention_heads: heads,
        pad_token_id: 1,
        bos_token_id: 0,
        eos_token_id: 2,
        ..ClipTextConfig::default()
    }
}

impl ClipConfig {
    /// OpenAI ViT-B/32; mirrors
    /// <https://huggingface.co/openai/clip-vit-base-patch32/blob/main/config.json>.
    pub fn vit_b32() -> Self {
        Self {
            text_config: openai_text(512, 8),
            vision_config: ClipVisionConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
        }
    }

    /// OpenAI ViT-B/16; mirrors
    /// <https://huggingface.co/openai/clip-vit-base-patch16/blob/main/config.json>.
    pub fn vit_b16() -> Self {
        let mut config = Self::vit_b32();
        config.vision_config.patch_size = 16;
        config
    }

    /// OpenAI ViT-L/14; mirrors
    /// <https://huggingface.co/openai/clip-vit-large-patch14/blob/main/config.json>.
    pub fn vit_l14() -> Self {
        Self {
            text_config: openai_text(768, 12),
            vision_config: ClipVisionConfig {
                hidden_size: 1024,
                intermediate_size: 4096,
                num_hidden_layers: 24,
                num_attention_heads: 16,
                patch_size: 14,
                ..ClipVisionConfig::default()
            },
            projection_dim: 768,
            logit_scale_init_value: 2.6592,
        }
    }

    /// OpenAI ViT-L/14 at 336 pixels; mirrors
    /// <https://huggingface.co/openai/clip-vit-large-patch14-336/blob/main/config.json>.
    pub fn vit_l14_336() -> Self {
        let mut config = Self::vit_l14();
        config.vision_config.image_size = 336;
        config
    }

    /// Parses a Hugging Face `config.json` (the text of the file).
    ///
    /// `text_config_dict` / `vision_config_dict`, where present, override `text_config` /
    /// `vision_config` key by key, as in `transformers`. The result is [validated](Self::validate).
    pub fn from_json_str(json: &str) -> Result<Self> {
        Self::parse(json, Path::new(""))
    }

    /// Reads and parses a Hugging Face `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(json: &str, path: &Path) -> Result<Self> {
        let config_error = |message: String| Error::Config {
            path: path.to_owned(),
            message,
        };
        let mut value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| config_error(e.to_string()))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| config_error("the top level is not a JSON object".into()))?;
        for tower in ["text_config", "vision_config"] {
            let Some(serde_json::Value::Object(overrides)) =
                object.remove(&format!("{tower}_dict"))
            else {
                continue;
            };
            let base = object
                .entry(tower)
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(base) = base {
                base.extend(overrides);
            }
        }
        // `null` means "use the defaults", as in `transformers`.
        for tower in ["text_config", "vision_config"] {
            if object.get(tower).is_some_and(|v| v.is_null()) {
                object.remove(tower);
            }
        }
        let config: Self =
            serde_json::from_value(value).map_err(|e| config_error(e.to_string()))?;
        config.validate().map_err(|e| match e {
            Error::Config { message, .. } => config_error(message),
            other => other,
        })?;
        Ok(config)
    }

    /// Checks that the sizes are consistent (heads divide widths, patches tile the image, no
    /// zero sizes).
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
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.num_channels", v.num_channels),
            ("vision_config.image_size", v.image_size),
            ("vision_config.patch_size", v.patch_size),
            ("projection_dim", self.projection_dim),
        ];
        for (name, size) in nonzero {
            if size == 0 {
                return fail(format!("{name} must be positive"));
            }
        }
        if !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return fail(format!(
                "text_config.hidden_size {} is not a multiple of num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ));
        }
        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return fail(format!(
                "vision_config.hidden_size {} is not a multiple of num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return fail(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_takes_transformers_defaults() {
        let config = ClipConfig::from_json_str("{}").unwrap();
        assert_eq!(config, ClipConfig::default());
        assert_eq!(config.text_config.eos_token_id, 49407);
        assert_eq!(config.vision_config.num_positions(), 50);
    }

    #[test]
    fn parses_an_openai_style_config_with_dict_overrides() {
        let json = r#"{
            "architectures": ["CLIPModel"],
            "projection_dim": 768,
            "text_config": {"hidden_size": 512, "eos_token_id": 2, "dropout": 0.0},
            "text_config_dict": {"hidden_size": 768, "num_attention_heads": 12,
                                 "intermediate_size": 3072, "hidden_act": "quick_gelu"},
            "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24,
                              "num_attention_heads": 16, "intermediate_size": 4096,
                              "patch_size": 14, "layer_norm_eps": 1e-05, "hidden_act": "gelu"},
            "vision_config_dict": null
        }"#;
        let config = ClipConfig::from_json_str(json).unwrap();
        assert_eq!(config.text_config.hidden_size, 768);
        assert_eq!(config.text_config.eos_token_id, 2);
        assert_eq!(config.text_config.num_hidden_layers, 12);
        assert_eq!(config.vision_config.hidden_act, Activation::Gelu);
        assert_eq!(config.vision_config.num_positions(), 257);
        assert_eq!(config.projection_dim, 768);
    }

    #[test]
    fn presets_are_consistent() {
        for config in [
            ClipConfig::vit_b32(),
            ClipConfig::vit_b16(),
            ClipConfig::vit_l14(),
            ClipConfig::vit_l14_336(),
        ] {
            config.validate().unwrap();
        }
        assert_eq!(ClipConfig::vit_b16().vision_config.num_positions(), 197);
        assert_eq!(ClipConfig::vit_l14_336().vision_config.num_positions(), 577);
    }

    #[test]
    fn rejects_unknown_activation_and_bad_sizes() {
        let err = ClipConfig::from_json_str(r#"{"text_config": {"hidden_act": "swish"}}"#);
        assert!(matches!(err, Err(Error::Config { .. })), "{err:?}");
        let err = ClipConfig::from_json_str(r#"{"vision_config": {"patch_size": 30}}"#);
        assert!(
            matches!(&err, Err(Error::Config { message, .. }) if message.contains("patch_size")),
            "{err:?}"
        );
    }
}
