//! What the store keeps per image and per model, and how it is encoded.
//!
//! Every value starts with a format-version byte, then a `bincode` (standard config) body, so a
//! later format can be read beside this one. A value that fails to decode becomes
//! [`Error::DataCorruption`](crate::Error::DataCorruption), never a panic.

use crate::schema::{bytes_to_path, path_to_bytes};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Format version of encoded records, fingerprints and embeddings.
const VALUE_VERSION: u8 = 1;

/// A content hash of an image file's bytes (32 bytes; the caller chooses the function, e.g.
/// BLAKE3 or SHA-256, and must keep it fixed for a store).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", crate::schema::hex(&self.0))
    }
}

/// Metadata of one image in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Where the file is. Stored as raw bytes: non-UTF-8 names round-trip.
    pub path: PathBuf,
    /// File size in bytes when it was indexed.
    pub size: u64,
    /// File modification time when it was indexed, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Hash of the file's bytes.
    pub hash: ContentHash,
    /// Decoded width in pixels (after EXIF orientation, if the caller applied it).
    pub width: u32,
    /// Decoded height in pixels.
    pub height: u32,
    /// Image format, lower-case (`"jpeg"`, `"png"`, …).
    pub format: String,
    /// EXIF capture time, seconds since the Unix epoch (EXIF carries no zone: read as UTC).
    pub captured_at: Option<i64>,
    /// When the image entered the library, seconds since the Unix epoch.
    pub added_at: i64,
}

/// The serialised form: the path as bytes, everything else as is.
#[derive(Serialize, Deserialize)]
struct RecordV1 {
    path: Vec<u8>,
    size: u64,
    mtime_ns: i64,
    hash: [u8; 32],
    width: u32,
    height: u32,
    format: String,
    captured_at: Option<i64>,
    added_at: i64,
}

/// Identifies the model whose embeddings a store holds.
///
/// **Identity is `dims` + `config_digest`**: two fingerprints are equal (`==`, and hash alike)
/// when those agree, whatever their `name`, which is only a label (a copy of a model folder
/// under another name is the same model).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFingerprint {
    /// Human-readable model name, e.g. `openai/clip-vit-base-patch32` (a label, not identity).
    pub name: String,
    /// Embedding dimension.
    pub dims: u32,
    /// Digest of everything that determines the model's embeddings (the caller computes it).
    /// Digests of a versioned scheme carry its prefix, e.g. `content-v2:<hex>`; older stores
    /// hold a bare hex digest of an earlier scheme.
    pub config_digest: String,
}

impl PartialEq for ModelFingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.dims == other.dims && self.config_digest == other.config_digest
    }
}

impl Eq for ModelFingerprint {}

impl std::hash::Hash for ModelFingerprint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.dims.hash(state);
        self.config_digest.hash(state);
    }
}

impl fmt::Display for ModelFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self
            .config_digest
            .rsplit_once(':')
            .map_or(self.config_digest.as_str(), |(_, h)| h);
        let digest = hex.get(..12).unwrap_or(hex);
        write!(f, "{} ({}-d, {digest})", self.name, self.dims)
    }
}

impl ModelFingerprint {
    /// The tag a store gives embeddings when this model is set (FNV-1a of the encoded
    /// fingerprint). The store keeps its tag in `meta` (see [`schema::META_MODEL_TAG`]), so a
    /// relabelled fingerprint ([`Store::relabel_model`](crate::Store::relabel_model)) keeps its
    /// embeddings current.
    ///
    /// [`schema::META_MODEL_TAG`]: crate::schema::META_MODEL_TAG
    pub(crate) fn tag(&self) -> u64 {
        let bytes = encode_body(self);
        bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn encode_body<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain structs into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, bincode_config()).unwrap_or_default()
}

pub(crate) fn encode_versioned<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    out.extend(encode_body(value));
    out
}

pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(
    key: &dyn Fn() -> String,
    bytes: &[u8],
) -> Result<T> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| Error::corrupt(key(), "empty value"))?;
    if version != VALUE_VERSION {
        return Err(Error::corrupt(
            key(),
            format!("unknown value format version {version}"),
        ));
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, bincode_config())
        .map_err(|e| Error::corrupt(key(), e.to_string()))?;
    if used != body.len() {
        return Err(Error::corrupt(
            key(),
            format!("{} trailing bytes", body.len() - used),
        ));
    }
    Ok(value)
}

pub(crate) fn encode_record(record: &ImageRecord) -> Vec<u8> {
    encode_versioned(&RecordV1 {
        path: path_to_bytes(&record.path),
        size: record.size,
        mtime_ns: record.mtime_ns,
        hash: record.hash.0,
        width: record.width,
        height: record.height,
        format: record.format.clone(),
        captured_at: record.captured_at,
        added_at: record.added_at,
    })
}

