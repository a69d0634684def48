//! Never delete on doubt: photos whose absence is not certain keep their records; a model
//! switch keeps every old embedding until its replacement is committed.

use super::common::*;
use glimpse::{Error, ImageId, IndexReport, Library, ProblemKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A folder of photos indexed into a fresh library: (temp dir, canonical photo root, library).
fn indexed() -> (tempfile::TempDir, PathBuf, Library) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    make_folder(&root);
    let lib = open(&tmp.path().join("lib"));
    assert_eq!(index(&lib, &root).added, 12);
    (tmp, root, lib)
}

fn ids(lib: &Library) -> BTreeMap<PathBuf, ImageId> {
    lib.photos().into_iter().map(|(id, p)| (p, id)).collect()
}

/// The photos kept in doubt, per folder, as the report lists them.
fn kept(report: &IndexReport) -> Vec<(PathBuf, usize)> {
    report
        .failed
        .iter()
        .filter_map(|f| match &f.error {
            Error::KeptMissing { path, photos, .. } => Some((path.clone(), *photos)),
            _ => None,
        })
        .collect()
}

/// Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the calling thread's effective set, so
/// that directory permissions apply to it even as root (capabilities are per thread on Linux;
/// threads it then starts inherit the reduced set). Returns whether permissions now apply.
#[cfg(target_os = "linux")]
fn obey_permissions_in_this_thread(probe: &Path) -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    unsafe extern "C" {
        fn capget(header: *mut Header, data: *mut Data) -> i32;
        fn capset(header: *mut Header, data: *const Data) -> i32;
    }
    const VERSION_3: u32 = 0x2008_0522;
    const DAC: u32 = (1 << 1) | (1 << 2);
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: the header and a two-element data array, as capget(2) requires for version 3.
    if unsafe { capget(&mut header, data.as_mut_ptr()) } == 0 && data[0].effective & DAC != 0 {
        data[0].effective &= !DAC;
        // SAFETY: as above; only this thread's effective set shrinks.
        unsafe { capset(&mut header, data.as_ptr()) };
    }
    std::fs::read_dir(probe).is_err()
}

#[cfg(target_os = "linux")]
#[test]
fn an_unreadable_folder_keeps_its_photos() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, root, lib) = indexed();
    let before = ids(&lib);
    let trips = root.join("trips");
    std::fs::set_permissions(&trips, std::fs::Permissions::from_mode(0o000)).unwrap();
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            if !obey_permissions_in_this_thread(&trips) {
                return None;
            }
            Some(index(&lib, &root))
        })
        .join()
        .unwrap()
    });
    std::fs::set_permissions(&trips, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(report) = report else {
        println!("SKIPPED: directory permissions cannot be made to apply to this process");
        return;
    };
    assert_eq!(report.removed, 0, "{report:?}");
    let kept = kept(&report);
    assert_eq!(kept.iter().map(|k| k.1).sum::<usize>(), 4, "{report:?}");
    assert!(kept.iter().all(|k| k.0.starts_with(&trips)), "{kept:?}");
    assert_eq!(ids(&lib), before);
    // Readable again: the same photos, unchanged, same ids.
    let again = index(&lib, &root);
    assert_eq!((again.unchanged, again.encoded()), (12, 0), "{again:?}");
    assert_eq!(ids(&lib), before);
}

#[test]
fn an_emptied_mount_point_keeps_its_photos() {
    let (tmp, root, lib) = indexed();
    let before = ids(&lib);
    // The disk behind `trips` is unmounted: the folder is there, empty.
    let away = tmp.path().join("unmounted");
    std::fs::rename(root.join("trips"), &away).unwrap();
    std::fs::create_dir(root.join("trips")).unwrap();
    let report = index(&lib, &root);
    assert_eq!(report.removed, 0, "{report:?}");
    assert_eq!(
        kept(&report).iter().map(|k| k.1).sum::<usize>(),
        4,
        "{report:?}"
    );
    assert_eq!(ids(&lib), before);
    // Mounted again: nothing to do.
    std::fs::remove_dir(root.join("trips")).unwrap();
    std::fs::rename(&away, root.join("trips")).unwrap();
    assert_eq!(index(&lib, &root).unchanged, 12);
    assert_eq!(ids(&lib), before);
}

