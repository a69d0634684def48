//! [`QueryTower`]: a sentence-transformers text tower loaded for embedding queries, on the
//! native kernels or on burn, like [`crate::Encoder`].

use std::path::Path;

use burn::nn::Linear;
use burn::prelude::*;

use glimpse_kernels::post_ln::NativeBert;
use glimpse_kernels::{Isa, Precision};

use super::declared::{read_image_model, ImageModel};
use super::layout::{safetensors_in, DenseActivation, DenseModule, Pooling, SentenceLayout};
use super::tokenize::SentenceTokenizer;
use crate::bert::{BertKeys, BertModel};
use crate::checkpoint::{Checkpoint, KeyMap};
use crate::clip::keys::{LinearKeys, TensorSpec};
use crate::clip::load::Reader;
use crate::encoder::{native_by_default, Engine, LoadOptions};
use crate::error::{Error, Result};

/// Texts per forward pass.
const MAX_BATCH: usize = 32;

/// The Dense module's checkpoint: `linear.weight` `[out, in]` and, with a bias,
/// `linear.bias`; nothing else.
struct DenseKeys(LinearKeys);

impl DenseKeys {
    fn new(dense: &DenseModule) -> Self {
        Self(LinearKeys::new(
            "linear",
            dense.in_features,
            dense.out_features,
            dense.bias,
        ))
    }
}

impl KeyMap for DenseKeys {
    fn specs(&self) -> Vec<&TensorSpec> {
        std::iter::once(&self.0.weight)
            .chain(self.0.bias.as_ref())
            .collect()
    }

    fn may_skip(&self, _key: &str) -> bool {
        false
    }
}

/// The tower's modules on one engine.
// One per loaded tower, never in a collection: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Modules {
    Burn {
        encoder: BertModel,
        dense: Linear,
        device: Device,
    },
    Native {
        encoder: NativeBert,
        /// `[out, in]` row-major, as stored.
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
    },
}

/// A query-only text tower in sentence-transformers layout (Transformer → Pooling → Dense
/// [→ Normalize], see [`SentenceLayout`]), e.g.
/// `sentence-transformers/clip-ViT-B-32-multilingual-v1`: texts in, L2-normalised
/// embeddings in the image model's space out.
///
/// ```
/// use glimpse_encoder::{Backend, sentence::QueryTower, LoadOptions};
/// # fn main() -> glimpse_encoder::Result<()> {
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sentence/tiny-distilbert");
/// let tower = QueryTower::load(dir, &Backend::Flex.device()?, &LoadOptions::default())?;
/// let e = tower.embed_texts(&["一只猫坐在红色的沙发上", "a cat on a red sofa"])?;
/// assert_eq!(e[0].len(), tower.dims());
/// assert_eq!(tower.image_model().map(|m| m.id.as_str()), Some("tiny-clip"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct QueryTower {
    layout: SentenceLayout,
    image_model: Option<ImageModel>,
    tokenizer: SentenceTokenizer,
    modules: Modules,
}

impl QueryTower {
    /// Loads the tower in `dir` on `device`: the native kernels or burn as `options.engine`
    /// says ([`Engine::Auto`]: native on the flex CPU device of a vectorised CPU), at
    /// `options.precision` (native only). `options.towers` is ignored (a tower is text only).
    ///
    /// # Errors
    /// [`Error::UnsupportedLayout`] naming what is wrong with the layout;
    /// [`Error::UnsupportedArchitecture`] for a Transformer other than BERT or DistilBERT;
    /// [`Error::Config`] for a bad `glimpse_query_tower.json`; the checkpoint errors of
    /// [`Checkpoint::validate`]; [`Error::Tokenizer`]; [`Error::InvalidInput`] for a
    /// reduced precision on burn.
    pub fn load(dir: impl AsRef<Path>, device: &Device, options: &LoadOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let native = match (options.engine, options.precision) {
            (Engine::Burn, Precision::F32) => false,
            (Engine::Burn, p) => {
                return Err(Error::InvalidInput(format!(
                    "{p:?} precision needs the native engine (Engine::Auto or Engine::Native)"
                )))
            }
            (Engine::Native, _) => true,
            (Engine::Auto, Precision::F32) => native_by_default(device),
            (Engine::Auto, _) => true,
        };
        let layout = SentenceLayout::from_dir(dir)?;
        let image_model = read_image_model(dir, layout.dims())?;
        let t = &layout.transformer;
        let tokenizer = SentenceTokenizer::from_dir(&t.dir, t.max_seq_length)?;
        let checkpoint = Checkpoint::open_file(safetensors_in(&t.dir, "Transformer")?)?;
        let keys = BertKeys::new(&t.config, t.flavor, "");
        checkpoint.validate(&keys)?;
        let dense_checkpoint = Checkpoint::open_file(safetensors_in(&layout.dense.dir, "Dense")?)?;
        let dense_keys = DenseKeys::new(&layout.dense);
        dense_checkpoint.validate(&dense_keys)?;
        let modules = if native {
            let encoder =
                crate::bert::pack::pack_bert(&checkpoint, &keys, options.precision, Isa::detect())?;
            let read = |spec: &TensorSpec| dense_checkpoint.read_f32(&spec.key, &spec.shape);
            Modules::Native {
                encoder,
                weight: read(&dense_keys.0.weight)?,
                bias: dense_keys.0.bias.as_ref().map(read).transpose()?,
            }
        } else {
            let encoder = checkpoint.load_bert(&t.config, t.flavor, "", device)?;
            let reader = Reader {
                checkpoint: &dense_checkpoint,
                device: device.clone(),
            };
            Modules::Burn {
                encoder,
                dense: reader.linear(&dense_keys.0)?,
                device: device.clone(),
            }
        };
        Ok(Self {
            layout,
            image_model,
            tokenizer,
            modules,
        })
    }

