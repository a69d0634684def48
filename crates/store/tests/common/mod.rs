//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use glimpse_store::{ContentHash, ImageRecord, ModelFingerprint};
use std::path::PathBuf;

pub const DIMS: usize = 8;

pub fn model() -> ModelFingerprint {
    ModelFingerprint {
        name: "test/clip".into(),
        dims: DIMS as u32,
        config_digest: "c0ffee".into(),
    }
}

pub fn record(path: impl Into<PathBuf>, seed: u8) -> ImageRecord {
    ImageRecord {
        path: path.into(),
        size: 1000 + u64::from(seed),
        mtime_ns: 1_700_000_000_000_000_000 + i64::from(seed),
        hash: ContentHash([seed; 32]),
        width: 100 + u32::from(seed),
        height: 50,
        format: "png".into(),
        captured_at: if seed.is_multiple_of(2) {
            Some(1_600_000_000)
        } else {
            None
        },
        added_at: 1_700_000_000,
    }
}

pub fn embedding(seed: u8) -> Vec<f32> {
    (0..DIMS)
        .map(|i| f32::from(seed) + i as f32 * 0.25)
        .collect()
}

/// Opens the raw RocksDB under a store, with every column family, for tests that tamper.
pub fn raw_db(path: &std::path::Path) -> rocksdb::DB {
    let opts = rocksdb::Options::default();
    rocksdb::DB::open_cf(&opts, path, glimpse_store::schema::COLUMN_FAMILIES).unwrap()
}
