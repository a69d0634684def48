//! Checkpoint → BERT-family burn modules, walking the key map ([`super::keys`]) with the
//! reader CLIP's loader uses (linear weights transposed to `[in, out]`).

use burn::prelude::*;

use super::config::{BertConfig, BertFlavor};
use super::keys::BertKeys;
use super::model::{BertEmbeddings, BertLayer, BertModel};
use crate::checkpoint::Checkpoint;
use crate::clip::load::Reader;
use crate::error::Result;

impl Checkpoint {
    /// Builds a BERT-family encoder from the tensors under `prefix` (`""` for a bare
    /// `BertModel` / `DistilBertModel` file), after checking the whole checkpoint against
    /// its key map: every tensor present with its shape, and nothing else but the skipped
    /// buffers and pooler.
    ///
    /// # Errors
    /// As [`Checkpoint::validate`].
    pub fn load_bert(
        &self,
        config: &BertConfig,
        flavor: BertFlavor,
        prefix: &str,
        device: &Device,
    ) -> Result<BertModel> {
        let keys = BertKeys::new(config, flavor, prefix);
        self.validate(&keys)?;
        let reader = Reader {
            checkpoint: self,
            device: device.clone(),
        };
        bert(&reader, &keys)
    }
}

/// The modules of `keys` (not validated: the caller validated the checkpoint).
pub(crate) fn bert(reader: &Reader<'_>, keys: &BertKeys) -> Result<BertModel> {
    let e = &keys.embeddings;
    let embeddings = BertEmbeddings {
        word_embeddings: reader.embedding(&e.word)?,
        position_embeddings: reader.embedding(&e.position)?,
        token_type_embeddings: e
            .token_type
            .as_ref()
            .map(|t| reader.embedding(t))
            .transpose()?,
        layer_norm: reader.layer_norm(&e.layer_norm)?,
    };
    let layers = keys
        .layers
        .iter()
        .map(|l| {
            Ok(BertLayer {
                query: reader.linear(&l.query)?,
                key: reader.linear(&l.key)?,
                value: reader.linear(&l.value)?,
                attention_out: reader.linear(&l.attention_out)?,
                attention_norm: reader.layer_norm(&l.attention_norm)?,
                intermediate: reader.linear(&l.intermediate)?,
                output: reader.linear(&l.output)?,
                output_norm: reader.layer_norm(&l.output_norm)?,
                num_heads: keys.heads,
                activation: keys.act,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(BertModel { embeddings, layers })
}
