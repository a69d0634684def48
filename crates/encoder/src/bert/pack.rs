//! Checkpoint (or any [`TensorSource`]) → the BERT-family encoder on the native kernels
//! ([`NativeBert`]), walking the same key map as the burn loader ([`super::keys`]).

use glimpse_kernels::post_ln::{BertWeights, NativeBert, PostLnLayer, PostLnStack};
use glimpse_kernels::{Dense, Isa, Precision};
use rayon::prelude::*;

use super::config::{BertConfig, BertFlavor};
use super::keys::BertKeys;
use crate::checkpoint::Checkpoint;
use crate::clip::keys::LinearKeys;
use crate::clip::pack::{dense, norm, TensorSource};
use crate::error::Result;

/// Packs the encoder of `keys` (not validated: call [`Checkpoint::validate`] first, or use
/// [`pack_checkpoint`]).
///
/// # Errors
/// As [`TensorSource::with`].
pub fn pack_bert(
    src: &impl TensorSource,
    keys: &BertKeys,
    precision: Precision,
    isa: Isa,
) -> Result<NativeBert> {
    let d = keys.hidden;
    let e = &keys.embeddings;
    let (tokens, layers) = rayon::join(
        || src.token_table(&e.word),
        || {
            keys.layers
                .par_iter()
                .map(|l| {
                    let get = |linear: &LinearKeys| -> Result<(Vec<f32>, Vec<f32>)> {
                        let bias = linear.bias.as_ref().expect("BERT projections have biases");
                        Ok((src.get(&linear.weight)?, src.get(bias)?))
                    };
                    let ((q, bq), (k, bk), (v, bv)) =
                        (get(&l.query)?, get(&l.key)?, get(&l.value)?);
                    Ok(PostLnLayer {
                        qkv: Dense::fused_qkv(
                            [&q, &k, &v],
                            [&bq, &bk, &bv],
                            d,
                            keys.heads,
                            precision,
                        ),
                        out: dense(src, &l.attention_out, precision)?,
                        ln1: norm(src, &l.attention_norm)?,
                        fc1: dense(src, &l.intermediate, precision)?,
                        fc2: dense(src, &l.output, precision)?,
                        ln2: norm(src, &l.output_norm)?,
                    })
                })
                .collect::<Result<Vec<_>>>()
        },
    );
    let weights = BertWeights {
        vocab: e.word.shape[0],
        tokens: tokens?,
        positions: src.get(&e.position)?,
        token_types: e.token_type.as_ref().map(|t| src.get(t)).transpose()?,
        embedding_ln: norm(src, &e.layer_norm)?,
        stack: PostLnStack::new(layers?, d, keys.heads, keys.act),
    };
    Ok(NativeBert::new(weights, isa))
}

/// The encoder under `prefix` of a checkpoint, checked against its key map first.
///
/// # Errors
/// As [`Checkpoint::validate`] and [`pack_bert`].
pub fn pack_checkpoint(
    checkpoint: &Checkpoint,
    config: &BertConfig,
    flavor: BertFlavor,
    prefix: &str,
    precision: Precision,
    isa: Isa,
) -> Result<NativeBert> {
    let keys = BertKeys::new(config, flavor, prefix);
    checkpoint.validate(&keys)?;
    pack_bert(checkpoint, &keys, precision, isa)
}
