//! Loading weights from a Hugging Face `model.safetensors` (or a sharded
//! `model.safetensors.index.json`).
//!
//! # Why a hand-written reader rather than `burn::store::SafetensorsStore`
//! The safetensors format is an 8-byte header length, a JSON header (name → dtype, shape, byte
//! range) and the raw little-endian data: about a hundred lines to read. Reading it here, from a
//! memory map, lets the loader
//! - build every module directly from its checkpoint tensors, with no random initialisation to
//!   throw away;
//! - check each tensor against the shape the config implies *before* converting it, and report
//!   a missing key, an unexpected key or a shape mismatch as a typed [`Error`] that names the key
//!   and both shapes;
//! - skip the other tower entirely when loading one tower: its bytes are never touched, so a
//!   text-only process pages in only the text weights;
//! - transpose PyTorch's `[out, in]` linear weights and flatten the patch convolution once, on
//!   the host, while converting (`F32`, `F16` and `BF16` are accepted and widened to `f32`).
//!
//! # Checkpoint keys → modules
//! `{T}` = `text_model`, `{V}` = `vision_model`, `{L}` = `{T|V}.encoder.layers.{i}`,
//! `i` in `0..num_hidden_layers`. Linear weights are stored `[out, in]` and transposed into
//! [`Linear::weight`](burn::nn::Linear) `[in, out]`; biases are copied as they are.
//!
//! | checkpoint key | shape | module |
//! |---|---|---|
//! | `{T}.embeddings.token_embedding.weight` | `[vocab, Dt]` | [`ClipTextEmbeddings::token_embedding`] |
//! | `{T}.embeddings.position_embedding.weight` | `[context, Dt]` | [`ClipTextEmbeddings::position_embedding`] |
//! | `{T}.embeddings.position_ids` | `[1, context]` | (buffer `arange(context)`; ignored) |
//! | `{L}.layer_norm1.{weight,bias}` | `[D]` | [`ClipEncoderLayer::layer_norm1`] `gamma`, `beta` |
//! | `{L}.self_attn.{q,k,v,out}_proj.weight` | `[D, D]` | [`ClipAttention`] `{q,k,v,out}_proj` (transposed) |
//! | `{L}.self_attn.{q,k,v,out}_proj.bias` | `[D]` | same, bias |
//! | `{L}.layer_norm2.{weight,bias}` | `[D]` | [`ClipEncoderLayer::layer_norm2`] |
//! | `{L}.mlp.fc1.weight`, `.bias` | `[I, D]`, `[I]` | [`ClipMlp::fc1`] (transposed) |
//! | `{L}.mlp.fc2.weight`, `.bias` | `[D, I]`, `[D]` | [`ClipMlp::fc2`] (transposed) |
//! | `{T}.final_layer_norm.{weight,bias}` | `[Dt]` | [`ClipTextTransformer::final_layer_norm`] |
//! | `text_projection.weight` | `[P, Dt]` | [`ClipTextTower::text_projection`] (transposed, no bias) |
//! | `{V}.embeddings.patch_embedding.weight` | `[Dv, C, p, p]` | [`ClipVisionEmbeddings::patch_embedding`] as `[C·p·p, Dv]` |
//! | `{V}.embeddings.class_embedding` | `[Dv]` | [`ClipVisionEmbeddings::class_embedding`] |
//! | `{V}.embeddings.position_embedding.weight` | `[N+1, Dv]` | [`ClipVisionEmbeddings::position_embedding`] |
//! | `{V}.embeddings.position_ids` | `[1, N+1]` | (buffer; ignored) |
//! | `{V}.pre_layrnorm.{weight,bias}` | `[Dv]` | [`ClipVisionTransformer::pre_layrnorm`] |
//! | `{V}.post_layernorm.{weight,bias}` | `[Dv]` | [`ClipVisionTransformer::post_layernorm`] |
//! | `visual_projection.weight` | `[P, Dv]` | [`ClipVisionTower::visual_projection`] (transposed, no bias) |
//! | `logit_scale` | `[]` | [`ClipModel::logit_scale`] |
//!
//! Keys of a tower that is not loaded are skipped without being read. Any other key that no
//! module consumes is an [`Error::UnexpectedWeight`].
//!
//! [`ClipTextEmbeddings::token_embedding`]: crate::text::ClipTextEmbeddings::token_embedding
//! [`ClipTextEmbeddings::position_embedding`]: crate::text::ClipTextEmbeddings::position_embedding
//! [`ClipEncoderLayer::layer_norm1`]: crate::encoder::ClipEncoderLayer::layer_norm1
//! [`ClipEncoderLayer::layer_norm2`]: crate::encoder::ClipEncoderLayer::layer_norm2
//! [`ClipAttention`]: crate::attention::ClipAttention
//! [`ClipMlp::fc1`]: crate::mlp::ClipMlp::fc1
//! [`ClipMlp::fc2`]: crate::mlp::ClipMlp::fc2
//! [`ClipTextTransformer::final_layer_norm`]: crate::text::ClipTextTransformer::final_layer_norm
//! [`ClipTextTower::text_projection`]: crate::model::ClipTextTower::text_projection
//! [`ClipVisionEmbeddings::patch_embedding`]: crate::vision::ClipVisionEmbeddings::patch_embedding
//! [`ClipVisionEmbeddings::class_embedding`]: crate::vision::ClipVisionEmbeddings::class_embedding
//! [`ClipVisionEmbeddings::position_embedding`]: crate::vision::ClipVisionEmbeddings::position_embedding
//! [`ClipVisionTransformer::pre_layrnorm`]: crate::vision::ClipVisionTransformer::pre_layrnorm
//! [`ClipVisionTransformer::post_layernorm`]: crate::vision::ClipVisionTransformer::post_layernorm
//! [`ClipVisionTower::visual_projection`]: crate::model::ClipVisionTower::visual_projection
//! [`ClipModel::logit_scale`]: crate::model::ClipModel::logit_scale

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::{bf16, f16};
use std::sync::Arc;

