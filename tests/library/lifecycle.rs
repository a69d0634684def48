//! Index, search, re-index, move, delete, add, reopen; recovery of the index; model checks.

use super::common::*;
use glimpse::{
    CancelToken, Error, IndexOptions, IndexRecovery, Library, ProblemKind, SearchOptions,
};
use std::path::{Path, PathBuf};

#[test]
fn library_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Library>();
}

#[test]
fn index_search_reindex_move_delete_add_reopen() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    let files = make_folder(&root);
    let lib = open(lib_dir.path());

    let report = index(&lib, &root);
    assert_eq!(report.added, files.len(), "failures: {:?}", report.failed);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(lib.len(), files.len());

    let hits = lib.search_text(QUERIES[0], 5).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "sorted best first"
    );
    assert!(hits
        .iter()
        .all(|h| files.contains(&h.path) && (-1.0..=1.0).contains(&h.score)));

    // Nothing changed: nothing read, nothing encoded.
    let again = index(&lib, &root);
    assert_eq!((again.encoded(), again.unchanged), (0, files.len()));

    // A rename is a move: followed by content hash, not re-encoded.
    let moved_to = root.join("trips/renamed.jpg");
    std::fs::rename(root.join("a.jpg"), &moved_to).unwrap();
    let id_before = lib.id(root.join("a.jpg")).unwrap().unwrap();
    let r = index(&lib, &root);
    assert_eq!((r.moved, r.encoded(), r.removed), (1, 0, 0), "{r:?}");
    assert_eq!(lib.id(&moved_to).unwrap(), Some(id_before));
    assert_eq!(lib.id(root.join("a.jpg")).unwrap(), None);

    // A deleted photo leaves the results.
    let deleted = root.join("b.png");
    std::fs::remove_file(&deleted).unwrap();
    let r = index(&lib, &root);
    assert_eq!(r.removed, 1);
    for q in QUERIES {
        assert!(lib
            .search_text(q, 20)
            .unwrap()
            .iter()
            .all(|h| h.path != deleted));
    }

    // A new photo is added, a changed one re-encoded.
    write_photo(&root.join("family/m.png"), 40, 90, 60);
    write_photo(&root.join("c.webp"), 41, 96, 96);
    let r = index(&lib, &root);
    assert_eq!((r.added, r.updated), (1, 1), "{r:?}");
    assert_eq!(lib.len(), files.len());

    let before = results(&lib, 8);
    lib.commit().unwrap();
    drop(lib);
    let lib = open(lib_dir.path());
    assert_eq!(*lib.index_recovery(), IndexRecovery::Loaded);
    assert_eq!(results(&lib, 8), before, "results identical after reopen");
}

#[test]
fn search_by_example_similar_and_filters() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    make_folder(&root);
    let lib = open(lib_dir.path());
    index(&lib, &root);

    let example = root.join("trips/2024/i.jpg");
    let hits = lib.search_image(&example, 3).unwrap();
    assert_eq!(hits[0].path, example, "a photo is its own best match");
    assert!(hits[0].score > 0.999, "{}", hits[0].score);

    let id = lib.id(&example).unwrap().unwrap();
    let similar = lib.similar(id, 4, &SearchOptions::default()).unwrap();
    assert_eq!(similar.len(), 4);
    assert!(
        similar.iter().all(|h| h.id != id),
        "similar excludes the photo itself"
    );

    // The folder filter applies inside the search: k results whenever k photos qualify.
    let trips = SearchOptions::default().folder(root.join("trips"));
    let hits = lib.search_text_with(QUERIES[1], 4, &trips).unwrap();
    assert_eq!(hits.len(), 4);
    assert!(hits.iter().all(|h| h.path.starts_with(root.join("trips"))));
    let high = SearchOptions::default().min_score(2.0);
    assert!(lib
        .search_text_with(QUERIES[1], 4, &high)
        .unwrap()
        .is_empty());
    // No photo has EXIF capture time: a time range keeps none.
    let dated = SearchOptions::default().captured_after(0);
    assert!(lib
        .search_text_with(QUERIES[1], 4, &dated)
        .unwrap()
        .is_empty());
}

