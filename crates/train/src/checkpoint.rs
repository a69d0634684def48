//! Writing a model as a Hugging Face CLIP checkpoint: the exact inverse of the loader.
//!
//! A checkpoint folder holds `config.json` (`CLIPConfig`), `model.safetensors` (the
//! `CLIPModel` state dict from [`glimpse_encoder::clip::state_dict`], which walks the same key
//! map as the loaders, `glimpse_encoder::clip::keys` —
//! linear weights `[out, in]`, the patch embedding as a `[hidden, channels, patch, patch]`
//! convolution kernel, `logit_scale` a 0-d tensor), `preprocessor_config.json`
//! (`CLIPImageProcessor`) and the tokenizer files, so that this crate's loader and
//! `transformers`' `CLIPModel.from_pretrained` both read it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::f16;
use glimpse_encoder::clip::ClipModel;
pub use glimpse_encoder::clip::{state_dict, StateDict};
use glimpse_encoder::config::ClipConfig;
use glimpse_encoder::error::{Error, Result};
use glimpse_encoder::preprocess::{Filter, PreprocessConfig, ResizeTarget};

/// The float type of the weights in `model.safetensors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveDType {
    /// 32-bit floats: exactly the trained values.
    #[default]
    F32,
    /// 16-bit floats: half the size; the loader widens them back to `f32` (values rounded to
    /// 11 significant bits).
    F16,
}

impl SaveDType {
    fn name(self) -> &'static str {
        match self {
            SaveDType::F32 => "F32",
            SaveDType::F16 => "F16",
        }
    }

    fn torch_name(self) -> &'static str {
        match self {
            SaveDType::F32 => "float32",
            SaveDType::F16 => "float16",
        }
    }
}

/// Serialises a state dict in the safetensors format (header sorted by key, data in key
/// order, `{"format": "pt"}` metadata as PyTorch writes it).
pub fn safetensors_bytes(state: &StateDict, dtype: SaveDType) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
    let mut data = Vec::new();
    for (key, (shape, values)) in state {
        let begin = data.len();
        match dtype {
            SaveDType::F32 => values
                .iter()
                .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
            SaveDType::F16 => values
                .iter()
                .for_each(|v| data.extend_from_slice(&f16::from_f32(*v).to_bits().to_le_bytes())),
        }
        header.insert(
            key.clone(),
            serde_json::json!({
                "dtype": dtype.name(),
                "shape": shape,
                "data_offsets": [begin, data.len()],
            }),
        );
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(header)).expect("JSON");
    // Pad the header with spaces so that the data starts 8-byte aligned, as `safetensors` does.
    while !(header.len() + 8).is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    out
}

/// The `config.json` of a `CLIPModel` with this config, as `transformers` writes it (the
/// fields [`ClipConfig`] reads, plus `architectures`, `model_type`s and the dtype).
pub fn config_json(config: &ClipConfig, dtype: SaveDType) -> serde_json::Value {
    let mut value = serde_json::to_value(config).expect("the config serialises");
    let object = value
        .as_object_mut()
        .expect("a struct serialises to an object");
    object.insert("architectures".into(), serde_json::json!(["CLIPModel"]));
    object.insert("model_type".into(), "clip".into());
    object.insert("torch_dtype".into(), dtype.torch_name().into());
    object.insert("initializer_factor".into(), 1.0.into());
    for (tower, kind) in [
        ("text_config", "clip_text_model"),
        ("vision_config", "clip_vision_model"),
    ] {
        if let Some(serde_json::Value::Object(t)) = object.get_mut(tower) {
            t.insert("model_type".into(), kind.into());
            t.insert("projection_dim".into(), config.projection_dim.into());
        }
    }
    value
}

