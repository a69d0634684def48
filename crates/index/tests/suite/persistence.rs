//! Save → load round trips, and damaged files giving typed errors.

use std::fs;

use glimpse_index::persist::FILE_NAME;
use glimpse_index::{Error, Index, IndexConfig};

use crate::common::{self, DIMS};

#[test]
fn save_load_gives_identical_results() {
    let seed = common::seed("save_load");
    let (base, queries) = common::dataset(seed, 3_000, 30);
    let config = IndexConfig {
        compact_ratio: 1.0,
        exact_threshold: 0,
        ..IndexConfig::new(DIMS)
    };
    let index = common::build(config.clone(), &base);
    for id in (0..3_000u64).step_by(7) {
        index.remove(id);
    }
    index.insert(5, &base[..DIMS]).unwrap(); // a replacement: slot order != id order
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    index.save(dir.path()).unwrap(); // overwrite in place
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![FILE_NAME], "temp files left behind");

    let loaded = Index::load(dir.path()).unwrap();
    assert_eq!(loaded.config(), index.config());
    let (a, b) = (loaded.stats(), index.stats());
    assert_eq!(
        (a.len, a.tombstones, a.graph_nodes),
        (b.len, b.tombstones, b.graph_nodes)
    );
    let even = |id: u64| id.is_multiple_of(2);
    for q in queries.chunks_exact(DIMS) {
        assert_eq!(
            loaded.search(q, 10, None).unwrap(),
            index.search(q, 10, None).unwrap()
        );
        assert_eq!(
            loaded.search(q, 10, Some(&even)).unwrap(),
            index.search(q, 10, Some(&even)).unwrap()
        );
    }
    // A loaded index keeps working.
    loaded.insert(99_999, &queries[..DIMS]).unwrap();
    assert_eq!(
        loaded.search(&queries[..DIMS], 1, None).unwrap()[0].0,
        99_999
    );
    assert!(!loaded.contains(7));

    // Matching and mismatching expectations.
    let tuned = IndexConfig {
        ef_search: 300,
        ..config.clone()
    };
    assert_eq!(
        Index::load_expecting(dir.path(), &tuned)
            .unwrap()
            .config()
            .ef_search,
        300
    );
    let e = Index::load_expecting(dir.path(), &IndexConfig::new(256)).unwrap_err();
    assert!(matches!(e, Error::Incompatible { .. }), "{e}");
    let e = Index::load_expecting(dir.path(), &IndexConfig { m: 32, ..config }).unwrap_err();
    assert!(matches!(e, Error::Incompatible { .. }), "{e}");
}

#[test]
fn empty_and_tiny_indexes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Index::new(IndexConfig::new(8)).unwrap();
    empty.save(dir.path()).unwrap();
    let loaded = Index::load(dir.path()).unwrap();
    assert!(loaded.is_empty());
    loaded.insert(1, &[1.0; 8]).unwrap();
    loaded.save(dir.path()).unwrap();
    let again = Index::load(dir.path()).unwrap();
    let hits = again.search(&[1.0; 8], 3, None).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].0 == 1 && (hits[0].1 - 1.0).abs() < 1e-6);
}

fn assert_typed_error(result: glimpse_index::Result<Index>, what: &str) {
    match result {
        Err(
            Error::Corrupt { .. } | Error::NotAnIndex { .. } | Error::UnsupportedVersion { .. },
        ) => {}
        Err(e) => panic!("{what}: unexpected error kind {e:?}"),
        Ok(_) => panic!("{what}: damaged file loaded"),
    }
}

#[test]
fn damaged_files_are_typed_errors() {
    let seed = common::seed("damaged_files");
    let (base, _) = common::dataset(seed, 600, 0);
    let index = common::build(IndexConfig::new(DIMS), &base);
    index.remove(3);
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    let path = dir.path().join(FILE_NAME);
    let good = fs::read(&path).unwrap();
    let len = good.len();
    println!("index file: {len} bytes");

    // Flipped bytes: every header byte, and positions spread over all sections.
    let mut positions: Vec<usize> = (0..68).collect();
    positions.extend((0..200).map(|i| 68 + (len - 69) * i / 199));
    for &pos in &positions {
        let mut bad = good.clone();
        bad[pos] ^= 0x5A;
        fs::write(&path, &bad).unwrap();
        assert_typed_error(Index::load(dir.path()), &format!("byte {pos} flipped"));
    }
    // Truncations, including to zero bytes and inside the header.
    for cut in [0, 4, 8, 40, 67, 68, 69, 100, len / 3, len / 2, len - 1] {
        fs::write(&path, &good[..cut]).unwrap();
        assert_typed_error(Index::load(dir.path()), &format!("truncated to {cut}"));
    }
    // Trailing garbage.
    let mut long = good.clone();
    long.extend_from_slice(b"junk");
    fs::write(&path, &long).unwrap();
    assert_typed_error(Index::load(dir.path()), "trailing bytes");
    // A foreign file.
    fs::write(&path, b"{\"not\": \"an index\"}").unwrap();
    assert!(matches!(
        Index::load(dir.path()),
        Err(Error::NotAnIndex { .. })
    ));
    // Missing.
    fs::remove_file(&path).unwrap();
    match Index::load(dir.path()) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("missing file: {other:?}"),
    }
    // The intact file still loads, and no scratch directories were left behind.
    fs::write(&path, &good).unwrap();
    assert_eq!(Index::load(dir.path()).unwrap().len(), 599);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}
