//! Checkpoint → Chinese-CLIP's towers on the native kernels: CLIP's vision packer and the
//! BERT packer ([`crate::bert::pack`]) with `[CLS]` pooling and `text_projection`
//! ([`NativeBertText`]).

use glimpse_kernels::post_ln::{BertPooling, NativeBertText};
use glimpse_kernels::{Isa, NativeVision, Precision};

use super::config::ChineseClipConfig;
use super::keys::{ChineseClipKeys, ChineseClipTextKeys};
use crate::checkpoint::Checkpoint;
use crate::clip::model::Towers;
use crate::clip::pack::{dense, pack_vision, TensorSource};
use crate::error::Result;

/// Packs the text tower.
///
/// # Errors
/// As [`TensorSource::with`].
pub fn pack_text(
    src: &impl TensorSource,
    keys: &ChineseClipTextKeys,
    precision: Precision,
    isa: Isa,
) -> Result<NativeBertText> {
    let bert = crate::bert::pack::pack_bert(src, &keys.bert, precision, isa)?;
    let projection = dense(src, &keys.projection, precision)?;
    Ok(NativeBertText::new(
        bert,
        BertPooling::First,
        Some(projection),
    ))
}

/// A Chinese-CLIP checkpoint on the native kernels.
#[derive(Debug)]
pub struct PackedChineseClip {
    /// The vision tower, if asked for.
    pub vision: Option<NativeVision>,
    /// The text tower, if asked for.
    pub text: Option<NativeBertText>,
    /// `logit_scale` as stored.
    pub logit_scale: f32,
}

/// The native towers of a Chinese-CLIP checkpoint (the ones in `towers`), checked against
/// the key map first.
///
/// # Errors
/// As [`Checkpoint::validate`].
pub fn pack_checkpoint(
    checkpoint: &Checkpoint,
    config: &ChineseClipConfig,
    towers: Towers,
    precision: Precision,
    isa: Isa,
) -> Result<PackedChineseClip> {
    let keys = ChineseClipKeys::new(config, towers);
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
    let scale = checkpoint.read_f32(&keys.logit_scale.key, &keys.logit_scale.shape)?[0];
    Ok(PackedChineseClip {
        vision: vision?,
        text: text?,
        logit_scale: scale,
    })
}
