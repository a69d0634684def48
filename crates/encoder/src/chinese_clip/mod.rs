//! Chinese-CLIP (Hugging Face `ChineseCLIPModel`, e.g. `OFA-Sys/chinese-clip-vit-base-patch16`,
//! `OFA-Sys/chinese-clip-vit-large-patch14`): CLIP's ViT image tower and a BERT text tower
//! (the RoBERTa-wwm-ext Chinese towers are BERT architecture), following `transformers`'
//! `modeling_chinese_clip.py`.
//!
//! What differs from CLIP ([`crate::clip`]): the text tower is [`crate::bert`] (post-LN,
//! bidirectional attention with padding masked, token types, no causal mask); its `[CLS]` state
//! (position 0, before any final norm) goes through `text_projection` (no bias). The image
//! tower, its keys and `visual_projection` are CLIP's. Texts are tokenized by the checkpoint's
//! WordPiece `tokenizer.json` ([`crate::bert::tokenize::BertTokenizer`]); images are resized
//! to a fixed size with no centre crop (`ChineseCLIPImageProcessor` as the checkpoints
//! configure it, read from `preprocessor_config.json` like any other).
//!
//! - [`config`] — [`ChineseClipConfig`];
//! - [`keys`] — the key map ([`ChineseClipKeys`]);
//! - [`model`] — the burn modules ([`ChineseClipModel`]);
//! - [`load`] — checkpoint → burn ([`crate::checkpoint::Checkpoint::load_chinese_clip`]);
//! - [`pack`] — checkpoint → the native kernels.

pub mod config;
pub mod keys;
pub mod load;
pub mod model;
pub mod pack;

pub use config::ChineseClipConfig;
pub use keys::ChineseClipKeys;
pub use model::{ChineseClipModel, ChineseClipTextTower};
