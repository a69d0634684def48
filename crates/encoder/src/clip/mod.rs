//! The CLIP architecture (Hugging Face `CLIPModel`): the burn modules of both towers, mirroring
//! the checkpoint's module tree, and the one key map that every reader and writer of its
//! checkpoints walks.
//!
//! - [`keys`]: every tensor's key, shape and role ([`ClipKeys`]);
//! - [`load`]: checkpoint → burn modules ([`crate::checkpoint::Checkpoint::load_model`]);
//! - [`pack`]: checkpoint (or a burn model) → the native kernels' towers;
//! - [`state_dict`](mod@state_dict): burn modules → checkpoint tensors (the training crate's writer);
//! - [`model`] (the dual tower [`ClipModel`]), [`text`], [`vision`], [`layers`],
//!   [`attention`], [`mlp`]: the modules.

pub mod attention;
pub mod keys;
pub mod layers;
pub mod load;
pub mod mlp;
pub mod model;
pub mod pack;
pub mod state_dict;
pub mod text;
pub mod vision;

pub use keys::ClipKeys;
pub use model::{ClipModel, ClipTextTower, ClipVisionTower, Towers};
pub use state_dict::{state_dict, StateDict};
