//! No write bricks a library; bad rows are quarantined on open and repaired; model identity is
//! content; the index files stay tidy (no leftovers, no needless rewrite, catch-up after a kill,
//! a full disk is a typed error).

use super::common::*;
use glimpse::{Error, IndexRecovery, Library, Precision, ProblemKind};
use glimpse_store::schema::{CF_EMBEDDINGS, CF_IMAGES, CF_META, META_MODEL_TAG};
use glimpse_store::{ModelFingerprint, Store};
use std::path::{Path, PathBuf};

/// A copy of the tiny model in `dir`, with `edit` applied to its `preprocessor_config.json`.
fn model_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let path = dir.join("preprocessor_config.json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut config = original.clone();
    edit(&mut config);
    if config != original {
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }
    dir.to_path_buf()
}

fn open_with(lib: &Path, model: &Path) -> glimpse::Result<Library> {
    Library::builder().model(model).open(lib)
}

/// An embedding value as the store encodes it: version 1, the model tag, f32 LE values.
fn raw_embedding(tag: u64, values: &[f32]) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(&tag.to_le_bytes());
    for x in values {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

#[test]
fn a_model_that_yields_nan_embeddings_commits_nothing_and_the_library_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    let files = make_folder(&root);
    // An absurd image_std makes every pixel overflow: the towers yield NaN.
    let bad = model_copy(&tmp.path().join("nan-model"), |c| {
        c["image_std"] = serde_json::json!([1e-40, 1e-40, 1e-40]);
    });
    let lib_dir = tmp.path().join("lib");
    let lib = open_with(&lib_dir, &bad).unwrap();
    let report = lib.index_folder(&root, &Default::default()).unwrap();
    assert_eq!(report.added, 0, "{report:?}");
    assert_eq!(report.failed.len(), files.len(), "{report:?}");
    assert!(report
        .failed
        .iter()
        .all(|f| matches!(f.error, Error::InvalidEmbedding { .. })));
    assert!(lib.is_empty());
    drop(lib);
    // Nothing reached the store: it reopens, and the fixed config indexes everything.
    let lib = open_with(&lib_dir, &bad).unwrap();
    assert!(lib.open_report().quarantined.is_empty());
    assert!(lib.check().unwrap().is_ok());
    drop(lib);
    let lib = Library::builder()
        .model(model_dir())
        .reembed_on_model_change(true)
        .open(&lib_dir)
        .unwrap();
    assert_eq!(index(&lib, &root).added, files.len());
}

#[test]
fn a_bad_row_in_the_store_is_quarantined_on_open_and_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let lib_dir = tmp.path().join("lib");
    let before = {
        let lib = open(&lib_dir);
        index(&lib, &root);
        results(&lib, 12)
    };
    let victim_path = root.join("trips/h.png");
    let victim = {
        let lib = open(&lib_dir);
        lib.id(&victim_path).unwrap().unwrap()
    };
    // Damage as an older Glimpse could leave it: a NaN embedding, an embedding of no image,
    // an undecodable embedding; and the index gone, so opening must rebuild from the store.
    {
        let store = Store::open(lib_dir.join(glimpse::STORE_DIR)).unwrap();
        let tag = store.model_tag().unwrap();
        let dims = store.model().unwrap().dims as usize;
        let mut nan = vec![0.1f32; dims];
        nan[3] = f32::NAN;
        store
            .put_raw(
                CF_EMBEDDINGS,
                &victim.to_be_bytes(),
                &raw_embedding(tag, &nan),
            )
            .unwrap();
        store
            .put_raw(CF_EMBEDDINGS, &9999u64.to_be_bytes(), &[1, 2, 3])
            .unwrap();
    }
    std::fs::remove_dir_all(lib_dir.join(glimpse::INDEX_DIR)).unwrap();

    let lib = open(&lib_dir);
    assert!(matches!(
        lib.index_recovery(),
        IndexRecovery::Rebuilt { .. }
    ));
    let q = &lib.open_report().quarantined;
    assert!(
        q.iter()
            .any(|p| p.kind == ProblemKind::InvalidEmbedding && p.id == Some(victim)),
        "{q:?}"
    );
    assert_eq!(lib.len(), 12, "the record stays");
    for q in QUERIES {
        let hits = lib.search_text(q, 12).unwrap();
        assert_eq!(hits.len(), 11);
        assert!(hits.iter().all(|h| h.id != victim));
    }
    let check = lib.check().unwrap();
    assert!(
        check
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::InvalidEmbedding && p.id == Some(victim)),
        "{check:?}"
    );
    assert!(
        check.problems.iter().any(|p| p.kind == ProblemKind::Store),
        "the orphan row is a store problem: {check:?}"
    );

    let repaired = lib.repair().unwrap();
    assert!(repaired.remaining.is_empty(), "{repaired:?}");
    assert_eq!(repaired.reembedded, 1, "{repaired:?}");
    assert!(lib.check().unwrap().is_ok());
    assert_eq!(
        results(&lib, 12),
        before,
        "the photo is back, re-embedded alike"
    );
    drop(lib);
    let lib = open(&lib_dir);
    assert_eq!(*lib.index_recovery(), IndexRecovery::Loaded);
    assert!(lib.open_report().quarantined.is_empty());
    assert_eq!(results(&lib, 12), before);
    // Repairing a sound library changes nothing.
    let again = lib.repair().unwrap();
    assert!(
        again.fixed.is_empty() && again.remaining.is_empty(),
        "{again:?}"
    );
}

