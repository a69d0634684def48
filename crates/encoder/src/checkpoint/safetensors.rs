//! One safetensors file, memory-mapped: an 8-byte header length, a JSON header (name → dtype,
//! shape, byte range) and the raw little-endian data.
//!
//! The mapping holds a shared `flock` on the file and the file's size and modification time at
//! open, and checks them before it hands out bytes (see the module docs of
//! [`crate::checkpoint`], "The mapping contract").

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use burn::tensor::{bf16, f16};
use memmap2::Mmap;
use serde::Deserialize;

use crate::error::{Error, Result};

/// One safetensors file, memory-mapped, with its parsed header.
#[derive(Debug)]
pub struct SafetensorsFile {
    pub(super) path: PathBuf,
    pub(super) mmap: Arc<Mapping>,
    data_start: usize,
    pub(super) tensors: BTreeMap<String, TensorEntry>,
}

/// A read-only map of a whole file, the open file itself (which holds a shared `flock` for as
/// long as the map lives) and what the file looked like when it was mapped.
#[derive(Debug)]
pub(super) struct Mapping {
    map: Mmap,
    file: File,
    path: PathBuf,
    stamp: Stamp,
}

/// Size and modification time of the mapped file, read from the open descriptor (so the same
/// inode even after a replace-by-rename): a write into the file changes one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(file: &File) -> std::io::Result<Stamp> {
        let meta = file.metadata()?;
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

