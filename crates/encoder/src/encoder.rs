//! The high-level encoder: a checkpoint directory in, `Vec<f32>` embeddings out, for every
//! supported architecture ([`Architecture`]: CLIP, SigLIP).

use std::path::{Path, PathBuf};

use burn::prelude::*;

use glimpse_kernels::{Isa, NativeText, NativeVision, Precision};

use crate::architecture::{Architecture, ModelConfig};
use crate::bert::BertTokenizer;
use crate::checkpoint::Checkpoint;
use crate::chinese_clip::ChineseClipModel;
use crate::clip::keys::ClipKeys;
use crate::clip::model::{ClipModel, Towers};
use crate::clip::pack::pack_checkpoint;
use crate::error::{Error, Result};
use crate::preprocess::Pixels;
use crate::siglip::{SiglipModel, SiglipTokenizer};
use crate::tokenize::{ClipTokenizer, TextTokenizer};

/// Inputs per forward pass; larger calls are split into chunks of this many.
const MAX_BATCH: usize = 32;

/// Which implementation computes the embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Engine {
    /// The native CPU path ([`crate::kernels`]) when the device is burn's flex CPU device and the
    /// CPU has AVX-512 or AVX2 + FMA, or when [`Precision::Bf16`] is asked for; burn otherwise.
    #[default]
    Auto,
    /// Always the native CPU path (its portable kernels where AVX2 is missing). The weights
    /// are read from the device once, so this works with any device.
    Native,
    /// Always the burn modules on the device (the reference; [`Precision::F32`] only).
    Burn,
}

/// How [`ClipEncoder::load_with`] prepares a checkpoint.
///
/// ```
/// use glimpse_encoder::{Engine, LoadOptions, Precision};
/// let fast = LoadOptions::default().precision(Precision::Bf16);
/// let reference = LoadOptions::default().engine(Engine::Burn);
/// // What an AVX2 laptop runs, on any x86 CPU (like GLIMPSE_ISA=avx2).
/// let laptop = LoadOptions::default().isa(glimpse_encoder::kernels::Isa::Avx2);
/// assert!(laptop.kernel_set() <= glimpse_encoder::kernels::Isa::Avx2);
/// # let _ = (fast, reference);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[must_use]
pub struct LoadOptions {
    /// Which towers to load.
    pub towers: Towers,
    /// Precision of the native path (default f32).
    pub precision: Precision,
    /// Which implementation runs (default [`Engine::Auto`]).
    pub engine: Engine,
    /// A cap on the native engine's kernel set (default: none, the CPU's best, itself capped
    /// by the `GLIMPSE_ISA` environment variable).
    pub isa: Option<Isa>,
}

impl LoadOptions {
    /// Sets the towers.
    pub fn towers(mut self, towers: Towers) -> Self {
        self.towers = towers;
        self
    }

    /// Sets the precision.
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Sets the engine.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Caps the native engine's kernel set (as `GLIMPSE_ISA` does for the whole process):
    /// `Isa::Avx2` runs what an AVX2 laptop runs on any newer x86 CPU. A cap above what the
    /// CPU has changes nothing.
    pub fn isa(mut self, cap: Isa) -> Self {
        self.isa = Some(cap);
        self
    }

    /// The kernel set the native engine runs with these options on this CPU:
    /// [`Isa::detect`] capped by [`isa`](Self::isa).
    pub fn kernel_set(&self) -> Isa {
        let best = Isa::detect();
        self.isa.map_or(best, |cap| best.min(cap))
    }
}

/// The burn modules of a loaded checkpoint (towers served by the native engine are absent).
// One per loaded encoder, never in a collection: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum LoadedModel {
    /// `CLIPModel`.
    Clip(ClipModel),
    /// `SiglipModel`.
    Siglip(SiglipModel),
    /// `ChineseCLIPModel`.
    ChineseClip(ChineseClipModel),
}

impl LoadedModel {
    /// `exp(logit_scale)`: the multiplier of cosines in zero-shot logits.
    pub fn logit_scale_exp(&self) -> f32 {
        match self {
            LoadedModel::Clip(m) => m.logit_scale_exp(),
            LoadedModel::Siglip(m) => m.logit_scale.exp(),
            LoadedModel::ChineseClip(m) => m.logit_scale.exp(),
        }
    }

    /// SigLIP's `logit_bias`; `None` for CLIP.
    pub fn logit_bias(&self) -> Option<f32> {
        match self {
            LoadedModel::Clip(_) | LoadedModel::ChineseClip(_) => None,
            LoadedModel::Siglip(m) => Some(m.logit_bias),
        }
    }