use memmap2::Mmap;
use serde::Deserialize;

use crate::attention::ClipAttention;
use crate::config::{ClipConfig, ClipTextConfig, ClipVisionConfig};
use crate::encoder::{ClipEncoder, ClipEncoderConfig, ClipEncoderLayer};
use crate::error::{Error, Result};
use crate::mlp::ClipMlp;
use crate::model::{ClipModel, ClipTextTower, ClipVisionTower, Towers};
use crate::text::{ClipTextEmbeddings, ClipTextTransformer};
use crate::vision::{ClipVisionEmbeddings, ClipVisionTransformer};

/// One safetensors file, memory-mapped, with its parsed header.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Arc<Mmap>,
    data_start: usize,
    tensors: BTreeMap<String, TensorEntry>,
}

/// A tensor's header entry.
#[derive(Debug, Clone, Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

impl SafetensorsFile {
    /// Maps `path` and parses and checks its header (offsets inside the file, sizes consistent
    /// with dtype and shape).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only. Another process truncating or rewriting the checkpoint
        // while it is loaded would change the bytes under us (or fault); checkpoints are
        // written once and then only read, which is the usage this crate supports.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let bad = |message: String| Error::Checkpoint {
            path: path.clone(),
            message,
        };
        if mmap.len() < 8 {
            return Err(bad(format!(
                "file is {} bytes, too short for a header",
                mmap.len()
            )));
        }
        let header_len = u64::from_le_bytes(mmap[..8].try_into().expect("8 bytes")) as usize;
        let data_start = 8usize
            .checked_add(header_len)
            .filter(|&end| end <= mmap.len())
            .ok_or_else(|| bad(format!("header length {header_len} exceeds the file")))?;
        let header: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&mmap[8..data_start])
                .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let data_len = mmap.len() - data_start;
        let mut tensors = BTreeMap::new();
        for (name, value) in header {
            if name == "__metadata__" {
                continue;
            }
            let entry: TensorEntry = serde_json::from_value(value)
                .map_err(|e| bad(format!("header entry `{name}`: {e}")))?;
            let [begin, end] = entry.data_offsets;
            if begin > end || end > data_len {
                return Err(bad(format!(
                    "`{name}` spans bytes {begin}..{end} of a {data_len}-byte data section"
                )));
            }
            if let Some(size) = dtype_size(&entry.dtype) {
                let numel: usize = entry.shape.iter().product();
                if numel.checked_mul(size) != Some(end - begin) {
                    return Err(bad(format!(
                        "`{name}` has shape {:?} of {} but {} bytes",
                        entry.shape,
                        entry.dtype,
                        end - begin
                    )));
                }
            }
            tensors.insert(name, entry);
        }
        Ok(Self {
            path,
            mmap: Arc::new(mmap),
            data_start,
            tensors,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names and shapes, in name order.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.tensors
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.shape.as_slice()))
    }

    /// The tensor's values widened to `f32`, in row-major order.
    /// The tensor's values in place, when it is F32, 4-byte aligned in the mapping and the
    /// machine is little-endian (safetensors stores little-endian).
    fn f32_slice(&self, entry: &TensorEntry) -> Option<&[f32]> {
        let [begin, end] = entry.data_offsets;
        let bytes = &self.mmap[self.data_start + begin..self.data_start + end];
        if entry.dtype != "F32" || cfg!(target_endian = "big") || !bytes.len().is_multiple_of(4) {
            return None;
        }
        // SAFETY: f32 has no invalid bit patterns; the pointer is checked for f32 alignment
        // by `align_to`, which returns the aligned middle; we only use it when the whole slice
        // is aligned (empty prefix and suffix). The slice borrows `self.mmap`, which lives as
        // long as `self`.
        let (prefix, values, suffix) = unsafe { bytes.align_to::<f32>() };
        (prefix.is_empty() && suffix.is_empty()).then_some(values)
    }

    fn read_f32(&self, key: &str, entry: &TensorEntry) -> Result<Vec<f32>> {
        let [begin, end] = entry.data_offsets;
        let bytes = &self.mmap[self.data_start + begin..self.data_start + end];
        let values = match entry.dtype.as_str() {
            "F32" => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            "F16" => bytes
                .chunks_exact(2)
                .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            "BF16" => bytes
                .chunks_exact(2)
                .map(|b| bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            other => {
                return Err(Error::UnsupportedDType {
                    key: key.to_owned(),
                    dtype: other.to_owned(),
                })
            }
        };
        Ok(values)
    }
}