#[test]
fn an_undecodable_record_is_quarantined_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let lib_dir = tmp.path().join("lib");
    let victim = {
        let lib = open(&lib_dir);
        index(&lib, &root);
        lib.id(root.join("a.jpg")).unwrap().unwrap()
    };
    {
        let store = Store::open(lib_dir.join(glimpse::STORE_DIR)).unwrap();
        store
            .put_raw(CF_IMAGES, &victim.to_be_bytes(), b"\x01garbage")
            .unwrap();
    }
    std::fs::remove_dir_all(lib_dir.join(glimpse::INDEX_DIR)).unwrap();
    let lib = open(&lib_dir);
    assert!(lib
        .open_report()
        .quarantined
        .iter()
        .any(|p| p.kind == ProblemKind::UnreadableRecord));
    assert_eq!(lib.search_text(QUERIES[0], 20).unwrap().len(), 11);
    let repaired = lib.repair().unwrap();
    assert!(
        !repaired.remaining.is_empty(),
        "an undecodable record is never deleted: {repaired:?}"
    );
    assert_eq!(lib.len(), 12);
}

#[test]
fn a_copied_model_folder_is_the_same_model_and_a_changed_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let lib_dir = tmp.path().join("lib");
    let before = {
        let lib = open(&lib_dir);
        index(&lib, &root);
        lib.commit().unwrap();
        results(&lib, 6)
    };
    // Same files, another folder name (a copy, or another snapshot directory).
    let copy = model_copy(&tmp.path().join("snapshots/0123abcd"), |_| {});
    let lib = open_with(&lib_dir, &copy).unwrap();
    assert_eq!(*lib.index_recovery(), IndexRecovery::Loaded);
    assert_eq!(results(&lib, 6), before);
    assert_eq!(index(&lib, &root).encoded(), 0);
    drop(lib);

    // Another preprocessor config, or another precision: another model.
    let other = model_copy(&tmp.path().join("tiny-clip"), |c| {
        c["image_mean"] = serde_json::json!([0.5, 0.5, 0.5]);
    });
    assert!(matches!(
        open_with(&lib_dir, &other),
        Err(Error::ModelMismatch { .. })
    ));
    assert!(matches!(
        Library::builder()
            .model(model_dir())
            .precision(Precision::Bf16)
            .open(&lib_dir),
        Err(Error::ModelMismatch { .. })
    ));
    // Still the same library.
    let lib = open(&lib_dir);
    assert_eq!(results(&lib, 6), before);
}

#[test]
fn changed_weights_of_the_same_size_are_another_model_even_when_remembered() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let model = model_copy(&tmp.path().join("model"), |_| {});
    // Older than the cache's two-second "racily clean" window, so its digest is remembered.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let lib_dir = tmp.path().join("lib");
    index(&open_with(&lib_dir, &model).unwrap(), &root);
    assert!(lib_dir.join("model-digest.json").exists());
    assert!(
        open_with(&lib_dir, &model).is_ok(),
        "remembered, same model"
    );
    // One byte in the middle of the weights (outside the first and last MiB), in place.
    let weights = model.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] = bytes[mid].wrapping_add(1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .unwrap();
    assert!(matches!(
        open_with(&lib_dir, &model),
        Err(Error::ModelMismatch { .. })
    ));
}