/// The `preprocessor_config.json` of a `CLIPImageProcessor` with this config.
pub fn preprocessor_json(config: &PreprocessConfig) -> serde_json::Value {
    let size = match config.size {
        ResizeTarget::ShortestEdge(s) => serde_json::json!({ "shortest_edge": s }),
        ResizeTarget::Exact { height, width } => {
            serde_json::json!({ "height": height, "width": width })
        }
    };
    let resample = match config.resample {
        Filter::Lanczos => 1,
        Filter::Bilinear => 2,
        Filter::Bicubic => 3,
        Filter::Box => 4,
        Filter::Hamming => 5,
    };
    serde_json::json!({
        "crop_size": { "height": config.crop_size.0, "width": config.crop_size.1 },
        "do_center_crop": config.do_center_crop,
        "do_convert_rgb": config.do_convert_rgb,
        "do_normalize": config.do_normalize,
        "do_rescale": config.do_rescale,
        "do_resize": config.do_resize,
        "image_mean": config.image_mean,
        "image_std": config.image_std,
        "image_processor_type": "CLIPImageProcessor",
        "resample": resample,
        "rescale_factor": config.rescale_factor,
        "size": size,
    })
}

/// The preprocessing CLIP uses for a model taking `image_size` pixels: shortest edge resized
/// to `image_size` (bicubic), center crop `image_size`², OpenAI's mean and std.
pub fn default_preprocess(image_size: usize) -> PreprocessConfig {
    PreprocessConfig {
        size: ResizeTarget::ShortestEdge(image_size as u32),
        crop_size: (image_size as u32, image_size as u32),
        ..PreprocessConfig::default()
    }
}

/// Writes `value` as pretty JSON.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON");
    text.push('\n');
    write_file(path, text.as_bytes())
}

/// Writes a file atomically: to a temporary name in the same folder, then renamed.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

/// The tokenizer files a checkpoint folder carries (those present in the source are copied).
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
];

/// Where a checkpoint's tokenizer comes from.
#[derive(Debug, Clone)]
pub enum TokenizerSource {
    /// A folder: every file of [`TOKENIZER_FILES`] present there is copied.
    Dir(PathBuf),
    /// A single `tokenizer.json`; a `tokenizer_config.json` for `transformers` is written
    /// beside it.
    File(PathBuf),
}

/// Writes `model` as a Hugging Face checkpoint into `dir` (created if needed): `config.json`,
/// `model.safetensors`, `preprocessor_config.json` and the tokenizer files.
///
/// # Errors
/// [`Error::TowerNotLoaded`] unless both towers are loaded; [`Error::Io`] if a file cannot be
/// read or written.
pub fn save_checkpoint(
    model: &ClipModel,
    config: &ClipConfig,
    preprocess: &PreprocessConfig,
    tokenizer: &TokenizerSource,
    dir: impl AsRef<Path>,
    dtype: SaveDType,
) -> Result<()> {
    let dir = dir.as_ref();
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let state = state_dict(model, config)?;
    write_file(
        &dir.join("model.safetensors"),
        &safetensors_bytes(&state, dtype),
    )?;
    write_json(&dir.join("config.json"), &config_json(config, dtype))?;
    write_json(
        &dir.join("preprocessor_config.json"),
        &preprocessor_json(preprocess),
    )?;
    let copy = |from: &Path, name: &str| -> Result<()> {
        let to = dir.join(name);
        if from == to {
            return Ok(());
        }
        let bytes = fs::read(from).map_err(|source| Error::Io {
            path: from.to_owned(),
            source,
        })?;
        write_file(&to, &bytes)
    };
    match tokenizer {
        TokenizerSource::Dir(src) => {
            for name in TOKENIZER_FILES {
                let from = src.join(name);
                if from.exists() {
                    copy(&from, name)?;
                }
            }
        }
        TokenizerSource::File(file) => {
            copy(file, "tokenizer.json")?;
            let context = config.text_config.max_position_embeddings;
            write_json(
                &dir.join("tokenizer_config.json"),
                &serde_json::json!({
                    "bos_token": "<|startoftext|>",
                    "eos_token": "<|endoftext|>",
                    "model_max_length": context,
                    "pad_token": "<|endoftext|>",
                    "tokenizer_class": "CLIPTokenizer",
                    "unk_token": "<|endoftext|>",
                }),
            )?;
        }
    }
    Ok(())
}