/// An f32 tensor read in place from a memory-mapped checkpoint file (see
/// [`Checkpoint::mapped_f32`]): no copy, and pages are read from the page cache on first use.
/// Like every memory map, it assumes the file is not truncated while in use (checkpoints are
/// replaced, not rewritten in place).
#[derive(Debug, Clone)]
pub struct MappedF32 {
    mmap: Arc<Mmap>,
    /// Byte offset of the first value in the mapping (f32-aligned).
    offset: usize,
    len: usize,
}

impl MappedF32 {
    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        let bytes = &self.mmap[self.offset..self.offset + 4 * self.len];
        // SAFETY: `Checkpoint::mapped_f32` only builds a `MappedF32` over a range it checked to
        // be f32-aligned, little-endian F32 data of exactly `len` values; f32 has no invalid
        // bit patterns, and the bytes live as long as `self.mmap`.
        let (_, values, _) = unsafe { bytes.align_to::<f32>() };
        values
    }
}

/// The weight files of one checkpoint and the bookkeeping of which keys were consumed.
#[derive(Debug)]
pub struct Checkpoint {
    files: Vec<SafetensorsFile>,
    /// key → index into `files`.
    index: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Opens `model.safetensors` in `dir`, or the shards listed by
    /// `model.safetensors.index.json`.
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let single = dir.join("model.safetensors");
        if single.exists() {
            return Self::from_files(vec![SafetensorsFile::open(single)?]);
        }
        let index_path = dir.join("model.safetensors.index.json");
        let text = std::fs::read_to_string(&index_path).map_err(|source| Error::Io {
            path: if index_path.exists() {
                index_path.clone()
            } else {
                single.clone()
            },
            source,
        })?;
        let index: ShardIndex = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: index_path.clone(),
            message: e.to_string(),
        })?;
        let shards: std::collections::BTreeSet<&String> = index.weight_map.values().collect();
        let files = shards
            .into_iter()
            .map(|shard| SafetensorsFile::open(dir.join(shard)))
            .collect::<Result<Vec<_>>>()?;
        Self::from_files(files)
    }

    /// Opens one safetensors file.
    pub fn open_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_files(vec![SafetensorsFile::open(path)?])
    }

    fn from_files(files: Vec<SafetensorsFile>) -> Result<Self> {
        let mut index = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            for name in file.tensors.keys() {
                if index.insert(name.clone(), i).is_some() {
                    return Err(Error::Checkpoint {
                        path: file.path.clone(),
                        message: format!("`{name}` appears in more than one shard"),
                    });
                }
            }
        }
        Ok(Self { files, index })
    }

    /// Every tensor name and shape in the checkpoint, in name order.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.index.iter().map(|(name, &i)| {
            let entry = &self.files[i].tensors[name];
            (name.as_str(), entry.shape.as_slice())
        })
    }

    /// Builds the model's `towers` from the checkpoint on `device`.
    ///
    /// # Errors
    /// [`Error::MissingWeight`], [`Error::ShapeMismatch`], [`Error::UnsupportedDType`] for a
    /// tensor the towers need; [`Error::UnexpectedWeight`] for a tensor nothing consumes (other
    /// than the skipped tower's and the `position_ids` buffers).
    pub fn load_model(
        &self,
        config: &ClipConfig,
        towers: Towers,
        device: &Device,
    ) -> Result<ClipModel> {
        let mut reader = Reader {
            checkpoint: self,
            used: HashSet::new(),
            device: device.clone(),
        };
        let text = match towers.text() {
            true => Some(reader.text_tower(&config.text_config, config.projection_dim)?),
            false => None,
        };
        let vision = match towers.vision() {
            true => Some(reader.vision_tower(&config.vision_config, config.projection_dim)?),
            false => None,
        };
        let logit_scale = reader.f32_values("logit_scale", &[])?[0];
        reader.check_unused(towers)?;
        Ok(ClipModel {
            text,
            vision,
            logit_scale,
        })
    }
}