/// The fingerprint digest of the scheme before content digests: config.json, the weights'
/// length, their first and last MiB.
fn legacy_digest(dir: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&std::fs::read(dir.join("config.json")).unwrap());
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let len = weights.len() as u64;
    h.update(&len.to_le_bytes());
    const EDGE: usize = 1 << 20;
    let mut buf = weights[..EDGE.min(weights.len())].to_vec();
    if weights.len() > EDGE {
        buf.extend_from_slice(&weights[(weights.len() - EDGE).max(EDGE)..]);
    }
    h.update(&buf);
    h.finalize().to_hex().to_string()
}

#[test]
fn a_library_with_a_legacy_fingerprint_opens_without_reembedding() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let current = tmp.path().join("current");
    let before = {
        let lib = open(&current);
        index(&lib, &root);
        lib.commit().unwrap();
        results(&lib, 6)
    };
    // The same photos in a store as an older Glimpse wrote it: a legacy fingerprint and no
    // stored tag. Embeddings are stored doubled (the index normalises them, so searches are
    // alike): re-embedding would replace them with unit vectors.
    let legacy = tmp.path().join("legacy");
    let fp = ModelFingerprint {
        name: "tiny-clip".into(),
        dims: 24,
        config_digest: legacy_digest(&model_dir()),
    };
    let mut doubled = Vec::new();
    {
        let from = Store::open(current.join(glimpse::STORE_DIR)).unwrap();
        assert_eq!(from.model().unwrap().dims, fp.dims);
        let to = Store::open(legacy.join(glimpse::STORE_DIR)).unwrap();
        to.set_model(&fp).unwrap();
        to.delete_raw(CF_META, META_MODEL_TAG).unwrap();
        for item in from.images() {
            let (id, record) = item.unwrap();
            let e: Vec<f32> = from
                .embedding(id)
                .unwrap()
                .unwrap()
                .iter()
                .map(|x| x * 2.0)
                .collect();
            assert_eq!(to.insert(&record, &e).unwrap(), id);
            doubled.push((id, e));
        }
    }
    // Its index and a stamp in the old format (no tag: the model as displayed).
    copy_files(
        &current.join(glimpse::INDEX_DIR),
        &legacy.join(glimpse::INDEX_DIR),
    );
    let stamp = serde_json::json!({"next_id": 13, "count": 12, "model": fp.to_string()});
    std::fs::write(
        legacy.join(glimpse::INDEX_DIR).join("stamp.json"),
        stamp.to_string(),
    )
    .unwrap();

    let lib = open(&legacy);
    assert!(
        !matches!(lib.index_recovery(), IndexRecovery::Rebuilt { .. }),
        "{:?}",
        lib.index_recovery()
    );
    assert!(lib
        .model_fingerprint()
        .config_digest
        .starts_with("content-v2:"));
    for (id, e) in &doubled {
        assert_eq!(
            lib.embedding(*id).unwrap().as_ref(),
            Some(e),
            "not re-embedded"
        );
    }
    assert_eq!(results(&lib, 6), before);
    drop(lib);
    // Migrated once: the next open loads as is.
    let lib = open(&legacy);
    assert_eq!(*lib.index_recovery(), IndexRecovery::Loaded);
}

#[cfg(unix)]
fn inode(path: &Path) -> (u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
}

#[cfg(unix)]
#[test]
fn an_unchanged_run_does_not_rewrite_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let lib_dir = tmp.path().join("lib");
    let file = lib_dir.join(glimpse::INDEX_DIR).join("index.glimpse");
    let lib = open(&lib_dir);
    index(&lib, &root);
    let saved = inode(&file);
    assert_eq!(index(&lib, &root).unchanged, 12);
    lib.commit().unwrap();
    assert_eq!(
        inode(&file),
        saved,
        "nothing changed: the file is not rewritten"
    );
    drop(lib);
    let lib = open(&lib_dir);
    assert_eq!(index(&lib, &root).unchanged, 12);
    assert_eq!(inode(&file), saved);
    // A change does save it.
    std::fs::remove_file(root.join("a.jpg")).unwrap();
    assert_eq!(index(&lib, &root).removed, 1);
    assert_ne!(inode(&file), saved);
}

