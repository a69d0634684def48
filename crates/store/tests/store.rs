//! Behaviour of the metadata store: round-trips, lookups, removal, renames, reopen, errors.

mod common;

use common::{embedding, model, raw_db, record, DIMS};
use glimpse_store::schema::{CF_EMBEDDINGS, CF_IMAGES, CF_META, META_SCHEMA};
use glimpse_store::{ContentHash, Error, ModelFingerprint, Store};
use std::path::PathBuf;

fn open_with_model(dir: &std::path::Path) -> Store {
    let store = Store::open(dir).unwrap();
    store.set_model(&model()).unwrap();
    store
}

#[test]
fn insert_then_look_up_by_id_path_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let b = store.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
    assert_ne!(a, b);
    assert_eq!(store.get(a).unwrap(), Some(record("/p/a.png", 1)));
    assert_eq!(store.id_for_path("/p/b.png").unwrap(), Some(b));
    assert_eq!(store.id_for_path("/p/none.png").unwrap(), None);
    assert_eq!(store.ids_for_hash(&ContentHash([2; 32])).unwrap(), vec![b]);
    assert_eq!(
        store.ids_for_hash(&ContentHash([3; 32])).unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(store.embedding(a).unwrap(), Some(embedding(1)));
    assert_eq!(store.len(), 2);
    let all: Vec<_> = store.embeddings().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, vec![(a, embedding(1)), (b, embedding(2))]);
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn exact_duplicates_share_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 7), &embedding(7)).unwrap();
    let b = store
        .insert(&record("/q/copy.png", 7), &embedding(7))
        .unwrap();
    let mut ids = store.ids_for_hash(&ContentHash([7; 32])).unwrap();
    ids.sort();
    assert_eq!(ids, vec![a, b]);
    store.remove(a).unwrap();
    assert_eq!(store.ids_for_hash(&ContentHash([7; 32])).unwrap(), vec![b]);
}

#[cfg(unix)]
#[test]
fn non_utf8_path_round_trips() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let path = PathBuf::from(OsStr::from_bytes(b"/photos/caf\xe9-\xff.jpg"));
    assert!(path.to_str().is_none(), "the test path must not be UTF-8");
    let id = store
        .insert(&record(path.clone(), 3), &embedding(3))
        .unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.id_for_path(&path).unwrap(), Some(id));
    assert_eq!(store.get(id).unwrap().unwrap().path, path);
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn rename_moves_the_path_entry_and_refuses_a_taken_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let b = store.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
    store.rename(a, "/p/sub/a2.png").unwrap();
    assert_eq!(store.id_for_path("/p/a.png").unwrap(), None);
    assert_eq!(store.id_for_path("/p/sub/a2.png").unwrap(), Some(a));
    assert_eq!(
        store.get(a).unwrap().unwrap().path,
        PathBuf::from("/p/sub/a2.png")
    );
    assert_eq!(
        store.embedding(a).unwrap(),
        Some(embedding(1)),
        "rename keeps the embedding"
    );
    match store.rename(a, "/p/b.png") {
        Err(Error::PathTaken { id, .. }) => assert_eq!(id, b),
        other => panic!("expected PathTaken, got {other:?}"),
    }
    assert!(matches!(
        store.rename(999, "/x.png"),
        Err(Error::NotFound(999))
    ));
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn insert_on_a_taken_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let err = store
        .insert(&record("/p/a.png", 2), &embedding(2))
        .unwrap_err();
    assert!(
        matches!(err, Error::PathTaken { id, .. } if id == a),
        "{err}"
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn remove_deletes_record_path_hash_and_embedding_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let b = store.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
    assert_eq!(store.remove(a).unwrap(), Some(record("/p/a.png", 1)));
    assert_eq!(
        store.remove(a).unwrap(),
        None,
        "second removal finds nothing"
    );
    assert_eq!(store.get(a).unwrap(), None);
    assert_eq!(store.id_for_path("/p/a.png").unwrap(), None);
    assert!(store
        .ids_for_hash(&ContentHash([1; 32]))
        .unwrap()
        .is_empty());
    assert_eq!(store.embedding(a).unwrap(), None);
    assert_eq!(store.len(), 1);
    let ids: Vec<u64> = store.embeddings().map(|r| r.unwrap().0).collect();
    assert_eq!(ids, vec![b]);
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn update_rewrites_the_hash_index_and_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let mut changed = record("/p/a.png", 9);
    changed.size = 5;
    let mut batch = store.batch();
    batch.update(a, &changed, Some(&embedding(9))).unwrap();
    batch.commit().unwrap();
    assert!(store
        .ids_for_hash(&ContentHash([1; 32]))
        .unwrap()
        .is_empty());
    assert_eq!(store.ids_for_hash(&ContentHash([9; 32])).unwrap(), vec![a]);
    assert_eq!(store.embedding(a).unwrap(), Some(embedding(9)));
    assert_eq!(store.get(a).unwrap().unwrap().size, 5);
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn reopen_after_drop_returns_everything_and_never_reuses_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let store = open_with_model(dir.path());
        let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
        let b = store.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
        store.remove(b).unwrap();
        (a, b)
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.model(), Some(model()));
    assert_eq!(store.len(), 1);
    assert_eq!(store.get(a).unwrap(), Some(record("/p/a.png", 1)));
    assert_eq!(store.embedding(a).unwrap(), Some(embedding(1)));
    let c = store.insert(&record("/p/c.png", 3), &embedding(3)).unwrap();
    assert!(c > b, "id {c} must not reuse removed id {b}");
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn a_dropped_batch_writes_nothing_and_a_committed_one_writes_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    {
        let mut batch = store.batch();
        batch.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
        assert_eq!(batch.len(), 1);
    }
    assert_eq!(store.len(), 0);
    assert_eq!(store.id_for_path("/p/a.png").unwrap(), None);

    let mut batch = store.batch();
    let a = batch.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let b = batch.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
    // The batch sees its own writes: the path is taken, a rename inside it works.
    assert!(matches!(
        batch.insert(&record("/p/a.png", 3), &embedding(3)),
        Err(Error::PathTaken { .. })
    ));
    batch.rename(b, std::path::Path::new("/p/b2.png")).unwrap();
    batch.remove(a).unwrap();
    batch.commit().unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(store.id_for_path("/p/b2.png").unwrap(), Some(b));
    assert_eq!(store.id_for_path("/p/b.png").unwrap(), None);
    assert_eq!(store.get(a).unwrap(), None);
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn embeddings_are_checked_against_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = store
        .insert(&record("/p/a.png", 1), &embedding(1))
        .unwrap_err();
    assert!(matches!(err, Error::NoModel), "{err}");
    store.set_model(&model()).unwrap();
    store.set_model(&model()).unwrap();
    let err = store
        .insert(&record("/p/a.png", 1), &[1.0; DIMS + 1])
        .unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { expected: DIMS, got } if got == DIMS + 1));
    let other = ModelFingerprint {
        name: "other".into(),
        dims: 4,
        config_digest: "1".into(),
    };
    match store.set_model(&other) {
        Err(Error::ModelMismatch { stored, given }) => {
            assert_eq!(stored, model());
            assert_eq!(given, other);
        }
        r => panic!("expected ModelMismatch, got {r:?}"),
    }
    assert_eq!(store.len(), 0);
}

