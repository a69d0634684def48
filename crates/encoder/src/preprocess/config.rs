//! `preprocessor_config.json`: what `CLIPImageProcessor` reads, parsed the way `transformers`
//! interprets it. `SiglipImageProcessor` configs take that class's defaults for absent keys;
//! `ChineseCLIPImageProcessor`'s defaults are CLIP's, and Chinese-CLIP checkpoints set a fixed
//! `size` (`{"height", "width"}`) with `do_center_crop: false`, which is an exact resize
//! ([`ResizeTarget::Exact`]) with no crop.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::resize::Filter;
use crate::error::{Error, Result};

/// The mean of openai's CLIP training images (`OPENAI_CLIP_MEAN` in `transformers`).
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// The standard deviation of openai's CLIP training images (`OPENAI_CLIP_STD`).
pub const OPENAI_CLIP_STD: [f64; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The target of the resize step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTarget {
    /// Scale so that the shorter side equals this, keeping the aspect ratio (the longer side is
    /// floored). `{"shortest_edge": n}`, or a plain integer `"size": n` in legacy CLIP configs.
    ShortestEdge(u32),
    /// Resize to exactly this size, ignoring the aspect ratio. `{"height": h, "width": w}`.
    Exact {
        /// Output height.
        height: u32,
        /// Output width.
        width: u32,
    },
}

/// The preprocessing settings of a checkpoint, mirroring `CLIPImageProcessor`'s attributes.
///
/// Defaults (for keys absent from the file) are `CLIPImageProcessor`'s class defaults: resize
/// shortest edge 224 with bicubic, center crop 224×224, rescale by 1/255, normalise with openai's
/// mean and std, convert to RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// Convert to RGB (compositing transparency onto white). `do_convert_rgb`.
    pub do_convert_rgb: bool,
    /// Resize at all. `do_resize`.
    pub do_resize: bool,
    /// The resize target. `size`.
    pub size: ResizeTarget,
    /// The resampling filter. `resample` (a `PIL.Image.Resampling` number).
    pub resample: Filter,
    /// Center-crop at all. `do_center_crop`.
    pub do_center_crop: bool,
    /// Crop size as `(height, width)`. `crop_size`.
    pub crop_size: (u32, u32),
    /// Multiply by `rescale_factor`. `do_rescale`.
    pub do_rescale: bool,
    /// The rescale factor (1/255). `rescale_factor`.
    pub rescale_factor: f64,
    /// Normalise with `image_mean`/`image_std`. `do_normalize`.
    pub do_normalize: bool,
    /// Per-channel mean (RGB). `image_mean`.
    pub image_mean: [f64; 3],
    /// Per-channel standard deviation (RGB). `image_std`.
    pub image_std: [f64; 3],
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            do_convert_rgb: true,
            do_resize: true,
            size: ResizeTarget::ShortestEdge(224),
            resample: Filter::Bicubic,
            do_center_crop: true,
            crop_size: (224, 224),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: OPENAI_CLIP_MEAN,
            image_std: OPENAI_CLIP_STD,
        }
    }
}

/// `IMAGENET_STANDARD_MEAN` / `IMAGENET_STANDARD_STD` in `transformers`: SigLIP's.
pub const IMAGENET_STANDARD_MEAN: [f64; 3] = [0.5, 0.5, 0.5];
/// See [`IMAGENET_STANDARD_MEAN`].
pub const IMAGENET_STANDARD_STD: [f64; 3] = [0.5, 0.5, 0.5];

impl PreprocessConfig {
    /// `SiglipImageProcessor`'s class defaults: resize to exactly 224×224 with bicubic, no
    /// center crop, rescale by 1/255, normalise with mean and std 0.5, convert to RGB.
    pub fn siglip_defaults() -> Self {
        Self {
            size: ResizeTarget::Exact {
                height: 224,
                width: 224,
            },
            do_center_crop: false,
            image_mean: IMAGENET_STANDARD_MEAN,
            image_std: IMAGENET_STANDARD_STD,
            ..Self::default()
        }
    }

