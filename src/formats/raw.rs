//! Camera RAW files through their embedded preview JPEG: DNG and the TIFF-based RAW formats
//! (CR2, NEF, ARW, PEF, SRW, …), ORF and RW2 (TIFF with their own signatures).
//!
//! Decoding a RAW's sensor data (demosaicing, white balance, a colour profile per camera) is a
//! project of its own; every camera also stores the JPEG it would have shown, usually at full
//! or near-full size, and photo tools show that. The TIFF structure is walked — IFD0 and its
//! chain, SubIFDs (tag 330), the EXIF IFD — and every JPEG found is a candidate:
//! `JPEGInterchangeFormat`/`Length` (513/514), a single JPEG-compressed strip (259 = 6 or 7 with
//! 273/279) and Panasonic's `JpgFromRaw` (46). The largest baseline or progressive JPEG (by its
//! SOF size) wins; lossless-JPEG sensor data (SOF3) is never a candidate. Every offset is
//! checked against the file's length and the walk visits at most [`MAX_IFDS`] IFDs, each once.

use std::collections::HashSet;
use std::path::Path;

/// Extensions (lower-case) of the RAW formats read through their preview.
pub(crate) const RAW_EXTENSIONS: [&str; 16] = [
    "dng", "cr2", "nef", "nrw", "arw", "srf", "sr2", "orf", "rw2", "pef", "srw", "erf", "kdc",
    "dcr", "3fr", "rwl",
];

/// IFDs visited at most in one file.
const MAX_IFDS: usize = 64;

/// Whether `path` has a RAW extension.
pub(crate) fn has_raw_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| RAW_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A TIFF-structured file's byte order and first IFD, whatever its signature (TIFF, ORF, RW2).
#[derive(Debug, Clone, Copy)]
struct Tiff<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl<'a> Tiff<'a> {
    fn parse(bytes: &'a [u8]) -> Option<(Tiff<'a>, u32)> {
        let little = match bytes.get(..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let t = Tiff { bytes, little };
        let magic = t.u16(2)?;
        // 42: TIFF (DNG, CR2, NEF, ARW, …); 0x4F52 / 0x5352: Olympus ORF; 0x55: Panasonic RW2.
        if !matches!(magic, 42 | 0x4F52 | 0x5352 | 0x55) {
            return None;
        }
        Some((t, t.u32(4)?))
    }

    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// The entries of the IFD at `offset` and the offset of the next one (0: none).
    fn ifd(&self, offset: u32) -> Option<(Vec<Entry>, u32)> {
        let at = offset as usize;
        let n = self.u16(at)? as usize;
        let mut entries = Vec::with_capacity(n.min(512));
        for i in 0..n.min(512) {
            let e = at + 2 + 12 * i;
            entries.push(Entry {
                tag: self.u16(e)?,
                kind: self.u16(e + 2)?,
                count: self.u32(e + 4)?,
                value_at: e + 8,
            });
        }
        let next = self.u32(at + 2 + 12 * n).unwrap_or(0);
        Some((entries, next))
    }

    /// The values of an entry of type SHORT or LONG (at most 64 of them).
    fn values(&self, e: &Entry) -> Vec<u32> {
        type Read<'t> = fn(&Tiff<'t>, usize) -> Option<u32>;
        let (size, read): (usize, Read<'a>) = match e.kind {
            3 => (2, |t, at| t.u16(at).map(u32::from)),
            4 | 13 => (4, |t, at| t.u32(at)),
            _ => return Vec::new(),
        };
        let count = (e.count as usize).min(64);
        let base = if size * count <= 4 {
            e.value_at
        } else {
            match self.u32(e.value_at) {
                Some(o) => o as usize,
                None => return Vec::new(),
            }
        };
        (0..count)
            .filter_map(|i| read(self, base + i * size))
            .collect()
    }

    fn first(&self, entries: &[Entry], tag: u16) -> Option<u32> {
        let e = entries.iter().find(|e| e.tag == tag)?;
        self.values(e).first().copied()
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    /// Where the value (or its offset) is.
    value_at: usize,
}

/// What the preview search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Preview<'a> {
    /// The embedded JPEG.
    pub jpeg: &'a [u8],
    /// Its size from the SOF marker.
    pub width: u32,
    pub height: u32,
    /// The RAW's `Orientation` (IFD0, tag 274), if any.
    pub orientation: Option<u8>,
}

