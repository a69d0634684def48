//! Checkpoint → Chinese-CLIP burn modules: CLIP's vision-tower reader and the BERT reader,
//! over one validated key map ([`super::keys`]).

use burn::prelude::*;

use super::config::ChineseClipConfig;
use super::keys::ChineseClipKeys;
use super::model::{ChineseClipModel, ChineseClipTextTower};
use crate::checkpoint::Checkpoint;
use crate::clip::load::Reader;
use crate::clip::model::Towers;
use crate::error::Result;

impl Checkpoint {
    /// Builds a Chinese-CLIP model's `towers` from the checkpoint on `device`.
    ///
    /// # Errors
    /// As [`Checkpoint::validate`].
    pub fn load_chinese_clip(
        &self,
        config: &ChineseClipConfig,
        towers: Towers,
        device: &Device,
    ) -> Result<ChineseClipModel> {
        let keys = ChineseClipKeys::new(config, towers);
        self.validate(&keys)?;
        let reader = Reader {
            checkpoint: self,
            device: device.clone(),
        };
        let text = keys
            .text
            .as_ref()
            .map(|t| {
                Ok::<_, crate::Error>(ChineseClipTextTower {
                    text_model: crate::bert::load::bert(&reader, &t.bert)?,
                    text_projection: reader.linear(&t.projection)?,
                })
            })
            .transpose()?;
        let vision = keys
            .vision
            .as_ref()
            .map(|v| reader.vision_tower(v))
            .transpose()?;
        Ok(ChineseClipModel {
            text,
            vision,
            logit_scale: reader.values(&keys.logit_scale)?[0],
        })
    }
}
