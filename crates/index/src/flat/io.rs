//! The search snapshot on disk: saved after the graph's links in the links file, so opening an
//! index reads it back instead of rebuilding it (copying the links, the reachability repair
//! and coding every vector, which read the whole vectors file: seconds at 1M).
//!
//! Layout, little-endian, from a 64-byte aligned offset:
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `GLMPSFLT` |
//! | 8..16, 16..20, 20..24, 24..28 | nodes (u64), layer-0 degree, dims, code row bytes (u32) |
//! | 28..32, 32..36 | seeds, upper layers (u32) |
//! | 36..60 | repair: unreachable, added, left (u64) |
//! | then | per-dimension code range (`dims` f32), seeds (slot, level: u32 pairs), each upper layer (entries u32, then per entry: slot, count, links, all u32) |
//! | then, 64-aligned | layer-0 links (`nodes · degree` u32), then, 64-aligned, the codes (`nodes · row` bytes) |

use std::io::Write;
use std::sync::Arc;

use memmap2::Mmap;

use super::{FlatGraph, SlotMap, NONE};
use crate::buf::Buf;
use crate::quant::Codes;
use crate::repair::Repair;

const MAGIC: [u8; 8] = *b"GLMPSFLT";
const ALIGN: usize = 64;

/// Zero bytes that bring `at` to the next multiple of [`ALIGN`].
fn pad(at: usize) -> usize {
    at.next_multiple_of(ALIGN) - at
}

