//! Chinese-CLIP's configuration (`model_type: "chinese_clip"`): a BERT text tower
//! (`text_config`, `ChineseCLIPTextConfig`: BERT field names), a CLIP ViT image tower
//! (`vision_config`, `ChineseCLIPVisionConfig`: CLIP's field names) and `projection_dim`.
//! Absent fields take `transformers`' defaults; `text_config_dict` / `vision_config_dict`
//! override key by key, as in `transformers`.

use serde_json::Value;

use crate::bert::{BertConfig, BertFlavor};
use crate::config::ClipVisionConfig;
use crate::error::{Error, Result};

/// `ChineseCLIPConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChineseClipConfig {
    /// The text tower (BERT / RoBERTa-wwm).
    pub text_config: BertConfig,
    /// The image tower (CLIP's ViT).
    pub vision_config: ClipVisionConfig,
    /// Width of the shared embedding space (both projections' output).
    pub projection_dim: usize,
}

impl Default for ChineseClipConfig {
    /// `transformers.ChineseCLIPConfig()`'s defaults.
    fn default() -> Self {
        Self {
            text_config: BertConfig::default(),
            vision_config: ClipVisionConfig::default(),
            projection_dim: 512,
        }
    }
}

impl ChineseClipConfig {
    /// Reads a parsed `config.json`, validated.
    ///
    /// # Errors
    /// [`Error::Config`] (with an empty path) naming the problem.
    pub fn from_value(mut value: Value) -> Result<Self> {
        let fail = |message: String| Error::Config {
            path: Default::default(),
            message,
        };
        let object = value
            .as_object_mut()
            .ok_or_else(|| fail("the top level is not a JSON object".into()))?;
        for tower in ["text_config", "vision_config"] {
            let overrides = match object.remove(&format!("{tower}_dict")) {
                Some(Value::Object(o)) => o,
                _ => Default::default(),
            };
            let base = match object.remove(tower) {
                Some(Value::Object(o)) => o,
                None | Some(Value::Null) => Default::default(),
                Some(other) => return Err(fail(format!("`{tower}` is not an object: {other}"))),
            };
            let mut merged = base;
            merged.extend(overrides);
            object.insert(tower.into(), Value::Object(merged));
        }
        let text_config = BertConfig::from_value(&object["text_config"], BertFlavor::Bert)?;
        let vision_config: ClipVisionConfig =
            serde_json::from_value(object["vision_config"].clone())
                .map_err(|e| fail(format!("vision_config: {e}")))?;
        let projection_dim = match object.get("projection_dim") {
            None | Some(Value::Null) => 512,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| fail(format!("`projection_dim` must be an integer, got {v}")))?
                as usize,
        };
        let config = Self {
            text_config,
            vision_config,
            projection_dim,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the sizes: both towers' (heads divide widths, patches tile the image, nothing
    /// zero) and a positive projection.
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
        self.text_config.validate()?;
        let v = &self.vision_config;
        for (name, size) in [
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.num_channels", v.num_channels),
            ("vision_config.image_size", v.image_size),
            ("vision_config.patch_size", v.patch_size),
            ("projection_dim", self.projection_dim),
        ] {
            if size == 0 {
                return fail(format!("{name} must be positive"));
            }
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
    fn reads_towers_and_dict_overrides() {
        let config = ChineseClipConfig::from_value(serde_json::json!({
            "model_type": "chinese_clip",
            "projection_dim": 512,
            "text_config": {"vocab_size": 21128, "hidden_size": 512},
            "text_config_dict": {"hidden_size": 768},
            "vision_config": {"patch_size": 16},
            "vision_config_dict": null
        }))
        .unwrap();
        assert_eq!(config.text_config.vocab_size, 21128);
        assert_eq!(config.text_config.hidden_size, 768);
        assert_eq!(config.text_config.type_vocab_size, 2);
        assert_eq!(config.vision_config.num_positions(), 197);
        assert_eq!(
            ChineseClipConfig::from_value(serde_json::json!({})).unwrap(),
            ChineseClipConfig::default()
        );
        let err = ChineseClipConfig::from_value(serde_json::json!({
            "vision_config": {"patch_size": 30}
        }));
        assert!(err.is_err());
    }
}
