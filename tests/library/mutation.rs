//! Mutation testing of inputs: a few thousand mutated images — flipped bytes, header fields
//! set to huge values, plausible large sizes declared in headers (decompression bombs),
//! truncations, insertions, wrong extensions, in every format Glimpse
//! decodes — indexed in a child process: no panic escapes, nothing hangs, the memory high-water
//! mark grows by a bounded amount, and every file is either indexed or reported.
//!
//! Seed: `GLIMPSE_MUTATION_SEED=<u64>`; printed either way. Files: `GLIMPSE_MUTATION_FILES`
//! (default 3000).

use super::common::*;
use glimpse::IndexOptions;
use image::{DynamicImage, ImageFormat};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_PHOTOS: &str = "GLIMPSE_LIB_MUTATION_CHILD_PHOTOS";
/// The child's run may grow the memory high-water mark by at most this much. Measured on the
/// 2-core machine: +22 to +35 MiB over 18 seeds (limits: a 32 MiB budget, 1 Mi pixels per
/// decode; two decodes at once could use 64 MiB of budget between them). Before the resize
/// computed only the center crop's pixels, thin images pushed it to +44 to +82 MiB, and
/// +225 MiB on seed 5299910516091621567 (a 51729 × 3 JPEG); the code before the budget and
/// the pixel limit grew it by +1156 and +1265 MiB. `GLIMPSE_MUTATION_MAX_PIXELS` and
/// `GLIMPSE_MUTATION_BUDGET` change the limits.
const MAX_GROWTH_MIB: u64 = 96;
/// A child still running after this long has hung.
const TIMEOUT: Duration = Duration::from_secs(240);

const FORMATS: [(ImageFormat, &str); 6] = [
    (ImageFormat::Jpeg, "jpg"),
    (ImageFormat::Png, "png"),
    (ImageFormat::Gif, "gif"),
    (ImageFormat::WebP, "webp"),
    (ImageFormat::Tiff, "tiff"),
    (ImageFormat::Bmp, "bmp"),
];

/// Small valid images in every format: generated here, plus the encoder's fixture images.
fn seeds() -> Vec<(Vec<u8>, &'static str)> {
    let mut out = Vec::new();
    for (i, (format, ext)) in FORMATS.iter().enumerate() {
        for (w, h) in [(40, 30), (17, 61)] {
            let rgb = DynamicImage::ImageRgb8(photo(i as u32 + w, w, h));
            let variants = match format {
                ImageFormat::Gif => vec![DynamicImage::ImageRgba8(rgb.to_rgba8())],
                ImageFormat::Png | ImageFormat::Tiff | ImageFormat::WebP => {
                    vec![rgb.clone(), DynamicImage::ImageRgba8(rgb.to_rgba8())]
                }
                ImageFormat::Jpeg => vec![rgb.clone(), DynamicImage::ImageLuma8(rgb.to_luma8())],
                _ => vec![rgb],
            };
            for img in variants {
                let mut bytes = Cursor::new(Vec::new());
                img.write_to(&mut bytes, *format).unwrap();
                out.push((bytes.into_inner(), *ext));
            }
        }
    }
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/encoder/tests/fixtures/images");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        let ext = match p.extension().and_then(|e| e.to_str()) {
            Some("jpg") => "jpg",
            Some("png") => "png",
            Some("gif") => "gif",
            Some("webp") => "webp",
            Some("tiff") => "tiff",
            Some("bmp") => "bmp",
            _ => continue,
        };
        out.push((std::fs::read(&p).unwrap(), ext));
    }
    out
}

/// Declares a plausible large size (3 000 to 16 000 pixels a side: 10 to 250 megapixels) in
/// the header of a GIF, PNG, BMP or JPEG, leaving the rest of the file as it was: a
/// decompression bomb whose declared size a naive decoder allocates.
fn declare_large(rng: &mut StdRng, b: &mut [u8]) {
    let (w, h) = (rng.gen_range(3000..16000u32), rng.gen_range(3000..16000u32));
    if b.starts_with(b"GIF8") && b.len() >= 10 {
        b[6..8].copy_from_slice(&(w as u16).to_le_bytes());
        b[8..10].copy_from_slice(&(h as u16).to_le_bytes());
    } else if b.starts_with(b"\x89PNG") && b.len() >= 24 {
        b[16..20].copy_from_slice(&w.to_be_bytes());
        b[20..24].copy_from_slice(&h.to_be_bytes());
    } else if b.starts_with(b"BM") && b.len() >= 26 {
        b[18..22].copy_from_slice(&w.to_le_bytes());
        b[22..26].copy_from_slice(&h.to_le_bytes());
    } else if b.starts_with(&[0xFF, 0xD8]) {
        // The frame header (SOF0..SOF2): height then width, big-endian, after length and precision.
        if let Some(at) = b
            .windows(2)
            .position(|m| m[0] == 0xFF && (0xC0..=0xC2).contains(&m[1]))
        {
            if at + 9 <= b.len() {
                b[at + 5..at + 7].copy_from_slice(&(h as u16).to_be_bytes());
                b[at + 7..at + 9].copy_from_slice(&(w as u16).to_be_bytes());
            }
        }
    }
}

