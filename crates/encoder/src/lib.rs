//! CLIP and SigLIP for Glimpse: photos and texts into one embedding space, computing what
//! Hugging Face `transformers`' `CLIPModel` and `SiglipModel` compute (cosine ≥ 0.99999 to it
//! in the parity tests), in pure Rust on [burn](https://burn.dev) and on a native AVX-512
//! engine. The architecture is read from `config.json` ([`Architecture`]); SigLIP's
//! calibrated relevance is [`Encoder::relevance`].
//!
//! ```
//! use glimpse_encoder::{Backend, ClipEncoder, Preprocessor, Towers};
//!
//! # fn main() -> glimpse_encoder::Result<()> {
//! // A checkpoint in Hugging Face layout: config.json, model.safetensors, tokenizer.json,
//! // preprocessor_config.json (here the tiny random one the tests use).
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-clip");
//! let device = Backend::Flex.device()?; // or Backend::Wgpu, or "cpu".parse()?
//! let encoder = ClipEncoder::load(dir, &device, Towers::Both)?;
//!
//! // Images: decode and preprocess on the CPU (a separate, parallel step), then encode.
//! let preprocessor = Preprocessor::from_dir(dir)?;
//! let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images/photo_rgb.png");
//! let images = encoder.embed_pixels(&[preprocessor.preprocess_path(photo)?])?;
//!
//! // Texts: tokenize and encode.
//! let texts = encoder.embed_texts(&["a photo of a cat", "a photo of a dog"])?;
//!
//! // Embeddings are unit vectors: cosine similarity is a dot product.
//! let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
//! assert_eq!(images[0].len(), encoder.dim());
//! assert!((dot(&texts[0], &texts[0]) - 1.0).abs() < 1e-5);
//! let (cat, dog) = (dot(&images[0], &texts[0]), dot(&images[0], &texts[1]));
//! assert!(cat.abs() <= 1.0 + 1e-5 && dog.abs() <= 1.0 + 1e-5);
//! # Ok(()) }
//! ```
//!
//! # The pieces
//! - [`config`]: [`ClipConfig`] read from the checkpoint's `config.json` (every ViT CLIP in HF
//!   layout: OpenAI's ViT-B/32, B/16, L/14, L/14-336, LAION's OpenCLIP conversions), with named
//!   presets.
//! - [`checkpoint`]: `model.safetensors`, memory-mapped, checked against a key map before it is
//!   read.
//! - [`clip`]: the architecture: its key map ([`clip::keys`]), the towers as burn modules
//!   mirroring the checkpoint's module tree, the dual tower [`ClipModel`], and the loaders
//!   (burn modules, native kernels) and the state-dict writer that walk the key map. Either
//!   tower can be loaded alone ([`Towers`]).
//! - [`backend`]: the compute [`Backend`] chosen at run time (`flex` CPU by default, `wgpu`
//!   with the `wgpu` feature), with a typed error when it is unavailable.
//! - [`tokenize`], [`preprocess`]: [`ClipTokenizer`] and [`Preprocessor`], reproducing
//!   `CLIPTokenizerFast` and `CLIPImageProcessor` exactly.
//! - [`kernels`] (the `glimpse-kernels` crate): the native CPU engine (packed AVX-512 f32/bf16
//!   GEMM, fused operations) that [`ClipEncoder`] uses on the flex CPU device; [`Precision`]
//!   and [`Engine`] choose.
//! - [`architecture`]: [`Architecture`] and [`ModelConfig`], read from `config.json`
//!   (`model_type` / `architectures`); anything else is [`Error::UnsupportedArchitecture`].
//! - [`siglip`]: the SigLIP architecture (SigLIP and SigLIP 2 FixRes): key map, burn modules,
//!   loader, native packer, tokenizer (padded to 64 with the tokenizer's pad id).
//! - [`sentence`]: query-only multilingual text towers in sentence-transformers layout
//!   (Transformer → Pooling → Dense over [`bert`]), [`QueryTower`].
//! - [`bert`]: the BERT-family text encoder (`BertModel`, `DistilBertModel` layouts; post-LN,
//!   masked attention) as burn modules and on the native kernels, with its key map and
//!   WordPiece tokenizer.
//! - [`chinese_clip`]: Chinese-CLIP (`ChineseCLIPModel`): CLIP's ViT and a BERT text tower
//!   pooled at `[CLS]`.
//! - [`encoder`]: [`Encoder`] (alias [`ClipEncoder`]), all of the above behind `load` /
//!   `embed_pixels` / `embed_texts` for either architecture.
//!
//! Training and the synthetic pictures live in their own crates (`glimpse-train`,
//! `glimpse-synth`), which production builds never compile.
//!
//! # Design notes
//! - The text tower is causal and pools at the end-of-text token, so a batch runs only as long
//!   as its longest sequence, never padded to 77 tokens: same embeddings, several times less
//!   work for short queries.
//! - Models are plain burn modules with no backend type parameter (burn 0.22): the backend is a
//!   property of the [`Device`] the weights were loaded onto.
//! - Nothing panics on bad input: malformed checkpoints, shape mismatches, wrong pixel sizes,
//!   over-long token sequences and missing GPUs are [`Error`] values.
#![deny(missing_docs)]

pub mod architecture;
pub mod backend;
pub mod bert;
pub mod checkpoint;
pub mod chinese_clip;
pub mod clip;
pub mod config;
pub mod encoder;
pub mod error;
mod hub_tokenizer;
pub mod preprocess;
pub mod sentence;
pub mod siglip;
pub mod tokenize;

pub use architecture::{Architecture, ModelConfig};
pub use backend::Backend;
pub use burn::tensor::Device;
pub use clip::{ClipModel, Towers};
pub use config::{Activation, ClipConfig, ClipTextConfig, ClipVisionConfig};
pub use encoder::{ClipEncoder, Encoder, Engine, LoadOptions, LoadedModel};
pub use error::{Error, Result};
pub use glimpse_kernels as kernels;
pub use glimpse_kernels::Precision;
pub use preprocess::{Pixels, PreprocessConfig, Preprocessor};
pub use sentence::QueryTower;
pub use siglip::{SiglipConfig, SiglipModel, SiglipTokenizer};
pub use tokenize::{ClipTokenizer, TextTokenizer};