#[test]
fn replace_model_keeps_old_embeddings_stale_until_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let b = store.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
    let other = ModelFingerprint {
        name: "other".into(),
        dims: 2,
        config_digest: "1".into(),
    };
    store.replace_model(&other).unwrap();
    assert_eq!(store.embedding(a).unwrap(), None, "stale: not the model's");
    assert_eq!(store.ids_without_embedding().unwrap(), vec![a, b]);
    assert!(store.embeddings().next().is_none());
    // Switching back before anything was replaced: the old embeddings are current again.
    store.replace_model(&model()).unwrap();
    assert_eq!(store.embedding(a).unwrap(), Some(embedding(1)));
    assert!(store.ids_without_embedding().unwrap().is_empty());
    store.replace_model(&other).unwrap();
    let mut batch = store.batch();
    batch.set_embedding(b, &[0.8, 0.6]).unwrap();
    batch.commit().unwrap();
    assert_eq!(store.ids_without_embedding().unwrap(), vec![a]);
    let mut batch = store.batch();
    batch.set_embedding(a, &[0.6, 0.8]).unwrap();
    batch.commit().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.model(), Some(other));
    assert_eq!(store.embedding(a).unwrap(), Some(vec![0.6, 0.8]));
    assert_eq!(store.embedding(b).unwrap(), Some(vec![0.8, 0.6]));
    assert!(store.ids_without_embedding().unwrap().is_empty());
}

#[test]
fn invalid_embeddings_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let mut nan = embedding(1);
    nan[2] = f32::NAN;
    let mut inf = embedding(1);
    inf[0] = f32::INFINITY;
    for bad in [nan, inf, vec![0.0; DIMS]] {
        let err = store.insert(&record("/p/a.png", 1), &bad).unwrap_err();
        assert!(matches!(err, Error::InvalidEmbedding { .. }), "{err}");
    }
    assert!(store.is_empty());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let mut batch = store.batch();
    assert!(batch.set_embedding(a, &[f32::NAN; DIMS]).is_err());
    batch.commit().unwrap();
    assert_eq!(store.embedding(a).unwrap(), Some(embedding(1)));
    assert!(glimpse_store::validate_embedding(&embedding(1), DIMS).is_ok());
}