    /// Reads `dir/preprocessor_config.json`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_file(dir.as_ref().join("preprocessor_config.json"))
    }

    /// Reads a `preprocessor_config.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses the contents of a `preprocessor_config.json`; `path` only labels errors.
    pub fn from_json(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let err = |message: String| Error::PreprocessorConfig {
            path: path.clone(),
            message,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| err("the top level is not a JSON object".into()))?;
        let p = Parser { obj, path: &path };
        // Keys a file omits take its processor class's defaults (`image_processor_type`).
        let d = match obj.get("image_processor_type").and_then(Value::as_str) {
            Some(class) if class.starts_with("Siglip") => Self::siglip_defaults(),
            _ => Self::default(),
        };
        let size = match obj.get("size") {
            None | Some(Value::Null) => d.size,
            Some(v) => p.resize_target(v)?,
        };
        let crop_size = match obj.get("crop_size") {
            None | Some(Value::Null) => d.crop_size,
            Some(v) => p.crop_size(v)?,
        };
        let resample = match obj.get("resample") {
            None | Some(Value::Null) => d.resample,
            Some(v) => {
                let n = v
                    .as_u64()
                    .ok_or_else(|| err(format!("`resample` must be an integer, got {v}")))?;
                Filter::from_pil(n).ok_or_else(|| {
                    err(format!(
                        "`resample` = {n} is not supported (1 lanczos, 2 bilinear, 3 bicubic, \
                         4 box, 5 hamming; nearest (0) is not implemented)"
                    ))
                })?
            }
        };
        let config = Self {
            do_convert_rgb: p.bool("do_convert_rgb", d.do_convert_rgb)?,
            do_resize: p.bool("do_resize", d.do_resize)?,
            size,
            resample,
            do_center_crop: p.bool("do_center_crop", d.do_center_crop)?,
            crop_size,
            do_rescale: p.bool("do_rescale", d.do_rescale)?,
            rescale_factor: p.f64("rescale_factor", d.rescale_factor)?,
            do_normalize: p.bool("do_normalize", d.do_normalize)?,
            image_mean: p.triple("image_mean", d.image_mean)?,
            image_std: p.triple("image_std", d.image_std)?,
        };
        if config.image_std.contains(&0.0) {
            return Err(err("`image_std` contains 0".into()));
        }
        Ok(config)
    }

    /// The `(height, width)` of every output, when it does not depend on the input (center crop
    /// on, or an exact resize).
    pub fn output_size(&self) -> Option<(u32, u32)> {
        if self.do_center_crop {
            Some(self.crop_size)
        } else if let (true, ResizeTarget::Exact { height, width }) = (self.do_resize, self.size) {
            Some((height, width))
        } else {
            None
        }
    }
}

struct Parser<'a> {
    obj: &'a Map<String, Value>,
    path: &'a PathBuf,
}