#[cfg(unix)]
#[test]
fn a_folder_replaced_by_a_file_or_a_dangling_link_keeps_its_photos() {
    let (tmp, root, lib) = indexed();
    let before = ids(&lib);
    let family = root.join("family");
    let away = tmp.path().join("family-away");
    std::fs::rename(&family, &away).unwrap();
    std::fs::write(&family, b"not a folder").unwrap();
    let report = index(&lib, &root);
    assert_eq!((report.removed, kept(&report).len()), (0, 1), "{report:?}");
    std::fs::remove_file(&family).unwrap();
    // A link to a disk that is not there.
    std::os::unix::fs::symlink(tmp.path().join("no-such-disk"), &family).unwrap();
    let report = index(&lib, &root);
    assert_eq!((report.removed, kept(&report).len()), (0, 1), "{report:?}");
    assert_eq!(ids(&lib), before);
}

#[test]
fn photos_certainly_gone_are_removed_and_a_renamed_folder_is_a_move() {
    let (_tmp, root, lib) = indexed();
    // A deleted photo and a deleted folder beside photos that remain: certain.
    std::fs::remove_file(root.join("a.jpg")).unwrap();
    std::fs::remove_dir_all(root.join("trips/2024")).unwrap();
    let report = index(&lib, &root);
    assert_eq!(report.removed, 3, "{report:?}");
    assert!(kept(&report).is_empty(), "{report:?}");
    // A renamed folder: its photos move, nothing is re-encoded or kept twice.
    let before = lib.id(root.join("family/k.jpeg")).unwrap();
    std::fs::rename(root.join("family"), root.join("people")).unwrap();
    let report = index(&lib, &root);
    assert_eq!(
        (report.moved, report.encoded(), report.removed),
        (2, 0, 0),
        "{report:?}"
    );
    assert_eq!(lib.id(root.join("people/k.jpeg")).unwrap(), before);
    assert_eq!(lib.len(), 9);
}

#[test]
fn keep_missing_turns_removal_off() {
    let (_tmp, root, lib) = indexed();
    std::fs::remove_file(root.join("a.jpg")).unwrap();
    let opts = glimpse::IndexOptions::default().remove_missing(false);
    let report = lib.index_folder(&root, &opts).unwrap();
    assert_eq!(report.removed, 0);
    assert_eq!(lib.len(), 12);
}

/// A copy of the other fixture model whose weights are cut short: its config and preprocessor
/// load, its towers do not.
fn broken_model(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(other_model_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    dir.to_path_buf()
}

#[test]
fn a_model_switch_loads_the_new_model_first_and_keeps_unreadable_photos() {
    let (tmp, root, lib) = indexed();
    let lib_dir = tmp.path().join("lib");
    let before = results(&lib, 12);
    drop(lib);

    // A new model that does not load: the library is untouched.
    let broken = broken_model(&tmp.path().join("broken"));
    assert!(Library::builder()
        .model(&broken)
        .reembed_on_model_change(true)
        .open(&lib_dir)
        .is_err());
    let lib = open(&lib_dir);
    assert_eq!(
        results(&lib, 12),
        before,
        "every old embedding is still there"
    );
    drop(lib);

    // A photo that cannot be read while re-embedding keeps its record.
    let hidden = tmp.path().join("hidden.png");
    std::fs::rename(root.join("b.png"), &hidden).unwrap();
    let switch = || {
        Library::builder()
            .model(other_model_dir())
            .reembed_on_model_change(true)
            .open(&lib_dir)
            .unwrap()
    };
    let lib = switch();
    assert_eq!(lib.len(), 12, "the unreadable photo keeps its record");
    let b = lib
        .id(root.join("b.png"))
        .unwrap()
        .expect("still in the library");
    assert!(
        lib.open_report()
            .quarantined
            .iter()
            .any(|p| p.kind == ProblemKind::MissingEmbedding && p.id == Some(b)),
        "{:?}",
        lib.open_report()
    );
    assert_eq!(lib.search_text(QUERIES[0], 12).unwrap().len(), 11);
    drop(lib);
    // Readable again: the next open re-embeds it, under its id.
    std::fs::rename(&hidden, root.join("b.png")).unwrap();
    let lib = switch();
    assert!(lib.open_report().quarantined.is_empty());
    assert_eq!(lib.id(root.join("b.png")).unwrap(), Some(b));
    assert_eq!(lib.search_text(QUERIES[0], 12).unwrap().len(), 12);
    assert!(lib.check().unwrap().is_ok());
}