    /// The CLIP model, if this is one.
    pub fn as_clip(&self) -> Option<&ClipModel> {
        match self {
            LoadedModel::Clip(m) => Some(m),
            _ => None,
        }
    }

    /// The SigLIP model, if this is one.
    pub fn as_siglip(&self) -> Option<&SiglipModel> {
        match self {
            LoadedModel::Siglip(m) => Some(m),
            _ => None,
        }
    }

    /// The Chinese-CLIP model, if this is one.
    pub fn as_chinese_clip(&self) -> Option<&ChineseClipModel> {
        match self {
            LoadedModel::ChineseClip(m) => Some(m),
            _ => None,
        }
    }

    fn has_vision(&self) -> bool {
        match self {
            LoadedModel::Clip(m) => m.vision.is_some(),
            LoadedModel::Siglip(m) => m.vision.is_some(),
            LoadedModel::ChineseClip(m) => m.vision.is_some(),
        }
    }
}

/// A checkpoint (CLIP or SigLIP, see [`Architecture`]) loaded for embedding: config, weights
/// on a device and (with the text tower) the tokenizer.
///
/// Embeddings are L2-normalised `Vec<f32>` of length [`Encoder::dim`]; the cosine similarity
/// of an image and a text is their dot product. [`Encoder::relevance`] turns a cosine into
/// SigLIP's calibrated probability (CLIP's scores are not calibrated: `None`).
#[derive(Debug)]
pub struct Encoder {
    dir: PathBuf,
    config: ModelConfig,
    model: LoadedModel,
    native_text: Option<NativeText>,
    /// Chinese-CLIP's text tower on the native engine.
    native_bert: Option<glimpse_kernels::post_ln::NativeBertText>,
    native_vision: Option<NativeVision>,
    options: LoadOptions,
    tokenizer: Option<TextTokenizer>,
    device: Device,
}

/// The name the encoder had when it loaded only CLIP; the same type.
pub type ClipEncoder = Encoder;

impl Encoder {
    /// Loads a checkpoint in Hugging Face layout from `model_dir`: `config.json`,
    /// `model.safetensors` (or `model.safetensors.index.json` and its shards) and, for the text
    /// tower, `tokenizer.json` (SigLIP: and `tokenizer_config.json` for the pad token). The
    /// architecture is read from `config.json` ([`Architecture::detect`]). Only the `towers`
    /// asked for are read.
    ///
    /// # Errors
    /// [`Error::Io`] for a missing file, [`Error::Config`],
    /// [`Error::UnsupportedArchitecture`], [`Error::Checkpoint`],
    /// [`Error::MissingWeight`], [`Error::UnexpectedWeight`], [`Error::ShapeMismatch`],
    /// [`Error::Tokenizer`].
    ///
    /// On burn's flex CPU device, on a CPU with AVX-512 or AVX2, the towers run on the native CPU path
    /// in f32 ([`Engine::Auto`]); see [`load_with`](Self::load_with) to choose.
    pub fn load(model_dir: impl AsRef<Path>, device: &Device, towers: Towers) -> Result<Self> {
        Self::load_with(model_dir, device, &LoadOptions::default().towers(towers))
    }

