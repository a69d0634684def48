//! Burn modules → a `CLIPModel` state dict (keys, shapes and PyTorch layouts of the key map,
//! [`super::keys`]): the exact inverse of [`super::load`]. The training crate writes it as
//! `model.safetensors`; [`super::pack::pack_model`] packs the native towers from it.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;

use super::keys::{ClipKeys, LinearKeys, NormKeys, StackKeys, TensorSpec, TextKeys, VisionKeys};
use super::layers::ClipLayers;
use super::model::{ClipModel, ClipTextTower, ClipVisionTower, Towers};
use crate::config::ClipConfig;
use crate::error::{Error, Result};

/// Tensors by checkpoint key: shape and row-major `f32` values.
pub type StateDict = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("reading a weight back: {e:?}")))
}

/// The model's `CLIPModel` state dict, with PyTorch layouts.
///
/// # Errors
/// [`Error::TowerNotLoaded`] unless both towers are present; [`Error::ShapeMismatch`] if a
/// module's tensor does not have the shape `config` implies; [`Error::Execution`] if a weight
/// cannot be read back from the device.
pub fn state_dict(model: &ClipModel, config: &ClipConfig) -> Result<StateDict> {
    let keys = ClipKeys::new(config, Towers::Both);
    let mut writer = Writer {
        state: BTreeMap::new(),
    };
    writer.text(
        model.text_tower()?,
        keys.text.as_ref().expect("both towers"),
    )?;
    writer.vision(
        model.vision_tower()?,
        keys.vision.as_ref().expect("both towers"),
    )?;
    writer.insert(&keys.logit_scale, vec![model.logit_scale])?;
    Ok(writer.state)
}

pub(crate) struct Writer {
    pub(crate) state: StateDict,
}

impl Writer {
    /// Stores `values` under `spec`'s key, checking the element count against its shape.
    fn insert(&mut self, spec: &TensorSpec, values: Vec<f32>) -> Result<()> {
        let expected: usize = spec.shape.iter().product();
        if values.len() != expected {
            return Err(Error::ShapeMismatch {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
                found: vec![values.len()],
            });
        }
        self.state
            .insert(spec.key.clone(), (spec.shape.clone(), values));
        Ok(())
    }

    pub(crate) fn put<const D: usize>(
        &mut self,
        spec: &TensorSpec,
        tensor: Tensor<D>,
    ) -> Result<()> {
        let dims = tensor.dims().to_vec();
        if dims != spec.shape {
            return Err(Error::ShapeMismatch {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
                found: dims,
            });
        }
        self.insert(spec, values(tensor)?)
    }

    /// A burn `Linear` (`[in, out]`) as PyTorch's `nn.Linear` (`weight` `[out, in]`, `bias`).
    pub(crate) fn linear(&mut self, keys: &LinearKeys, linear: &Linear) -> Result<()> {
        self.transposed(&keys.weight, &linear.weight, keys.d_in, keys.d_out)?;
        match (&keys.bias, &linear.bias) {
            (Some(spec), Some(bias)) => self.put(spec, bias.val()),
            (None, None) => Ok(()),
            (Some(spec), None) => Err(Error::MissingWeight {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
            }),
            (None, Some(bias)) => Err(Error::UnexpectedWeight {
                key: format!("{}.bias", keys.weight.key.trim_end_matches(".weight")),
                shape: bias.val().dims().to_vec(),
            }),
        }
    }

    /// A `[rows, cols]` module tensor stored transposed (`[cols, rows]` values) under `spec`.
    fn transposed(
        &mut self,
        spec: &TensorSpec,
        weight: &Param<Tensor<2>>,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        let dims = weight.val().dims();
        if dims != [rows, cols] {
            return Err(Error::ShapeMismatch {
                key: spec.key.clone(),
                expected: vec![cols, rows],
                found: vec![dims[1], dims[0]],
            });
        }
        let t = super::load::transpose(&values(weight.val())?, rows, cols);
        self.insert(spec, t)
    }

    pub(crate) fn layer_norm(&mut self, keys: &NormKeys, norm: &LayerNorm) -> Result<()> {
        self.put(&keys.weight, norm.gamma.val())?;
        let beta = match &norm.beta {
            Some(beta) => beta.val(),
            None => norm.gamma.val().zeros_like(),
        };
        self.put(&keys.bias, beta)
    }

    pub(crate) fn embedding(&mut self, spec: &TensorSpec, embedding: &Embedding) -> Result<()> {
        self.put(spec, embedding.weight.val())
    }

    fn layers(&mut self, keys: &StackKeys, stack: &ClipLayers) -> Result<()> {
        if keys.layers.len() != stack.layers.len() {
            return Err(Error::InvalidInput(format!(
                "the model has {} layers, its config {}",
                stack.layers.len(),
                keys.layers.len()
            )));
        }
        for (k, layer) in keys.layers.iter().zip(&stack.layers) {
            self.layer_norm(&k.layer_norm1, &layer.layer_norm1)?;
            let attn = &layer.self_attn;
            self.linear(&k.q_proj, &attn.q_proj)?;
            self.linear(&k.k_proj, &attn.k_proj)?;
            self.linear(&k.v_proj, &attn.v_proj)?;
            self.linear(&k.out_proj, &attn.out_proj)?;
            self.layer_norm(&k.layer_norm2, &layer.layer_norm2)?;
            self.linear(&k.fc1, &layer.mlp.fc1)?;
            self.linear(&k.fc2, &layer.mlp.fc2)?;
        }
        Ok(())
    }

    fn text(&mut self, tower: &ClipTextTower, keys: &TextKeys) -> Result<()> {
        let m = &tower.text_model;
        self.embedding(&keys.token_embedding, &m.embeddings.token_embedding)?;
        self.embedding(&keys.position_embedding, &m.embeddings.position_embedding)?;
        self.layers(&keys.stack, &m.encoder)?;
        self.layer_norm(&keys.final_layer_norm, &m.final_layer_norm)?;
        self.linear(&keys.projection, &tower.text_projection)
    }

    fn vision(&mut self, tower: &ClipVisionTower, keys: &VisionKeys) -> Result<()> {
        let m = &tower.vision_model;
        let e = &m.embeddings;
        let patch = &keys.patch_embedding;
        // [c·p·p, d] → [d, c·p·p], which is [d, c, p, p] row-major.
        self.transposed(&patch.weight, &e.patch_embedding, patch.d_in, patch.d_out)?;
        self.put(&keys.class_embedding, e.class_embedding.val())?;
        self.embedding(&keys.position_embedding, &e.position_embedding)?;
        self.layer_norm(&keys.pre_layrnorm, &m.pre_layrnorm)?;
        self.layers(&keys.stack, &m.encoder)?;
        self.layer_norm(&keys.post_layernorm, &m.post_layernorm)?;
        self.linear(&keys.projection, &tower.visual_projection)
    }
}
