//! The `search` example as a script would use it: `--json` hits carry the exact file name
//! (`path_b64`), non-UTF-8 included; `--k` beyond the library (up to `u64::MAX`) is clamped;
//! `--image` on a FIFO fails at once.
//!
//! These run the example binary that `cargo test` builds beside the tests (target/…/examples);
//! where it is missing or older than the sources (e.g. `cargo test --test tests` alone), they
//! say SKIPPED.

use super::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The newest modification time of the files under `dir` (recursively).
fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let m = if p.is_dir() {
            newest(&p)
        } else {
            p.metadata().and_then(|m| m.modified()).unwrap_or(t)
        };
        t = t.max(m);
    }
    t
}

/// The built `name` example, if it is there and newer than the sources it is built from.
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("examples").join(name);
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        eprintln!(
            "SKIPPED: {} is not built (cargo test builds it)",
            bin.display()
        );
        return None;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modified = |p: PathBuf| {
        p.metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    let sources = newest(&root.join("src"))
        .max(newest(&root.join("examples/common")))
        .max(modified(root.join(format!("examples/{name}.rs"))));
    if built < sources {
        eprintln!("SKIPPED: {} is older than its sources", bin.display());
        return None;
    }
    Some(bin)
}

/// Runs `cmd`, killing it after `limit`; `None` if it had to be killed.
fn run(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(child.wait_with_output().unwrap())
}

/// Standard base64 (RFC 4648, padded) decoding.
fn b64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {s}"),
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let digits: Vec<u8> = quad
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..digits.len()]);
    }
    out
}

#[test]
fn b64_decoder_round_trips_known_values() {
    assert_eq!(b64_decode("Zm9vYmFy"), b"foobar");
    assert_eq!(b64_decode("Zm9vYg=="), b"foob");
    assert_eq!(b64_decode("Zm9vYmE="), b"fooba");
}

#[cfg(unix)]
#[test]
fn search_json_names_every_file_exactly_and_clamps_k() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let Some(search) = example("search") else {
        return;
    };
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    let odd = root.join(OsStr::from_bytes(b"caf\xe9 \xff.png"));
    write_photo(&odd, 3, 64, 48);
    write_photo(&root.join("plain.png"), 4, 64, 48);
    write_photo(&root.join("été.jpg"), 5, 64, 48);
    let lib = tempfile::tempdir().unwrap();
    for k in ["1000000000000", "18446744073709551615"] {
        let out = run(
            Command::new(&search)
                .arg("--library")
                .arg(lib.path())
                .arg("--model")
                .arg(model_dir())
                .arg("--photos")
                .arg(&root)
                .args(["--json", "--k", k, "a red square"]),
            Duration::from_secs(120),
        )
        .expect("search ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "--k {k}: {}\n{stderr}", out.status);
        let mut found: Vec<Vec<u8>> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('{') && l.contains("\"rank\""))
            .map(|l| {
                let hit: serde_json::Value = serde_json::from_str(l).unwrap();
                let bytes = b64_decode(hit["path_b64"].as_str().expect("path_b64"));
                assert!(
                    Path::new(OsStr::from_bytes(&bytes)).is_file(),
                    "path_b64 names no file: {l}"
                );
                assert_eq!(
                    hit["path"].as_str().unwrap(),
                    String::from_utf8_lossy(&bytes),
                    "{l}"
                );
                bytes
            })
            .collect();
        found.sort();
        let mut expected: Vec<Vec<u8>> =
            [odd.clone(), root.join("plain.png"), root.join("été.jpg")]
                .iter()
                .map(|p| p.as_os_str().as_bytes().to_vec())
                .collect();
        expected.sort();
        assert_eq!(found, expected, "--k {k}: every photo, once, named exactly");
    }
}

#[cfg(unix)]
#[test]
fn search_by_a_fifo_exits_with_a_message() {
    let Some(search) = example("search") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("query.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: mkfifo is not available here");
        return;
    }
    let lib = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(&search)
            .arg("--library")
            .arg(lib.path())
            .arg("--model")
            .arg(model_dir())
            .arg("--image")
            .arg(&fifo),
        Duration::from_secs(60),
    );
    let out = out.expect("search --image <FIFO> returns instead of blocking");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("FIFO"), "{stderr}");
}
