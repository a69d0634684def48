//! Reading a Hugging Face `model.safetensors` (or a sharded `model.safetensors.index.json`),
//! and checking it against an architecture's key map before anything is read.
//!
//! # Why a hand-written reader rather than `burn::store::SafetensorsStore`
//! The safetensors format is an 8-byte header length, a JSON header (name → dtype, shape, byte
//! range) and the raw little-endian data: about a hundred lines to read ([`SafetensorsFile`]).
//! Reading it here, from a memory map, lets the loaders
//! - build every module directly from its checkpoint tensors, with no random initialisation to
//!   throw away;
//! - check each tensor against the shape the config implies *before* converting it
//!   ([`Checkpoint::validate`]), and report a missing key, an unexpected key or a shape
//!   mismatch as a typed [`Error`] that names the key and both shapes;
//! - skip the other tower entirely when loading one tower: its bytes are never touched, so a
//!   text-only process pages in only the text weights;
//! - borrow f32 tensors straight from the mapping ([`Checkpoint::with_f32`],
//!   [`Checkpoint::mapped_f32`]) and widen `F16` and `BF16` to `f32` while converting.
//!
//! Which key holds what is not written here: see the architecture's key map,
//! [`crate::clip::keys`].
//!
//! # The mapping contract
//! Checkpoints are memory-mapped read-only. A map is only as good as the file under it: if
//! another process truncated the file, reading the lost pages would kill this one (`SIGBUS`),
//! and if it rewrote the file in place, a `&[f32]` borrowed from the map would change under
//! its reader. So:
//!
//! - **Writers replace, never rewrite.** Write the new checkpoint to another file in the same
//!   folder and rename it over `model.safetensors`, as `hf-hub`, `huggingface_hub`,
//!   `save_pretrained` and `glimpse-train` do. A mapping keeps the old file (its inode) alive
//!   and unchanged: a process that has it open goes on with the old weights, and the next open
//!   reads the new ones. A writer that must write in place takes an exclusive `flock` on the
//!   file first.
//! - **Readers lock and check.** [`SafetensorsFile::open`] takes a shared `flock` on the file
//!   (so an exclusive-locking writer waits for every process that has it mapped, and a file
//!   under such a writer's lock is refused), held for as long as anything maps it, including
//!   a [`MappedF32`]. It records the file's size and modification time, and every read —
//!   [`Checkpoint::read_f32`], [`Checkpoint::with_f32`] (before and after its closure),
//!   [`Checkpoint::mapped_f32`], [`MappedF32::try_as_slice`] — first checks them on the open
//!   descriptor. A file truncated or rewritten in place since it was opened is then reported
//!   as [`Error::Checkpoint`] ("rewritten in place"), never read; [`MappedF32::as_slice`]
//!   (which has no error to return) panics with that message instead.
//!
//! What remains outside the contract: an in-place rewrite by a process that ignores the lock,
//! *while* a read is in progress (between the check and the last byte read). The checks turn
//! every rewrite that happens before a read into an error, which is what the usual accident —
//! copying a new checkpoint over the old one while an application runs — looks like, but they
//! cannot stop a racing truncation from faulting; nothing short of copying the weights (which
//! would cost a query process ~100 MB for a token table it reads ~10 rows of) can.

mod safetensors;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::clip::keys::{ClipKeys, TensorSpec};
use crate::error::{Error, Result};

/// An architecture's key map, as [`Checkpoint::validate`] walks it: every tensor the loaders
/// read, and which other keys a checkpoint may hold unread.
pub trait KeyMap {
    /// Every tensor the loaders read, in load order.
    fn specs(&self) -> Vec<&TensorSpec>;
    /// Whether a checkpoint may hold `key` without any reader consuming it.
    fn may_skip(&self, key: &str) -> bool;
}

impl KeyMap for ClipKeys {
    fn specs(&self) -> Vec<&TensorSpec> {
        ClipKeys::specs(self)
    }

    fn may_skip(&self, key: &str) -> bool {
        ClipKeys::may_skip(self, key)
    }
}

use safetensors::TensorEntry;
pub use safetensors::{MappedF32, SafetensorsFile};

