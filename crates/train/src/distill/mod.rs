//! Distillation of a multilingual **query tower** into an existing image model's space: a
//! small BERT-family text encoder (`glimpse_encoder::bert`, DistilBERT layout) with mean
//! pooling and a Dense layer, trained so that its embedding of a caption in another language
//! (Chinese here) equals the teacher's — the CLIP text tower's — embedding of the same
//! scene's English caption (mean-squared error). This is how sentence-transformers made
//! `clip-ViT-B-32-multilingual-v1` (Reimers & Gurevych 2020,
//! <https://arxiv.org/abs/2004.09813>): photos indexed with the image model answer queries in
//! the new language without being re-embedded.
//!
//! - [`data`]: [`StudentTokenizer`] (the tower's WordPiece `tokenizer.json`), [`Teacher`]
//!   (the CLIP text tower), [`DistillSet`] (student texts and teacher targets);
//! - [`student`]: [`StudentTower`] (encoder → mean pooling → Dense);
//! - [`Distiller`]: AdamW steps on the mean-squared error;
//! - [`save`]: [`save_tower`] writes the sentence-transformers layout (plus
//!   `glimpse_query_tower.json`) that `SentenceTransformer(dir)` and
//!   `LibraryBuilder::query_model(dir)` load.
//!
//! ```no_run
//! # fn main() -> glimpse_encoder::Result<()> {
//! use glimpse_encoder::bert::BertConfig;
//! use glimpse_encoder::Device;
//! use glimpse_train::distill::{save_tower, DistillSet, Distiller, StudentTokenizer, Teacher, TowerFiles};
//! use glimpse_train::TrainConfig;
//!
//! let specs = glimpse_synth::random_specs(12000, 7);
//! let captions = glimpse_synth::captions_of(&specs, 7);
//! let teacher = Teacher::load("models/glimpse-shapes")?;
//! let tokenizer = StudentTokenizer::from_file("models/glimpse-shapes-zh/tokenizer.json", 64)?;
//! let set = DistillSet::build(&captions, true, &teacher, &tokenizer)?;
//! let bert = BertConfig {
//!     vocab_size: tokenizer.vocab_size(),
//!     hidden_size: 128,
//!     num_hidden_layers: 4,
//!     num_attention_heads: 4,
//!     intermediate_size: 512,
//!     max_position_embeddings: 64,
//!     type_vocab_size: 0,
//!     ..BertConfig::default()
//! };
//! let config = TrainConfig { steps: 1000, learning_rate: 1e-3, ..TrainConfig::default() };
//! let mut distiller = Distiller::new(bert.clone(), teacher.dims(), tokenizer.pad_id(), config, &Device::flex());
//! distiller.train(&set, |report| println!("{report}"))?;
//! let files = TowerFiles {
//!     tokenizer_dir: "models/glimpse-shapes-zh".as_ref(),
//!     max_seq_length: 64,
//!     image_model: "glimpse-shapes",
//! };
//! save_tower(&distiller.tower(), &bert, &files, "my-tower")?;
//! # Ok(()) }
//! ```

pub mod data;
pub mod save;
pub mod student;
mod trainer;

pub use data::{DistillSet, StudentTokenizer, Teacher};
pub use save::{encoder_state_dict, save_tower, TowerFiles};
pub use student::{StudentTower, TextBatch};
pub use trainer::{DistillReport, Distiller};
