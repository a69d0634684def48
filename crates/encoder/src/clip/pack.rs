//! Checkpoint (or any [`TensorSource`]) → the native kernels' towers ([`glimpse_kernels`]),
//! walking the same key map as the burn loader ([`super::keys`]).
//!
//! Packing straight from the checkpoint is the cold start of a query process: PyTorch's
//! `[out, in]` linear weights are packed as the transposed operand directly (no transpose pass,
//! no burn tensors, no read-back), tensors stored as f32 are borrowed from the mapping, the
//! layers pack in parallel and the text tower's token table stays in the mapped file.

use std::collections::BTreeMap;
use std::sync::Arc;

use glimpse_kernels::{
    Dense, Isa, Layer, NativeText, NativeVision, Norm, Precision, Stack, TextPooling, TextWeights,
    TokenTable, VisionPooling, VisionWeights,
};
use rayon::prelude::*;

use super::keys::{ClipKeys, LinearKeys, NormKeys, StackKeys, TensorSpec, TextKeys, VisionKeys};
use super::model::{ClipModel, Towers};
use super::state_dict::{state_dict, StateDict};
use crate::checkpoint::Checkpoint;
use crate::config::ClipConfig;
use crate::error::{Error, Result};

/// Where the packer reads tensors: by checkpoint key, in checkpoint layout, as f32.
pub trait TensorSource: Sync {
    /// Calls `f` with the values of `spec` (which must have exactly its shape), borrowed
    /// where the source can.
    ///
    /// # Errors
    /// [`Error::MissingWeight`], [`Error::ShapeMismatch`], [`Error::UnsupportedDType`].
    fn with<R>(&self, spec: &TensorSpec, f: impl FnOnce(&[f32]) -> R) -> Result<R>;

    /// The values of `spec`, copied.
    ///
    /// # Errors
    /// As [`with`](Self::with).
    fn get(&self, spec: &TensorSpec) -> Result<Vec<f32>> {
        self.with(spec, <[f32]>::to_vec)
    }

    /// The token table: a copy, unless the source can share it.
    ///
    /// # Errors
    /// As [`with`](Self::with).
    fn token_table(&self, spec: &TensorSpec) -> Result<TokenTable> {
        Ok(TokenTable::Owned(self.get(spec)?))
    }
}

impl TensorSource for Checkpoint {
    fn with<R>(&self, spec: &TensorSpec, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        self.with_f32(&spec.key, &spec.shape, f)
    }

    /// Left in the mapped file where it is stored as aligned f32, else a copy.
    fn token_table(&self, spec: &TensorSpec) -> Result<TokenTable> {
        Ok(match self.mapped_f32(&spec.key, &spec.shape)? {
            Some(mapped) => TokenTable::Shared(Arc::new(mapped)),
            None => TokenTable::Owned(self.read_f32(&spec.key, &spec.shape)?),
        })
    }
}

impl TensorSource for StateDict {
    fn with<R>(&self, spec: &TensorSpec, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        let Some((shape, values)) = BTreeMap::get(self, &spec.key) else {
            return Err(Error::MissingWeight {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
            });
        };
        if shape != &spec.shape {
            return Err(Error::ShapeMismatch {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
                found: shape.clone(),
            });
        }
        Ok(f(values))
    }
}

pub(crate) fn dense(
    src: &impl TensorSource,
    keys: &LinearKeys,
    precision: Precision,
) -> Result<Dense> {
    let bias = keys.bias.as_ref().map(|b| src.get(b)).transpose()?;
    src.with(&keys.weight, |w| {
        Dense::from_torch(w, keys.d_in, keys.d_out, bias, precision)
    })
}

pub(crate) fn norm(src: &impl TensorSource, keys: &NormKeys) -> Result<Norm> {
    Ok(Norm::new(
        src.get(&keys.weight)?,
        src.get(&keys.bias)?,
        keys.eps,
    ))
}