    /// The embedding dimension (the Dense module's `out_features`).
    pub fn dims(&self) -> usize {
        self.layout.dims()
    }

    /// The image model the tower declares (`glimpse_query_tower.json`, else the model card);
    /// `None` when it declares none.
    pub fn image_model(&self) -> Option<&ImageModel> {
        self.image_model.as_ref()
    }

    /// The modules read from the directory.
    pub fn layout(&self) -> &SentenceLayout {
        &self.layout
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &SentenceTokenizer {
        &self.tokenizer
    }

    /// Which engine runs the tower: [`Engine::Native`] or [`Engine::Burn`].
    pub fn engine(&self) -> Engine {
        match self.modules {
            Modules::Native { .. } => Engine::Native,
            Modules::Burn { .. } => Engine::Burn,
        }
    }

    /// Tokenizes and embeds texts: L2-normalised vectors of [`dims`](Self::dims) values.
    ///
    /// # Errors
    /// [`Error::Tokenizer`]; as [`embed_token_ids`](Self::embed_token_ids).
    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenizer.encode_batch(texts)?;
        self.embed_token_ids(&ids)
    }

    /// Embeds token id sequences as [`SentenceTokenizer::encode`] returns them (unpadded,
    /// special tokens included).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or over-long sequence or an id outside the
    /// vocabulary; [`Error::Execution`] if the backend fails.
    pub fn embed_token_ids<S: AsRef<[u32]>>(&self, ids: &[S]) -> Result<Vec<Vec<f32>>> {
        let (vocab, positions) = (
            self.layout.transformer.config.vocab_size,
            self.layout.transformer.config.max_position_embeddings,
        );
        for (i, row) in ids.iter().enumerate() {
            crate::bert::model::check_ids(row.as_ref(), i, vocab, positions)?;
        }
        // Sequences of similar length share a batch (each runs as long as its longest), then
        // the caller's order is restored.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].as_ref().len());
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(MAX_BATCH) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_ref()).collect();
            for (&i, e) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = e;
            }
        }
        Ok(out)
    }

    /// Transformer → Pooling → Dense → activation for one batch, then L2 normalisation.
    fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let (d_in, d_out) = (self.layout.dense.in_features, self.dims());
        let rows = match &self.modules {
            Modules::Native {
                encoder,
                weight,
                bias,
            } => {
                let states = encoder.forward(batch, None)?;
                let pooled = match self.layout.pooling {
                    Pooling::Mean => states.mean(),
                    Pooling::Cls => states.first(),
                };
                pooled
                    .chunks(d_in)
                    .map(|x| {
                        (0..d_out)
                            .map(|o| {
                                let w = &weight[o * d_in..(o + 1) * d_in];
                                let dot: f32 = x.iter().zip(w).map(|(a, b)| a * b).sum();
                                dot + bias.as_ref().map_or(0.0, |b| b[o])
                            })
                            .collect()
                    })
                    .collect::<Vec<Vec<f32>>>()
            }
            Modules::Burn {
                encoder,
                dense,
                device,
            } => {
                let hidden = encoder.forward_ids(batch, None, self.tokenizer.pad_id())?; // [b, s, h]
                let [b, s, h] = hidden.dims();
                let pooled = match self.layout.pooling {
                    Pooling::Mean => {
                        let mut mask = Vec::with_capacity(b * s);
                        for row in batch {
                            mask.extend((0..s).map(|i| if i < row.len() { 1.0f32 } else { 0.0 }));
                        }
                        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, s]), device);
                        let counts: Vec<f32> = batch.iter().map(|r| r.len() as f32).collect();
                        let counts =
                            Tensor::<2>::from_data(TensorData::new(counts, [b, 1]), device);
                        let summed = (hidden * mask.unsqueeze_dim::<3>(2))
                            .sum_dim(1)
                            .reshape([b, h]); // [b, h]
                        summed / counts
                    }
                    Pooling::Cls => hidden.narrow(1, 0, 1).reshape([b, h]), // [b, h]
                };
                rows(dense.forward(pooled))? // [b, out]
            }
        };
        Ok(rows
            .into_iter()
            .map(|mut row| {
                if self.layout.dense.activation == DenseActivation::Tanh {
                    row.iter_mut().for_each(|v| *v = v.tanh());
                }
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|v| *v /= norm);
                }
                row
            })
            .collect())
    }
}

/// Reads a `[batch, dim]` tensor back as rows.
fn rows(tensor: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, dim] = tensor.dims();
    let data = tensor
        .try_into_data()
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    let values = data
        .try_to_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    Ok(values.chunks(dim).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tower_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<QueryTower>();
    }
}
