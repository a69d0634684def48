//! Which architecture a checkpoint is, read from its `config.json`, and its configuration.
//!
//! `transformers` picks the model class from `model_type` (and records the class in
//! `architectures`); Glimpse does the same:
//!
//! | `model_type` | `architectures` | [`Architecture`] |
//! |---|---|---|
//! | `clip` | `CLIPModel` | [`Architecture::Clip`]: OpenAI CLIP and OpenCLIP exports |
//! | `siglip` | `SiglipModel` | [`Architecture::Siglip`]: SigLIP and SigLIP 2 FixRes |
//! | `chinese_clip` | `ChineseCLIPModel` | [`Architecture::ChineseClip`]: Chinese-CLIP (CLIP ViT + BERT/RoBERTa-wwm text tower) |
//! | absent | absent | [`Architecture::Clip`] (configs written before `model_type` existed) |
//!
//! Anything else — `siglip2` (`Siglip2Model`, the NaFlex variable-resolution SigLIP 2),
//! `altclip`, a vision-only or text-only class, an unknown type — is
//! [`Error::UnsupportedArchitecture`], naming what was found and what is supported.

use std::fmt;
use std::path::Path;

use crate::chinese_clip::ChineseClipConfig;
use crate::config::ClipConfig;
use crate::error::{Error, Result};
use crate::siglip::SiglipConfig;

/// A supported model architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `CLIPModel`: softmax-trained, scores are not calibrated.
    Clip,
    /// `SiglipModel`: sigmoid-trained, `sigmoid(exp(t)·cos + b)` is a calibrated probability.
    Siglip,
    /// `ChineseCLIPModel`: CLIP's ViT with a BERT text tower; softmax-trained, not calibrated.
    ChineseClip,
}

impl Architecture {
    /// The supported architectures, as `config.json` names them (for messages).
    pub const SUPPORTED: &'static str =
        "CLIPModel (model_type \"clip\"), SiglipModel (model_type \"siglip\", SigLIP and SigLIP 2 FixRes), ChineseCLIPModel (model_type \"chinese_clip\")";

    /// The `transformers` class name (`CLIPModel`, `SiglipModel`, `ChineseCLIPModel`).
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Clip => "CLIPModel",
            Architecture::Siglip => "SiglipModel",
            Architecture::ChineseClip => "ChineseCLIPModel",
        }
    }

    /// The `model_type` (`clip`, `siglip`, `chinese_clip`).
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Clip => "clip",
            Architecture::Siglip => "siglip",
            Architecture::ChineseClip => "chinese_clip",
        }
    }

    /// Reads the architecture from a parsed `config.json`: `model_type` first, then the first
    /// entry of `architectures`; neither present means CLIP.
    ///
    /// # Errors
    /// [`Error::UnsupportedArchitecture`] for any other type or class (`path` labels it).
    pub fn detect(config: &serde_json::Value, path: &Path) -> Result<Self> {
        let unsupported = |found: &str| Error::UnsupportedArchitecture {
            path: path.to_owned(),
            found: found.to_owned(),
        };
        if let Some(model_type) = config.get("model_type").and_then(|v| v.as_str()) {
            return match model_type {
                "clip" => Ok(Architecture::Clip),
                "siglip" => Ok(Architecture::Siglip),
                "chinese_clip" => Ok(Architecture::ChineseClip),
                other => Err(unsupported(&format!("model_type \"{other}\""))),
            };
        }
        match config
            .get("architectures")
            .and_then(|v| v.as_array())
            .and_then(|a| a.first())
            .and_then(|v| v.as_str())
        {
            None => Ok(Architecture::Clip),
            Some("CLIPModel") => Ok(Architecture::Clip),
            Some("SiglipModel") => Ok(Architecture::Siglip),
            Some("ChineseCLIPModel") => Ok(Architecture::ChineseClip),
            Some(other) => Err(unsupported(other)),
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class_name())
    }
}

/// A checkpoint's configuration, of whichever supported architecture it is.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// `CLIPModel`.
    Clip(ClipConfig),
    /// `SiglipModel`.
    Siglip(SiglipConfig),
    /// `ChineseCLIPModel`.
    ChineseClip(ChineseClipConfig),
}

