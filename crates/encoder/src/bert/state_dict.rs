//! Burn modules → a BERT-family state dict (keys, shapes and PyTorch layouts of the key map,
//! [`super::keys`]): the exact inverse of [`super::load`]. A trained [`BertModel`] is saved
//! with it (as `model.safetensors`), and [`super::pack::pack_bert`] packs the native encoder
//! from it ([`StateDict`] is a [`crate::clip::pack::TensorSource`]).

use std::collections::BTreeMap;

use super::keys::BertKeys;
use super::model::BertModel;
use crate::clip::state_dict::{StateDict, Writer};
use crate::error::{Error, Result};

/// The state dict of `model` under the keys of `keys` (its flavour and prefix).
///
/// # Errors
/// [`Error::ShapeMismatch`] if a module's tensor does not have the shape the keys imply;
/// [`Error::InvalidInput`] if the layer count or the token-type table disagrees with them;
/// [`Error::Execution`] if a weight cannot be read back from the device.
pub fn state_dict(model: &BertModel, keys: &BertKeys) -> Result<StateDict> {
    let mut w = Writer {
        state: BTreeMap::new(),
    };
    let (e, k) = (&model.embeddings, &keys.embeddings);
    w.embedding(&k.word, &e.word_embeddings)?;
    w.embedding(&k.position, &e.position_embeddings)?;
    match (&k.token_type, &e.token_type_embeddings) {
        (Some(spec), Some(table)) => w.embedding(spec, table)?,
        (None, None) => {}
        _ => {
            return Err(Error::InvalidInput(
                "the model's token-type table does not match the key layout".into(),
            ))
        }
    }
    w.layer_norm(&k.layer_norm, &e.layer_norm)?;
    if keys.layers.len() != model.layers.len() {
        return Err(Error::InvalidInput(format!(
            "the model has {} layers, its config {}",
            model.layers.len(),
            keys.layers.len()
        )));
    }
    for (k, l) in keys.layers.iter().zip(&model.layers) {
        w.linear(&k.query, &l.query)?;
        w.linear(&k.key, &l.key)?;
        w.linear(&k.value, &l.value)?;
        w.linear(&k.attention_out, &l.attention_out)?;
        w.layer_norm(&k.attention_norm, &l.attention_norm)?;
        w.linear(&k.intermediate, &l.intermediate)?;
        w.linear(&k.output, &l.output)?;
        w.layer_norm(&k.output_norm, &l.output_norm)?;
    }
    Ok(w.state)
}