    /// Loads a checkpoint as [`load`](Self::load) does, with a choice of engine and precision.
    ///
    /// A tower served by the native path is packed straight from the checkpoint and keeps only
    /// its packed weights: no burn modules are built for it (so [`model`](Self::model) holds no
    /// such tower), and the weights live in memory once.
    ///
    /// # Errors
    /// As [`load`](Self::load); [`Error::InvalidInput`] for [`Precision::Bf16`] or
    /// [`Precision::Int8`] with [`Engine::Burn`].
    pub fn load_with(
        model_dir: impl AsRef<Path>,
        device: &Device,
        options: &LoadOptions,
    ) -> Result<Self> {
        let dir = model_dir.as_ref().to_owned();
        let towers = options.towers;
        let native = match (options.engine, options.precision) {
            (Engine::Burn, Precision::Bf16 | Precision::Int8) => {
                return Err(Error::InvalidInput(format!(
                    "{:?} precision needs the native engine (Engine::Auto or Engine::Native)",
                    options.precision
                )))
            }
            (Engine::Burn, Precision::F32) => false,
            (Engine::Native, _) | (Engine::Auto, Precision::Bf16 | Precision::Int8) => true,
            (Engine::Auto, Precision::F32) => {
                native_by_default(device) && options.kernel_set().vectorised()
            }
        };
        let config = ModelConfig::from_file(dir.join("config.json"))?;
        let checkpoint = Checkpoint::open_dir(&dir)?;
        let isa = options.kernel_set();
        // bf16 runs only where it is faster than f32 (see `Precision::runs_on`).
        let precision = options.precision.runs_on(isa);
        if precision != options.precision {
            eprintln!(
                "glimpse: {:?} asked for, but the {isa:?} kernels have no native bf16 \
                 multiply (it would be slower than f32): running {precision:?}",
                options.precision
            );
        }
        let options = &LoadOptions {
            precision,
            ..*options
        };
        let mut native_bert = None;
        let (model, native_text, native_vision, tokenizer) = match &config {
            ModelConfig::Clip(clip) => {
                // The tokenizer (a large JSON file) loads on another thread while the weights
                // are read.
                let (tokenizer, weights) = rayon::join(
                    || {
                        towers
                            .text()
                            .then(|| ClipTokenizer::from_dir(&dir))
                            .transpose()
                    },
                    || -> Result<_> {
                        if !native {
                            let model = checkpoint.load_model(clip, towers, device)?;
                            return Ok((model, None, None));
                        }
                        // Both towers pack straight from the checkpoint (no burn modules): the
                        // cold start of a query process. Only `logit_scale` is read outside a
                        // tower.
                        let (native_vision, native_text) =
                            pack_checkpoint(&checkpoint, clip, towers, options.precision, isa)?;
                        let logit_scale = ClipKeys::new(clip, towers).logit_scale;
                        let model = ClipModel {
                            text: None,
                            vision: None,
                            logit_scale: checkpoint
                                .read_f32(&logit_scale.key, &logit_scale.shape)?[0],
                        };
                        Ok((model, native_text, native_vision))
                    },
                );
                let (model, native_text, native_vision) = weights?;
                let tokenizer = tokenizer?.map(TextTokenizer::Clip);
                (
                    LoadedModel::Clip(model),
                    native_text,
                    native_vision,
                    tokenizer,
                )
            }
            ModelConfig::ChineseClip(cc) => {
                let tokenizer = towers
                    .text()
                    .then(|| BertTokenizer::from_dir(&dir, cc.text_config.max_position_embeddings))
                    .transpose()?
                    .map(TextTokenizer::Bert);
                if native {
                    let packed = crate::chinese_clip::pack::pack_checkpoint(
                        &checkpoint,
                        cc,
                        towers,
                        options.precision,
                        isa,
                    )?;
                    native_bert = packed.text;
                    let model = ChineseClipModel {
                        text: None,
                        vision: None,
                        logit_scale: packed.logit_scale,
                    };
                    (
                        LoadedModel::ChineseClip(model),
                        None,
                        packed.vision,
                        tokenizer,
                    )
                } else {
                    let model = checkpoint.load_chinese_clip(cc, towers, device)?;
                    (LoadedModel::ChineseClip(model), None, None, tokenizer)
                }
            }
            ModelConfig::Siglip(siglip) => {
                // The native text tower needs the tokenizer's pad id: tokenizer first.
                let tokenizer = towers
                    .text()
                    .then(|| {
                        SiglipTokenizer::from_dir(&dir, siglip.text_config.max_position_embeddings)
                    })
                    .transpose()?;
                let pad_id = tokenizer.as_ref().map_or(0, SiglipTokenizer::pad_id);
                let tokenizer = tokenizer.map(TextTokenizer::Siglip);
                if native {
                    let packed = crate::siglip::pack::pack_checkpoint(
                        &checkpoint,
                        siglip,
                        towers,
                        pad_id,
                        options.precision,
                        isa,
                    )?;
                    let model = SiglipModel {
                        text: None,
                        vision: None,
                        logit_scale: packed.logit_scale,
                        logit_bias: packed.logit_bias,
                    };
                    (
                        LoadedModel::Siglip(model),
                        packed.text,
                        packed.vision,
                        tokenizer,
                    )
                } else {
                    let model = checkpoint.load_siglip(siglip, towers, device)?;
                    (LoadedModel::Siglip(model), None, None, tokenizer)
                }
            }
        };
        Ok(Self {
            dir,
            config,
            model,
            native_text,
            native_bert,
            native_vision,
            options: *options,
            tokenizer,
            device: device.clone(),
        })
    }

