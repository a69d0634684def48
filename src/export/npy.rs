//! A streaming writer of `.npy` files (NumPy's format, version 1.0) of `float32` rows.
//!
//! The header holds the shape, unknown until the last row: it is written with room for any
//! row count and rewritten in place when the file is finished.

use crate::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Header length (magic, version, length field, dictionary, padding): a multiple of 64, as
/// NumPy writes it, with room for a 20-digit row count.
const HEADER_LEN: usize = 128;

/// The `.npy` header for `rows` × `dims` little-endian `float32`.
pub(crate) fn header(rows: u64, dims: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dims}), }}");
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&((HEADER_LEN - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

/// Writes rows of `dims` floats to a `.npy` file (as `<path>.tmp` until finished).
pub(crate) struct NpyWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    dims: usize,
    rows: u64,
}

impl NpyWriter {
    pub fn create(path: &Path, dims: usize) -> Result<NpyWriter> {
        let tmp = super::writer::tmp_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e).disk_full())?;
        let mut out = BufWriter::new(file);
        out.write_all(&header(0, dims))
            .map_err(|e| Error::io(&tmp, e).disk_full())?;
        Ok(NpyWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(out),
            dims,
            rows: 0,
        })
    }

    /// Appends one row (exactly `dims` values).
    pub fn push(&mut self, row: &[f32]) -> Result<()> {
        debug_assert_eq!(row.len(), self.dims);
        let out = self.out.as_mut().expect("open until finished");
        for v in row {
            out.write_all(&v.to_le_bytes())
                .map_err(|e| Error::io(&self.tmp, e).disk_full())?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Rewrites the header with the row count, syncs, renames into place; returns the size.
    pub fn finish(mut self) -> Result<u64> {
        let out = self.out.take().expect("open until finished");
        let tmp = self.tmp.clone();
        let io = |e: std::io::Error| Error::io(&tmp, e).disk_full();
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header(self.rows, self.dims)).map_err(io)?;
        file.sync_all().map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(size)
    }
}

impl Drop for NpyWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_numpy_v1_and_64_aligned() {
        let h = header(12_345, 512);
        assert_eq!(h.len(), HEADER_LEN);
        assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, HEADER_LEN - 10);
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(
            text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (12345, 512), }")
        );
        assert!(text.ends_with('\n'));
        // The largest count still fits.
        assert_eq!(header(u64::MAX, 4096).len(), HEADER_LEN);
    }
}