impl ModelConfig {
    /// Reads `config.json`, detects the architecture ([`Architecture::detect`]) and parses it.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Config`], [`Error::UnsupportedArchitecture`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a `config.json`; `path` only labels errors.
    ///
    /// # Errors
    /// As [`from_file`](Self::from_file).
    pub fn parse(json: &str, path: &Path) -> Result<Self> {
        let config_error = |message: String| Error::Config {
            path: path.to_owned(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| config_error(e.to_string()))?;
        match Architecture::detect(&value, path)? {
            Architecture::Clip => {
                let config = ClipConfig::from_json_str(json).map_err(|e| match e {
                    Error::Config { message, .. } => config_error(message),
                    other => other,
                })?;
                Ok(ModelConfig::Clip(config))
            }
            Architecture::Siglip => {
                let mut value = value;
                // `null` towers mean the defaults, as in `transformers`.
                if let Some(object) = value.as_object_mut() {
                    for tower in ["text_config", "vision_config"] {
                        if object.get(tower).is_some_and(|v| v.is_null()) {
                            object.remove(tower);
                        }
                    }
                }
                let config: SiglipConfig =
                    serde_json::from_value(value).map_err(|e| config_error(e.to_string()))?;
                config.validate().map_err(|e| match e {
                    Error::Config { message, .. } => config_error(message),
                    other => other,
                })?;
                Ok(ModelConfig::Siglip(config))
            }
            Architecture::ChineseClip => ChineseClipConfig::from_value(value)
                .map(ModelConfig::ChineseClip)
                .map_err(|e| match e {
                    Error::Config { message, .. } => config_error(message),
                    other => other,
                }),
        }
    }

    /// The architecture.
    pub fn architecture(&self) -> Architecture {
        match self {
            ModelConfig::Clip(_) => Architecture::Clip,
            ModelConfig::Siglip(_) => Architecture::Siglip,
            ModelConfig::ChineseClip(_) => Architecture::ChineseClip,
        }
    }

    /// The width of the shared embedding space: CLIP's and Chinese-CLIP's `projection_dim`,
    /// SigLIP's vision `hidden_size`.
    pub fn embedding_dim(&self) -> usize {
        match self {
            ModelConfig::Clip(c) => c.projection_dim,
            ModelConfig::Siglip(c) => c.embedding_dim(),
            ModelConfig::ChineseClip(c) => c.projection_dim,
        }
    }

    /// The side of the square pixel input.
    pub fn image_size(&self) -> usize {
        match self {
            ModelConfig::Clip(c) => c.vision_config.image_size,
            ModelConfig::Siglip(c) => c.vision_config.image_size,
            ModelConfig::ChineseClip(c) => c.vision_config.image_size,
        }
    }

    /// Input channels.
    pub fn num_channels(&self) -> usize {
        match self {
            ModelConfig::Clip(c) => c.vision_config.num_channels,
            ModelConfig::Siglip(c) => c.vision_config.num_channels,
            ModelConfig::ChineseClip(c) => c.vision_config.num_channels,
        }
    }

    /// The text context length (77 for CLIP, 64 for SigLIP, 512 positions for
    /// Chinese-CLIP's BERT).
    pub fn context_length(&self) -> usize {
        match self {
            ModelConfig::Clip(c) => c.text_config.max_position_embeddings,
            ModelConfig::Siglip(c) => c.text_config.max_position_embeddings,
            ModelConfig::ChineseClip(c) => c.text_config.max_position_embeddings,
        }
    }

    /// The CLIP configuration, if this is one.
    pub fn as_clip(&self) -> Option<&ClipConfig> {
        match self {
            ModelConfig::Clip(c) => Some(c),
            _ => None,
        }
    }

    /// The SigLIP configuration, if this is one.
    pub fn as_siglip(&self) -> Option<&SiglipConfig> {
        match self {
            ModelConfig::Siglip(c) => Some(c),
            _ => None,
        }
    }

    /// The Chinese-CLIP configuration, if this is one.
    pub fn as_chinese_clip(&self) -> Option<&ChineseClipConfig> {
        match self {
            ModelConfig::ChineseClip(c) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModelConfig> {
        ModelConfig::parse(json, Path::new("config.json"))
    }

    #[test]
    fn dispatches_on_model_type_and_architectures() {
        assert_eq!(parse("{}").unwrap().architecture(), Architecture::Clip);
        let clip = parse(r#"{"model_type": "clip", "projection_dim": 16}"#).unwrap();
        assert_eq!(clip.embedding_dim(), 16);
        let siglip = parse(r#"{"architectures": ["SiglipModel"]}"#).unwrap();
        assert_eq!(siglip.architecture(), Architecture::Siglip);
        assert_eq!(siglip.embedding_dim(), 768);
        assert_eq!(siglip.context_length(), 64);
        let so400m = parse(
            r#"{"model_type": "siglip", "text_config": {"hidden_size": 1152, "projection_size": 1152},
                "vision_config": {"hidden_size": 1152, "num_attention_heads": 16, "image_size": 384,
                "patch_size": 14}}"#,
        )
        .unwrap();
        assert_eq!(so400m.embedding_dim(), 1152);
        assert_eq!(so400m.image_size(), 384);
        // 384 / 14: 27 patches a side, the last 6 pixels dropped.
        assert_eq!(
            so400m.as_siglip().unwrap().vision_config.num_positions(),
            729
        );
    }

    #[test]
    fn unsupported_architectures_are_named() {
        for (json, found) in [
            (
                r#"{"model_type": "siglip2", "architectures": ["Siglip2Model"]}"#,
                "siglip2",
            ),
            (r#"{"architectures": ["AltCLIPModel"]}"#, "AltCLIPModel"),
            (
                r#"{"model_type": "siglip_vision_model"}"#,
                "siglip_vision_model",
            ),
        ] {
            let err = parse(json).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, Error::UnsupportedArchitecture { .. }),
                "{message}"
            );
            assert!(message.contains(found), "{message}");
            assert!(
                message.contains("SiglipModel")
                    && message.contains("CLIPModel")
                    && message.contains("ChineseCLIPModel"),
                "{message}"
            );
        }
    }

    #[test]
    fn chinese_clip_is_dispatched() {
        for json in [
            r#"{"model_type": "chinese_clip", "text_config": {"vocab_size": 21128}}"#,
            r#"{"architectures": ["ChineseCLIPModel"], "text_config": {"vocab_size": 21128}}"#,
        ] {
            let config = parse(json).unwrap();
            assert_eq!(config.architecture(), Architecture::ChineseClip);
            assert_eq!(config.embedding_dim(), 512);
            assert_eq!(config.context_length(), 512);
            assert_eq!(
                config.as_chinese_clip().unwrap().text_config.vocab_size,
                21128
            );
        }
    }

    #[test]
    fn siglip_sizes_are_checked() {
        let err = parse(r#"{"model_type": "siglip", "text_config": {"projection_size": 512}}"#)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { message, .. } if message.contains("projection_size")),
            "{err}"
        );
    }
}
