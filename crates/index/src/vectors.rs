//! The exact f32 vectors of every slot, file-backed and memory-mapped instead of on the heap.
//!
//! The graph walk scores 8-bit codes ([`crate::quant`]); the f32 vectors are read to build the
//! graph, to rescore a search's final candidates and by exact scans. They are the largest part
//! of the index (`4 · dims` bytes per entry, 4× the codes), and the library's store already
//! holds them durably, so they live in files the kernel can page in and out, not in anonymous
//! memory:
//!
//! - **base**: a saved index's data file (`graph-<generation>.hnsw.data`, raw little-endian
//!   f32 rows in slot order), mapped read-only by [`Vectors::map_file`]: opening an index does
//!   not read or copy its vectors.
//! - **tail**: rows appended since (or all of them, for a new index), in an unlinked temp file
//!   (`tempfile::tempfile`, in the system's temp folder: `TMPDIR`, else `/tmp`) mapped
//!   read-write and doubled as it fills. If no temp file can be created or grown, the tail
//!   stays on the heap. Where the temp folder is a tmpfs, its pages are shared memory (RAM or
//!   swap), not a disk file: the resident set still drops, the machine's memory use does not.
//!   The kernel writes the file's dirty pages back in the background (disk traffic of
//!   `4 · dims` bytes per inserted entry).
//!
//! [`Vectors::release`] drops the pages a bulk step touched from this process's mappings
//! (`MADV_DONTNEED` on shared file mappings keeps their contents: the page cache or the file
//! holds them): after a batch insert or a load, the resident set holds the codes and the links,
//! and the vectors' pages come back on demand (minor faults from the page cache while memory is
//! plentiful, reads from the file when the kernel reclaimed them).
//!
//! Safety of the mappings: the base file is never written after its save (a new save writes
//! a new generation; removing the old files leaves their inode alive while mapped), and
//! another process changing it is outside the supported use, as for the whole saved index
//! (the library's store lock excludes it). The tail file is unlinked and only this struct
//! writes it, under `&mut self`.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use memmap2::{Mmap, MmapMut, UncheckedAdvice};

#[cfg(not(target_endian = "little"))]
compile_error!("the saved vectors file is mapped as native f32: little-endian targets only");

/// Rows the tail file starts with (it doubles from there).
const MIN_ROWS: usize = 1024;

/// Vectors of slots `0..len()`, `dims` floats each.
#[derive(Debug)]
pub(crate) struct Vectors {
    dims: usize,
    /// A saved data file, mapped read-only: rows `0..base_rows`.
    base: Option<Mmap>,
    base_rows: usize,
    /// Rows `base_rows..base_rows + tail_rows`.
    tail: Tail,
    tail_rows: usize,
}

#[derive(Debug)]
enum Tail {
    /// An unlinked temp file with room for `cap` rows, mapped (`None` while `cap` is 0).
    File {
        file: File,
        map: Option<MmapMut>,
        cap: usize,
    },
    /// The fallback when no temp file could be used.
    Heap(Vec<f32>),
}

/// Views mapped bytes as f32 (the mapping is page-aligned; lengths are multiples of 4).
fn floats(bytes: &[u8]) -> &[f32] {
    debug_assert_eq!(bytes.as_ptr() as usize % 4, 0);
    // SAFETY: aligned (page-aligned mapping, row offsets are multiples of 4), any bit pattern
    // is a valid f32, and the length is rounded down to whole floats.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
}

fn floats_mut(bytes: &mut [u8]) -> &mut [f32] {
    debug_assert_eq!(bytes.as_ptr() as usize % 4, 0);
    // SAFETY: as in `floats`, and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<f32>(), bytes.len() / 4) }
}