/// Whether `bytes` are a RAW file: an ORF or RW2 signature, a TIFF with `DNGVersion` (50706)
/// in IFD0 or CR2's `CR` marker, or a TIFF-structured file with a RAW extension.
pub(crate) fn raw_format(path: &Path, bytes: &[u8]) -> Option<String> {
    let (tiff, ifd0) = Tiff::parse(bytes)?;
    match tiff.u16(2)? {
        0x4F52 | 0x5352 => return Some("orf".into()),
        0x55 => return Some("rw2".into()),
        _ => {}
    }
    if bytes.get(8..10) == Some(b"CR") {
        return Some("cr2".into());
    }
    if let Some((entries, _)) = tiff.ifd(ifd0) {
        if entries.iter().any(|e| e.tag == 50706) {
            return Some("dng".into());
        }
    }
    has_raw_extension(path).then(|| {
        path.extension()
            .and_then(|e| e.to_str())
            .unwrap_or("raw")
            .to_ascii_lowercase()
    })
}

/// An ORF or RW2 file's bytes with the standard TIFF signature, so that an EXIF reader that
/// knows only TIFF reads their (TIFF-structured) metadata; `None` for anything else.
pub(crate) fn as_tiff(bytes: &[u8]) -> Option<Vec<u8>> {
    let (tiff, _) = Tiff::parse(bytes)?;
    if tiff.u16(2)? == 42 {
        return None;
    }
    let mut out = bytes.to_vec();
    out[2..4].copy_from_slice(&if tiff.little { [42, 0] } else { [0, 42] });
    Some(out)
}

/// The size a JPEG's first SOF0/1/2 marker declares; `None` for a JPEG without one (lossless
/// SOF3 sensor data, or not a JPEG).
fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return None;
        }
        let marker = jpeg[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        match marker {
            0xC0..=0xC2 => {
                let h = u16::from_be_bytes([*jpeg.get(at + 5)?, *jpeg.get(at + 6)?]);
                let w = u16::from_be_bytes([*jpeg.get(at + 7)?, *jpeg.get(at + 8)?]);
                return (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)));
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA | 0xD9 => return None,
            _ => at += 2 + len,
        }
    }
    None
}

/// The largest embedded preview JPEG of a RAW file, or `None` when it has none.
pub(crate) fn preview(bytes: &[u8]) -> Option<Preview<'_>> {
    let (tiff, ifd0) = Tiff::parse(bytes)?;
    let mut queue = vec![ifd0];
    let mut seen = HashSet::new();
    let mut best: Option<Preview<'_>> = None;
    let mut orientation = None;
    let slice = |offset: u32, len: u32| -> Option<&[u8]> {
        let start = offset as usize;
        bytes.get(start..start.checked_add(len as usize)?)
    };
    while let Some(offset) = queue.pop() {
        if offset == 0 || seen.len() >= MAX_IFDS || !seen.insert(offset) {
            continue;
        }
        let Some((entries, next)) = tiff.ifd(offset) else {
            continue;
        };
        if seen.len() == 1 {
            orientation = tiff.first(&entries, 274).and_then(|o| u8::try_from(o).ok());
        }
        queue.push(next);
        for e in &entries {
            // SubIFDs, the EXIF IFD.
            if e.tag == 330 || e.tag == 34665 {
                queue.extend(tiff.values(e));
            }
        }
        let mut candidates = Vec::new();
        if let (Some(o), Some(l)) = (tiff.first(&entries, 513), tiff.first(&entries, 514)) {
            candidates.extend(slice(o, l));
        }
        if matches!(tiff.first(&entries, 259), Some(6 | 7)) {
            let offsets = entries
                .iter()
                .find(|e| e.tag == 273)
                .map(|e| tiff.values(e));
            let counts = entries
                .iter()
                .find(|e| e.tag == 279)
                .map(|e| tiff.values(e));
            if let (Some(o), Some(c)) = (offsets, counts) {
                if o.len() == 1 && c.len() == 1 {
                    candidates.extend(slice(o[0], c[0]));
                }
            }
        }
        if let Some(e) = entries.iter().find(|e| e.tag == 46 && e.kind == 7) {
            if let Some(o) = tiff.u32(e.value_at) {
                candidates.extend(slice(o, e.count));
            }
        }
        for jpeg in candidates {
            let Some((width, height)) = jpeg_size(jpeg) else {
                continue;
            };
            let area = u64::from(width) * u64::from(height);
            if best.is_none_or(|b| area > u64::from(b.width) * u64::from(b.height)) {
                best = Some(Preview {
                    jpeg,
                    width,
                    height,
                    orientation: None,
                });
            }
        }
    }
    best.map(|b| Preview { orientation, ..b })
}

