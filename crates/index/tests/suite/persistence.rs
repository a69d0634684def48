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
    let first = listing(dir.path());
    index.save(dir.path()).unwrap(); // unchanged: writes nothing
    assert_eq!(
        listing(dir.path()),
        first,
        "an unchanged save rewrote the index"
    );
    index.remove(1);
    index.save(dir.path()).unwrap(); // a new generation replaces the first
    let files = listing(dir.path());
    assert_eq!(
        files.len(),
        3,
        "the manifest and two graph files: {files:?}"
    );
    assert_eq!(files[2], FILE_NAME);
    assert!(
        files[0].starts_with("graph-") && files[0].ends_with(".hnsw.data"),
        "{files:?}"
    );
    assert!(files[1].ends_with(".hnsw.graph"), "{files:?}");
    assert_ne!(first[0], files[0], "the second save wrote a new generation");
    assert!(glimpse_index::persist::leftovers(dir.path()).is_empty());

    // Loading reads the files in place: it writes nothing, beside them or in the temp folder.
    let temp_before = scratch_dirs(&std::env::temp_dir());
    let loaded = Index::load(dir.path()).unwrap();
    assert_eq!(
        listing(dir.path()),
        files,
        "load wrote into the index folder"
    );
    assert_eq!(scratch_dirs(&std::env::temp_dir()), temp_before);
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

/// The sorted file names in `dir`.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Scratch folders glimpse-index (format 1) made in `dir`.
fn scratch_dirs(dir: &std::path::Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| n.starts_with(".glimpse-"))
        .collect()
}

/// The manifest and the graph files, in `listing` order (data, graph, manifest).
fn index_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    listing(dir).into_iter().map(|n| dir.join(n)).collect()
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
    let files = index_files(dir.path());
    assert_eq!(files.len(), 3);
    let path = dir.path().join(FILE_NAME);
    assert_eq!(files[2], path);

    for file in &files {
        let good = fs::read(file).unwrap();
        let len = good.len();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        println!("{name}: {len} bytes");
        // Flipped bytes: every header byte of the manifest, and positions spread over all of
        // each file.
        let mut positions: Vec<usize> = if *file == path {
            (0..84).collect()
        } else {
            Vec::new()
        };
        positions.extend((0..150).map(|i| (len - 1) * i / 149));
        for &pos in &positions {
            let mut bad = good.clone();
            bad[pos] ^= 0x5A;
            fs::write(file, &bad).unwrap();
            assert_typed_error(
                Index::load(dir.path()),
                &format!("{name}: byte {pos} flipped"),
            );
        }
        // Truncations, including to zero bytes and inside the header.
        for cut in [0, 4, 8, 40, 67, 68, 83, 84, 85, len / 3, len / 2, len - 1] {
            fs::write(file, &good[..cut.min(len - 1)]).unwrap();
            assert_typed_error(
                Index::load(dir.path()),
                &format!("{name}: truncated to {cut}"),
            );
        }
        // Trailing garbage.
        let mut long = good.clone();
        long.extend_from_slice(b"junk");
        fs::write(file, &long).unwrap();
        assert_typed_error(Index::load(dir.path()), &format!("{name}: trailing bytes"));
        fs::write(file, &good).unwrap();
    }
    // A graph file missing.
    let data = fs::read(&files[0]).unwrap();
    fs::remove_file(&files[0]).unwrap();
    assert_typed_error(Index::load(dir.path()), "data file missing");
    fs::write(&files[0], &data).unwrap();
    // A foreign manifest.
    let good = fs::read(&path).unwrap();
    fs::write(&path, b"{\"not\": \"an index\"}").unwrap();
    assert!(matches!(
        Index::load(dir.path()),
        Err(Error::NotAnIndex { .. })
    ));
    // A format 1 file: refused by version (the library rebuilds from its store).
    let mut v1 = good.clone();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    fs::write(&path, &v1).unwrap();
    assert!(matches!(
        Index::load(dir.path()),
        Err(Error::UnsupportedVersion { found: 1, .. })
    ));
    // Missing.
    fs::remove_file(&path).unwrap();
    match Index::load(dir.path()) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("missing file: {other:?}"),
    }
    // With no manifest, nothing refers to the graph files: they are leftovers.
    assert_eq!(glimpse_index::persist::leftovers(dir.path()).len(), 2);
    // The intact files still load, and nothing else was left behind.
    fs::write(&path, &good).unwrap();
    assert_eq!(Index::load(dir.path()).unwrap().len(), 599);
    assert_eq!(index_files(dir.path()), files);
}