/// The bytes of f32 rows as written to the data file (native = little-endian, checked above).
pub(crate) fn bytes_of(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// The bytes of u32s as written to a links file (native = little-endian, checked above).
pub(crate) fn bytes_of_u32(v: &[u32]) -> &[u8] {
    // SAFETY: u32 has no padding and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

impl Vectors {
    /// No rows; appended rows go to a fresh temp file.
    pub(crate) fn new(dims: usize) -> Self {
        let tail = match tempfile::tempfile() {
            Ok(file) => Tail::File {
                file,
                map: None,
                cap: 0,
            },
            Err(_) => Tail::Heap(Vec::new()),
        };
        Vectors {
            dims,
            base: None,
            base_rows: 0,
            tail,
            tail_rows: 0,
        }
    }

    /// Maps a data file of exactly `rows` rows as the base (checks its length only: the
    /// caller has checked its checksum).
    pub(crate) fn map_file(path: &Path, rows: usize, dims: usize) -> Result<Self, String> {
        let err = |e: std::io::Error| format!("vectors: {e}");
        let file = File::open(path).map_err(err)?;
        let want = (rows * dims * 4) as u64;
        let len = file.metadata().map_err(err)?.len();
        if len != want {
            return Err(format!("vectors file is {len} bytes, expected {want}"));
        }
        let mut v = Vectors::new(dims);
        if rows > 0 {
            // SAFETY: see the module docs (the file is never written while mapped).
            let map = unsafe { Mmap::map(&file) }.map_err(err)?;
            let _ = map.advise(memmap2::Advice::Random);
            v.base = Some(map);
            v.base_rows = rows;
        }
        Ok(v)
    }

    /// Rows.
    pub(crate) fn len(&self) -> usize {
        self.base_rows + self.tail_rows
    }

    /// The vector of `slot`.
    #[inline]
    pub(crate) fn row(&self, slot: usize) -> &[f32] {
        let d = self.dims;
        if slot < self.base_rows {
            let base = self.base.as_ref().expect("base rows imply a base map");
            &floats(base)[slot * d..(slot + 1) * d]
        } else {
            let t = slot - self.base_rows;
            assert!(t < self.tail_rows, "slot {slot} out of range");
            &self.tail_floats()[t * d..(t + 1) * d]
        }
    }

    fn tail_floats(&self) -> &[f32] {
        match &self.tail {
            Tail::File { map: Some(map), .. } => floats(map),
            Tail::File { map: None, .. } => &[],
            Tail::Heap(v) => v,
        }
    }

    /// Room for `additional` more rows without growing again.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let want = self.tail_rows + additional;
        match &mut self.tail {
            Tail::File { cap, .. } if *cap < want => {
                let new_cap = want.max(*cap * 2).max(MIN_ROWS);
                if self.grow_file(new_cap).is_err() {
                    self.move_tail_to_heap();
                }
            }
            Tail::Heap(v) => v.reserve(additional * self.dims),
            Tail::File { .. } => {}
        }
    }

    /// Appends a row.
    pub(crate) fn push(&mut self, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dims);
        self.reserve(1);
        let (d, t) = (self.dims, self.tail_rows);
        match &mut self.tail {
            Tail::File { map: Some(map), .. } => {
                floats_mut(map)[t * d..(t + 1) * d].copy_from_slice(v);
            }
            Tail::File { map: None, .. } => unreachable!("reserve maps the file"),
            Tail::Heap(data) => data.extend_from_slice(v),
        }
        self.tail_rows += 1;
    }

    /// Grows the temp file to `cap` rows and maps it again.
    fn grow_file(&mut self, new_cap: usize) -> std::io::Result<()> {
        let Tail::File { file, map, cap } = &mut self.tail else {
            return Ok(());
        };
        file.set_len((new_cap * self.dims * 4) as u64)?;
        // SAFETY: the file is unlinked and private to this struct (see the module docs).
        let new_map = unsafe { MmapMut::map_mut(&*file) }?;
        *map = Some(new_map);
        *cap = new_cap;
        Ok(())
    }

    /// Moves the tail to the heap (the temp file could not grow: disk full).
    fn move_tail_to_heap(&mut self) {
        let rows = self.tail_floats()[..self.tail_rows * self.dims].to_vec();
        self.tail = Tail::Heap(rows);
    }

    /// Drops the pages of both mappings from this process's resident set (their contents stay
    /// in the page cache or the file; see the module docs).
    pub(crate) fn release(&self) {
        // SAFETY: MADV_DONTNEED on a *shared* file mapping (memmap2 maps files MAP_SHARED)
        // discards no data: later reads fault the pages back in from the page cache or file.
        unsafe {
            if let Some(base) = &self.base {
                let _ = base.unchecked_advise(UncheckedAdvice::DontNeed);
            }
            if let Tail::File { map: Some(map), .. } = &self.tail {
                let _ = map.unchecked_advise(UncheckedAdvice::DontNeed);
            }
        }
    }

    /// Heap bytes (only the fallback tail is on the heap).
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.tail {
            Tail::Heap(v) => v.capacity() * 4,
            Tail::File { .. } => 0,
        }
    }

    /// Writes rows `0..rows` to `w` as little-endian f32.
    pub(crate) fn write_rows(&self, w: &mut impl Write, rows: usize) -> std::io::Result<()> {
        let d = self.dims;
        let from_base = rows.min(self.base_rows);
        if let Some(base) = &self.base {
            w.write_all(&base[..from_base * d * 4])?;
        }
        if rows > from_base {
            let t = rows - from_base;
            w.write_all(bytes_of(&self.tail_floats()[..t * d]))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, dims: usize) -> Vec<f32> {
        (0..dims).map(|j| (i * dims + j) as f32).collect()
    }

    /// Rows survive the file's growth, a release, a save and a map of the saved file, and
    /// rows appended after that map go to a new tail.
    #[test]
    fn rows_round_trip_through_growth_release_and_a_mapped_file() {
        let dims = 5;
        let mut v = Vectors::new(dims);
        assert!(matches!(v.tail, Tail::File { .. }), "a temp file is used");
        for i in 0..3000 {
            v.push(&row(i, dims));
        }
        v.release();
        assert_eq!(v.len(), 3000);
        assert_eq!(v.heap_bytes(), 0);
        for i in [0, 1023, 1024, 2999] {
            assert_eq!(v.row(i), row(i, dims).as_slice(), "row {i}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let mut f = File::create(&path).unwrap();
        v.write_rows(&mut f, 3000).unwrap();
        drop(f);
        assert!(
            Vectors::map_file(&path, 2999, dims).is_err(),
            "length checked"
        );
        let mut m = Vectors::map_file(&path, 3000, dims).unwrap();
        m.push(&row(3000, dims));
        m.release();
        for i in [0, 2999, 3000] {
            assert_eq!(m.row(i), row(i, dims).as_slice(), "row {i}");
        }
        let mut again = Vec::new();
        m.write_rows(&mut again, 3001).unwrap();
        assert_eq!(again.len(), 3001 * dims * 4);
        assert_eq!(&again[3000 * dims * 4..], bytes_of(&row(3000, dims)));
    }

    #[test]
    fn the_heap_fallback_keeps_rows() {
        let mut v = Vectors::new(3);
        v.move_tail_to_heap();
        v.push(&[1.0, 2.0, 3.0]);
        v.push(&[4.0, 5.0, 6.0]);
        assert_eq!(v.row(1), &[4.0, 5.0, 6.0]);
        assert!(v.heap_bytes() >= 24);
    }
}