impl Parser<'_> {
    fn err(&self, message: String) -> Error {
        Error::PreprocessorConfig {
            path: self.path.clone(),
            message,
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(format!("`{key}` must be a boolean, got {v}"))),
        }
    }

    fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("`{key}` must be a number, got {v}"))),
        }
    }

    /// A per-channel value: a list of three numbers, or one number for all channels.
    fn triple(&self, key: &str, default: [f64; 3]) -> Result<[f64; 3]> {
        let bad = |v: &Value| self.err(format!("`{key}` must be 3 numbers, got {v}"));
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v @ Value::Number(_)) => {
                let x = v.as_f64().ok_or_else(|| bad(v))?;
                Ok([x; 3])
            }
            Some(v @ Value::Array(a)) if a.len() == 3 => {
                let mut out = [0.0; 3];
                for (o, x) in out.iter_mut().zip(a) {
                    *o = x.as_f64().ok_or_else(|| bad(v))?;
                }
                Ok(out)
            }
            Some(v) => Err(bad(v)),
        }
    }

    fn dim(&self, key: &str, v: &Value) -> Result<u32> {
        v.as_u64()
            .filter(|&n| n > 0 && n <= u64::from(u32::MAX))
            .map(|n| n as u32)
            .ok_or_else(|| self.err(format!("`{key}` must be a positive integer, got {v}")))
    }

    /// `size`: an integer (legacy: shortest edge, as `get_size_dict(size, default_to_square=False)`
    /// reads it), `{"shortest_edge": n}` or `{"height": h, "width": w}`.
    fn resize_target(&self, v: &Value) -> Result<ResizeTarget> {
        match v {
            Value::Number(_) => Ok(ResizeTarget::ShortestEdge(self.dim("size", v)?)),
            Value::Object(m) => {
                let get = |k: &str| m.get(k).filter(|v| !v.is_null());
                if get("longest_edge").is_some() || get("max_height").is_some() {
                    return Err(self.err(format!(
                        "`size` = {v}: only `shortest_edge` or `height`+`width` are supported"
                    )));
                }
                match (get("shortest_edge"), get("height"), get("width")) {
                    (Some(s), None, None) => Ok(ResizeTarget::ShortestEdge(
                        self.dim("size.shortest_edge", s)?,
                    )),
                    (None, Some(h), Some(w)) => Ok(ResizeTarget::Exact {
                        height: self.dim("size.height", h)?,
                        width: self.dim("size.width", w)?,
                    }),
                    _ => Err(self.err(format!(
                        "`size` = {v}: expected `shortest_edge` or `height` and `width`"
                    ))),
                }
            }
            _ => Err(self.err(format!("`size` must be an integer or an object, got {v}"))),
        }
    }

    /// `crop_size`: an integer (square, as `get_size_dict(crop_size, default_to_square=True)`)
    /// or `{"height": h, "width": w}`.
    fn crop_size(&self, v: &Value) -> Result<(u32, u32)> {
        match v {
            Value::Number(_) => {
                let n = self.dim("crop_size", v)?;
                Ok((n, n))
            }
            Value::Object(m) => match (m.get("height"), m.get("width")) {
                (Some(h), Some(w)) => Ok((
                    self.dim("crop_size.height", h)?,
                    self.dim("crop_size.width", w)?,
                )),
                _ => Err(self.err(format!("`crop_size` = {v}: expected `height` and `width`"))),
            },
            _ => Err(self.err(format!(
                "`crop_size` must be an integer or an object, got {v}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_openai_config() {
        let c = PreprocessConfig::from_json(
            r#"{"crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
                "feature_extractor_type": "CLIPFeatureExtractor",
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}"#,
            "legacy.json",
        )
        .unwrap();
        assert_eq!(c, PreprocessConfig::default());
        assert_eq!(c.output_size(), Some((224, 224)));
    }

    #[test]
    fn siglip_class_defaults() {
        let c = PreprocessConfig::from_json(
            r#"{"image_processor_type": "SiglipImageProcessor", "size": {"height": 384, "width": 384}}"#,
            "siglip.json",
        )
        .unwrap();
        assert!(!c.do_center_crop);
        assert_eq!(c.image_mean, [0.5; 3]);
        assert_eq!(c.output_size(), Some((384, 384)));
        assert_eq!(c.resample, Filter::Bicubic);
    }

    #[test]
    fn chinese_clip_fixed_size_without_crop() {
        // `ChineseCLIPImageProcessor`'s class defaults are CLIP's (shortest edge 224, crop
        // 224); Chinese-CLIP checkpoints configure a fixed size and no crop, which resizes to
        // exactly that size, ignoring the aspect ratio.
        let c = PreprocessConfig::from_json(
            r#"{"image_processor_type": "ChineseCLIPImageProcessor", "do_center_crop": false,
                "size": {"height": 224, "width": 224}, "crop_size": {"height": 224, "width": 224}}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(
            c.size,
            ResizeTarget::Exact {
                height: 224,
                width: 224
            }
        );
        assert!(!c.do_center_crop);
        assert_eq!(c.output_size(), Some((224, 224)));
        assert_eq!(c.image_mean, OPENAI_CLIP_MEAN);
        let defaults = PreprocessConfig::from_json(
            r#"{"image_processor_type": "ChineseCLIPImageProcessor"}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(defaults, PreprocessConfig::default());
    }

    #[test]
    fn modern_config_and_errors() {
        let c = PreprocessConfig::from_json(
            r#"{"size": {"shortest_edge": 64}, "crop_size": {"height": 56, "width": 60},
                "rescale_factor": 0.5, "do_convert_rgb": false}"#,
            "x.json",
        )
        .unwrap();
        assert_eq!(c.size, ResizeTarget::ShortestEdge(64));
        assert_eq!(c.crop_size, (56, 60));
        assert_eq!(c.rescale_factor, 0.5);
        assert!(!c.do_convert_rgb);

        for bad in [
            r#"{"size": "big"}"#,
            r#"{"resample": 0}"#,
            r#"{"image_mean": [1, 2]}"#,
            r#"{"crop_size": {"height": 3}}"#,
            r#"{"do_resize": 1}"#,
            r#"{"size": {"shortest_edge": 224, "longest_edge": 300}}"#,
            "[1]",
            "{",
        ] {
            let e = PreprocessConfig::from_json(bad, "bad.json").unwrap_err();
            assert!(matches!(e, Error::PreprocessorConfig { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("bad.json"));
        }
    }
}
