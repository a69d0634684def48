//! The files of a saved index: names, checksums, durability, and what is left over.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::FILE_NAME;

/// Prefix of the graph files' basename: `graph-<generation as 16 hex digits>`.
const GRAPH_PREFIX: &str = "graph-";
/// Suffixes of the graph files (links, vectors): the names hnsw_rs's dump used in format 2.
pub(super) const GRAPH_SUFFIX: &str = "hnsw.graph";
pub(super) const DATA_SUFFIX: &str = "hnsw.data";

/// The basename of a generation's graph files.
pub(super) fn basename(generation: u64) -> String {
    format!("{GRAPH_PREFIX}{generation:016x}")
}

/// `dir/<basename>.<suffix>`.
pub(super) fn graph_file(dir: &Path, generation: u64, suffix: &str) -> PathBuf {
    dir.join(format!("{}.{suffix}", basename(generation)))
}

/// A generation number no file in `dir` uses yet (never 0): the clock in nanoseconds, bumped
/// past any existing name.
pub(super) fn fresh_generation(dir: &Path) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut g = now.max(1);
    while graph_file(dir, g, DATA_SUFFIX).exists() || graph_file(dir, g, GRAPH_SUFFIX).exists() {
        g = g.wrapping_add(1).max(1);
    }
    g
}

/// The generation a graph file belongs to, if `name` is one.
fn generation_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(GRAPH_PREFIX)?;
    let (hex, suffix) = rest.split_once('.')?;
    if hex.len() != 16 || (suffix != GRAPH_SUFFIX && suffix != DATA_SUFFIX) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Streams a file through CRC-32 without keeping it: (length, crc). Large files are read in
/// parallel slices (positioned reads, no mapping: the pages stay out of this process's
/// resident set) whose CRCs are combined in order.
pub(super) fn checksum(path: &Path) -> std::io::Result<(u64, u32)> {
    checksum_file(&File::open(path)?)
}

/// [`checksum`] of an open file.
pub(super) fn checksum_file(f: &File) -> std::io::Result<(u64, u32)> {
    use rayon::prelude::*;
    use std::os::unix::fs::FileExt;
    /// Bytes per parallel slice.
    const SLICE: u64 = 64 << 20;
    let len = f.metadata()?.len();
    let slices = len.div_ceil(SLICE).max(1);
    let parts = (0..slices)
        .into_par_iter()
        .map(|i| -> std::io::Result<crc32fast::Hasher> {
            let (start, end) = (i * SLICE, ((i + 1) * SLICE).min(len));
            let mut crc = crc32fast::Hasher::new();
            let mut buf = vec![0u8; (1 << 20).min((end - start) as usize).max(1)];
            let mut at = start;
            while at < end {
                let want = buf.len().min((end - at) as usize);
                let n = f.read_at(&mut buf[..want], at)?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file shrank while read",
                    ));
                }
                crc.update(&buf[..n]);
                at += n as u64;
            }
            Ok(crc)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut crc = crc32fast::Hasher::new();
    for part in &parts {
        crc.combine(part);
    }
    Ok((len, crc.finalize()))
}

/// CRC-32 of bytes in memory, in parallel slices combined in order.
pub(super) fn crc_of(bytes: &[u8]) -> u32 {
    use rayon::prelude::*;
    let parts: Vec<crc32fast::Hasher> = bytes
        .par_chunks(16 << 20)
        .map(|slice| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(slice);
            crc
        })
        .collect();
    let mut crc = crc32fast::Hasher::new();
    for part in &parts {
        crc.combine(part);
    }
    crc.finalize()
}

/// Makes a written file durable.
pub(super) fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Makes renames and removals in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Which graph files [`leftovers_except`] keeps.
#[derive(Debug, Clone, Copy)]
pub(super) enum Keep {
    /// Those of this generation (the one the manifest names; 0: none).
    Generation(u64),
    /// Every one (the manifest cannot be read: nothing is removed on doubt).
    AllGraphs,
}

/// Files in `dir` that belong to no saved index: the temp files of an interrupted save
/// (`index.glimpse.*.tmp`), graph files `keep` does not keep, and the scratch folders
/// (`.glimpse-*`) that format 1 used. Only names this module writes are ever listed.
pub(super) fn leftovers_except(dir: &Path, keep: Keep) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let tmp_prefix = format!("{FILE_NAME}.");
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                return false;
            };
            match generation_of(name) {
                Some(g) => match keep {
                    Keep::Generation(k) => g != k,
                    Keep::AllGraphs => false,
                },
                None => {
                    (name.starts_with(&tmp_prefix) && name.ends_with(".tmp"))
                        || name.starts_with(".glimpse-")
                }
            }
        })
        .map(|e| e.path())
        .collect()
}

/// Removes `paths` (files or folders); returns those it removed. One that cannot be removed
/// stays (it is listed again next time).
pub(super) fn remove_all(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|p| {
            if p.is_dir() {
                fs::remove_dir_all(p).is_ok()
            } else {
                fs::remove_file(p).is_ok()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_file_names_round_trip() {
        let g = 0x0123_4567_89ab_cdef;
        let name = format!("{}.{GRAPH_SUFFIX}", basename(g));
        assert_eq!(generation_of(&name), Some(g));
        assert_eq!(
            generation_of(&format!("{}.{DATA_SUFFIX}", basename(7))),
            Some(7)
        );
        for foreign in [
            "graph-12.hnsw.data",
            "graph-0123456789abcdef.txt",
            "photo.jpg",
        ] {
            assert_eq!(generation_of(foreign), None, "{foreign}");
        }
    }
}
