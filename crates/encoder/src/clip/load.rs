//! Checkpoint → burn modules: walks the key map ([`super::keys`]) and builds each module from
//! its tensors. PyTorch's `[out, in]` linear weights are transposed into
//! [`Linear::weight`](burn::nn::Linear) `[in, out]` and the patch convolution flattened to
//! `[C·p·p, Dv]` once, on the host, while converting.

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;

use super::attention::ClipAttention;
use super::keys::{ClipKeys, LinearKeys, NormKeys, StackKeys, TensorSpec, TextKeys, VisionKeys};
use super::layers::{ClipEncoderLayer, ClipLayers};
use super::mlp::ClipMlp;
use super::model::{ClipModel, ClipTextTower, ClipVisionTower, Towers};
use super::text::{ClipTextEmbeddings, ClipTextTransformer};
use super::vision::{ClipVisionEmbeddings, ClipVisionTransformer};
use crate::checkpoint::Checkpoint;
use crate::config::ClipConfig;
use crate::error::Result;

impl Checkpoint {
    /// Builds the model's `towers` from the checkpoint on `device`.
    ///
    /// # Errors
    /// As [`Checkpoint::validate`]: [`crate::Error::MissingWeight`],
    /// [`crate::Error::ShapeMismatch`], [`crate::Error::UnsupportedDType`] for a tensor the
    /// towers need; [`crate::Error::UnexpectedWeight`] for a tensor nothing consumes (other
    /// than the skipped tower's and the `position_ids` buffers).
    pub fn load_model(
        &self,
        config: &ClipConfig,
        towers: Towers,
        device: &Device,
    ) -> Result<ClipModel> {
        let keys = ClipKeys::new(config, towers);
        self.validate(&keys)?;
        let reader = Reader {
            checkpoint: self,
            device: device.clone(),
        };
        let text = keys
            .text
            .as_ref()
            .map(|t| reader.text_tower(t))
            .transpose()?;
        let vision = keys
            .vision
            .as_ref()
            .map(|v| reader.vision_tower(v))
            .transpose()?;
        let logit_scale = reader.values(&keys.logit_scale)?[0];
        Ok(ClipModel {
            text,
            vision,
            logit_scale,
        })
    }
}

/// Walks the module tree, taking tensors from the checkpoint.
pub(crate) struct Reader<'a> {
    pub(crate) checkpoint: &'a Checkpoint,
    pub(crate) device: Device,
}

/// Transposes a row-major `[rows, cols]` matrix.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

impl Reader<'_> {
    pub(crate) fn values(&self, spec: &TensorSpec) -> Result<Vec<f32>> {
        self.checkpoint.read_f32(&spec.key, &spec.shape)
    }

    pub(crate) fn tensor<const D: usize>(&self, spec: &TensorSpec) -> Result<Tensor<D>> {
        let shape: [usize; D] = spec
            .shape
            .as_slice()
            .try_into()
            .expect("rank of the key map");
        Ok(Tensor::from_data(
            TensorData::new(self.values(spec)?, shape),
            &self.device,
        ))
    }

    /// A PyTorch `nn.Linear` (`weight` `[out, in]`, optional `bias` `[out]`), transposed.
    pub(crate) fn linear(&self, keys: &LinearKeys) -> Result<Linear> {
        let (d_in, d_out) = (keys.d_in, keys.d_out);
        let weight = transpose(&self.values(&keys.weight)?, d_out, d_in);
        let weight = Tensor::from_data(TensorData::new(weight, [d_in, d_out]), &self.device);
        let bias = match &keys.bias {
            Some(b) => Some(Param::from_tensor(self.tensor::<1>(b)?)),
            None => None,
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    pub(crate) fn layer_norm(&self, keys: &NormKeys) -> Result<LayerNorm> {
        let mut norm = LayerNormConfig::new(keys.weight.shape[0])
            .with_epsilon(keys.eps)
            .init(&self.device);
        norm.gamma = Param::from_tensor(self.tensor(&keys.weight)?);
        norm.beta = Some(Param::from_tensor(self.tensor(&keys.bias)?));
        Ok(norm)
    }

    pub(crate) fn embedding(&self, spec: &TensorSpec) -> Result<Embedding> {
        Ok(Embedding {
            weight: Param::from_tensor(self.tensor(spec)?),
        })
    }

    pub(crate) fn layers(&self, keys: &StackKeys) -> Result<ClipLayers> {
        let layers = keys
            .layers
            .iter()
            .map(|l| {
                Ok(ClipEncoderLayer {
                    layer_norm1: self.layer_norm(&l.layer_norm1)?,
                    self_attn: ClipAttention {
                        q_proj: self.linear(&l.q_proj)?,
                        k_proj: self.linear(&l.k_proj)?,
                        v_proj: self.linear(&l.v_proj)?,
                        out_proj: self.linear(&l.out_proj)?,
                        num_heads: keys.heads,
                    },
                    layer_norm2: self.layer_norm(&l.layer_norm2)?,
                    mlp: ClipMlp {
                        fc1: self.linear(&l.fc1)?,
                        fc2: self.linear(&l.fc2)?,
                        activation: keys.act,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ClipLayers { layers })
    }

    fn text_tower(&self, keys: &TextKeys) -> Result<ClipTextTower> {
        let text_model = ClipTextTransformer {
            embeddings: ClipTextEmbeddings {
                token_embedding: self.embedding(&keys.token_embedding)?,
                position_embedding: self.embedding(&keys.position_embedding)?,
            },
            encoder: self.layers(&keys.stack)?,
            final_layer_norm: self.layer_norm(&keys.final_layer_norm)?,
            eos_token_id: keys.eos_token_id,
        };
        Ok(ClipTextTower {
            text_model,
            text_projection: self.linear(&keys.projection)?,
        })
    }

    pub(crate) fn vision_tower(&self, keys: &VisionKeys) -> Result<ClipVisionTower> {
        let patch = &keys.patch_embedding;
        // [d, c, p, p] is [d, c·p·p] row-major; the matmul wants [c·p·p, d].
        let weight = transpose(&self.values(&patch.weight)?, patch.d_out, patch.d_in);
        let weight = Tensor::from_data(
            TensorData::new(weight, [patch.d_in, patch.d_out]),
            &self.device,
        );
        let vision_model = ClipVisionTransformer {
            embeddings: ClipVisionEmbeddings {
                patch_embedding: Param::from_tensor(weight),
                class_embedding: Param::from_tensor(self.tensor(&keys.class_embedding)?),
                position_embedding: self.embedding(&keys.position_embedding)?,
                num_channels: keys.channels,
                patch_size: keys.patch,
                image_size: keys.image_size,
            },
            pre_layrnorm: self.layer_norm(&keys.pre_layrnorm)?,
            encoder: self.layers(&keys.stack)?,
            post_layernorm: self.layer_norm(&keys.post_layernorm)?,
        };
        Ok(ClipVisionTower {
            vision_model,
            visual_projection: self.linear(&keys.projection)?,
        })
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
}
