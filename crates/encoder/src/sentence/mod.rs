//! Query-only multilingual text towers in sentence-transformers layout: a text encoder trained
//! into an existing image model's embedding space, such as
//! `sentence-transformers/clip-ViT-B-32-multilingual-v1` (multilingual DistilBERT, mean
//! pooling, Dense 768 → 512, distilled into OpenAI CLIP ViT-B/32's space). A library indexed
//! with the image model answers queries in the tower's languages without re-embedding a
//! photo.
//!
//! What is computed is what `SentenceTransformer(dir).encode(texts)` computes, followed by
//! L2 normalisation: the tokenizer of `tokenizer.json` truncated to `max_seq_length`, the
//! BERT-family encoder of [`crate::bert`], the pooling of `1_Pooling` (mean over the real
//! tokens, or [CLS]), the Dense module of `2_Dense` (`linear`, Identity or Tanh).
//!
//! - [`layout`] — [`SentenceLayout`]: `modules.json` and each module's config, checked to
//!   chain; anything else is [`crate::Error::UnsupportedLayout`];
//! - [`declared`] — [`ImageModel`]: which image model the tower belongs to
//!   (`glimpse_query_tower.json`, else the model card);
//! - [`tokenize`] — [`SentenceTokenizer`];
//! - [`tower`] — [`QueryTower`], on the native kernels or burn.

pub mod declared;
pub mod layout;
pub mod tokenize;
pub mod tower;

pub use declared::{DeclaredBy, ImageModel, QUERY_TOWER_FILE};
pub use layout::{DenseActivation, Pooling, SentenceLayout};
pub use tokenize::SentenceTokenizer;
pub use tower::QueryTower;