/// Walks the module tree, taking tensors from the checkpoint.
struct Reader<'a> {
    checkpoint: &'a Checkpoint,
    used: HashSet<String>,
    device: Device,
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

impl Reader<'_> {
    /// The values of `key`, which must have exactly `shape`.
    fn f32_values(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let values = self.checkpoint.read_f32(key, shape)?;
        self.used.insert(key.to_owned());
        Ok(values)
    }

    fn tensor<const D: usize>(&mut self, key: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let values = self.f32_values(key, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    /// A PyTorch `nn.Linear` (`{prefix}.weight` `[out, in]`, optional `{prefix}.bias` `[out]`).
    fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Linear> {
        let weight = self.f32_values(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let weight = transpose(&weight, d_out, d_in);
        let weight = Tensor::from_data(TensorData::new(weight, [d_in, d_out]), &self.device);
        let bias = match bias {
            true => Some(Param::from_tensor(
                self.tensor(&format!("{prefix}.bias"), [d_out])?,
            )),
            false => None,
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    fn layer_norm(&mut self, prefix: &str, encoder: &ClipEncoderConfig) -> Result<LayerNorm> {
        let d = encoder.hidden_size;
        let mut norm = encoder.layer_norm(&self.device);
        norm.gamma = Param::from_tensor(self.tensor(&format!("{prefix}.weight"), [d])?);
        norm.beta = Some(Param::from_tensor(
            self.tensor(&format!("{prefix}.bias"), [d])?,
        ));
        Ok(norm)
    }

    fn embedding(&mut self, key: &str, rows: usize, cols: usize) -> Result<Embedding> {
        Ok(Embedding {
            weight: Param::from_tensor(self.tensor(key, [rows, cols])?),
        })
    }

    fn encoder(&mut self, prefix: &str, config: &ClipEncoderConfig) -> Result<ClipEncoder> {
        let d = config.hidden_size;
        let i = config.intermediate_size;
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let l = format!("{prefix}.encoder.layers.{n}");
                Ok(ClipEncoderLayer {
                    layer_norm1: self.layer_norm(&format!("{l}.layer_norm1"), config)?,
                    self_attn: ClipAttention {
                        q_proj: self.linear(&format!("{l}.self_attn.q_proj"), d, d, true)?,
                        k_proj: self.linear(&format!("{l}.self_attn.k_proj"), d, d, true)?,
                        v_proj: self.linear(&format!("{l}.self_attn.v_proj"), d, d, true)?,
                        out_proj: self.linear(&format!("{l}.self_attn.out_proj"), d, d, true)?,
                        num_heads: config.num_attention_heads,
                    },
                    layer_norm2: self.layer_norm(&format!("{l}.layer_norm2"), config)?,
                    mlp: ClipMlp {
                        fc1: self.linear(&format!("{l}.mlp.fc1"), d, i, true)?,
                        fc2: self.linear(&format!("{l}.mlp.fc2"), i, d, true)?,
                        activation: config.hidden_act,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ClipEncoder { layers })
    }

    fn text_tower(&mut self, config: &ClipTextConfig, projection: usize) -> Result<ClipTextTower> {
        let d = config.hidden_size;
        let encoder = config.encoder_config();
        let text_model = ClipTextTransformer {
            embeddings: ClipTextEmbeddings {
                token_embedding: self.embedding(
                    "text_model.embeddings.token_embedding.weight",
                    config.vocab_size,
                    d,
                )?,
                position_embedding: self.embedding(
                    "text_model.embeddings.position_embedding.weight",
                    config.max_position_embeddings,
                    d,
                )?,
            },
            encoder: self.encoder("text_model", &encoder)?,
            final_layer_norm: self.layer_norm("text_model.final_layer_norm", &encoder)?,
            eos_token_id: config.eos_token_id,
        };
        Ok(ClipTextTower {
            text_model,
            text_projection: self.linear("text_projection", d, projection, false)?,
        })
    }

    fn vision_tower(
        &mut self,
        config: &ClipVisionConfig,
        projection: usize,
    ) -> Result<ClipVisionTower> {
        let d = config.hidden_size;
        let (c, p) = (config.num_channels, config.patch_size);
        let encoder = config.encoder_config();
        let patch = self.f32_values(
            "vision_model.embeddings.patch_embedding.weight",
            &[d, c, p, p],
        )?;
        // [d, c, p, p] is [d, c·p·p] row-major; the matmul wants [c·p·p, d].
        let patch = transpose(&patch, d, c * p * p);
        let patch = Tensor::from_data(TensorData::new(patch, [c * p * p, d]), &self.device);
        let vision_model = ClipVisionTransformer {
            embeddings: ClipVisionEmbeddings {
                patch_embedding: Param::from_tensor(patch),
                class_embedding: Param::from_tensor(
                    self.tensor("vision_model.embeddings.class_embedding", [d])?,
                ),
                position_embedding: self.embedding(
                    "vision_model.embeddings.position_embedding.weight",
                    config.num_positions(),
                    d,
                )?,
                num_channels: c,
                patch_size: p,
                image_size: config.image_size,
            },
            pre_layrnorm: self.layer_norm("vision_model.pre_layrnorm", &encoder)?,
            encoder: self.encoder("vision_model", &encoder)?,
            post_layernorm: self.layer_norm("vision_model.post_layernorm", &encoder)?,
        };
        Ok(ClipVisionTower {
            vision_model,
            visual_projection: self.linear("visual_projection", d, projection, false)?,
        })
    }

    /// Fails on the first key (in name order) that the loaded towers should have consumed but
    /// did not.
    fn check_unused(&self, towers: Towers) -> Result<()> {
        self.checkpoint.check_unused(&self.used, towers)
    }
}

impl Checkpoint {
    /// The file holding tensor `key` and its header entry, checked to have exactly `shape`.
    fn entry(&self, key: &str, shape: &[usize]) -> Result<(&SafetensorsFile, &TensorEntry)> {
        let Some(&file) = self.index.get(key) else {
            return Err(Error::MissingWeight {
                key: key.to_owned(),
                expected: shape.to_vec(),
            });
        };
        let file = &self.files[file];
        let entry = &file.tensors[key];
        if entry.shape != shape {
            return Err(Error::ShapeMismatch {
                key: key.to_owned(),
                expected: shape.to_vec(),
                found: entry.shape.clone(),
            });
        }
        Ok((file, entry))
    }

    /// The values of tensor `key` as f32 (widened from f16/bf16), which must have exactly
    /// `shape`. Used by loaders that build their own layout (the native CPU path).
    ///
    /// # Errors
    /// [`Error::MissingWeight`], [`Error::ShapeMismatch`], [`Error::UnsupportedDType`].
    pub fn read_f32(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (file, entry) = self.entry(key, shape)?;
        file.read_f32(key, entry)
    }

    /// Calls `f` with the values of tensor `key` (which must have exactly `shape`) as f32,
    /// borrowing them straight from the mapped file when it stores aligned little-endian f32
    /// (no copy), else from a widened copy. For loaders that repack weights anyway.
    ///
    /// # Errors
    /// As [`read_f32`](Self::read_f32).
    pub fn with_f32<R>(
        &self,
        key: &str,
        shape: &[usize],
        f: impl FnOnce(&[f32]) -> R,
    ) -> Result<R> {
        let (file, entry) = self.entry(key, shape)?;
        if let Some(values) = file.f32_slice(entry) {
            return Ok(f(values));
        }
        Ok(f(&file.read_f32(key, entry)?))
    }

    /// Tensor `key` (exactly `shape`) kept in the mapped file instead of copied, when the file
    /// stores it as aligned little-endian f32; `None` when it needs widening or realigning
    /// (then use [`read_f32`](Self::read_f32)). The mapping stays open while the value lives.
    ///
    /// # Errors
    /// As [`read_f32`](Self::read_f32).
    pub fn mapped_f32(&self, key: &str, shape: &[usize]) -> Result<Option<MappedF32>> {
        let (file, entry) = self.entry(key, shape)?;
        Ok(file.f32_slice(entry).map(|values| MappedF32 {
            mmap: file.mmap.clone(),
            offset: values.as_ptr() as usize - file.mmap.as_ptr() as usize,
            len: values.len(),
        }))
    }

    /// [`Error::UnexpectedWeight`] for the first tensor of the loaded `towers` that is not in
    /// `used` (the `position_ids` buffers and the other tower's tensors aside).
    ///
    /// # Errors
    /// As above.
    pub fn check_unused(&self, used: &HashSet<String>, towers: Towers) -> Result<()> {
        for (key, shape) in self.shapes() {
            if used.contains(key) || key.ends_with(".embeddings.position_ids") {
                continue;
            }
            let text_key = key.starts_with("text_model.") || key.starts_with("text_projection.");
            let vision_key =
                key.starts_with("vision_model.") || key.starts_with("visual_projection.");
            if (text_key && !towers.text()) || (vision_key && !towers.vision()) {
                continue;
            }
            return Err(Error::UnexpectedWeight {
                key: key.to_owned(),
                shape: shape.to_vec(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_is_row_major() {
        // [[1, 2, 3], [4, 5, 6]] -> [[1, 4], [2, 5], [3, 6]]
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }

    #[test]
    fn pooled_position_follows_transformers() {
        use crate::text::pooled_position;
        // Legacy (eos_token_id == 2): first position of the largest id.
        assert_eq!(pooled_position(&[49406, 320, 49407, 49407], 2), 2);
        // Current: first occurrence of eos, else 0.
        assert_eq!(pooled_position(&[49406, 320, 49407, 5, 49407], 49407), 2);
        assert_eq!(pooled_position(&[49406, 320, 5], 49407), 0);
    }
}