impl Mapping {
    /// Opens, locks (shared) and maps `path`.
    fn open(path: &Path) -> Result<Mapping> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Checkpoint {
                    path: path.to_owned(),
                    message: "another process holds an exclusive lock on it (it is being \
                              written); try again when it is done"
                        .into(),
                })
            }
            // A file system without `flock` (some network mounts): the checks below remain.
            Err(TryLockError::Error(_)) => {}
        }
        let stamp = Stamp::of(&file).map_err(io)?;
        // SAFETY: a read-only map of a file we hold open and share-locked. Its bytes are only
        // read through `Mapping::bytes`, after `check` has found the file's size and
        // modification time unchanged since this point: writers that follow the contract
        // (replace by rename, or write under an exclusive `flock`) never change the mapped
        // inode, and an in-place rewrite by anyone else is reported as an error (or, for
        // `MappedF32::as_slice`, a panic) instead of being read. A rewrite that races with a
        // read in progress is outside the contract (see `crate::checkpoint`).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let mapping = Mapping {
            map,
            file,
            path: path.to_owned(),
            stamp,
        };
        if mapping.map.len() as u64 != stamp.len {
            return Err(mapping.changed());
        }
        Ok(mapping)
    }

    /// Fails when the file's size or modification time differ from when it was mapped: it
    /// was written in place, and its mapped bytes may be gone (a shrink would fault) or mixed.
    pub(super) fn check(&self) -> Result<()> {
        match Stamp::of(&self.file) {
            Ok(now) if now == self.stamp => Ok(()),
            Ok(_) => Err(self.changed()),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn changed(&self) -> Error {
        Error::Checkpoint {
            path: self.path.clone(),
            message: "the file was rewritten in place while it was open (its size or \
                      modification time changed); replace checkpoints by writing a new file \
                      and renaming it over the old one"
                .into(),
        }
    }

    /// The address of the first mapped byte (for offsets into the map).
    pub(super) fn base(&self) -> usize {
        self.map.as_ptr() as usize
    }

    /// The mapped bytes, after [`check`](Self::check).
    pub(super) fn bytes(&self) -> Result<&[u8]> {
        self.check()?;
        Ok(&self.map)
    }
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
        let mapping = Mapping::open(&path)?;
        let mmap = mapping.bytes()?;
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
        // The header was parsed from the mapping: it must not have changed meanwhile.
        mapping.check()?;
        Ok(Self {
            path,
            mmap: Arc::new(mapping),
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

    /// The tensor's bytes in the mapping, once the file is checked unchanged.
    fn tensor_bytes(&self, entry: &TensorEntry) -> Result<&[u8]> {
        let [begin, end] = entry.data_offsets;
        Ok(&self.mmap.bytes()?[self.data_start + begin..self.data_start + end])
    }

    /// The tensor's values in place, when it is F32, 4-byte aligned in the mapping and the
    /// machine is little-endian (safetensors stores little-endian); `Ok(None)` otherwise.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the file was rewritten in place since it was opened.
    pub(super) fn f32_slice(&self, entry: &TensorEntry) -> Result<Option<&[f32]>> {
        let bytes = self.tensor_bytes(entry)?;
        if entry.dtype != "F32" || cfg!(target_endian = "big") || !bytes.len().is_multiple_of(4) {
            return Ok(None);
        }
        // SAFETY: f32 has no invalid bit patterns; the pointer is checked for f32 alignment
        // by `align_to`, which returns the aligned middle; we only use it when the whole slice
        // is aligned (empty prefix and suffix). The slice borrows `self.mmap`, which lives as
        // long as `self`.
        let (prefix, values, suffix) = unsafe { bytes.align_to::<f32>() };
        Ok((prefix.is_empty() && suffix.is_empty()).then_some(values))
    }

    /// Fails when the file was rewritten in place since it was opened.
    pub(super) fn check(&self) -> Result<()> {
        self.mmap.check()
    }

    /// The tensor's values widened to `f32`, in row-major order (a copy).
    pub(super) fn read_f32(&self, key: &str, entry: &TensorEntry) -> Result<Vec<f32>> {
        let bytes = self.tensor_bytes(entry)?;
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
        // The copy is only good if nothing rewrote the file while it was being made.
        self.check()?;
        Ok(values)
    }
}

/// An f32 tensor read in place from a memory-mapped checkpoint file (see
/// [`Checkpoint::mapped_f32`]): no copy, and pages are read from the page cache on first use.
/// It keeps the file open and share-locked while it lives; see the mapping contract in the
/// [`checkpoint`](crate::checkpoint) module docs.
///
/// [`Checkpoint::mapped_f32`]: super::Checkpoint::mapped_f32
#[derive(Debug, Clone)]
pub struct MappedF32 {
    pub(super) mmap: Arc<Mapping>,
    /// Byte offset of the first value in the mapping (f32-aligned).
    pub(super) offset: usize,
    pub(super) len: usize,
}

impl MappedF32 {
    /// The values, or [`Error::Checkpoint`] when the file was rewritten in place since it was
    /// opened (its mapped bytes may no longer be there).
    ///
    /// # Errors
    /// As above, or [`Error::Io`] when the file's metadata cannot be read.
    pub fn try_as_slice(&self) -> Result<&[f32]> {
        let bytes = &self.mmap.bytes()?[self.offset..self.offset + 4 * self.len];
        // SAFETY: `Checkpoint::mapped_f32` only builds a `MappedF32` over a range it checked to
        // be f32-aligned, little-endian F32 data of exactly `len` values; f32 has no invalid
        // bit patterns, and the bytes live as long as `self.mmap`.
        let (_, values, _) = unsafe { bytes.align_to::<f32>() };
        Ok(values)
    }

    /// The values.
    ///
    /// # Panics
    /// When the file was rewritten in place since it was opened (see
    /// [`try_as_slice`](Self::try_as_slice)): reading it could fault, or mix two checkpoints.
    pub fn as_slice(&self) -> &[f32] {
        match self.try_as_slice() {
            Ok(values) => values,
            Err(e) => panic!("{e}"),
        }
    }
}

impl AsRef<[f32]> for MappedF32 {
    /// [`MappedF32::as_slice`] (and its panic).
    fn as_ref(&self) -> &[f32] {
        self.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::Duration;

    use super::*;
    use crate::checkpoint::Checkpoint;

    const N: usize = 1 << 16; // 256 KiB of data: many pages

    /// A safetensors file with one F32 tensor `w` of `N` values `i + add`, 8-byte aligned.
    fn safetensors(add: f32) -> Vec<u8> {
        let mut header = format!(
            r#"{{"w":{{"dtype":"F32","shape":[{N}],"data_offsets":[0,{}]}}}}"#,
            4 * N
        );
        while !(8 + header.len()).is_multiple_of(8) {
            header.push(' ');
        }
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        for i in 0..N {
            out.extend_from_slice(&(i as f32 + add).to_le_bytes());
        }
        out
    }

    fn rewritten(e: Error) -> bool {
        matches!(e, Error::Checkpoint { ref message, .. } if message.contains("rewritten in place"))
    }

    /// Truncating the file under an open checkpoint used to make the next read fault
    /// (`SIGBUS` on the pages past the new end); now every read path reports it.
    #[test]
    fn a_truncated_checkpoint_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        fs::write(&path, safetensors(0.0)).unwrap();
        let ck = Checkpoint::open_file(&path).unwrap();
        let mapped = ck.mapped_f32("w", &[N]).unwrap().expect("aligned F32");
        assert_eq!(mapped.as_slice()[N - 1], (N - 1) as f32);

        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(4096).unwrap();

        assert!(rewritten(ck.read_f32("w", &[N]).unwrap_err()));
        let e = ck.with_f32("w", &[N], |_| unreachable!("read a truncated map"));
        assert!(rewritten(e.unwrap_err()));
        assert!(rewritten(ck.mapped_f32("w", &[N]).unwrap_err()));
        assert!(rewritten(mapped.try_as_slice().unwrap_err()));
        let panic = catch_unwind(AssertUnwindSafe(|| mapped.as_slice()[N - 1])).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("rewritten in place"), "{message}");
    }

    /// An in-place rewrite that keeps the size (`cp new old`: truncate, then write) is
    /// detected by the modification time, instead of mixing two checkpoints' bytes.
    #[test]
    fn an_in_place_rewrite_of_the_same_size_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        fs::write(&path, safetensors(0.0)).unwrap();
        let ck = Checkpoint::open_file(&path).unwrap();
        assert_eq!(ck.read_f32("w", &[N]).unwrap()[3], 3.0);
        // Past the file system's timestamp granularity.
        std::thread::sleep(Duration::from_millis(50));
        fs::write(&path, safetensors(0.5)).unwrap();
        assert!(rewritten(ck.read_f32("w", &[N]).unwrap_err()));
        assert!(rewritten(ck.with_f32("w", &[N], |v| v[3]).unwrap_err()));
    }

    /// Replacing the file by rename (the contract) leaves an open checkpoint reading the old
    /// weights; the next open reads the new ones.
    #[test]
    fn replace_by_rename_keeps_the_open_weights() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        fs::write(&path, safetensors(0.0)).unwrap();
        let ck = Checkpoint::open_file(&path).unwrap();
        let mapped = ck.mapped_f32("w", &[N]).unwrap().unwrap();
        let tmp = dir.path().join("model.safetensors.tmp");
        fs::write(&tmp, safetensors(0.5)).unwrap();
        fs::rename(&tmp, &path).unwrap();
        assert_eq!(ck.read_f32("w", &[N]).unwrap()[7], 7.0);
        assert_eq!(ck.with_f32("w", &[N], |v| v[7]).unwrap(), 7.0);
        assert_eq!(mapped.as_slice()[7], 7.0);
        let again = Checkpoint::open_file(&path).unwrap();
        assert_eq!(again.read_f32("w", &[N]).unwrap()[7], 7.5);
    }

    /// The mapping holds a shared `flock` for as long as anything maps the file: a writer's
    /// exclusive lock waits for it, and a file under such a lock is not opened.
    #[test]
    fn the_mapping_holds_a_shared_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        fs::write(&path, safetensors(0.0)).unwrap();
        let writer = OpenOptions::new().write(true).open(&path).unwrap();
        let ck = Checkpoint::open_file(&path).unwrap();
        let mapped = ck.mapped_f32("w", &[N]).unwrap().unwrap();
        assert!(matches!(writer.try_lock(), Err(TryLockError::WouldBlock)));
        drop(ck);
        // The token table a text tower keeps still maps the file.
        assert!(matches!(writer.try_lock(), Err(TryLockError::WouldBlock)));
        drop(mapped);
        writer.try_lock().unwrap();
        let e = Checkpoint::open_file(&path).unwrap_err();
        assert!(
            matches!(e, Error::Checkpoint { ref message, .. } if message.contains("exclusive lock")),
            "{e}"
        );
        writer.unlock().unwrap();
        Checkpoint::open_file(&path).unwrap();
    }
}
