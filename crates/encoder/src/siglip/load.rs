//! Checkpoint → SigLIP burn modules, walking the key map ([`super::keys`]) with the same
//! reader as CLIP's loader (linear weights transposed to `[in, out]`, the patch convolution
//! flattened, `in_proj` split into the query, key and value linears).

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;

use super::config::SiglipConfig;
use super::keys::{SiglipKeys, SiglipTextKeys, SiglipVisionKeys};
use super::model::{SiglipMapHead, SiglipModel, SiglipTextTower, SiglipVisionTower};
use crate::checkpoint::Checkpoint;
use crate::clip::load::{transpose, Reader};
use crate::clip::mlp::ClipMlp;
use crate::clip::model::Towers;
use crate::clip::text::ClipTextEmbeddings;
use crate::error::Result;

impl Checkpoint {
    /// Builds a SigLIP model's `towers` from the checkpoint on `device`.
    ///
    /// # Errors
    /// As [`Checkpoint::validate`].
    pub fn load_siglip(
        &self,
        config: &SiglipConfig,
        towers: Towers,
        device: &Device,
    ) -> Result<SiglipModel> {
        let keys = SiglipKeys::new(config, towers);
        self.validate(&keys)?;
        let reader = Reader {
            checkpoint: self,
            device: device.clone(),
        };
        let text = keys.text.as_ref().map(|t| text(&reader, t)).transpose()?;
        let vision = keys
            .vision
            .as_ref()
            .map(|v| vision(&reader, v))
            .transpose()?;
        Ok(SiglipModel {
            text,
            vision,
            logit_scale: reader.values(&keys.logit_scale)?[0],
            logit_bias: reader.values(&keys.logit_bias)?[0],
        })
    }
}

fn text(reader: &Reader<'_>, keys: &SiglipTextKeys) -> Result<SiglipTextTower> {
    Ok(SiglipTextTower {
        embeddings: ClipTextEmbeddings {
            token_embedding: reader.embedding(&keys.token_embedding)?,
            position_embedding: reader.embedding(&keys.position_embedding)?,
        },
        encoder: reader.layers(&keys.stack)?,
        final_layer_norm: reader.layer_norm(&keys.final_layer_norm)?,
        head: reader.linear(&keys.head)?,
    })
}

/// Rows `part·d..(part+1)·d` of `nn.MultiheadAttention`'s packed `in_proj` as a burn linear.
fn in_proj_part(weight: &[f32], bias: &[f32], part: usize, d: usize, device: &Device) -> Linear {
    let w = transpose(&weight[part * d * d..(part + 1) * d * d], d, d);
    let b = bias[part * d..(part + 1) * d].to_vec();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d, d]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d]),
            device,
        ))),
    }
}

fn vision(reader: &Reader<'_>, keys: &SiglipVisionKeys) -> Result<SiglipVisionTower> {
    let patch = &keys.patch_embedding;
    let device = &reader.device;
    // [d, c, p, p] is [d, c·p·p] row-major; the matmul wants [c·p·p, d].
    let weight = transpose(&reader.values(&patch.weight)?, patch.d_out, patch.d_in);
    let weight = Tensor::from_data(TensorData::new(weight, [patch.d_in, patch.d_out]), device);
    let bias = reader.tensor::<1>(
        patch
            .bias
            .as_ref()
            .expect("the patch convolution has a bias"),
    )?;
    let h = &keys.head;
    let d = keys.stack.hidden;
    let in_w = reader.values(&h.in_proj_weight)?;
    let in_b = reader.values(&h.in_proj_bias)?;
    let probe = reader.values(&h.probe)?;
    let head = SiglipMapHead {
        probe: Param::from_tensor(Tensor::from_data(TensorData::new(probe, [d]), device)),
        q_proj: in_proj_part(&in_w, &in_b, 0, d, device),
        k_proj: in_proj_part(&in_w, &in_b, 1, d, device),
        v_proj: in_proj_part(&in_w, &in_b, 2, d, device),
        out_proj: reader.linear(&h.out_proj)?,
        layernorm: reader.layer_norm(&h.layernorm)?,
        mlp: ClipMlp {
            fc1: reader.linear(&h.fc1)?,
            fc2: reader.linear(&h.fc2)?,
            activation: h.act,
        },
        num_heads: h.heads,
    };
    Ok(SiglipVisionTower {
        patch_embedding: Param::from_tensor(weight),
        patch_bias: Param::from_tensor(bias),
        position_embedding: reader.embedding(&keys.position_embedding)?,
        encoder: reader.layers(&keys.stack)?,
        post_layernorm: reader.layer_norm(&keys.post_layernorm)?,
        head,
        num_channels: keys.channels,
        patch_size: keys.patch,
        image_size: keys.image_size,
    })
}
