//! The Parquet schema of an export, its key-value metadata, and the rows it holds.
//!
//! | column | Parquet type | meaning |
//! |---|---|---|
//! | `id` | INT64 | the photo's id in the exporting library; in a part written by [`embed_files`](crate::LibraryBuilder::embed_files), a 63-bit hash of the path |
//! | `path` | BYTE_ARRAY | the path's exact bytes (raw `OsStr` bytes on Unix): lossless |
//! | `path_display` | BYTE_ARRAY (STRING) | the path as UTF-8, invalid bytes as U+FFFD (for people and tools that want text) |
//! | `content_hash` | FIXED_LEN_BYTE_ARRAY(32) | BLAKE3 of the file's bytes |
//! | `size` | INT64 | file size in bytes when embedded |
//! | `mtime_ns` | INT64 | modification time, nanoseconds since the Unix epoch |
//! | `captured_at` | INT64, optional | EXIF capture time, seconds since the Unix epoch (UTC) |
//! | `width`, `height` | INT32 | decoded size in pixels (after EXIF orientation) |
//! | `format` | BYTE_ARRAY (STRING) | `jpeg`, `png`, ... |
//! | `added_at` | INT64 | when the photo entered the library, seconds since the Unix epoch |
//! | `embedding` | LIST of FLOAT (every list exactly `dims` long); Arrow type `fixed_size_list<float>[dims]` | the L2-normalised CLIP embedding |
//! | `keywords` | optional LIST of STRING | the words the photo's file carries (EXIF/IPTC/XMP keywords, titles, descriptions, camera), as stored for hybrid search; null when it has none. Words that follow from the path and capture date are not written: an import derives them again |
//!
//! Files without a `keywords` column (written before it existed, or by other tools) import
//! with no stored words. Parts written by [`embed_files`](crate::LibraryBuilder::embed_files)
//! leave it null (their photos' words are read again when a library indexes the files).
//!
//! The file's key-value metadata carries [`KEY_FORMAT`] = [`FORMAT`] and [`KEY_MODEL`] = the
//! model fingerprint as JSON (`{"name":…,"dims":…,"config_digest":…}`); an import compares it
//! with the library's (identity is `dims` + `config_digest`).
//!
//! Parquet has no fixed-size list: the embedding is stored as a standard three-level LIST
//! (`embedding.list.element`), and the file's `ARROW:schema` metadata (the Arrow schema, as
//! Arrow writers store it) declares it `fixed_size_list<element: float>[dims]`, so pyarrow,
//! Polars and other Arrow readers read a fixed-size list; readers that ignore the Arrow schema
//! (Spark, DuckDB, Milvus) read a list of floats, every one `dims` long.

use glimpse_store::{ImageRecord, ModelFingerprint};

/// Key of the format tag in the file's key-value metadata.
pub const KEY_FORMAT: &str = "glimpse.format";
/// The format tag of this version's files.
pub const FORMAT: &str = "glimpse-photos-v1";
/// Key of the model fingerprint (JSON) in the file's key-value metadata.
pub const KEY_MODEL: &str = "glimpse.model";

/// One photo of an export: its id, record and embedding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub id: i64,
    pub record: ImageRecord,
    pub embedding: Vec<f32>,
    /// The stored words of the photo's file (empty: none).
    pub keywords: Vec<String>,
}

/// Which columns a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    /// Everything above: an export, a part, what [`import`](crate::Library::import) reads.
    Full,
    /// clip-retrieval's `metadata/metadata_N.parquet`: `image_path` (the display path) first,
    /// then the same columns without `path_display` and `embedding` (those are in the `.npy`).
    ClipMetadata,
}

impl Columns {
    /// The Parquet message type.
    pub fn message_type(self) -> String {
        let display = match self {
            Columns::Full => "REQUIRED BYTE_ARRAY path_display (STRING);",
            Columns::ClipMetadata => "",
        };
        let first = match self {
            Columns::Full => "",
            Columns::ClipMetadata => "REQUIRED BYTE_ARRAY image_path (STRING);",
        };
        let embedding = match self {
            Columns::Full => {
                "REQUIRED GROUP embedding (LIST) { REPEATED GROUP list { REQUIRED FLOAT element; } }
                OPTIONAL GROUP keywords (LIST) { REPEATED GROUP list { REQUIRED BYTE_ARRAY element (STRING); } }"
            }
            Columns::ClipMetadata => "",
        };
        format!(
            "message glimpse_photos {{
                {first}
                REQUIRED INT64 id;
                REQUIRED BYTE_ARRAY path;
                {display}
                REQUIRED FIXED_LEN_BYTE_ARRAY (32) content_hash;
                REQUIRED INT64 size;
                REQUIRED INT64 mtime_ns;
                OPTIONAL INT64 captured_at;
                REQUIRED INT32 width;
                REQUIRED INT32 height;
                REQUIRED BYTE_ARRAY format (STRING);
                REQUIRED INT64 added_at;
                {embedding}
            }}"
        )
    }
}

/// The fingerprint as the JSON stored under [`KEY_MODEL`].
pub(crate) fn fingerprint_json(fp: &ModelFingerprint) -> String {
    serde_json::to_string(fp).expect("a fingerprint serialises")
}

/// The exact bytes of a path (raw `OsStr` bytes on Unix).
#[cfg(unix)]
pub(crate) fn path_bytes(path: &std::path::Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

/// The exact bytes of a path (its UTF-8 form off Unix).
#[cfg(not(unix))]
pub(crate) fn path_bytes(path: &std::path::Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

/// The path of [`path_bytes`].
#[cfg(unix)]
pub(crate) fn bytes_path(bytes: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// The path of [`path_bytes`].
#[cfg(not(unix))]
pub(crate) fn bytes_path(bytes: &[u8]) -> std::path::PathBuf {
    std::path::PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}