/// One mutation of `b`, chosen by `rng`.
fn mutate_once(rng: &mut StdRng, b: &mut Vec<u8>) {
    let len = b.len().max(1);
    let head = len.min(64);
    match rng.gen_range(0..8) {
        // A large declared size.
        7 => declare_large(rng, b),
        // Flipped bytes anywhere.
        0 => {
            for _ in 0..rng.gen_range(1..=8) {
                if let Some(x) = b.get_mut(rng.gen_range(0..len)) {
                    *x ^= rng.gen_range(1..=255u8);
                }
            }
        }
        // Flipped bytes in the header.
        1 => {
            for _ in 0..rng.gen_range(1..=3) {
                if let Some(x) = b.get_mut(rng.gen_range(0..head)) {
                    *x ^= rng.gen_range(1..=255u8);
                }
            }
        }
        // A header field (a width, a height, a length) set to a huge value.
        2 => {
            let at = rng.gen_range(0..head);
            for x in b.iter_mut().skip(at).take(rng.gen_range(1..=4)) {
                *x = if rng.gen_bool(0.8) { 0xFF } else { 0x7F };
            }
        }
        // Truncated.
        3 => b.truncate(rng.gen_range(0..len)),
        // Random bytes inserted.
        4 => {
            let at = rng.gen_range(0..=b.len());
            let n = rng.gen_range(1..=32);
            let junk: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            b.splice(at..at, junk);
        }
        // A slice repeated (chunks duplicated, lengths out of step).
        5 => {
            let from = rng.gen_range(0..len);
            let to = (from + rng.gen_range(1..=256)).min(b.len());
            let at = rng.gen_range(0..=b.len());
            let piece = b.get(from..to).unwrap_or_default().to_vec();
            b.splice(at..at, piece);
        }
        // A slice removed.
        _ => {
            let from = rng.gen_range(0..len);
            let to = (from + rng.gen_range(1..=64)).min(b.len());
            if from < to {
                b.drain(from..to);
            }
        }
    }
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes the CRC of every whole chunk of a PNG, so that a mutation reaches the decoder
/// behind the checksum (bad header values, corrupt compressed data) instead of the check.
fn fix_png_crcs(b: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= b.len()) else {
            break;
        };
        let crc = crc32(&b[at + 4..end]);
        b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

/// Writes `n` mutated images under `root`; returns their paths.
fn write_mutants(rng: &mut StdRng, root: &Path, n: usize) -> Vec<PathBuf> {
    let seeds = seeds();
    (0..n)
        .map(|i| {
            let (seed, ext) = &seeds[rng.gen_range(0..seeds.len())];
            let mut b = seed.clone();
            mutate_once(rng, &mut b);
            while rng.gen_bool(0.3) {
                mutate_once(rng, &mut b);
            }
            if b.starts_with(b"\x89PNG") && rng.gen_bool(0.7) {
                fix_png_crcs(&mut b);
            }
            // One in five has another format's extension.
            let ext = if rng.gen_bool(0.2) {
                FORMATS[rng.gen_range(0..FORMATS.len())].1
            } else {
                *ext
            };
            let path = root.join(format!("d{}/m{i:05}.{ext}", i % 8));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &b).unwrap();
            path
        })
        .collect()
}

