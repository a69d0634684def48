//! The BERT family of text encoders: `BertModel` (BERT, the RoBERTa-wwm towers of
//! Chinese-CLIP, which are BERT architecture) and `DistilBertModel` (the multilingual
//! sentence-transformers query towers), following `transformers`' `modeling_bert.py` and
//! `modeling_distilbert.py`.
//!
//! Both are post-LayerNorm transformers: embeddings `LN(word + token_type + position)`, then per
//! layer `x = LN(x + attn(x))`, `x = LN(x + fc2(act(fc1(x))))`, bidirectional attention with
//! padded tokens masked. They differ only in key names and config field names
//! ([`BertFlavor`]) and in DistilBERT having no token types. The output is the last hidden
//! states `[batch, seq, hidden]`; pooling (Chinese-CLIP's `[CLS]`, sentence-transformers' mean)
//! belongs to the model that uses the encoder.
//!
//! - [`config`] — [`BertConfig`] (flavour-neutral), [`BertFlavor`];
//! - [`keys`] — the one key map ([`BertKeys`]), for both layouts, under any prefix;
//! - [`model`] — the burn modules ([`BertModel`]), trainable on an autodiff device;
//! - [`load`] — checkpoint → burn ([`crate::checkpoint::Checkpoint::load_bert`]);
//! - [`pack`] — checkpoint → the native kernels ([`glimpse_kernels::post_ln::NativeBert`]);
//! - [`state_dict`](mod@state_dict) — burn modules → checkpoint tensors (saving a trained encoder);
//! - [`tokenize`] — [`BertTokenizer`] (WordPiece, from `tokenizer.json` or `vocab.txt`).
//!
//! ```no_run
//! use glimpse_encoder::bert::{BertConfig, BertFlavor};
//! use glimpse_encoder::checkpoint::Checkpoint;
//! # fn main() -> glimpse_encoder::Result<()> {
//! let dir = std::path::Path::new("some-distilbert");
//! let json: serde_json::Value =
//!     serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
//! let config = BertConfig::from_value(&json, BertFlavor::DistilBert)?;
//! let checkpoint = Checkpoint::open_dir(dir)?;
//! let device = glimpse_encoder::Backend::Flex.device()?;
//! // burn modules:
//! let model = checkpoint.load_bert(&config, BertFlavor::DistilBert, "", &device)?;
//! let hidden = model.forward_ids(&[vec![101u32, 2023, 102]], None, 0)?; // [1, 3, 768]
//! // or the native kernels:
//! let native = glimpse_encoder::bert::pack::pack_checkpoint(
//!     &checkpoint, &config, BertFlavor::DistilBert, "",
//!     glimpse_encoder::Precision::F32, glimpse_encoder::kernels::Isa::detect())?;
//! let states = native.forward(&[vec![101u32, 2023, 102]], None)?; // states.hidden: 3 × 768
//! # let _ = (hidden, states);
//! # Ok(()) }
//! ```

pub mod config;
pub mod keys;
pub mod load;
pub mod model;
pub mod pack;
pub mod state_dict;
pub mod tokenize;

pub use config::{BertConfig, BertFlavor};
pub use keys::BertKeys;
pub use model::BertModel;
pub use state_dict::state_dict;
pub use tokenize::BertTokenizer;
