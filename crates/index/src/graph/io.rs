//! The graph's two files: its links, and the vectors of its nodes (see [`crate::persist`] for
//! the manifest that names and checksums them).
//!
//! Links file, little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `GLMPSGRF` |
//! | 8..12 | links format version (u32) |
//! | 12..16 | `m` (u32) |
//! | 16..24 | nodes `n` (u64) |
//! | 24..28, 28..32 | entry point slot, its level (u32; `u32::MAX`, 0 when empty) |
//! | then | `n` levels (u8), `n · 2m` layer-0 links (u32), then for each node above layer 0 in slot order, `level · m` links (u32) |
//! | then, 64-aligned | the search snapshot (`flat/io.rs`: its links, seeds, repair and the 8-bit codes), so an open does not rebuild it |
//!
//! Links are packed per list and padded with `u32::MAX`. Vectors file: `n · dims` f32, slot
//! order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use memmap2::Mmap;

use parking_lot::{Mutex, RwLock};

use super::{Entry, Graph, Node, EMPTY, MAX_LEVEL, NONE};
use crate::config::IndexConfig;
use crate::flat::FlatGraph;
use crate::slots::Slots;
use crate::vectors::Vectors;

const MAGIC: [u8; 8] = *b"GLMPSGRF";
const VERSION: u32 = 2;
const HEAD: usize = 32;

impl Graph {
    /// Writes the links to `links_path` and the vectors of slots `0..len` to `data_path`
    /// (neither synced: the caller does).
    pub(crate) fn dump(
        &self,
        links_path: &Path,
        data_path: &Path,
        slots: &Slots,
        flat: &FlatGraph,
    ) -> std::io::Result<()> {
        let entry = *self.entry.read();
        let mut w = BufWriter::with_capacity(1 << 20, File::create(links_path)?);
        w.write_all(&MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&(self.m as u32).to_le_bytes())?;
        w.write_all(&(self.nodes.len() as u64).to_le_bytes())?;
        w.write_all(&entry.slot.to_le_bytes())?;
        w.write_all(&(entry.level as u32).to_le_bytes())?;
        let levels: Vec<u8> = self.nodes.iter().map(|n| n.level).collect();
        w.write_all(&levels)?;
        write_u32s(&mut w, self.layer0.iter().map(|a| a.load(Relaxed)))?;
        let mut at = HEAD + self.nodes.len() * (1 + 4 * self.m0);
        for node in &self.nodes {
            write_u32s(&mut w, node.upper.iter().map(|a| a.load(Relaxed)))?;
            at += 4 * node.upper.len();
        }
        let pad = at.next_multiple_of(64) - at;
        w.write_all(&[0u8; 64][..pad])?;
        flat.write_to(&mut w, at + pad)?;
        w.into_inner().map_err(|e| e.into_error())?;

        let mut w = BufWriter::with_capacity(1 << 20, File::create(data_path)?);
        slots.vectors().write_rows(&mut w, self.nodes.len())?;
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    }

    /// Reads what [`dump`](Self::dump) wrote (`links`: the links file, mapped), expecting
    /// `nodes` nodes of `config.dims` dimensions; returns the graph, its search snapshot and
    /// the vectors (the data file, mapped: see [`crate::vectors`]), or what is wrong. The
    /// caller has checked both files' checksums.
    pub(crate) fn load(
        links: &Arc<Mmap>,
        data_path: &Path,
        config: &IndexConfig,
        nodes: usize,
    ) -> std::result::Result<(Graph, FlatGraph, Vectors), String> {
        let (graph, end) = parse(links, config, nodes)?;
        let at = end.next_multiple_of(64);
        if at > links.len() || links[end..at].iter().any(|&b| b != 0) {
            return Err("links file: no search snapshot after the links".into());
        }
        let flat = FlatGraph::read_from(links, at, nodes, config.dims)?;
        let data = Vectors::map_file(data_path, nodes, config.dims)?;
        Ok((graph, flat, data))
    }
}

fn write_u32s(w: &mut impl Write, values: impl Iterator<Item = u32>) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut n = 0;
    for v in values {
        buf[n..n + 4].copy_from_slice(&v.to_le_bytes());
        n += 4;
        if n == buf.len() {
            w.write_all(&buf)?;
            n = 0;
        }
    }
    w.write_all(&buf[..n])
}

/// A bounds-checked reader over the links file.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("links file truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    /// `n` links, each checked to be a slot below `nodes` or `NONE`.
    fn links(&mut self, n: usize, nodes: usize) -> std::result::Result<Vec<AtomicU32>, String> {
        let raw = self.take(n.checked_mul(4).ok_or("links count overflows")?)?;
        raw.chunks_exact(4)
            .map(|c| {
                let s = u32::from_le_bytes(c.try_into().expect("4 bytes"));
                if s == NONE || (s as usize) < nodes {
                    Ok(AtomicU32::new(s))
                } else {
                    Err(format!("link to slot {s} of {nodes}"))
                }
            })
            .collect()
    }
}

/// Parses the graph's part of the links file; returns the graph and where its part ends.
fn parse(
    bytes: &[u8],
    config: &IndexConfig,
    nodes: usize,
) -> std::result::Result<(Graph, usize), String> {
    let mut c = Cursor { bytes, at: 0 };
    if c.take(8)? != MAGIC {
        return Err("links file: bad magic".into());
    }
    let version = c.u32()?;
    if version != VERSION {
        return Err(format!("links format {version}, expected {VERSION}"));
    }
    let m = c.u32()? as usize;
    if m != config.m {
        return Err(format!("links file has m = {m}, config says {}", config.m));
    }
    let n = u64::from_le_bytes(c.take(8)?.try_into().expect("8 bytes"));
    if n != nodes as u64 {
        return Err(format!("links file has {n} nodes, expected {nodes}"));
    }
    let (entry_slot, entry_level) = (c.u32()?, c.u32()? as usize);
    debug_assert_eq!(c.at, HEAD);
    let levels = c.take(nodes)?.to_vec();
    let mut graph = Graph::new(config, 0);
    graph.layer0 = c.links(nodes * graph.m0, nodes)?;
    let mut top = 0usize;
    graph.nodes = levels
        .iter()
        .map(|&level| {
            let level = usize::from(level);
            if level > MAX_LEVEL {
                return Err(format!("level {level} above {MAX_LEVEL}"));
            }
            top = top.max(level);
            Ok(Node {
                lock: Mutex::new(()),
                level: level as u8,
                upper: c.links(level * m, nodes)?.into_boxed_slice(),
            })
        })
        .collect::<std::result::Result<_, String>>()?;
    let entry = if nodes == 0 {
        EMPTY
    } else if (entry_slot as usize) < nodes
        && entry_level == top
        && usize::from(levels[entry_slot as usize]) == top
    {
        Entry {
            slot: entry_slot,
            level: entry_level,
        }
    } else {
        return Err(format!(
            "entry point {entry_slot} (level {entry_level}) is not on the top layer {top}"
        ));
    };
    graph.entry = RwLock::new(entry);
    Ok((graph, c.at))
}
