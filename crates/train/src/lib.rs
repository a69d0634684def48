//! Contrastive training (CLIP's objective) in burn: the `glimpse-train` crate, which
//! production builds never compile.
//!
//! Matching image–caption pairs are pulled together and every other pair in the batch pushed
//! apart: the symmetric InfoNCE loss over the image × text similarity matrix scaled by
//! `exp(logit_scale)` — a learned temperature, clamped at 100 as CLIP does
//! ([Radford et al. 2021](https://arxiv.org/abs/2103.00020), §2.3 and Figure 3).
//!
//! - **Optimiser**: AdamW (decay on matrices only: biases, layer norms, the class embedding
//!   and `logit_scale` are not decayed, as in OpenCLIP), a linear warm-up then a cosine decay
//!   of the learning rate ([`learning_rate`]), clipping of the *global* gradient norm, fixed
//!   seeds (weights, batch order and augmentation are reproducible for a given seed and
//!   thread count).
//! - **Data**: a [`Dataset`] from a folder with a `captions.tsv` or from any iterator of
//!   `(image, caption)` pairs; random resized crops and (where the caption names no side)
//!   mirror flips, computed on the CPU in parallel ([`Augment`]).
//! - **Starting points**: [`Trainer::from_scratch`] (a [`ClipConfig`]), [`Trainer::fine_tune`]
//!   (a Hugging Face checkpoint folder), optionally with one tower frozen ([`Freeze`]: LiT
//!   freezes the image tower), and [`Trainer::resume`] from a checkpoint this trainer saved.
//! - **Progress**: a [`StepReport`] per step (loss, in-batch accuracy, learning rate,
//!   temperature, gradient norm).
//! - **Checkpoints**: [`Trainer::save`] writes a Hugging Face checkpoint folder
//!   ([`checkpoint`]) that `glimpse_encoder::checkpoint::Checkpoint` and `transformers` load, plus the
//!   trainer's own state (`trainer_state.json`, `optimizer.bpk`) for [`Trainer::resume`].
//!
//! ```no_run
//! # fn main() -> glimpse_encoder::Result<()> {
//! use glimpse_train::{Dataset, TrainConfig, Trainer};
//! use glimpse_encoder::{ClipConfig, Device};
//!
//! let data = Dataset::from_folder("my-photos")?; // my-photos/captions.tsv
//! let config = TrainConfig { steps: 500, batch_size: 64, ..TrainConfig::default() };
//! let mut trainer = Trainer::fine_tune("models/clip-vit-base-patch32", config, &Device::flex())?;
//! trainer.train(&data, |report| println!("{report}"))?;
//! trainer.save("models/my-clip")?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod checkpoint;
mod config;
mod data;
pub mod distill;
mod model;
mod params;
mod trainer;

pub use checkpoint::{save_checkpoint, SaveDType, TokenizerSource};
pub use config::{learning_rate, Freeze, StepReport, TrainConfig};
pub use data::{Augment, Dataset};
pub use model::{
    contrastive_loss, in_batch_accuracy, Batch, ContrastiveModel, ContrastiveOutput,
    MAX_LOGIT_SCALE,
};
pub use trainer::Trainer;
