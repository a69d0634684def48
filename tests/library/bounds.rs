//! Bounded resources whatever the input, and a walk that stays inside its folder: FIFOs,
//! sockets and devices are reported and never opened; a file over the size limit is refused
//! from its metadata; a header declaring more pixels than the budget is refused before any
//! pixel buffer exists; `k` is clamped to the library; symlinks leading out of the folder are
//! not followed unless asked.

use super::common::*;
use glimpse::{EncoderError, Error, IndexOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

fn failure_for<'a>(report: &'a glimpse::IndexReport, name: &str) -> Option<&'a Error> {
    report
        .failed
        .iter()
        .find(|f| f.path.file_name().is_some_and(|n| n == name))
        .map(|f| &f.error)
}

/// Makes a FIFO at `path`; false (after saying so) where `mkfifo` is missing.
fn mkfifo(path: &Path) -> bool {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    if made.is_ok_and(|s| s.success()) {
        true
    } else {
        eprintln!("SKIPPED: mkfifo is not available here");
        false
    }
}

/// A 35-byte GIF whose logical screen is 13000 x 13000 pixels (one 1x1 frame, a two-colour
/// global palette): 676 MB of RGBA canvas if decoded.
fn gif_bomb() -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend_from_slice(&13000u16.to_le_bytes());
    b.extend_from_slice(&13000u16.to_le_bytes());
    b.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    b.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    b.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // image descriptor: 1x1 at 0,0
    b.extend_from_slice(&[2, 2, 0x44, 0x01, 0]); // LZW: clear, 0, end
    b.push(0x3B);
    assert_eq!(b.len(), 35);
    b
}

/// Runs `f` on a thread and waits at most `secs` for it.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

#[cfg(unix)]
#[test]
fn fifos_and_sockets_are_reported_and_never_opened() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    write_photo(&root.join("good.png"), 1, 64, 48);
    if !mkfifo(&root.join("pipe.jpg")) || !mkfifo(&root.join("pipe")) {
        return;
    }
    let _socket = std::os::unix::net::UnixListener::bind(root.join("socket.png")).unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = std::sync::Arc::new(open(lib_dir.path()));
    let (l, r) = (lib.clone(), root.clone());
    let report = within(120, move || index(&l, &r)).expect("indexing a folder with a FIFO ends");
    assert_eq!(report.added, 1, "{report:?}");
    for (name, kind) in [
        ("pipe.jpg", "FIFO"),
        ("pipe", "FIFO"),
        ("socket.png", "socket"),
    ] {
        assert!(
            matches!(failure_for(&report, name), Some(Error::NotAFile { kind: k, .. }) if *k == kind),
            "{name}: {:?}",
            failure_for(&report, name)
        );
    }
}

#[cfg(unix)]
#[test]
fn searching_by_a_fifo_fails_at_once() {
    let lib_dir = tempfile::tempdir().unwrap();
    let photos = tempfile::tempdir().unwrap();
    let fifo = photos.path().join("query.jpg");
    if !mkfifo(&fifo) {
        return;
    }
    let lib = std::sync::Arc::new(open(lib_dir.path()));
    let (l, f) = (lib.clone(), fifo.clone());
    let result = within(30, move || l.search_image(&f, 5).map(|h| h.len()));
    if result.is_none() {
        // Unblock the reader before failing (it waits for a writer).
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    let result = result.expect("search_image on a FIFO returns instead of blocking");
    assert!(
        matches!(result, Err(Error::NotAFile { kind: "FIFO", .. })),
        "{result:?}"
    );
}

#[test]
fn a_sparse_file_over_the_size_limit_is_refused_without_reading_it() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    write_photo(&root.join("good.png"), 2, 64, 48);
    // 3 GB that start with a JPEG signature: sparse, nothing but the head is on disk.
    let huge = root.join("huge.jpg");
    std::fs::write(
        &huge,
        [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0],
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    // A real photo over a small configured limit.
    write_photo(&root.join("limited.png"), 3, 300, 200);
    let limited_size = std::fs::metadata(root.join("limited.png")).unwrap().len();

    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    let started = std::time::Instant::now();
    let report = index(&lib, &root);
    assert!(
        matches!(failure_for(&report, "huge.jpg"),
                 Some(Error::FileTooLarge { size, limit, .. }) if *size == 3 << 30 && *limit == 256 << 20),
        "{:?}",
        failure_for(&report, "huge.jpg")
    );
    assert_eq!(report.added, 2, "{report:?}");
    // Reading 3 GB would take seconds; refusing it from the metadata takes none.
    assert!(started.elapsed() < Duration::from_secs(30));

    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    let opts = IndexOptions::default().max_file_bytes(limited_size - 1);
    let report = lib.index_folder(&root, &opts).unwrap();
    assert!(
        matches!(
            failure_for(&report, "limited.png"),
            Some(Error::FileTooLarge { .. })
        ),
        "{report:?}"
    );
}

#[test]
fn a_header_declaring_more_pixels_than_the_budget_is_refused_before_decoding() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    write_photo(&root.join("good.png"), 4, 64, 48);
    // Sixteen 35-byte GIFs declaring 13000 x 13000: each refused from its header.
    let bomb = gif_bomb();
    for i in 0..16 {
        std::fs::write(root.join(format!("bomb{i}.gif")), &bomb).unwrap();
    }
    // A real 300 x 200 photo over a budget of 50 000 pixels.
    write_photo(&root.join("big.png"), 5, 300, 200);
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    let report = index(&lib, &root);
    for i in 0..16 {
        let name = format!("bomb{i}.gif");
        assert!(
            matches!(
                failure_for(&report, &name),
                Some(Error::Encoder(EncoderError::ImageTooLarge { .. }))
            ),
            "{name}: {:?}",
            failure_for(&report, &name)
        );
    }
    assert_eq!(report.added, 2, "{report:?}");

    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    let report = lib
        .index_folder(&root, &IndexOptions::default().max_pixels(50_000))
        .unwrap();
    assert!(
        matches!(
            failure_for(&report, "big.png"),
            Some(Error::Encoder(EncoderError::ImageTooLarge { .. }))
        ),
        "{report:?}"
    );
    assert_eq!(report.added, 1, "{report:?}");
    // Searching by a bomb is refused the same way.
    let e = lib.search_image(root.join("bomb0.gif"), 3).unwrap_err();
    assert!(
        matches!(e, Error::Encoder(EncoderError::ImageTooLarge { .. })),
        "{e}"
    );
}