/// The process's memory high-water mark (`VmHWM`) in KiB, where `/proc` has it.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The child process: index the folder of mutants and check every file is accounted for and
/// the memory high-water mark grew by a bounded amount. Run by the test below with `--ignored`.
#[test]
#[ignore = "the child process of mutated_images_never_panic_hang_or_vanish (run by it)"]
fn mutation_child() {
    let Ok(photos) = std::env::var(CHILD_PHOTOS) else {
        panic!("mutation_child runs only as the mutation test's child ({CHILD_PHOTOS})");
    };
    let root = PathBuf::from(photos).canonicalize().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    // Load the vision tower first, so that the growth measured is the run's alone.
    let warm = tempfile::tempdir().unwrap();
    write_photo(&warm.path().join("warm.png"), 1, 64, 48);
    assert_eq!(index(&lib, warm.path()).added, 1);
    let before = vm_hwm_kib();

    let started = Instant::now();
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let opts = IndexOptions::default()
        .remove_missing(false)
        .max_pixels(env("GLIMPSE_MUTATION_MAX_PIXELS", 1 << 20))
        .memory_budget(env("GLIMPSE_MUTATION_BUDGET", 32 << 20));
    let report = lib.index_folder(&root, &opts).expect("index_folder runs");
    let elapsed = started.elapsed();

    let failed: HashSet<&Path> = report.failed.iter().map(|f| f.path.as_path()).collect();
    let files = walkdir_files(&root);
    let mut missing = Vec::new();
    let mut indexed = 0;
    for f in &files {
        let in_library = lib.id(f).unwrap().is_some();
        indexed += usize::from(in_library);
        if in_library == failed.contains(f.as_path()) {
            missing.push(f.clone());
        }
    }
    let panics: Vec<_> = report
        .failed
        .iter()
        .filter(|f| matches!(f.error, glimpse::Error::Panic { .. }))
        .map(|f| format!("{}: {}", f.path.display(), f.error))
        .collect();
    println!(
        "{} files: {indexed} indexed, {} failed ({} decoder panics caught) in {elapsed:.1?}",
        files.len(),
        report.failed.len(),
        panics.len()
    );
    for p in &panics {
        println!("  caught: {p}");
    }
    // What the failures were, by error variant.
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &report.failed {
        let debug = format!("{:?}", f.error);
        let kind: String = debug
            .split([' ', '{', ')'])
            .next()
            .unwrap_or_default()
            .to_string();
        *kinds.entry(kind).or_default() += 1;
    }
    println!("failures by kind: {kinds:?}");
    // The commonest messages (path left out), to see what the decoders met.
    let mut messages: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &report.failed {
        let text = f.error.to_string();
        let text = text.rsplit(": ").next().unwrap_or_default();
        *messages.entry(text.chars().take(70).collect()).or_default() += 1;
    }
    let mut messages: Vec<_> = messages.into_iter().collect();
    messages.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (m, n) in messages.iter().take(8) {
        println!("  {n:5}  {m}");
    }
    assert!(
        missing.is_empty(),
        "{} files neither indexed nor reported (or both): {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    match (before, vm_hwm_kib()) {
        (Some(before), Some(after)) => {
            let growth = (after - before) / 1024;
            println!(
                "VmHWM {} MiB -> {} MiB (+{growth} MiB)",
                before / 1024,
                after / 1024
            );
            assert!(
                growth <= MAX_GROWTH_MIB,
                "memory high-water mark grew by {growth} MiB (bound {MAX_GROWTH_MIB} MiB)"
            );
        }
        _ => println!("SKIPPED memory check: no VmHWM in /proc/self/status here"),
    }
}

/// Every file under `root`, recursively.
fn walkdir_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn mutated_images_never_panic_hang_or_vanish() {
    let seed: u64 = std::env::var("GLIMPSE_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let n: usize = std::env::var("GLIMPSE_MUTATION_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    println!("mutation test seed: {seed} (rerun with GLIMPSE_MUTATION_SEED={seed}), {n} files");
    let mut rng = StdRng::seed_from_u64(seed);
    let photos = tempfile::tempdir().unwrap();
    let started = Instant::now();
    write_mutants(&mut rng, photos.path(), n);
    println!("wrote {n} mutants in {:.1?}", started.elapsed());

    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "library::mutation::mutation_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PHOTOS, photos.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes on threads, so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let tail: String = {
        let chars: Vec<char> = stderr.chars().collect();
        chars[chars.len().saturating_sub(4000)..].iter().collect()
    };
    println!("{stdout}");
    let status = status.unwrap_or_else(|| {
        panic!("the child hung: still running after {TIMEOUT:?} (seed {seed})\n{tail}")
    });
    assert!(
        status.success(),
        "the child failed ({status}, seed {seed}):\n{stdout}\n{tail}"
    );
    assert!(
        stdout.contains("indexed"),
        "the child did not run: {stdout}"
    );
}
