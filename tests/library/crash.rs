//! Kill during indexing: a child process indexes a folder and is SIGKILLed at random moments;
//! after each kill the library reopens, and once a run finishes, it equals a library indexed
//! without interruption. Seed: `GLIMPSE_CRASH_SEED=<u64>`; printed either way.

use super::common::*;
use glimpse::IndexOptions;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_LIB: &str = "GLIMPSE_LIB_CRASH_CHILD_LIB";
const CHILD_PHOTOS: &str = "GLIMPSE_LIB_CRASH_CHILD_PHOTOS";
const KILLS: usize = 6;

/// The child process of the kill test: index the folder in small batches. Ignored in a normal
/// run (it is not a test on its own); the parent runs it with `--ignored`.
#[test]
#[ignore = "the child process of kills_during_indexing_lose_nothing (run by it with --ignored)"]
fn crash_child() {
    let (Ok(lib), Ok(photos)) = (std::env::var(CHILD_LIB), std::env::var(CHILD_PHOTOS)) else {
        panic!("crash_child runs only as the kill test's child ({CHILD_LIB}, {CHILD_PHOTOS})");
    };
    let lib = open(Path::new(&lib));
    // Report each committed batch so the parent can kill in the middle of the run.
    let progress: glimpse::ProgressFn = std::sync::Arc::new(|p: &glimpse::Progress| {
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "\nPROGRESS {}", p.encoded).unwrap();
        out.flush().unwrap();
    });
    let opts = IndexOptions::default().batch_size(2).progress(progress);
    lib.index_folder(&photos, &opts).unwrap();
}

/// Every photo's path (relative to `root`) and stored embedding (rounded to 1e-4).
fn state(lib: &glimpse::Library, root: &Path) -> Vec<(PathBuf, Vec<i64>)> {
    let mut out: Vec<(PathBuf, Vec<i64>)> = lib
        .photos()
        .into_iter()
        .map(|(id, p)| {
            let e = lib
                .embedding(id)
                .unwrap()
                .expect("every photo has an embedding");
            let rounded = e.iter().map(|v| (v * 1e4).round() as i64).collect();
            (p.strip_prefix(root).unwrap().to_path_buf(), rounded)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn indexing_killed_at_random_moments_ends_like_an_uninterrupted_run() {
    let seed: u64 = std::env::var("GLIMPSE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("library crash test seed: {seed} (rerun with GLIMPSE_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let photos_dir = tempfile::tempdir().unwrap();
    let root = photos_dir.path().canonicalize().unwrap();
    for i in 0..40u32 {
        write_photo(
            &root.join(format!("d{}/p{i}.png", i % 4)),
            i,
            64 + i * 3,
            48 + i * 2,
        );
    }
    let lib_dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut kills = 0;
    let mut next_photo = 40u32;
    for _ in 0..KILLS * 8 {
        if kills == KILLS {
            break;
        }
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "library::crash::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_LIB, lib_dir.path())
            .env(CHILD_PHOTOS, &root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill after a random number of committed batches, plus a random few milliseconds:
        // inside the encoder, a store commit or an index update.
        let batches = rng.gen_range(1..12);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("PROGRESS") && tx.send(()).is_err() {
                    return;
                }
            }
        });
        for _ in 0..batches {
            if rx.recv_timeout(Duration::from_secs(60)).is_err() {
                break; // the child finished (or stalled)
            }
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..5000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        } else {
            // The child finished before the kill: give the next one more work.
            for i in next_photo..next_photo + 30 {
                write_photo(
                    &root.join(format!("d{}/p{i}.png", i % 4)),
                    i,
                    64 + i,
                    48 + i,
                );
            }
            next_photo += 30;
        }
        child.wait().unwrap();
        // Every kill leaves a library that opens (the index caught up or rebuilt).
        let lib = open(lib_dir.path());
        assert!(lib.len() <= next_photo as usize);
        println!(
            "after round: {} of {next_photo} photos indexed, {kills} kills",
            lib.len()
        );
    }
    println!("{kills} kills");

    let lib = open(lib_dir.path());
    let r = index(&lib, &root);
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(lib.len(), next_photo as usize);
    assert!(kills >= 5, "only {kills} kills landed");

    let clean_dir = tempfile::tempdir().unwrap();
    let clean = open(clean_dir.path());
    index(&clean, &root);
    assert_eq!(state(&lib, &root), state(&clean, &root));
    assert_eq!(results(&lib, 10), results(&clean, 10));
}