pub(crate) fn decode_record(key: &dyn Fn() -> String, bytes: &[u8]) -> Result<ImageRecord> {
    let r: RecordV1 = decode_versioned(key, bytes)?;
    Ok(ImageRecord {
        path: bytes_to_path(&r.path),
        size: r.size,
        mtime_ns: r.mtime_ns,
        hash: ContentHash(r.hash),
        width: r.width,
        height: r.height,
        format: r.format,
        captured_at: r.captured_at,
        added_at: r.added_at,
    })
}

pub(crate) fn encode_fingerprint(fp: &ModelFingerprint) -> Vec<u8> {
    encode_versioned(fp)
}

pub(crate) fn decode_fingerprint(
    key: &dyn Fn() -> String,
    bytes: &[u8],
) -> Result<ModelFingerprint> {
    decode_versioned(key, bytes)
}

/// Checks that an embedding can be stored and searched: `dims` values, all finite, with a
/// norm that can be normalised (the index's own test). What the store refuses to write and
/// reports on read; callers use it to refuse a photo before building a batch.
///
/// # Errors
/// [`Error::DimensionMismatch`] for a wrong length, [`Error::InvalidEmbedding`] (with `id:
/// None`) for a NaN or infinite value or an all-zero vector.
pub fn validate_embedding(values: &[f32], dims: usize) -> Result<()> {
    if values.len() != dims {
        return Err(Error::DimensionMismatch {
            expected: dims,
            got: values.len(),
        });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidEmbedding {
            id: None,
            reason: format!("value {i} is {}", values[i]),
        });
    }
    let norm = values
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if !(norm.is_finite() && norm > f64::from(f32::MIN_POSITIVE)) {
        return Err(Error::InvalidEmbedding {
            id: None,
            reason: "all zeros (no direction)".into(),
        });
    }
    Ok(())
}

/// Embedding value: version byte, model tag (u64 LE), then the values as `f32` LE.
pub(crate) fn encode_embedding(tag: u64, values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + 4 * values.len());
    out.push(VALUE_VERSION);
    out.extend_from_slice(&tag.to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Decodes an embedding value into (model tag, values).
pub(crate) fn decode_embedding(key: &dyn Fn() -> String, bytes: &[u8]) -> Result<(u64, Vec<f32>)> {
    if bytes.len() < 9 || !(bytes.len() - 9).is_multiple_of(4) {
        return Err(Error::corrupt(
            key(),
            format!("embedding value of {} bytes", bytes.len()),
        ));
    }
    if bytes[0] != VALUE_VERSION {
        return Err(Error::corrupt(
            key(),
            format!("unknown embedding version {}", bytes[0]),
        ));
    }
    let tag = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let values = bytes[9..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Ok((tag, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageRecord {
        ImageRecord {
            path: PathBuf::from("/photos/beach.jpg"),
            size: 1234,
            mtime_ns: 1_700_000_000_123_456_789,
            hash: ContentHash([7; 32]),
            width: 640,
            height: 480,
            format: "jpeg".into(),
            captured_at: Some(1_600_000_000),
            added_at: 1_700_000_001,
        }
    }

    #[test]
    fn record_round_trips() {
        let r = sample();
        let bytes = encode_record(&r);
        assert_eq!(bytes[0], VALUE_VERSION);
        assert_eq!(decode_record(&|| "k".into(), &bytes).unwrap(), r);
    }

    #[test]
    fn truncated_or_versioned_record_is_corruption() {
        let bytes = encode_record(&sample());
        for cut in [0, 1, 5, bytes.len() - 1] {
            let err = decode_record(&|| "k".into(), &bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, Error::DataCorruption { .. }),
                "cut {cut}: {err}"
            );
        }
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(
            decode_record(&|| "k".into(), &future),
            Err(Error::DataCorruption { .. })
        ));
    }

    #[test]
    fn embedding_round_trips_and_checks_length() {
        let v = [0.5f32, -1.0, 3.25];
        let bytes = encode_embedding(42, &v);
        assert_eq!(
            decode_embedding(&|| "k".into(), &bytes).unwrap(),
            (42, v.to_vec())
        );
        assert!(decode_embedding(&|| "k".into(), &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn fingerprint_tag_depends_on_every_field() {
        let a = ModelFingerprint {
            name: "m".into(),
            dims: 512,
            config_digest: "ab".into(),
        };
        let mut b = a.clone();
        b.dims = 768;
        let mut c = a.clone();
        c.config_digest = "ac".into();
        assert_ne!(a.tag(), b.tag());
        assert_ne!(a.tag(), c.tag());
        assert_eq!(a.tag(), a.clone().tag());
    }
}