/// Drops from `images` each RAW file whose JPEG sibling (same folder, same stem, extension
/// `jpg`/`jpeg` in any case) is there too, and returns the pairs as JPEG → RAW: the JPEG is
/// the photo indexed, the RAW its original.
pub(crate) fn take_raw_siblings(
    images: &mut Vec<std::path::PathBuf>,
) -> std::collections::HashMap<std::path::PathBuf, std::path::PathBuf> {
    use std::collections::HashMap;
    let key = |p: &Path| {
        (
            p.parent().map(Path::to_path_buf),
            p.file_stem().map(|s| s.to_owned()),
        )
    };
    let jpegs: HashMap<_, _> = images
        .iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"))
        })
        .map(|p| (key(p), p.clone()))
        .collect();
    let mut pairs = HashMap::new();
    images.retain(|p| {
        if !has_raw_extension(p) {
            return true;
        }
        match jpegs.get(&key(p)) {
            Some(jpeg) => {
                pairs.insert(jpeg.clone(), p.clone());
                false
            }
            None => true,
        }
    });
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF whose IFD0 points at `jpeg` through tags 513/514.
    fn tiff_with_jpeg(jpeg: &[u8], extra: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        let mut entries: Vec<(u16, u16, u32, u32)> = extra.to_vec();
        let n = entries.len() + 2;
        let data_at = 8 + 2 + 12 * n as u32 + 4;
        entries.push((513, 4, 1, data_at));
        entries.push((514, 4, 1, jpeg.len() as u32));
        entries.sort_by_key(|e| e.0);
        let mut out = b"II*\0".to_vec();
        out.extend(8u32.to_le_bytes());
        out.extend((n as u16).to_le_bytes());
        for (tag, kind, count, value) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(count.to_le_bytes());
            out.extend(value.to_le_bytes());
        }
        out.extend(0u32.to_le_bytes());
        out.extend_from_slice(jpeg);
        out
    }

    fn sof(w: u16, h: u16, marker: u8) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, marker, 0, 11, 8];
        j.extend(h.to_be_bytes());
        j.extend(w.to_be_bytes());
        j.extend([1, 1, 0x11, 0]);
        j.extend([0xFF, 0xD9]);
        j
    }

    #[test]
    fn finds_the_preview_and_the_orientation() {
        let jpeg = sof(640, 480, 0xC0);
        let file = tiff_with_jpeg(&jpeg, &[(274, 3, 1, 6), (50706, 1, 4, 0x0001_0401)]);
        let p = preview(&file).unwrap();
        assert_eq!((p.width, p.height, p.orientation), (640, 480, Some(6)));
        assert_eq!(p.jpeg, &jpeg[..]);
        assert_eq!(
            raw_format(Path::new("x.tif"), &file).as_deref(),
            Some("dng")
        );
    }

    #[test]
    fn lossless_sensor_data_and_damage_are_not_previews() {
        let file = tiff_with_jpeg(&sof(640, 480, 0xC3), &[]);
        assert_eq!(preview(&file), None);
        let mut cut = tiff_with_jpeg(&sof(640, 480, 0xC0), &[]);
        cut.truncate(cut.len() - 5);
        assert_eq!(preview(&cut), None);
        assert_eq!(preview(b"II*\0\xff\xff\xff\xff"), None);
        // A plain TIFF is not RAW unless its name says so.
        let plain = tiff_with_jpeg(&sof(8, 8, 0xC0), &[]);
        assert_eq!(raw_format(Path::new("scan.tif"), &plain), None);
        assert_eq!(
            raw_format(Path::new("a.NEF"), &plain).as_deref(),
            Some("nef")
        );
    }

    #[test]
    fn a_raw_with_a_jpeg_sibling_is_dropped() {
        let mut images: Vec<std::path::PathBuf> =
            ["/p/a.CR2", "/p/a.JPG", "/p/b.nef", "/q/a.dng", "/p/c.png"]
                .iter()
                .map(Into::into)
                .collect();
        let pairs = take_raw_siblings(&mut images);
        assert_eq!(images.len(), 4);
        assert!(!images.contains(&"/p/a.CR2".into()));
        assert_eq!(pairs[Path::new("/p/a.JPG")], Path::new("/p/a.CR2"));
    }
}
