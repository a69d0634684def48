//! Writing a model as a Hugging Face CLIP checkpoint: the exact inverse of
//! [`crate::loader`].
//!
//! A checkpoint folder holds `config.json` (`CLIPConfig`), `model.safetensors` (the
//! `CLIPModel` state dict: the keys, shapes and layouts of the table in [`crate::loader`] —
//! linear weights `[out, in]`, the patch embedding as a `[hidden, channels, patch, patch]`
//! convolution kernel, `logit_scale` a 0-d tensor), `preprocessor_config.json`
//! (`CLIPImageProcessor`) and the tokenizer files, so that this crate's loader and
//! `transformers`' `CLIPModel.from_pretrained` both read it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::f16;

use crate::config::ClipConfig;
use crate::encoder::ClipEncoder;
use crate::error::{Error, Result};
use crate::model::{ClipModel, ClipTextTower, ClipVisionTower};
use crate::preprocess::{PreprocessConfig, ResizeTarget};

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

/// Tensors by checkpoint key: shape and row-major `f32` values.
pub type StateDict = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("reading a weight back: {e:?}")))
}

/// Transposes a row-major `[rows, cols]` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

struct Writer {
    state: StateDict,
}

impl Writer {
    fn put<const D: usize>(&mut self, key: String, tensor: Tensor<D>) -> Result<()> {
        let shape = tensor.dims().to_vec();
        self.state.insert(key, (shape, values(tensor)?));
        Ok(())
    }

    /// A burn `Linear` (`[in, out]`) as PyTorch's `nn.Linear` (`weight` `[out, in]`, `bias`).
    fn linear(&mut self, prefix: &str, linear: &Linear) -> Result<()> {
        let [d_in, d_out] = linear.weight.val().dims();
        let weight = transpose(&values(linear.weight.val())?, d_in, d_out);
        self.state
            .insert(format!("{prefix}.weight"), (vec![d_out, d_in], weight));
        if let Some(bias) = &linear.bias {
            self.put(format!("{prefix}.bias"), bias.val())?;
        }
        Ok(())
    }

    fn layer_norm(&mut self, prefix: &str, norm: &LayerNorm) -> Result<()> {
        self.put(format!("{prefix}.weight"), norm.gamma.val())?;
        let beta = match &norm.beta {
            Some(beta) => beta.val(),
            None => norm.gamma.val().zeros_like(),
        };
        self.put(format!("{prefix}.bias"), beta)
    }

    fn embedding(&mut self, key: &str, embedding: &Embedding) -> Result<()> {
        self.put(key.to_owned(), embedding.weight.val())
    }

    fn encoder(&mut self, prefix: &str, encoder: &ClipEncoder) -> Result<()> {
        for (n, layer) in encoder.layers.iter().enumerate() {
            let l = format!("{prefix}.encoder.layers.{n}");
            self.layer_norm(&format!("{l}.layer_norm1"), &layer.layer_norm1)?;
            let attn = &layer.self_attn;
            self.linear(&format!("{l}.self_attn.q_proj"), &attn.q_proj)?;
            self.linear(&format!("{l}.self_attn.k_proj"), &attn.k_proj)?;
            self.linear(&format!("{l}.self_attn.v_proj"), &attn.v_proj)?;
            self.linear(&format!("{l}.self_attn.out_proj"), &attn.out_proj)?;
            self.layer_norm(&format!("{l}.layer_norm2"), &layer.layer_norm2)?;
            self.linear(&format!("{l}.mlp.fc1"), &layer.mlp.fc1)?;
            self.linear(&format!("{l}.mlp.fc2"), &layer.mlp.fc2)?;
        }
        Ok(())
    }

    fn text(&mut self, tower: &ClipTextTower) -> Result<()> {
        let m = &tower.text_model;
        self.embedding(
            "text_model.embeddings.token_embedding.weight",
            &m.embeddings.token_embedding,
        )?;
        self.embedding(
            "text_model.embeddings.position_embedding.weight",
            &m.embeddings.position_embedding,
        )?;
        self.encoder("text_model", &m.encoder)?;
        self.layer_norm("text_model.final_layer_norm", &m.final_layer_norm)?;
        self.linear("text_projection", &tower.text_projection)
    }

    fn vision(&mut self, tower: &ClipVisionTower) -> Result<()> {
        let m = &tower.vision_model;
        let e = &m.embeddings;
        let patch: &Param<Tensor<2>> = &e.patch_embedding;
        let [patch_len, hidden] = patch.val().dims();
        // [c·p·p, d] → [d, c·p·p], which is [d, c, p, p] row-major.
        let kernel = transpose(&values(patch.val())?, patch_len, hidden);
        self.state.insert(
            "vision_model.embeddings.patch_embedding.weight".into(),
            (
                vec![hidden, e.num_channels, e.patch_size, e.patch_size],
                kernel,
            ),
        );
        self.put(
            "vision_model.embeddings.class_embedding".into(),
            e.class_embedding.val(),
        )?;
        self.embedding(
            "vision_model.embeddings.position_embedding.weight",
            &e.position_embedding,
        )?;
        self.layer_norm("vision_model.pre_layrnorm", &m.pre_layrnorm)?;
        self.encoder("vision_model", &m.encoder)?;
        self.layer_norm("vision_model.post_layernorm", &m.post_layernorm)?;
        self.linear("visual_projection", &tower.visual_projection)
    }
}

/// The model's `CLIPModel` state dict (keys as in [`crate::loader`]), with PyTorch layouts.
///
/// # Errors
/// [`Error::TowerNotLoaded`] unless both towers are present; [`Error::Execution`] if a weight
/// cannot be read back from the device.
pub fn state_dict(model: &ClipModel) -> Result<StateDict> {
    let mut writer = Writer {
        state: BTreeMap::new(),
    };
    writer.text(model.text_tower()?)?;
    writer.vision(model.vision_tower()?)?;
    writer
        .state
        .insert("logit_scale".into(), (vec![], vec![model.logit_scale]));
    Ok(writer.state)
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
        crate::preprocess::Filter::Lanczos => 1,
        crate::preprocess::Filter::Bilinear => 2,
        crate::preprocess::Filter::Bicubic => 3,
        crate::preprocess::Filter::Box => 4,
        crate::preprocess::Filter::Hamming => 5,
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
fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON");
    text.push('\n');
    write_file(path, text.as_bytes())
}

/// Writes a file atomically: to a temporary name in the same folder, then renamed.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
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
    let state = state_dict(model)?;
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