#[test]
fn a_small_memory_budget_still_indexes_everything() {
    // A budget below one photo's needs: each then runs alone, and all are indexed.
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    let files = make_folder(&root);
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    let opts = IndexOptions::default().memory_budget(1).batch_size(5);
    let report = lib.index_folder(&root, &opts).unwrap();
    assert_eq!(report.added, files.len(), "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
}

#[test]
fn k_is_clamped_to_the_library() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    let files = make_folder(&root);
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    index(&lib, &root);
    for k in [1_000_000_000_000usize, usize::MAX] {
        let hits = lib.search_text("a red square", k).unwrap();
        assert_eq!(hits.len(), files.len());
        let hits = lib.search_image(&files[0], k).unwrap();
        assert_eq!(hits.len(), files.len());
        let id = lib.id(&files[0]).unwrap().unwrap();
        let hits = lib
            .similar(id, k, &glimpse::SearchOptions::default())
            .unwrap();
        assert_eq!(hits.len(), files.len() - 1);
    }
}

#[cfg(unix)]
#[test]
fn symlinks_leading_outside_the_folder_are_not_followed_unless_asked() {
    use std::os::unix::fs::symlink;
    let base = tempfile::tempdir().unwrap();
    let base = base.path().canonicalize().unwrap();
    let (root, outside) = (base.join("photos"), base.join("elsewhere"));
    write_photo(&root.join("mine.png"), 6, 64, 48);
    write_photo(&root.join("sub/mine2.png"), 7, 64, 48);
    for i in 0..3 {
        write_photo(&outside.join(format!("theirs{i}.png")), 8 + i, 64, 48);
    }
    symlink(&outside, root.join("out")).unwrap(); // a folder outside
    symlink(outside.join("theirs0.png"), root.join("one.png")).unwrap(); // a file outside
    symlink(root.join("sub"), root.join("alias")).unwrap(); // a folder inside: followed
    symlink(&base, root.join("sub/up")).unwrap(); // an ancestor of the root: a loop

    let indexed = |lib: &glimpse::Library| -> Vec<PathBuf> {
        let mut p: Vec<PathBuf> = lib
            .photos()
            .into_iter()
            .map(|(_, p)| p.strip_prefix(&root).unwrap().to_path_buf())
            .collect();
        p.sort();
        p
    };
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    let report = index(&lib, &root);
    // sub/up (and alias/up, the same link) lead back to an ancestor: loops, reported as ever.
    let loops = |report: &glimpse::IndexReport| {
        report
            .failed
            .iter()
            .filter(|f| matches!(f.error, Error::SymlinkLoop { .. }))
            .count()
    };
    assert_eq!(loops(&report), 2, "{:?}", report.failed);
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    assert_eq!(
        indexed(&lib),
        ["alias/mine2.png", "mine.png", "sub/mine2.png"].map(PathBuf::from)
    );

    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    let opts = IndexOptions::default().follow_symlinks_outside(true);
    let report = lib.index_folder(&root, &opts).unwrap();
    let paths = indexed(&lib);
    for p in [
        "one.png",
        "out/theirs0.png",
        "out/theirs1.png",
        "out/theirs2.png",
    ] {
        assert!(paths.contains(&PathBuf::from(p)), "{p} in {paths:?}");
    }
    assert_eq!(loops(&report), 2, "{:?}", report.failed);
}