#[test]
fn a_kill_after_changes_catches_up_instead_of_rebuilding() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let lib_dir = tmp.path().join("lib");
    let index_dir = lib_dir.join(glimpse::INDEX_DIR);
    let backup = tmp.path().join("index-backup");
    let lib = open(&lib_dir);
    index(&lib, &root);
    // The saved index: its manifest, the graph files it names, and the stamp.
    copy_files(&index_dir, &backup);
    // Removals, a changed photo (new id, old one removed) and an addition...
    std::fs::remove_file(root.join("b.png")).unwrap();
    std::fs::remove_file(root.join("trips/2024/j.png")).unwrap();
    write_photo(&root.join("c.webp"), 41, 96, 96);
    write_photo(&root.join("family/new.png"), 42, 80, 80);
    let r = index(&lib, &root);
    assert_eq!((r.added, r.updated, r.removed), (1, 1, 2), "{r:?}");
    let after = results(&lib, 12);
    drop(lib);
    // ... committed to the store, then a kill before the index was saved: the index on disk
    // is the one from before.
    copy_files(&backup, &index_dir);
    let lib = open(&lib_dir);
    // The newer save's graph files, which no manifest names any more, are removed.
    assert_eq!(lib.open_report().cleaned, 2);
    assert!(
        matches!(
            lib.index_recovery(),
            IndexRecovery::CaughtUp { inserted: 2 }
        ),
        "{:?}",
        lib.index_recovery()
    );
    assert_eq!(results(&lib, 12), after);
    assert!(lib.check().unwrap().is_ok());
    drop(lib);
    assert_eq!(*open(&lib_dir).index_recovery(), IndexRecovery::Loaded);
}

#[test]
fn leftovers_of_an_interrupted_save_are_removed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let lib_dir = tmp.path().join("lib");
    let index_dir = lib_dir.join(glimpse::INDEX_DIR);
    index(&open(&lib_dir), &root);
    // What a kill during `Index::save` and the stamp's write leaves (their names as
    // glimpse-index and the library write them).
    let leftovers = [
        index_dir.join("index.glimpse.4242.tmp"),
        index_dir.join(".glimpse-save-4242-0/graph.hnsw.data"),
        index_dir.join(".glimpse-load-4242-1/graph.hnsw.graph"),
        index_dir.join("stamp.json.tmp"),
        index_dir.join("graph-00000000deadbeef.hnsw.data"),
        index_dir.join("graph-00000000deadbeef.hnsw.graph"),
    ];
    let saved = listing(&index_dir);
    assert_eq!(saved.len(), 4, "manifest, graph files, stamp: {saved:?}");
    for f in &leftovers {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, vec![7u8; 4096]).unwrap();
    }
    let lib = open(&lib_dir);
    assert_eq!(lib.open_report().cleaned, 6);
    assert_eq!(listing(&index_dir), saved);
    assert_eq!(*lib.index_recovery(), IndexRecovery::Loaded);
}

/// A full disk while the index is saved: `/dev/full` stands in for the index's temp file (its
/// name is fixed by the process id), so every write to it fails with ENOSPC.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_a_typed_error_and_the_library_stays_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos").canonicalize_or_create();
    make_folder(&root);
    let lib_dir = tmp.path().join("lib");
    let index_dir = lib_dir.join(glimpse::INDEX_DIR);
    let lib = open(&lib_dir);
    index(&lib, &root);
    write_photo(&root.join("family/new.png"), 42, 80, 80);
    let tmp_file = index_dir.join(format!("index.glimpse.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink("/dev/full", &tmp_file).unwrap();
    match lib.index_folder(&root, &Default::default()) {
        Err(Error::DiskFull { .. }) => {}
        other => panic!("expected DiskFull, got {other:?}"),
    }
    let _ = std::fs::remove_file(&tmp_file);
    let after = results(&lib, 13);
    drop(lib);
    let lib = open(&lib_dir);
    assert_eq!(lib.len(), 13, "the committed photo is there");
    assert!(
        matches!(
            lib.index_recovery(),
            IndexRecovery::CaughtUp { inserted: 1 }
        ),
        "{:?}",
        lib.index_recovery()
    );
    assert_eq!(results(&lib, 13), after);
    assert!(lib.check().unwrap().is_ok());
}

/// The sorted file names in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Copies every file of `from` into `to` (created if needed).
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in listing(from) {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

trait CanonicalOrCreate {
    fn canonicalize_or_create(&self) -> PathBuf;
}

impl CanonicalOrCreate for PathBuf {
    /// Creates the folder and returns its canonical path (photos are indexed by it).
    fn canonicalize_or_create(&self) -> PathBuf {
        std::fs::create_dir_all(self).unwrap();
        self.canonicalize().unwrap()
    }
}

/// Opening cost of the content fingerprint with ViT-B/32-sized weights: `cargo test --test
/// tests open_time -- --ignored --nocapture` (prints the times; the weights are 600 MB of
/// patterned bytes, which BLAKE3 hashes at the same speed as real ones).
#[test]
#[ignore = "a measurement: writes 600 MB"]
fn open_time_with_600_mb_of_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_copy(&tmp.path().join("big"), |_| {});
    let mut f = std::fs::File::create(model.join("model.safetensors")).unwrap();
    let mut block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for i in 0..600u32 {
        block[..4].copy_from_slice(&i.to_le_bytes());
        std::io::Write::write_all(&mut f, &block).unwrap();
    }
    drop(f);
    // Read once so the page cache holds it, as after any earlier run.
    std::fs::read(model.join("model.safetensors")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100)); // settled: rememberable
    for i in 0..3 {
        // lib0: hashed; lib1 another library, hashed again; lib0 again: remembered.
        let i = [0, 1, 0][i];
        let t = std::time::Instant::now();
        let lib = open_with(&tmp.path().join(format!("lib{i}")), &model).unwrap();
        println!(
            "open with 600 MB of weights: {:.3} s ({})",
            t.elapsed().as_secs_f64(),
            lib.model_name()
        );
    }
}