impl FlatGraph {
    /// Writes the snapshot; `at` is the byte offset in the file where it starts (it must be a
    /// multiple of 64: the caller pads). Returns the bytes written.
    pub(crate) fn write_to(&self, w: &mut impl Write, at: usize) -> std::io::Result<usize> {
        debug_assert_eq!(at % ALIGN, 0);
        let mut head = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&(self.nodes as u64).to_le_bytes());
        for x in [
            self.degree0,
            self.codes.dims(),
            self.codes.row_bytes(),
            self.seeds.len(),
            self.upper.len(),
        ] {
            head.extend_from_slice(&(x as u32).to_le_bytes());
        }
        for x in [self.repair.unreachable, self.repair.added, self.repair.left] {
            head.extend_from_slice(&(x as u64).to_le_bytes());
        }
        for r in self.codes.range() {
            head.extend_from_slice(&r.to_le_bytes());
        }
        for &(slot, level) in &self.seeds {
            head.extend_from_slice(&slot.to_le_bytes());
            head.extend_from_slice(&(level as u32).to_le_bytes());
        }
        for layer in &self.upper {
            let mut entries: Vec<(&u32, &Box<[u32]>)> = layer.iter().collect();
            entries.sort_unstable_by_key(|e| *e.0);
            head.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (slot, links) in entries {
                head.extend_from_slice(&slot.to_le_bytes());
                head.extend_from_slice(&(links.len() as u32).to_le_bytes());
                for l in links.iter() {
                    head.extend_from_slice(&l.to_le_bytes());
                }
            }
        }
        head.resize(head.len() + pad(head.len()), 0);
        w.write_all(&head)?;
        let mut written = head.len();
        let links = crate::vectors::bytes_of_u32(&self.layer0);
        w.write_all(links)?;
        written += links.len();
        let zeros = [0u8; ALIGN];
        let p = pad(at + written);
        w.write_all(&zeros[..p])?;
        written += p;
        let codes = self.codes.data();
        w.write_all(codes)?;
        written += codes.len();
        Ok(written)
    }

    /// Reads a snapshot written by [`write_to`](Self::write_to) at byte `at` of the mapped
    /// links file `map` (to its end), for at most `graph_nodes` nodes of `dims` dimensions;
    /// every link is checked to be a node or `NONE`. The layer-0 links and the codes stay in
    /// the file, mapped: no allocation or copy (see [`Buf`]).
    pub(crate) fn read_from(
        map: &Arc<Mmap>,
        at: usize,
        graph_nodes: usize,
        dims: usize,
    ) -> Result<FlatGraph, String> {
        let bytes = &map[at..];
        let mut c = Reader { bytes, at: 0 };
        if c.take(8)? != MAGIC {
            return Err("search snapshot: bad magic".into());
        }
        let nodes = c.u64()? as usize;
        let degree0 = c.u32()? as usize;
        let (d, row) = (c.u32()? as usize, c.u32()? as usize);
        let (n_seeds, n_upper) = (c.u32()? as usize, c.u32()? as usize);
        let repair = Repair {
            unreachable: c.u64()? as usize,
            added: c.u64()? as usize,
            left: c.u64()? as usize,
        };
        if nodes == 0 {
            return Ok(FlatGraph::empty());
        }
        if nodes > graph_nodes || d != dims || row != dims.next_multiple_of(ALIGN) {
            return Err(format!(
                "search snapshot of {nodes} nodes x {d} (row {row}) for {graph_nodes} x {dims}"
            ));
        }
        if degree0 == 0 || degree0 > 4096 || n_upper > 64 || n_seeds > nodes {
            return Err("search snapshot: implausible header".into());
        }
        let range: Vec<f32> = c
            .take(dims * 4)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        if range.iter().any(|r| !r.is_finite() || *r < 0.0) {
            return Err("search snapshot: bad code range".into());
        }
        let mut seeds = Vec::with_capacity(n_seeds);
        for _ in 0..n_seeds {
            let (slot, level) = (c.slot(nodes)?, c.u32()? as usize);
            if slot == NONE || level > n_upper {
                return Err(format!("search snapshot: seed {slot} at level {level}"));
            }
            seeds.push((slot, level));
        }
        let mut upper = Vec::with_capacity(n_upper);
        for _ in 0..n_upper {
            let entries = c.u32()? as usize;
            if entries > nodes {
                return Err("search snapshot: layer larger than the graph".into());
            }
            let mut layer = SlotMap::default();
            layer.reserve(entries);
            for _ in 0..entries {
                let slot = c.slot(nodes)?;
                let count = c.u32()? as usize;
                if count > degree0 {
                    return Err("search snapshot: upper list too long".into());
                }
                let links = (0..count)
                    .map(|_| c.slot(nodes))
                    .collect::<Result<Box<[u32]>, String>>()?;
                layer.insert(slot, links);
            }
            upper.push(layer);
        }
        c.take(pad(at + c.at))?;
        let links_at = at + c.at;
        let n_links = nodes.checked_mul(degree0).ok_or("overflow")?;
        c.take(n_links.checked_mul(4).ok_or("overflow")?)?;
        let layer0: Buf<u32> =
            Buf::mapped(map, links_at, n_links).ok_or("search snapshot: misplaced links")?;
        let bad = layer0
            .iter()
            .fold(false, |bad, &s| bad | (s != NONE && s as usize >= nodes));
        if bad {
            return Err("search snapshot: a layer-0 link past the last node".into());
        }
        c.take(pad(at + c.at))?;
        let codes_at = at + c.at;
        c.take(nodes.checked_mul(row).ok_or("overflow")?)?;
        if c.at != bytes.len() {
            return Err(format!(
                "{} bytes after the search snapshot",
                bytes.len() - c.at
            ));
        }
        let codes = Buf::mapped(map, codes_at, nodes * row).ok_or("search snapshot: codes")?;
        let codes = Codes::from_parts(dims, range, codes);
        Ok(FlatGraph {
            nodes,
            degree0,
            layer0,
            upper,
            seeds,
            repair,
            codes,
        })
    }
}

/// A bounds-checked reader.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("search snapshot truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A node below `nodes`.
    fn slot(&mut self, nodes: usize) -> Result<u32, String> {
        let s = self.u32()?;
        if (s as usize) < nodes {
            Ok(s)
        } else {
            Err(format!("search snapshot: slot {s} of {nodes}"))
        }
    }
}
