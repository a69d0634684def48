//! The SigLIP architecture (Hugging Face `SiglipModel`: SigLIP and SigLIP 2 FixRes
//! checkpoints such as `google/siglip-base-patch16-224`, `google/siglip2-base-patch16-224`,
//! `google/siglip-so400m-patch14-384`).
//!
//! What differs from CLIP ([`crate::clip`]), following `transformers`' `modeling_siglip.py`:
//! no class token and no projections; the image embedding is the output of an
//! attention-pooling ("MAP") head over every token; the text tower's attention is
//! bidirectional, every sequence is padded to 64 ids with the tokenizer's pad id and the last
//! position is pooled through `text_model.head`; `gelu_pytorch_tanh`; layer-norm epsilon from
//! the config (1e-6); and a learned `logit_bias` beside `logit_scale`, which makes
//! `sigmoid(exp(logit_scale)·cos + logit_bias)` a calibrated probability of a match.
//!
//! - [`config`] — [`SiglipConfig`];
//! - [`keys`] — the key map ([`SiglipKeys`]);
//! - [`model`] — the burn modules ([`SiglipModel`]), reusing CLIP's encoder layers;
//! - [`load`] — checkpoint → burn modules ([`crate::checkpoint::Checkpoint::load_siglip`]);
//! - [`pack`] — checkpoint → the native kernels' towers;
//! - [`tokenize`] — [`SiglipTokenizer`].

pub mod config;
pub mod keys;
pub mod load;
pub mod model;
pub mod pack;
pub mod tokenize;

pub use config::{SiglipConfig, SiglipTextConfig, SiglipVisionConfig};
pub use keys::SiglipKeys;
pub use model::{SiglipModel, SiglipTextTower, SiglipVisionTower};
pub use tokenize::SiglipTokenizer;

/// SigLIP's calibrated relevance of a cosine similarity:
/// `sigmoid(exp(logit_scale)·cosine + logit_bias)`, the model's probability that the text
/// describes the image (what `torch.sigmoid(outputs.logits_per_image)` gives).
pub fn relevance(cosine: f32, logit_scale: f32, logit_bias: f32) -> f32 {
    let logit = logit_scale.exp() * cosine + logit_bias;
    1.0 / (1.0 + (-logit).exp())
}