const FULL_DISK_CHILD: &str = "GLIMPSE_FULL_DISK_CHILD";

/// Fills the file system holding `dir` with a file `dir/filler`; returns its path.
#[cfg(target_os = "linux")]
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![1u8; 1 << 16];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    filler
}

/// The child of the full-disk test, inside a private mount namespace where `$dir/disk` is a
/// 128 MiB tmpfs holding the library. Ignored in a normal run; fails without its environment.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "the child process of the full-disk test (run by it with --ignored)"]
fn full_disk_child() {
    let dir = PathBuf::from(std::env::var(FULL_DISK_CHILD).expect("run by the full-disk test"));
    let (disk, photos) = (dir.join("disk"), dir.join("photos"));
    let lib_dir = disk.join("lib");
    let lib = open(&lib_dir);
    assert_eq!(index(&lib, &photos.join("first")).added, 12);
    let filler = fill(&disk);
    match lib.index_folder(photos.join("second"), &Default::default()) {
        Err(Error::DiskFull { .. }) => {}
        other => panic!("expected DiskFull while indexing, got {other:?}"),
    }
    std::fs::remove_file(&filler).unwrap();
    drop(lib);
    let filler = fill(&disk);
    match open_with(&lib_dir, &model_dir()) {
        Err(Error::DiskFull { .. }) => {}
        other => panic!("expected DiskFull while opening, got {other:?}"),
    }
    std::fs::remove_file(&filler).unwrap();
    let lib = open(&lib_dir);
    assert_eq!(lib.len(), 12, "what was committed is there");
    assert!(lib.check().unwrap().is_ok());
    assert_eq!(index(&lib, &photos.join("second")).added, 3);
}

/// A full disk under the store: a typed error while indexing and while opening, never an abort
/// (Debian's librocksdb aborts on a write after a failed one), and the library intact once
/// there is room again. Runs its child in a user + mount namespace (`unshare -rm`) with a
/// small tmpfs; where namespaces are not allowed it reports itself skipped.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_under_the_store_is_a_typed_error_not_an_abort() {
    use std::process::Command;
    let allowed = Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=1m none /mnt 2>/dev/null || mount -t tmpfs -o size=1m none /tmp"])
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        println!("SKIPPED: cannot mount a tmpfs in a private namespace (unshare -rm)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    make_folder(&dir.join("photos/first"));
    for (i, name) in ["x.png", "y.jpg", "z.png"].iter().enumerate() {
        write_photo(&dir.join("photos/second").join(name), 60 + i as u32, 64, 48);
    }
    std::fs::create_dir(dir.join("disk")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=128m glimpse \"$0/disk\" && exec \"$1\" --exact \
             library::integrity::full_disk_child --ignored --nocapture --test-threads=1",
        ])
        .arg(&dir)
        .arg(&exe)
        .env(FULL_DISK_CHILD, &dir)
        .status()
        .unwrap();
    assert!(status.success(), "the child failed or aborted: {status:?}");
}