#[test]
fn classify_and_duplicates() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    make_folder(&root);
    std::fs::copy(root.join("b.png"), root.join("family/copy-of-b.png")).unwrap();
    let lib = open(lib_dir.path());
    let r = index(&lib, &root);
    assert_eq!(r.added, 13);

    let probs = lib
        .classify(root.join("a.jpg"), &["square", "circle", "dog"])
        .unwrap();
    assert_eq!(probs.len(), 3);
    assert!((probs.iter().map(|p| p.1).sum::<f32>() - 1.0).abs() < 1e-4);

    let groups = lib.duplicates(0.999).unwrap();
    let paths: Vec<Vec<PathBuf>> = groups
        .iter()
        .map(|g| g.iter().map(|h| h.path.clone()).collect())
        .collect();
    assert!(
        paths
            .iter()
            .any(|g| g.contains(&root.join("b.png"))
                && g.contains(&root.join("family/copy-of-b.png"))),
        "the exact copy is grouped: {paths:?}"
    );
    let tags = lib.tag_all(&["square", "circle"], 0.0).unwrap();
    assert_eq!(tags.len(), 13);
    // With two labels every photo's best probability is >= 0.5: a threshold between the
    // smallest and the largest best probability keeps exactly the photos above it, each with
    // only its labels above it.
    let mut best: Vec<f32> = tags.iter().map(|(_, t)| t[0].1).collect();
    best.sort_by(f32::total_cmp);
    let threshold = (best[0] + best[best.len() - 1]) / 2.0;
    assert!(
        best[0] < threshold && threshold < best[best.len() - 1],
        "{best:?}"
    );
    let kept = lib.tag_all(&["square", "circle"], threshold).unwrap();
    let expected = best.iter().filter(|&&p| p >= threshold).count();
    assert!(expected > 0 && expected < tags.len());
    assert_eq!(kept.len(), expected, "threshold {threshold}: {kept:?}");
    for (id, t) in &kept {
        let all = &tags
            .iter()
            .find(|(i, _)| i == id)
            .expect("a tagged photo")
            .1;
        let above: Vec<&(String, f32)> = all.iter().filter(|(_, p)| *p >= threshold).collect();
        assert_eq!(t.iter().collect::<Vec<_>>(), above, "photo {id}");
        assert!(t.iter().all(|(_, p)| *p >= threshold));
    }
}

#[test]
fn a_deleted_or_corrupt_index_is_rebuilt_with_identical_results() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    make_folder(&root);
    let before = {
        let lib = open(lib_dir.path());
        index(&lib, &root);
        results(&lib, 6)
    };
    let index_dir = lib_dir.path().join(glimpse::INDEX_DIR);
    let files: Vec<PathBuf> = std::fs::read_dir(&index_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "json"))
        .collect();
    assert!(!files.is_empty());

    // Corrupt: flip bytes in the middle of every index file.
    for f in &files {
        let mut bytes = std::fs::read(f).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xFF;
        bytes[mid / 2] ^= 0x55;
        std::fs::write(f, bytes).unwrap();
    }
    let lib = open(lib_dir.path());
    assert!(
        matches!(lib.index_recovery(), IndexRecovery::Rebuilt { .. }),
        "{:?}",
        lib.index_recovery()
    );
    assert_eq!(results(&lib, 6), before);
    drop(lib);

    // Deleted.
    std::fs::remove_dir_all(&index_dir).unwrap();
    let lib = open(lib_dir.path());
    assert!(matches!(
        lib.index_recovery(),
        IndexRecovery::Rebuilt { .. }
    ));
    assert_eq!(results(&lib, 6), before);
}

