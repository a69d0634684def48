//! Shared helpers for the parity tests: paths of the fixtures and a reader for
//! `reference/reference.safetensors` + `reference/reference.json` (see `fixtures/README.md`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Cosine similarity, computed in f64 so that `1 - cos` is meaningful down to ~1e-12.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The full-size random ViT-B/32 checkpoint made by `scripts/make_fixtures.py --full`:
/// `$GLIMPSE_FULL_MODEL`, else `/root/.cache/glimpse/vit-b32-random`.
pub fn full_model_dir() -> PathBuf {
    std::env::var_os("GLIMPSE_FULL_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/glimpse/vit-b32-random"))
}

/// `crates/encoder/tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One tensor of the reference file.
#[derive(Debug, Clone)]
pub struct RefTensor {
    /// safetensors dtype name (`F32`, `U8`).
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian raw bytes.
    pub bytes: Vec<u8>,
}

impl RefTensor {
    /// The values as f32 (F32 tensors only).
    pub fn f32(&self) -> Vec<f32> {
        assert_eq!(self.dtype, "F32");
        self.bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// The values as u8 (U8 tensors only).
    pub fn u8(&self) -> Vec<u8> {
        assert_eq!(self.dtype, "U8");
        self.bytes.clone()
    }
}

/// The reference outputs: tensors by name and the JSON metadata.
pub struct Reference {
    /// Tensors by name.
    pub tensors: HashMap<String, RefTensor>,
    /// `reference.json`.
    pub json: serde_json::Value,
}

impl Reference {
    /// Loads `fixtures/reference/`.
    pub fn load() -> Self {
        let dir = fixtures().join("reference");
        let json = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
        let json: serde_json::Value = serde_json::from_str(&json).expect("reference.json parses");
        let tensors = read_safetensors(&dir.join("reference.safetensors"));
        Self { tensors, json }
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> &RefTensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("reference has no tensor `{name}`"))
    }

    /// `(name, file path)` of every reference image.
    pub fn images(&self) -> Vec<(String, PathBuf)> {
        self.json["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|i| {
                let name = i["name"].as_str().unwrap().to_string();
                (name, fixtures().join(i["file"].as_str().unwrap()))
            })
            .collect()
    }

    /// `(text, ids)` of every reference text.
    pub fn texts(&self) -> Vec<(String, Vec<u32>)> {
        self.json["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .map(|t| {
                let ids = t["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                (t["text"].as_str().unwrap().to_string(), ids)
            })
            .collect()
    }
}

/// Minimal safetensors reader (8-byte little-endian header length, JSON header, data).
pub fn read_safetensors(path: &Path) -> HashMap<String, RefTensor> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
    let data = &bytes[8 + n..];
    let mut out = HashMap::new();
    for (name, info) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let offsets = info["data_offsets"].as_array().unwrap();
        let (start, end) = (
            offsets[0].as_u64().unwrap() as usize,
            offsets[1].as_u64().unwrap() as usize,
        );
        let shape = info["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        out.insert(
            name.clone(),
            RefTensor {
                dtype: info["dtype"].as_str().unwrap().to_string(),
                shape,
                bytes: data[start..end].to_vec(),
            },
        );
    }
    out
}

/// `img` as a quality-90 JPEG, with an EXIF `Orientation` tag when given (an APP1 segment
/// holding a one-entry little-endian TIFF, as cameras write it).
pub fn jpeg(img: &image::RgbImage, exif_orientation: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(img)
        .unwrap();
    let Some(o) = exif_orientation else {
        return out;
    };
    // APP1 "Exif" with a little-endian TIFF holding one IFD entry: Orientation (0x0112).
    let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    tiff.extend_from_slice(&o.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut with = vec![0xFF, 0xD8, 0xFF, 0xE1];
    with.extend_from_slice(&len.to_be_bytes());
    with.extend_from_slice(&app1);
    with.extend_from_slice(&out[2..]);
    with
}