pub(crate) fn stack(
    src: &impl TensorSource,
    keys: &StackKeys,
    precision: Precision,
) -> Result<Stack> {
    let d = keys.hidden;
    let layers = keys
        .layers
        .par_iter()
        .map(|l| {
            let get = |linear: &LinearKeys| -> Result<(Vec<f32>, Vec<f32>)> {
                let bias = linear
                    .bias
                    .as_ref()
                    .expect("attention projections have biases");
                Ok((src.get(&linear.weight)?, src.get(bias)?))
            };
            let ((q, bq), (k, bk), (v, bv)) = (get(&l.q_proj)?, get(&l.k_proj)?, get(&l.v_proj)?);
            Ok(Layer {
                ln1: norm(src, &l.layer_norm1)?,
                qkv: Dense::fused_qkv([&q, &k, &v], [&bq, &bk, &bv], d, keys.heads, precision),
                out: dense(src, &l.out_proj, precision)?,
                ln2: norm(src, &l.layer_norm2)?,
                fc1: dense(src, &l.fc1, precision)?,
                fc2: dense(src, &l.fc2, precision)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Stack::new(layers, d, keys.heads, keys.act))
}

/// Packs the text tower for the kernels of `isa` (the token table beside the layers).
///
/// # Errors
/// As [`TensorSource::with`]; call [`Checkpoint::validate`] first for the full check.
pub fn pack_text(
    src: &impl TensorSource,
    keys: &TextKeys,
    precision: Precision,
    isa: Isa,
) -> Result<NativeText> {
    let (tokens, stack) = rayon::join(
        || src.token_table(&keys.token_embedding),
        || stack(src, &keys.stack, precision),
    );
    let weights = TextWeights {
        vocab: keys.token_embedding.shape[0],
        context: keys.position_embedding.shape[0],
        pooling: TextPooling::EndOfText {
            eos_token_id: keys.eos_token_id,
        },
        tokens: tokens?,
        positions: src.get(&keys.position_embedding)?,
        stack: stack?,
        final_ln: norm(src, &keys.final_layer_norm)?,
        projection: dense(src, &keys.projection, precision)?,
    };
    Ok(NativeText::new(weights, isa))
}

/// Packs the vision tower for the kernels of `isa`.
///
/// # Errors
/// As [`pack_text`].
pub fn pack_vision(
    src: &impl TensorSource,
    keys: &VisionKeys,
    precision: Precision,
    isa: Isa,
) -> Result<NativeVision> {
    let weights = VisionWeights {
        channels: keys.channels,
        image_size: keys.image_size,
        patch: keys.patch,
        // The convolution kernel [d, c, p, p] is the linear layer [d, c·p·p].
        patch_embed: dense(src, &keys.patch_embedding, precision)?,
        positions: src.get(&keys.position_embedding)?,
        stack: stack(src, &keys.stack, precision)?,
        pooling: VisionPooling::ClassToken {
            class: src.get(&keys.class_embedding)?,
            pre_ln: norm(src, &keys.pre_layrnorm)?,
            post_ln: norm(src, &keys.post_layernorm)?,
        },
        projection: Some(dense(src, &keys.projection, precision)?),
    };
    Ok(NativeVision::new(weights, isa))
}

/// The native towers of a checkpoint: the ones in `towers`, checked against the key map
/// first ([`Checkpoint::validate`]), each tensor read once.
///
/// # Errors
/// As [`Checkpoint::validate`].
pub fn pack_checkpoint(
    checkpoint: &Checkpoint,
    config: &ClipConfig,
    towers: Towers,
    precision: Precision,
    isa: Isa,
) -> Result<(Option<NativeVision>, Option<NativeText>)> {
    let keys = ClipKeys::new(config, towers);
    checkpoint.validate(&keys)?;
    let (vision, text) = rayon::join(
        || {
            keys.vision
                .as_ref()
                .map(|v| pack_vision(checkpoint, v, precision, isa))
                .transpose()
        },
        || {
            keys.text
                .as_ref()
                .map(|t| pack_text(checkpoint, t, precision, isa))
                .transpose()
        },
    );
    Ok((vision?, text?))
}

/// The native towers of a burn model (both towers must be loaded), through its state dict.
///
/// # Errors
/// [`Error::TowerNotLoaded`]; [`Error::Execution`] if a weight cannot be read back.
pub fn pack_model(
    model: &ClipModel,
    config: &ClipConfig,
    precision: Precision,
    isa: Isa,
) -> Result<(NativeVision, NativeText)> {
    let keys = ClipKeys::new(config, Towers::Both);
    let state = state_dict(model, config)?;
    let (vision, text) = (keys.vision.as_ref(), keys.text.as_ref());
    Ok((
        pack_vision(&state, vision.expect("both towers"), precision, isa)?,
        pack_text(&state, text.expect("both towers"), precision, isa)?,
    ))
}