    /// The engine that runs the loaded towers: [`Engine::Native`] or [`Engine::Burn`] (never
    /// [`Engine::Auto`]).
    pub fn engine(&self) -> Engine {
        match self.native_text.is_some()
            || self.native_bert.is_some()
            || self.native_vision.is_some()
        {
            true => Engine::Native,
            false => Engine::Burn,
        }
    }

    /// The precision of the matrix products that run (asking for [`Precision::Bf16`] on a
    /// CPU without AVX-512 BF16 runs f32, see [`Precision::runs_on`]).
    pub fn precision(&self) -> Precision {
        self.options.precision
    }

    /// The kernel set of the native engine ([`LoadOptions::kernel_set`]); `None` when burn
    /// runs the towers.
    pub fn kernel_set(&self) -> Option<Isa> {
        (self.engine() == Engine::Native).then(|| self.options.kernel_set())
    }

    /// The directory the checkpoint was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The checkpoint's architecture.
    pub fn architecture(&self) -> Architecture {
        self.config.architecture()
    }

    /// The model (for tensor-level use). With the native engine ([`engine`](Self::engine))
    /// it holds no towers, only the calibration scalars: their weights live in the native
    /// path.
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// `exp(logit_scale)`: the multiplier of cosines in zero-shot logits (100 for OpenAI's
    /// CLIP checkpoints).
    pub fn logit_scale_exp(&self) -> f32 {
        self.model.logit_scale_exp()
    }

    /// The calibrated relevance of a cosine similarity between a text and an image embedding:
    /// SigLIP's `sigmoid(exp(logit_scale)·cosine + logit_bias)`, the model's probability that
    /// they match (in `0..=1`, comparable across queries). `None` for CLIP, whose softmax
    /// training leaves cosines uncalibrated: rank by them, but a threshold on them means
    /// different things for different queries and models.
    pub fn relevance(&self, cosine: f32) -> Option<f32> {
        let bias = self.model.logit_bias()?;
        let scale = match &self.model {
            LoadedModel::Siglip(m) => m.logit_scale,
            LoadedModel::Clip(_) | LoadedModel::ChineseClip(_) => return None,
        };
        Some(crate::siglip::relevance(cosine, scale, bias))
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The embedding width (CLIP's `projection_dim`, SigLIP's vision `hidden_size`).
    pub fn dim(&self) -> usize {
        self.config.embedding_dim()
    }

    /// The side of the square pixel input (`vision_config.image_size`).
    pub fn image_size(&self) -> usize {
        self.config.image_size()
    }

    /// The tokenizer, or [`Error::TowerNotLoaded`] without the text tower.
    pub fn tokenizer(&self) -> Result<&TextTokenizer> {
        self.tokenizer
            .as_ref()
            .ok_or(Error::TowerNotLoaded { tower: "text" })
    }

    /// Embeds images given as preprocessed pixel values: each slice is one image, `[3, H, W]`
    /// row-major with `H = W =` [`image_size`](Self::image_size), as `CLIPImageProcessor`
    /// produces them.
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] for a slice of the wrong length;
    /// [`Error::Execution`] if the backend fails.
    pub fn embed_pixel_values<P: AsRef<[f32]>>(&self, images: &[P]) -> Result<Vec<Vec<f32>>> {
        if self.native_vision.is_none() && !self.model.has_vision() {
            return Err(Error::TowerNotLoaded { tower: "vision" });
        }
        let (c, s) = (self.config.num_channels(), self.config.image_size());
        let len = c * s * s;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(MAX_BATCH) {
            let mut flat = Vec::with_capacity(chunk.len() * len);
            for (i, image) in chunk.iter().enumerate() {
                let image = image.as_ref();
                if image.len() != len {
                    return Err(Error::InvalidInput(format!(
                        "image {} has {} pixel values; the model takes [{c}, {s}, {s}] = {len}",
                        out.len() + i,
                        image.len()
                    )));
                }
                flat.extend_from_slice(image);
            }
            if let Some(native) = &self.native_vision {
                let embedded = native.encode(&flat, chunk.len());
                out.extend(embedded.chunks(self.dim()).map(<[f32]>::to_vec));
                continue;
            }
            let pixels =
                Tensor::<4>::from_data(TensorData::new(flat, [chunk.len(), c, s, s]), &self.device);
            let embedded = match &self.model {
                LoadedModel::Clip(m) => m.encode_images(pixels)?,
                LoadedModel::Siglip(m) => m.encode_images(pixels)?,
                LoadedModel::ChineseClip(m) => m.encode_images(pixels)?,
            };
            out.extend(rows(embedded)?);
        }
        Ok(out)
    }

