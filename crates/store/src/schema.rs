//! On-disk layout: column families, key encodings and the one place RocksDB options are set.
//!
//! | column family | key | value |
//! |---|---|---|
//! | [`CF_IMAGES`] | id (u64 big-endian) | version byte + bincode [`ImageRecord`](crate::ImageRecord) |
//! | [`CF_PATHS`] | path bytes (raw `OsStr` bytes on Unix) | id (u64 big-endian) |
//! | [`CF_HASHES`] | content hash (32 bytes) + id (u64 big-endian) | empty |
//! | [`CF_EMBEDDINGS`] | id (u64 big-endian) | version byte + model tag (u64 LE) + `f32` LE values |
//! | [`CF_WORDS`] | id (u64 big-endian) | version byte + bincode [`PhotoWords`](crate::PhotoWords) |
//! | [`CF_META`] | [`META_SCHEMA`], [`META_MODEL`], [`META_MODEL_TAG`], [`META_NEXT_ID`], [`META_COUNT`] | see each key |
//!
//! Ids are big-endian so that iteration runs in id order, and the hash index keys carry the
//! id so that one hash maps to many images (exact duplicates) with plain prefix scans.

use crate::{ContentHash, ImageId};
use std::path::{Path, PathBuf};

/// Image records by id.
pub const CF_IMAGES: &str = "images";
/// Path → id.
pub const CF_PATHS: &str = "paths";
/// Content hash + id → (empty): finds moved files and exact duplicates.
pub const CF_HASHES: &str = "hashes";
/// Embeddings by id, tagged with the model that produced them.
pub const CF_EMBEDDINGS: &str = "embeddings";
/// Store-wide values.
pub const CF_META: &str = "meta";
/// The words a photo's file carries (keywords, titles, camera) and its RAW original, by id:
/// written in the same batch as the photo's record. Added after schema 1 was frozen: a store
/// without it opens (the column family is created empty) and its photos have no such entry.
pub const CF_WORDS: &str = "words";
/// Every column family, in creation order.
pub const COLUMN_FAMILIES: [&str; 6] = [
    CF_IMAGES,
    CF_PATHS,
    CF_HASHES,
    CF_EMBEDDINGS,
    CF_META,
    CF_WORDS,
];

/// Meta key: schema version, u32 little-endian.
pub const META_SCHEMA: &[u8] = b"schema_version";
/// Meta key: the model fingerprint (version byte + bincode).
pub const META_MODEL: &[u8] = b"model";
/// Meta key: the tag (u64 little-endian) of the embeddings that belong to the current model.
/// Absent in stores written before it existed: the tag of the stored fingerprint then.
pub const META_MODEL_TAG: &[u8] = b"model_tag";
/// Meta key: the next id to allocate, u64 big-endian.
pub const META_NEXT_ID: &[u8] = b"next_id";
/// Meta key: the number of images, u64 big-endian.
pub const META_COUNT: &[u8] = b"count";

/// Schema version written by this build; stores with a higher version are refused.
pub const SCHEMA_VERSION: u32 = 1;

/// RocksDB options for the database and every column family.
pub(crate) fn db_options() -> rocksdb::Options {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Checksums are verified on every read; paranoid checks catch corruption on open.
    opts.set_paranoid_checks(true);
    // A photo library is small metadata: keep the footprint modest.
    opts.set_max_open_files(256);
    opts.set_keep_log_file_num(4);
    // Small memtables (the default is 64 MiB): RocksDB preallocates 1.1 × this for each log, and
    // the store keeps room for that (`DISK_RESERVE`).
    opts.set_write_buffer_size(16 << 20);
    opts.increase_parallelism(2);
    opts
}

pub(crate) fn id_key(id: ImageId) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn decode_id(cf: &str, bytes: &[u8]) -> crate::Result<ImageId> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        crate::Error::corrupt(
            format!("{cf}/{}", hex(bytes)),
            format!("expected an 8-byte id, found {} bytes", bytes.len()),
        )
    })?;
    Ok(u64::from_be_bytes(arr))
}

pub(crate) fn hash_key(hash: &ContentHash, id: ImageId) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&hash.0);
    key[32..].copy_from_slice(&id.to_be_bytes());
    key
}

/// Path → key bytes. On Unix the raw bytes, so non-UTF-8 names round-trip exactly.
#[cfg(unix)]
pub(crate) fn path_to_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

/// Path → key bytes. Elsewhere the UTF-8 form (lossy for unpaired surrogates on Windows).
#[cfg(not(unix))]
pub(crate) fn path_to_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

/// Key bytes → path; the inverse of [`path_to_bytes`].
#[cfg(unix)]
pub(crate) fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// Key bytes → path; the inverse of [`path_to_bytes`].
#[cfg(not(unix))]
pub(crate) fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// Lower-case hex, for keys in error messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