/// What a kill in the middle of a save leaves (a new generation's graph files and a temp
/// manifest) does not disturb loading, is listed as leftovers, and goes with the next save
/// (or [`persist::remove_leftovers`](glimpse_index::persist::remove_leftovers)).
#[test]
fn an_interrupted_save_leaves_the_old_index_and_nothing_that_accumulates() {
    let seed = common::seed("interrupted_save");
    let (base, queries) = common::dataset(seed, 400, 5);
    let index = common::build(IndexConfig::new(DIMS), &base);
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    let saved = listing(dir.path());
    // A later state saved elsewhere stands in for the half-written generation.
    index.remove(0);
    let other = tempfile::tempdir().unwrap();
    index.save(other.path()).unwrap();
    for name in listing(other.path()) {
        let to = if name == FILE_NAME {
            format!("{FILE_NAME}.777.tmp")
        } else {
            name.clone()
        };
        fs::copy(other.path().join(&name), dir.path().join(to)).unwrap();
    }
    let leftovers = glimpse_index::persist::leftovers(dir.path());
    assert_eq!(leftovers.len(), 3, "{leftovers:?}");
    let loaded = Index::load(dir.path()).unwrap();
    assert_eq!(loaded.len(), 400, "the old manifest and its own graph");
    assert!(loaded.contains(0));
    assert_eq!(loaded.search(&queries[..DIMS], 5, None).unwrap().len(), 5);
    // Removing them leaves exactly the saved index.
    assert_eq!(
        glimpse_index::persist::remove_leftovers(dir.path()).len(),
        3
    );
    assert_eq!(listing(dir.path()), saved);
    // A save clears them as well.
    fs::copy(
        other.path().join(FILE_NAME),
        dir.path().join(format!("{FILE_NAME}.778.tmp")),
    )
    .unwrap();
    loaded.save(dir.path()).unwrap();
    assert_eq!(listing(dir.path()).len(), 3);
    assert!(glimpse_index::persist::leftovers(dir.path()).is_empty());
}

/// `open` answers before the vectors file's checksum is verified; damage that the background
/// check finds is a typed error from `verify`, searches and saves (never rewritten under a
/// fresh checksum), and `load` still refuses it before returning.
#[test]
fn open_verifies_the_vectors_in_the_background() {
    let seed = common::seed("open_background");
    let (base, queries) = common::dataset(seed, 3_000, 5);
    let config = IndexConfig {
        exact_threshold: 0,
        ..IndexConfig::new(DIMS)
    };
    let index = common::build(config, &base);
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    let opened = Index::open(dir.path()).unwrap();
    opened.verify().unwrap();
    assert!(!opened.is_verifying());
    for q in queries.chunks_exact(DIMS) {
        assert_eq!(
            opened.search(q, 10, None).unwrap(),
            index.search(q, 10, None).unwrap()
        );
    }
    drop(opened); // the files change below: nothing may map them
    let data = index_files(dir.path())[0].clone();
    let mut bytes = fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5A;
    fs::write(&data, &bytes).unwrap();
    assert_typed_error(Index::load(dir.path()), "load checks the vectors first");
    let damaged = Index::open(dir.path()).unwrap();
    assert!(matches!(damaged.verify(), Err(Error::Corrupt { .. })));
    assert!(matches!(
        damaged.search(&queries[..DIMS], 5, None),
        Err(Error::Corrupt { .. })
    ));
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        damaged.save(other.path()),
        Err(Error::Corrupt { .. })
    ));
    drop(damaged);
    // A vectors file of the wrong length is refused at open.
    fs::write(&data, &bytes[..bytes.len() - 4]).unwrap();
    assert_typed_error(Index::open(dir.path()), "truncated vectors");
}