#[test]
fn a_fingerprint_is_its_digest_and_dimension_not_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_model(dir.path());
    let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
    let renamed = ModelFingerprint {
        name: "a copy in another folder".into(),
        ..model()
    };
    assert_eq!(renamed, model());
    store.set_model(&renamed).unwrap();
    // A relabelled fingerprint (a new digest scheme for the same files) keeps the embeddings.
    let relabelled = ModelFingerprint {
        config_digest: "content-v2:abcdef".into(),
        ..model()
    };
    store.relabel_model(&relabelled).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.model(), Some(relabelled));
    assert_eq!(store.embedding(a).unwrap(), Some(embedding(1)));
    assert!(store.ids_without_embedding().unwrap().is_empty());
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn repair_fixes_what_integrity_finds_without_deleting_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let store = open_with_model(dir.path());
        let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
        let b = store.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
        (a, b)
    };
    let tag = Store::open(dir.path()).unwrap().model_tag().unwrap();
    {
        let db = raw_db(dir.path());
        let emb = db.cf_handle(CF_EMBEDDINGS).unwrap();
        // A NaN embedding (as an older version could write), an orphan embedding, a dangling
        // path entry, a lost hash entry and a wrong count.
        let mut nan = vec![1u8];
        nan.extend_from_slice(&tag.to_le_bytes());
        for i in 0..DIMS {
            let v = if i == 1 { f32::NAN } else { 0.5 };
            nan.extend_from_slice(&v.to_le_bytes());
        }
        db.put_cf(emb, a.to_be_bytes(), &nan).unwrap();
        db.put_cf(emb, 99u64.to_be_bytes(), [1u8, 2, 3]).unwrap();
        db.put_cf(
            db.cf_handle(glimpse_store::schema::CF_PATHS).unwrap(),
            b"/p/ghost.png",
            77u64.to_be_bytes(),
        )
        .unwrap();
        let mut hash_key = [2u8; 40];
        hash_key[32..].copy_from_slice(&b.to_be_bytes());
        db.delete_cf(
            db.cf_handle(glimpse_store::schema::CF_HASHES).unwrap(),
            hash_key,
        )
        .unwrap();
        db.put_cf(
            db.cf_handle(CF_META).unwrap(),
            glimpse_store::schema::META_COUNT,
            5u64.to_be_bytes(),
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let before = store.check_integrity().unwrap();
    assert!(before.problems.len() >= 5, "{before:?}");
    assert!(matches!(
        store.embedding(a),
        Err(Error::InvalidEmbedding { id: Some(id), .. }) if id == a
    ));
    let report = store.repair().unwrap();
    assert_eq!(report.reembed, vec![a], "{report:?}");
    assert!(report.unfixed.is_empty(), "{report:?}");
    assert_eq!(store.len(), 2);
    assert_eq!(store.get(a).unwrap(), Some(record("/p/a.png", 1)), "kept");
    assert_eq!(store.ids_without_embedding().unwrap(), vec![a]);
    assert_eq!(store.ids_for_hash(&ContentHash([2; 32])).unwrap(), vec![b]);
    let mut batch = store.batch();
    batch.set_embedding(a, &embedding(1)).unwrap();
    batch.commit().unwrap();
    assert!(store.check_integrity().unwrap().is_ok());
    assert!(
        store.repair().unwrap().fixed.is_empty(),
        "nothing left to fix"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = raw_db(dir.path());
        db.put_cf(
            db.cf_handle(CF_META).unwrap(),
            META_SCHEMA,
            99u32.to_le_bytes(),
        )
        .unwrap();
    }
    match Store::open(dir.path()) {
        Err(Error::SchemaTooNew {
            found: 99,
            supported,
        }) => assert!(supported < 99),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_corrupt_record_is_data_corruption_and_others_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let store = open_with_model(dir.path());
        let a = store.insert(&record("/p/a.png", 1), &embedding(1)).unwrap();
        let b = store.insert(&record("/p/b.png", 2), &embedding(2)).unwrap();
        (a, b)
    };
    {
        let db = raw_db(dir.path());
        db.put_cf(
            db.cf_handle(CF_IMAGES).unwrap(),
            a.to_be_bytes(),
            b"\x01garbage\xff\xff",
        )
        .unwrap();
        db.put_cf(
            db.cf_handle(CF_EMBEDDINGS).unwrap(),
            b.to_be_bytes(),
            [1u8, 2, 3],
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    match store.get(a) {
        Err(Error::DataCorruption { key, .. }) => assert_eq!(key, format!("images/{a}")),
        other => panic!("expected DataCorruption, got {other:?}"),
    }
    assert_eq!(store.get(b).unwrap(), Some(record("/p/b.png", 2)));
    assert_eq!(store.embedding(a).unwrap(), Some(embedding(1)));
    assert!(matches!(
        store.embedding(b),
        Err(Error::InvalidEmbedding { id: Some(id), .. }) if id == b
    ));
    // Iteration reports the bad item and goes on.
    let items: Vec<_> = store.images().collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_err() && items[1].is_ok());
    let report = store.check_integrity().unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("images/{a}"))),
        "{report:?}"
    );
}
