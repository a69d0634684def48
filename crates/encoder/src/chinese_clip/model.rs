//! Chinese-CLIP's burn modules: CLIP's vision tower ([`ClipVisionTower`]) and a BERT text
//! tower whose `[CLS]` state (position 0) goes through `text_projection`.

use burn::nn::Linear;
use burn::prelude::*;

use crate::bert::BertModel;
use crate::clip::model::{l2_normalize, ClipVisionTower};
use crate::error::{Error, Result};

/// The text tower: `text_model` (BERT, no pooler) and `text_projection` (no bias).
#[derive(Module, Debug)]
pub struct ChineseClipTextTower {
    /// `text_model.*`.
    pub text_model: BertModel,
    /// `text_projection.weight`: `[hidden, projection]`.
    pub text_projection: Linear,
}

impl ChineseClipTextTower {
    /// Projected, *unnormalised* text features (`ChineseCLIPModel.get_text_features`) of
    /// unpadded id sequences, batched right-padded with `pad_id` under an attention mask, all
    /// token types 0 (one segment, as the tokenizer gives them).
    ///
    /// # Shapes
    /// - output: `[batch, projection]`
    ///
    /// # Errors
    /// As [`BertModel::forward_ids`].
    pub fn forward<S: AsRef<[u32]>>(&self, ids: &[S], pad_id: u32) -> Result<Tensor<2>> {
        let hidden = self.text_model.forward_ids(ids, None, pad_id)?; // [batch, seq, hidden]
        let [batch, _, width] = hidden.dims();
        let cls = hidden.narrow(1, 0, 1).reshape([batch, width]); // [batch, hidden]
        Ok(self.text_projection.forward(cls)) // [batch, projection]
    }
}

/// `ChineseCLIPModel`: both towers and the learned temperature.
#[derive(Module, Debug)]
pub struct ChineseClipModel {
    /// The text tower, unless loaded vision-only.
    pub text: Option<ChineseClipTextTower>,
    /// The vision tower (CLIP's), unless loaded text-only.
    pub vision: Option<ClipVisionTower>,
    /// `logit_scale` as stored: logits are `exp(logit_scale)·cos`.
    #[module(skip)]
    pub logit_scale: f32,
}

impl ChineseClipModel {
    /// The text tower, or [`Error::TowerNotLoaded`].
    pub fn text_tower(&self) -> Result<&ChineseClipTextTower> {
        self.text
            .as_ref()
            .ok_or(Error::TowerNotLoaded { tower: "text" })
    }

    /// The vision tower, or [`Error::TowerNotLoaded`].
    pub fn vision_tower(&self) -> Result<&ClipVisionTower> {
        self.vision
            .as_ref()
            .ok_or(Error::TowerNotLoaded { tower: "vision" })
    }

    /// L2-normalised image embeddings.
    ///
    /// # Shapes
    /// - pixels: `[batch, channels, image, image]`
    /// - output: `[batch, projection]`, unit rows
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] for pixels of another shape.
    pub fn encode_images(&self, pixels: Tensor<4>) -> Result<Tensor<2>> {
        self.vision_tower()?.embed(pixels)
    }

    /// L2-normalised text embeddings of unpadded id sequences (`[CLS] … [SEP]`).
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] for an empty batch, an empty or
    /// over-long sequence, or an id outside the vocabulary.
    pub fn encode_texts<S: AsRef<[u32]>>(&self, ids: &[S], pad_id: u32) -> Result<Tensor<2>> {
        Ok(l2_normalize(self.text_tower()?.forward(ids, pad_id)?))
    }
}
