//! Checkpoint → SigLIP's towers on the native kernels, walking the same key map as the burn
//! loader ([`super::keys`]) with CLIP's packer helpers: the stacks are packed identically;
//! the text tower pools the last position of the padded context
//! ([`TextPooling::Last`]), the vision tower has no class token and ends in the
//! attention-pooling head ([`MapHead`]).

use glimpse_kernels::{
    Isa, MapHead, MapHeadTensors, NativeText, NativeVision, Precision, TextPooling, TextWeights,
    VisionPooling, VisionWeights,
};

use super::config::SiglipConfig;
use super::keys::{SiglipKeys, SiglipTextKeys, SiglipVisionKeys};
use crate::checkpoint::Checkpoint;
use crate::clip::model::Towers;
use crate::clip::pack::{dense, norm, stack, TensorSource};
use crate::error::{Error, Result};

/// Packs the text tower; sequences are padded with `pad_id` (the tokenizer's).
///
/// # Errors
/// As [`TensorSource::with`]; [`Error::InvalidInput`] for a pad id outside the vocabulary.
pub fn pack_text(
    src: &impl TensorSource,
    keys: &SiglipTextKeys,
    pad_id: u32,
    precision: Precision,
    isa: Isa,
) -> Result<NativeText> {
    let vocab = keys.token_embedding.shape[0];
    if pad_id as usize >= vocab {
        return Err(Error::InvalidInput(format!(
            "pad id {pad_id} is outside the vocabulary of {vocab}"
        )));
    }
    let (tokens, stack) = rayon::join(
        || src.token_table(&keys.token_embedding),
        || stack(src, &keys.stack, precision),
    );
    let weights = TextWeights {
        vocab,
        context: keys.position_embedding.shape[0],
        pooling: TextPooling::Last { pad_id },
        tokens: tokens?,
        positions: src.get(&keys.position_embedding)?,
        stack: stack?,
        final_ln: norm(src, &keys.final_layer_norm)?,
        projection: dense(src, &keys.head, precision)?,
    };
    Ok(NativeText::new(weights, isa))
}

/// Packs the vision tower.
///
/// # Errors
/// As [`TensorSource::with`].
pub fn pack_vision(
    src: &impl TensorSource,
    keys: &SiglipVisionKeys,
    precision: Precision,
    isa: Isa,
) -> Result<NativeVision> {
    let h = &keys.head;
    let (probe, in_w, in_b) = (
        src.get(&h.probe)?,
        src.get(&h.in_proj_weight)?,
        src.get(&h.in_proj_bias)?,
    );
    let head = Box::new(MapHead::new(
        MapHeadTensors {
            probe: &probe,
            in_proj_weight: &in_w,
            in_proj_bias: &in_b,
            out: dense(src, &h.out_proj, precision)?,
            ln: norm(src, &h.layernorm)?,
            fc1: dense(src, &h.fc1, precision)?,
            fc2: dense(src, &h.fc2, precision)?,
        },
        keys.stack.hidden,
        h.heads,
        h.act,
        precision,
    ));
    let weights = VisionWeights {
        channels: keys.channels,
        image_size: keys.image_size,
        patch: keys.patch,
        // The convolution kernel [d, c, p, p] is the linear layer [d, c·p·p], with its bias.
        patch_embed: dense(src, &keys.patch_embedding, precision)?,
        positions: src.get(&keys.position_embedding)?,
        stack: stack(src, &keys.stack, precision)?,
        pooling: VisionPooling::AttentionPool {
            post_ln: norm(src, &keys.post_layernorm)?,
            head,
        },
        projection: None,
    };
    Ok(NativeVision::new(weights, isa))
}

/// A SigLIP checkpoint on the native kernels: its towers and its calibration.
#[derive(Debug)]
pub struct PackedSiglip {
    /// The vision tower, if asked for.
    pub vision: Option<NativeVision>,
    /// The text tower, if asked for.
    pub text: Option<NativeText>,
    /// `logit_scale` as stored.
    pub logit_scale: f32,
    /// `logit_bias`.
    pub logit_bias: f32,
}

/// The native towers of a SigLIP checkpoint (the ones in `towers`), checked against the key
/// map first, and its calibration.
///
/// # Errors
/// As [`Checkpoint::validate`]; as [`pack_text`].
pub fn pack_checkpoint(
    checkpoint: &Checkpoint,
    config: &SiglipConfig,
    towers: Towers,
    pad_id: u32,
    precision: Precision,
    isa: Isa,
) -> Result<PackedSiglip> {
    let keys = SiglipKeys::new(config, towers);
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
                .map(|t| pack_text(checkpoint, t, pad_id, precision, isa))
                .transpose()
        },
    );
    let scale = checkpoint.read_f32(&keys.logit_scale.key, &keys.logit_scale.shape)?[0];
    let bias = checkpoint.read_f32(&keys.logit_bias.key, &keys.logit_bias.shape)?[0];
    Ok(PackedSiglip {
        vision: vision?,
        text: text?,
        logit_scale: scale,
        logit_bias: bias,
    })
}