    /// Embeds preprocessed images (see [`crate::Preprocessor`]).
    ///
    /// # Errors
    /// As [`embed_pixel_values`](Self::embed_pixel_values); [`Error::InvalidInput`] for pixels
    /// whose size is not the model's.
    pub fn embed_pixels(&self, images: &[Pixels]) -> Result<Vec<Vec<f32>>> {
        let s = self.image_size();
        if let Some((i, p)) = images
            .iter()
            .enumerate()
            .find(|(_, p)| p.height != s || p.width != s)
        {
            return Err(Error::InvalidInput(format!(
                "image {i} is {}x{} pixels; the model takes {s}x{s}",
                p.width, p.height
            )));
        }
        let values: Vec<&[f32]> = images.iter().map(|p| p.data.as_slice()).collect();
        self.embed_pixel_values(&values)
    }

    /// Embeds token id sequences as [`TextTokenizer::encode`] returns them (CLIP: unpadded;
    /// SigLIP: padded to the context, and shorter sequences are padded with the tokenizer's
    /// pad id here).
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] for an empty or over-long sequence or
    /// an id outside the vocabulary; [`Error::Execution`] if the backend fails.
    pub fn embed_token_ids<S: AsRef<[u32]>>(&self, ids: &[S]) -> Result<Vec<Vec<f32>>> {
        match (&self.native_text, &self.native_bert) {
            (Some(native), _) => {
                for (i, row) in ids.iter().enumerate() {
                    native.check_ids(row.as_ref(), i)?;
                }
            }
            (None, Some(native)) => {
                for (i, row) in ids.iter().enumerate() {
                    native.bert().check_ids(row.as_ref(), i)?;
                }
            }
            (None, None) => match &self.model {
                LoadedModel::Clip(m) => {
                    let tower = m.text_tower()?;
                    for (i, row) in ids.iter().enumerate() {
                        tower.check_ids(row.as_ref(), i)?;
                    }
                }
                // Checked by `encode_texts`, batch by batch.
                LoadedModel::Siglip(m) => {
                    m.text_tower()?;
                }
                LoadedModel::ChineseClip(m) => {
                    m.text_tower()?;
                }
            },
        }
        // Batch sequences of similar length together (each batch runs as long as its longest
        // sequence), then restore the caller's order.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].as_ref().len());
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(MAX_BATCH) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_ref()).collect();
            let embedded = match &self.native_text {
                None if self.native_bert.is_some() => self
                    .native_bert
                    .as_ref()
                    .expect("checked")
                    .encode(&batch, None)?
                    .chunks(self.dim())
                    .map(<[f32]>::to_vec)
                    .collect(),
                Some(native) => native
                    .encode(&batch)?
                    .chunks(self.dim())
                    .map(<[f32]>::to_vec)
                    .collect(),
                None => match &self.model {
                    LoadedModel::Clip(m) => rows(m.encode_texts(&batch)?)?,
                    LoadedModel::Siglip(m) => {
                        let pad_id = self.tokenizer()?.pad_id();
                        rows(m.encode_texts(&batch, pad_id)?)?
                    }
                    LoadedModel::ChineseClip(m) => {
                        rows(m.encode_texts(&batch, self.tokenizer()?.pad_id())?)?
                    }
                },
            };
            for (&i, e) in chunk.iter().zip(embedded) {
                out[i] = e;
            }
        }
        Ok(out)
    }

    /// Tokenizes and embeds texts.
    ///
    /// # Errors
    /// As [`embed_token_ids`](Self::embed_token_ids), plus [`Error::Tokenizer`].
    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenizer()?.encode_batch(texts)?;
        self.embed_token_ids(&ids)
    }
}

/// Whether [`Engine::Auto`] picks the native path for f32 on `device`: burn's flex CPU
/// device (without autodiff) on a CPU with AVX-512 or AVX2 + FMA (`GLIMPSE_ISA` caps what
/// counts; `portable` keeps burn).
pub(crate) fn native_by_default(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        *device == Device::flex() && !device.is_autodiff() && Isa::detect().vectorised()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

/// Reads a `[batch, dim]` tensor back as rows.
fn rows(tensor: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, dim] = tensor.dims();
    let data = tensor
        .try_into_data()
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    let values = data
        .try_to_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    Ok(values.chunks(dim).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Encoder>();
    }
}
