//! One safetensors file, memory-mapped: an 8-byte header length, a JSON header (name → dtype,
//! shape, byte range) and the raw little-endian data.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{bf16, f16};
use memmap2::Mmap;
use serde::Deserialize;

use crate::error::{Error, Result};

/// One safetensors file, memory-mapped, with its parsed header.
#[derive(Debug)]
pub struct SafetensorsFile {
    pub(super) path: PathBuf,
    pub(super) mmap: Arc<Mmap>,
    data_start: usize,
    pub(super) tensors: BTreeMap<String, TensorEntry>,
}

/// A tensor's header entry.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct TensorEntry {
    pub(super) dtype: String,
    pub(super) shape: Vec<usize>,
    data_offsets: [usize; 2],
}

pub(super) fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

impl SafetensorsFile {
    /// Maps `path` and parses and checks its header (offsets inside the file, sizes consistent
    /// with dtype and shape).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only. Another process truncating or rewriting the checkpoint
        // while it is loaded would change the bytes under us (or fault); checkpoints are
        // written once and then only read, which is the usage this crate supports.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let bad = |message: String| Error::Checkpoint {
            path: path.clone(),
            message,
        };
        if mmap.len() < 8 {
            return Err(bad(format!(
                "file is {} bytes, too short for a header",
                mmap.len()
            )));
        }
        let header_len = u64::from_le_bytes(mmap[..8].try_into().expect("8 bytes")) as usize;
        let data_start = 8usize
            .checked_add(header_len)
            .filter(|&end| end <= mmap.len())
            .ok_or_else(|| bad(format!("header length {header_len} exceeds the file")))?;
        let header: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&mmap[8..data_start])
                .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let data_len = mmap.len() - data_start;
        let mut tensors = BTreeMap::new();
        for (name, value) in header {
            if name == "__metadata__" {
                continue;
            }
            let entry: TensorEntry = serde_json::from_value(value)
                .map_err(|e| bad(format!("header entry `{name}`: {e}")))?;
            let [begin, end] = entry.data_offsets;
            if begin > end || end > data_len {
                return Err(bad(format!(
                    "`{name}` spans bytes {begin}..{end} of a {data_len}-byte data section"
                )));
            }
            if let Some(size) = dtype_size(&entry.dtype) {
                let numel: usize = entry.shape.iter().product();
                if numel.checked_mul(size) != Some(end - begin) {
                    return Err(bad(format!(
                        "`{name}` has shape {:?} of {} but {} bytes",
                        entry.shape,
                        entry.dtype,
                        end - begin
                    )));
                }
            }
            tensors.insert(name, entry);
        }
        Ok(Self {
            path,
            mmap: Arc::new(mmap),
            data_start,
            tensors,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names and shapes, in name order.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.tensors
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.shape.as_slice()))
    }

    /// The tensor's values widened to `f32`, in row-major order.
    /// The tensor's values in place, when it is F32, 4-byte aligned in the mapping and the
    /// machine is little-endian (safetensors stores little-endian).
    pub(super) fn f32_slice(&self, entry: &TensorEntry) -> Option<&[f32]> {
        let [begin, end] = entry.data_offsets;
        let bytes = &self.mmap[self.data_start + begin..self.data_start + end];
        if entry.dtype != "F32" || cfg!(target_endian = "big") || !bytes.len().is_multiple_of(4) {
            return None;
        }
        // SAFETY: f32 has no invalid bit patterns; the pointer is checked for f32 alignment
        // by `align_to`, which returns the aligned middle; we only use it when the whole slice
        // is aligned (empty prefix and suffix). The slice borrows `self.mmap`, which lives as
        // long as `self`.
        let (prefix, values, suffix) = unsafe { bytes.align_to::<f32>() };
        (prefix.is_empty() && suffix.is_empty()).then_some(values)
    }

    pub(super) fn read_f32(&self, key: &str, entry: &TensorEntry) -> Result<Vec<f32>> {
        let [begin, end] = entry.data_offsets;
        let bytes = &self.mmap[self.data_start + begin..self.data_start + end];
        let values = match entry.dtype.as_str() {
            "F32" => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            "F16" => bytes
                .chunks_exact(2)
                .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            "BF16" => bytes
                .chunks_exact(2)
                .map(|b| bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            other => {
                return Err(Error::UnsupportedDType {
                    key: key.to_owned(),
                    dtype: other.to_owned(),
                })
            }
        };
        Ok(values)
    }
}

/// An f32 tensor read in place from a memory-mapped checkpoint file (see
/// [`Checkpoint::mapped_f32`]): no copy, and pages are read from the page cache on first use.
/// Like every memory map, it assumes the file is not truncated while in use (checkpoints are
/// replaced, not rewritten in place).
#[derive(Debug, Clone)]
pub struct MappedF32 {
    pub(super) mmap: Arc<Mmap>,
    /// Byte offset of the first value in the mapping (f32-aligned).
    pub(super) offset: usize,
    pub(super) len: usize,
}

impl MappedF32 {
    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        let bytes = &self.mmap[self.offset..self.offset + 4 * self.len];
        // SAFETY: `Checkpoint::mapped_f32` only builds a `MappedF32` over a range it checked to
        // be f32-aligned, little-endian F32 data of exactly `len` values; f32 has no invalid
        // bit patterns, and the bytes live as long as `self.mmap`.
        let (_, values, _) = unsafe { bytes.align_to::<f32>() };
        values
    }
}

impl AsRef<[f32]> for MappedF32 {
    fn as_ref(&self) -> &[f32] {
        self.as_slice()
    }
}