/// The weight files of one checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    files: Vec<SafetensorsFile>,
    /// key → index into `files`.
    index: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Opens `model.safetensors` in `dir`, or the shards listed by
    /// `model.safetensors.index.json`.
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let single = dir.join("model.safetensors");
        if single.exists() {
            return Self::from_files(vec![SafetensorsFile::open(single)?]);
        }
        let index_path = dir.join("model.safetensors.index.json");
        let text = std::fs::read_to_string(&index_path).map_err(|source| Error::Io {
            path: if index_path.exists() {
                index_path.clone()
            } else {
                single.clone()
            },
            source,
        })?;
        let index: ShardIndex = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: index_path.clone(),
            message: e.to_string(),
        })?;
        let shards: std::collections::BTreeSet<&String> = index.weight_map.values().collect();
        let files = shards
            .into_iter()
            .map(|shard| SafetensorsFile::open(dir.join(shard)))
            .collect::<Result<Vec<_>>>()?;
        Self::from_files(files)
    }

    /// Opens one safetensors file.
    pub fn open_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_files(vec![SafetensorsFile::open(path)?])
    }

    fn from_files(files: Vec<SafetensorsFile>) -> Result<Self> {
        let mut index = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            for name in file.tensors.keys() {
                if index.insert(name.clone(), i).is_some() {
                    return Err(Error::Checkpoint {
                        path: file.path.clone(),
                        message: format!("`{name}` appears in more than one shard"),
                    });
                }
            }
        }
        Ok(Self { files, index })
    }

    /// Every tensor name and shape in the checkpoint, in name order.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.index.iter().map(|(name, &i)| {
            let entry = &self.files[i].tensors[name];
            (name.as_str(), entry.shape.as_slice())
        })
    }
}

impl Checkpoint {
    /// The file holding tensor `key` and its header entry, checked to have exactly `shape`.
    fn entry(&self, key: &str, shape: &[usize]) -> Result<(&SafetensorsFile, &TensorEntry)> {
        let Some(&file) = self.index.get(key) else {
            return Err(Error::MissingWeight {
                key: key.to_owned(),
                expected: shape.to_vec(),
            });
        };
        let file = &self.files[file];
        let entry = &file.tensors[key];
        if entry.shape != shape {
            return Err(Error::ShapeMismatch {
                key: key.to_owned(),
                expected: shape.to_vec(),
                found: entry.shape.clone(),
            });
        }
        Ok((file, entry))
    }

    /// The values of tensor `key` as f32 (widened from f16/bf16), which must have exactly
    /// `shape`. Used by loaders that build their own layout (the native CPU path).
    ///
    /// # Errors
    /// [`Error::MissingWeight`], [`Error::ShapeMismatch`], [`Error::UnsupportedDType`].
    pub fn read_f32(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (file, entry) = self.entry(key, shape)?;
        file.read_f32(key, entry)
    }

    /// Calls `f` with the values of tensor `key` (which must have exactly `shape`) as f32,
    /// borrowing them straight from the mapped file when it stores aligned little-endian f32
    /// (no copy), else from a widened copy. For loaders that repack weights anyway.
    ///
    /// # Errors
    /// As [`read_f32`](Self::read_f32).
    pub fn with_f32<R>(
        &self,
        key: &str,
        shape: &[usize],
        f: impl FnOnce(&[f32]) -> R,
    ) -> Result<R> {
        let (file, entry) = self.entry(key, shape)?;
        if let Some(values) = file.f32_slice(entry)? {
            let result = f(values);
            // `f` read the mapping: its result is only good if nothing rewrote the file
            // meanwhile.
            file.check()?;
            return Ok(result);
        }
        Ok(f(&file.read_f32(key, entry)?))
    }

    /// Tensor `key` (exactly `shape`) kept in the mapped file instead of copied, when the file
    /// stores it as aligned little-endian f32; `None` when it needs widening or realigning
    /// (then use [`read_f32`](Self::read_f32)). The mapping stays open while the value lives.
    ///
    /// # Errors
    /// As [`read_f32`](Self::read_f32).
    pub fn mapped_f32(&self, key: &str, shape: &[usize]) -> Result<Option<MappedF32>> {
        let (file, entry) = self.entry(key, shape)?;
        Ok(file.f32_slice(entry)?.map(|values| MappedF32 {
            mmap: file.mmap.clone(),
            offset: values.as_ptr() as usize - file.mmap.base(),
            len: values.len(),
        }))
    }

    /// Checks the checkpoint against an architecture's key map, in the map's order: every
    /// tensor present with exactly its shape and a readable dtype, then no tensor that no
    /// reader consumes (the first such key in name order). Every loader calls this before
    /// reading, so each fault is reported once, the same way for all of them.
    ///
    /// # Errors
    /// [`Error::MissingWeight`], [`Error::ShapeMismatch`], [`Error::UnsupportedDType`];
    /// [`Error::UnexpectedWeight`] for a tensor of a loaded tower (or of none) that the map
    /// does not list (the `position_ids` buffers aside).
    pub fn validate(&self, keys: &impl KeyMap) -> Result<()> {
        let specs = keys.specs();
        for spec in &specs {
            let (_, entry) = self.entry(&spec.key, &spec.shape)?;
            if !matches!(entry.dtype.as_str(), "F32" | "F16" | "BF16") {
                return Err(Error::UnsupportedDType {
                    key: spec.key.clone(),
                    dtype: entry.dtype.clone(),
                });
            }
        }
        let listed: HashSet<&str> = specs.iter().map(|s| s.key.as_str()).collect();
        for (key, shape) in self.shapes() {
            if listed.contains(key) || keys.may_skip(key) {
                continue;
            }
            return Err(Error::UnexpectedWeight {
                key: key.to_owned(),
                shape: shape.to_vec(),
            });
        }
        Ok(())
    }
}
