//! A folder full of hostile files: each is indexed or reported with a typed error, and the
//! good photos around them are all indexed.

use super::common::*;
use glimpse::Error;
use std::path::{Path, PathBuf};

fn failure_for<'a>(report: &'a glimpse::IndexReport, name: &str) -> Option<&'a Error> {
    report
        .failed
        .iter()
        .find(|f| f.path.file_name().is_some_and(|n| n == name))
        .map(|f| &f.error)
}

#[test]
fn hostile_files_are_indexed_or_reported_and_never_stop_the_folder() {
    let photos_dir = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    for seed in 0..4 {
        write_photo(&root.join(format!("good{seed}.png")), seed, 80, 60);
    }
    for entry in std::fs::read_dir(hostile_dir()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, root.join(p.file_name().unwrap())).unwrap();
    }
    let mut good = 4;
    #[cfg(unix)]
    {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        // A non-UTF-8 file name.
        write_photo(&root.join(OsStr::from_bytes(b"caf\xe9.png")), 20, 70, 50);
        good += 1;
        // A symlink loop: a folder linking to its parent.
        std::fs::create_dir(root.join("loop")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("loop/back")).unwrap();
        // An unreadable file (root reads it anyway: then it is simply indexed).
        let locked = root.join("locked.png");
        write_photo(&locked, 21, 40, 40);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    }

    let lib = open(lib_dir.path());
    let report = index(&lib, &root);
    for f in &report.failed {
        eprintln!("failed as expected? {}: {}", f.path.display(), f.error);
    }

    // Each good photo is in the library.
    for seed in 0..4 {
        assert!(lib
            .id(root.join(format!("good{seed}.png")))
            .unwrap()
            .is_some());
    }
    assert!(report.added >= good, "{report:?}");

    // Files that cannot be images are reported with the right typed error.
    assert!(matches!(
        failure_for(&report, "empty.png"),
        Some(Error::NotAnImage { .. })
    ));
    assert!(matches!(
        failure_for(&report, "not_an_image.jpg"),
        Some(Error::NotAnImage { .. })
    ));
    // The decompression bomb is refused by the decoder's limits, not decoded.
    assert!(
        matches!(failure_for(&report, "bomb.png"), Some(Error::Encoder(_))),
        "{:?}",
        failure_for(&report, "bomb.png")
    );
    // Everything else is either indexed or has a typed failure: nothing vanishes.
    for name in [
        "truncated.jpg",
        "cmyk.jpg",
        "gray16.png",
        "animated.gif",
        "locked.png",
    ] {
        let indexed = lib.id(root.join(name)).unwrap().is_some();
        assert!(
            indexed ^ failure_for(&report, name).is_some(),
            "{name}: indexed {indexed}"
        );
    }
    // 16-bit PNG and animated GIF are real images `image` decodes.
    assert!(lib.id(root.join("gray16.png")).unwrap().is_some());
    assert!(lib.id(root.join("animated.gif")).unwrap().is_some());

    #[cfg(unix)]
    {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let odd: PathBuf = root.join(OsStr::from_bytes(b"caf\xe9.png"));
        let id = lib.id(&odd).unwrap().expect("non-UTF-8 name indexed");
        assert_eq!(lib.path(id).as_deref(), Some(odd.as_path()));
        assert!(
            report
                .failed
                .iter()
                .any(|f| matches!(f.error, Error::SymlinkLoop { .. })),
            "symlink loop reported"
        );
        let _ = Path::new(""); // keep the import used on every platform
    }
}