/// Indexes a folder, flips one exponent bit in the saved index's vectors file (same length:
/// only its checksum can tell), and returns the folder and the results before the damage.
fn library_with_damaged_vectors(photos_dir: &Path, lib_dir: &Path) -> Vec<Vec<(PathBuf, i64)>> {
    let root = photos_dir.canonicalize().unwrap();
    make_folder(&root);
    let before = {
        let lib = open(lib_dir);
        index(&lib, &root);
        results(&lib, 6)
    };
    let index_dir = lib_dir.join(glimpse::INDEX_DIR);
    let data: Vec<PathBuf> = std::fs::read_dir(&index_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    assert_eq!(data.len(), 1, "one vectors file: {data:?}");
    let mut bytes = std::fs::read(&data[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid + 3] ^= 0x40; // the exponent byte of one float: its vector's scores change
    std::fs::write(&data[0], bytes).unwrap();
    before
}

/// A small index (below `DEFAULT_BACKGROUND_INDEX_CHECK_FROM`) is verified before open
/// returns: damage only the vectors' checksum can see is rebuilt from the store at once, so no
/// search ever reads the damaged vector.
#[test]
fn a_damaged_vectors_file_of_a_small_index_is_rebuilt_at_open() {
    let (photos_dir, lib_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let before = library_with_damaged_vectors(photos_dir.path(), lib_dir.path());
    let lib = open(lib_dir.path());
    match lib.index_recovery() {
        IndexRecovery::Rebuilt { reason } => assert!(reason.contains("checksum"), "{reason}"),
        other => panic!("the damage was not found at open: {other:?}"),
    }
    assert_eq!(results(&lib, 6), before);
    assert!(lib.check().unwrap().problems.is_empty());
}

/// Above the size limit (here 0 bytes) the library opens its index with `Index::open`, which
/// checks the vectors file's checksum in the background: damage found there is still reported
/// by `check` and rebuilt from the store by the next search, which answers as before the
/// damage.
#[test]
fn a_damaged_vectors_file_found_after_open_is_rebuilt_from_the_store() {
    let (photos_dir, lib_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let before = library_with_damaged_vectors(photos_dir.path(), lib_dir.path());
    let open_deferred = || {
        Library::builder()
            .model(model_dir())
            .background_index_check_from(0)
            .open(lib_dir.path())
            .expect("library opens")
    };
    let lib = open_deferred();
    // The open did not wait for the vectors' checksum (same length: nothing else differs).
    assert_eq!(lib.index_recovery(), &IndexRecovery::Loaded);
    let report = lib.check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Index && p.detail.contains("checksum")),
        "check waits for the background check and reports it: {:?}",
        report.problems
    );
    assert_eq!(
        results(&lib, 6),
        before,
        "the search rebuilt from the store"
    );
    lib.commit().unwrap();
    drop(lib);
    // The rebuilt index was saved: it opens without a rebuild and answers the same.
    let lib = open_deferred();
    assert_eq!(lib.index_recovery(), &IndexRecovery::Loaded);
    assert!(lib.check().unwrap().problems.is_empty());
    assert_eq!(results(&lib, 6), before);
}

#[test]
fn another_model_is_a_mismatch_unless_reembedding_is_asked_for() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    make_folder(&root);
    index(&open(lib_dir.path()), &root);

    match Library::builder()
        .model(other_model_dir())
        .open(lib_dir.path())
    {
        Err(Error::ModelMismatch { stored, given }) => assert_ne!(stored, given),
        other => panic!("expected ModelMismatch, got {other:?}"),
    }
    let lib = Library::builder()
        .model(other_model_dir())
        .reembed_on_model_change(true)
        .open(lib_dir.path())
        .unwrap();
    assert_eq!(lib.len(), 12);
    assert_eq!(lib.search_text(QUERIES[0], 12).unwrap().len(), 12);
    drop(lib);
    // And now the first model is the stranger.
    assert!(matches!(
        Library::builder().model(model_dir()).open(lib_dir.path()),
        Err(Error::ModelMismatch { .. })
    ));
}

#[test]
fn a_cancelled_run_stops_and_the_next_one_finishes() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    let files = make_folder(&root);
    let lib = open(lib_dir.path());
    let cancel = CancelToken::new();
    cancel.cancel();
    let opts = IndexOptions::default().batch_size(2).cancel(cancel);
    let r = lib.index_folder(&root, &opts).unwrap();
    assert!(r.cancelled);
    assert!(r.added < files.len());
    let r = index(&lib, &root);
    assert_eq!(lib.len(), files.len(), "{r:?}");
}

#[test]
fn searches_run_while_another_thread_indexes() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    let files = make_folder(&root);
    let lib = open(lib_dir.path());
    std::thread::scope(|s| {
        let indexer = s.spawn(|| {
            lib.index_folder(&root, &IndexOptions::default().batch_size(1))
                .unwrap()
        });
        let mut searches = 0;
        while !indexer.is_finished() {
            // Photos are only added during this run, so the visible count only grows: a search
            // sees at least what was committed before it and at most what was after it.
            let before = lib.len();
            let hits = lib.search_text(QUERIES[2], 3).unwrap();
            let after = lib.len();
            assert!(
                (before.min(3)..=after.min(3)).contains(&hits.len()),
                "{} hits with {before}..={after} photos",
                hits.len()
            );
            assert!(hits.iter().all(|h| files.contains(&h.path)), "{hits:?}");
            assert!(
                hits.windows(2).all(|w| w[0].score >= w[1].score),
                "{hits:?}"
            );
            searches += 1;
        }
        println!("{searches} searches while indexing");
        assert_eq!(indexer.join().unwrap().added, files.len());
    });
    assert_eq!(lib.search_text(QUERIES[2], 3).unwrap().len(), 3);
}

/// One writer at a time: while a library is open, a second open of the same directory (here
/// in the same process; RocksDB's lock file works the same across processes) is a typed
/// error and leaves the first one working; once the first is dropped, it opens.
#[test]
fn a_second_open_of_an_open_library_is_refused() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    let files = make_folder(&root);
    let first = open(lib_dir.path());
    index(&first, &root);
    let second = Library::builder().model(model_dir()).open(lib_dir.path());
    let err = second.expect_err("a second open of an open library");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert_eq!(first.len(), files.len());
    assert_eq!(first.search_text(QUERIES[0], 3).unwrap().len(), 3);
    drop(first);
    assert_eq!(open(lib_dir.path()).len(), files.len());
}
