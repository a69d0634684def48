//! The manifest's fixed-size header: encoding, decoding and every check made before anything
//! else in the manifest is trusted.

use std::path::Path;

use crate::error::{Error, Result};

pub(super) const MAGIC: [u8; 8] = *b"GLMPSIDX";
pub(super) const HEADER_LEN: usize = 84;
/// Sanity bound on the config section.
const MAX_CONFIG_LEN: u64 = 1 << 20;

/// The manifest header (format versions 2 to 4). Byte offsets are in the [`persist`](super) docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub version: u32,
    pub dims: u32,
    pub live: u64,
    pub slots: u64,
    pub config_len: u32,
    pub meta_len: u64,
    /// Length and CRC-32 of `graph-<generation>.hnsw.graph` (0 when the index is empty).
    pub graph_len: u64,
    pub graph_crc: u32,
    /// Length and CRC-32 of `graph-<generation>.hnsw.data`.
    pub data_len: u64,
    pub data_crc: u32,
    /// Names the graph files; 0 when there are none.
    pub generation: u64,
    /// CRC-32 of the config and meta sections.
    pub payload_crc: u32,
}

impl Header {
    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.dims.to_le_bytes());
        b[16..24].copy_from_slice(&self.live.to_le_bytes());
        b[24..32].copy_from_slice(&self.slots.to_le_bytes());
        b[32..36].copy_from_slice(&self.config_len.to_le_bytes());
        b[36..44].copy_from_slice(&self.meta_len.to_le_bytes());
        b[44..52].copy_from_slice(&self.graph_len.to_le_bytes());
        b[52..60].copy_from_slice(&self.data_len.to_le_bytes());
        b[60..68].copy_from_slice(&self.generation.to_le_bytes());
        b[68..72].copy_from_slice(&self.graph_crc.to_le_bytes());
        b[72..76].copy_from_slice(&self.data_crc.to_le_bytes());
        b[76..80].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..80]);
        b[80..84].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a header; `len` is the manifest's length.
    pub(super) fn decode(b: &[u8], len: u64, path: &Path) -> Result<Header> {
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if b.len() < MAGIC.len() || b[0..8] != MAGIC {
            return Err(Error::NotAnIndex {
                path: path.to_path_buf(),
            });
        }
        if b.len() < 12 {
            return Err(corrupt(format!("truncated header: {} bytes", b.len())));
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != super::FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: super::FORMAT_VERSION,
            });
        }
        if b.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "truncated header: {} of {HEADER_LEN} bytes",
                b.len()
            )));
        }
        if crc32fast::hash(&b[0..80]) != u32_at(80) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let h = Header {
            version,
            dims: u32_at(12),
            live: u64_at(16),
            slots: u64_at(24),
            config_len: u32_at(32),
            meta_len: u64_at(36),
            graph_len: u64_at(44),
            data_len: u64_at(52),
            generation: u64_at(60),
            graph_crc: u32_at(68),
            data_crc: u32_at(72),
            payload_crc: u32_at(76),
        };
        let expected = (HEADER_LEN as u64)
            .checked_add(u64::from(h.config_len))
            .and_then(|x| x.checked_add(h.meta_len));
        match expected {
            Some(expected) if expected == len => {}
            Some(expected) => {
                return Err(corrupt(format!(
                    "file is {len} bytes, header says {expected}"
                )));
            }
            None => return Err(corrupt("section lengths overflow".into())),
        }
        if u64::from(h.config_len) > MAX_CONFIG_LEN || h.live > h.slots {
            return Err(corrupt("implausible header values".into()));
        }
        if (h.generation == 0) != (h.graph_len == 0) || (h.graph_len == 0) != (h.data_len == 0) {
            return Err(corrupt("graph generation and lengths disagree".into()));
        }
        Ok(h)
    }
}
