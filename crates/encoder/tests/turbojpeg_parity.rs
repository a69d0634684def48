//! The `turbojpeg` feature's JPEG pixels against Pillow's (`fixtures/turbojpeg`, written by
//! `scripts/make_turbojpeg_fixtures.py`): the full decode equals `Image.open(p).convert("RGB")`
//! and the reduced-scale decode equals Pillow's `draft` at the same scale, byte for byte.
//! Without the feature the tests say "skipped" and pass; the damaged-file tests run either way.

use std::path::{Path, PathBuf};

use glimpse_encoder::preprocess::decode::{decode_bytes, jpeg_decoder};
use glimpse_encoder::preprocess::{DecodeOptions, Preprocessor};
use glimpse_encoder::Error;
use image::RgbImage;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Reference {
    file: PathBuf,
    name: String,
    width: u32,
    height: u32,
    /// (k, width, height) of Pillow's `draft` at 1/k.
    drafts: Vec<(u32, u32, u32)>,
}

fn references() -> Vec<Reference> {
    let dir = fixtures();
    let text = std::fs::read_to_string(dir.join("turbojpeg/reference.json")).expect("fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|e| Reference {
            file: dir.join(e["file"].as_str().expect("file")),
            name: e["name"].as_str().expect("name").to_string(),
            width: e["width"].as_u64().expect("width") as u32,
            height: e["height"].as_u64().expect("height") as u32,
            drafts: e["drafts"]
                .as_object()
                .expect("drafts")
                .iter()
                .map(|(k, size)| {
                    let d = |i: usize| size[i].as_u64().expect("size") as u32;
                    (k.parse().expect("k"), d(0), d(1))
                })
                .collect(),
        })
        .collect()
}

/// Pillow's pixels, as RGB (a greyscale reference replicated, as `convert("RGB")` does).
fn pillow(name: &str, which: &str) -> RgbImage {
    let path = fixtures().join(format!("turbojpeg/{name}.{which}.png"));
    image::open(&path).expect("reference png").to_rgb8()
}

/// The first difference between two images, for the failure message.
fn first_difference(ours: &RgbImage, theirs: &RgbImage) -> Option<String> {
    if ours.dimensions() != theirs.dimensions() {
        return Some(format!(
            "{:?} vs {:?}",
            ours.dimensions(),
            theirs.dimensions()
        ));
    }
    let count = ours
        .as_raw()
        .iter()
        .zip(theirs.as_raw())
        .filter(|(a, b)| a != b)
        .count();
    ours.enumerate_pixels()
        .find(|(x, y, p)| theirs.get_pixel(*x, *y) != *p)
        .map(|(x, y, p)| {
            let q = theirs.get_pixel(x, y);
            format!("{count} bytes differ, first at ({x}, {y}): {p:?} vs Pillow {q:?}")
        })
}

fn skipped() -> bool {
    if jpeg_decoder() == "libjpeg-turbo" {
        eprintln!("JPEG decoder: {}", jpeg_decoder());
        return false;
    }
    eprintln!(
        "skipped: JPEG decoder is {}; build with --features turbojpeg (needs libturbojpeg0-dev) \
         and leave GLIMPSE_TURBOJPEG unset",
        jpeg_decoder()
    );
    true
}

#[test]
fn full_decode_equals_pillow() {
    if skipped() {
        return;
    }
    let options = DecodeOptions::default();
    for r in references() {
        let bytes = std::fs::read(&r.file).expect("jpeg");
        let ours = decode_bytes(&bytes, &r.file, &options).expect("decode");
        assert_eq!(ours.dimensions(), (r.width, r.height), "{}", r.name);
        if let Some(d) = first_difference(&ours, &pillow(&r.name, "full")) {
            panic!("{}: full decode differs from Pillow: {d}", r.name);
        }
        eprintln!("{}: {}x{} equal to Pillow", r.name, r.width, r.height);
    }
}

#[test]
fn reduced_decode_equals_pillow_draft() {
    if skipped() {
        return;
    }
    let mut scales = Vec::new();
    for r in references() {
        let bytes = std::fs::read(&r.file).expect("jpeg");
        let short = r.width.min(r.height);
        for &(k, dw, dh) in &r.drafts {
            // The smallest side that asks for 1/k; the planner may keep a larger scale when
            // 1/k's rounding would leave the other side short.
            let side = short.div_ceil(k);
            if short < 2 * side {
                continue; // the planner reduces only images at least twice the side asked for
            }
            let options = DecodeOptions {
                reduced_jpeg_min_side: Some(side),
                ..DecodeOptions::default()
            };
            let ours = decode_bytes(&bytes, &r.file, &options).expect("decode");
            let Some(&(got, ..)) = r
                .drafts
                .iter()
                .find(|(_, w, h)| (*w, *h) == ours.dimensions())
            else {
                panic!(
                    "{} asked 1/{k} ({dw}x{dh}): decoded {:?}, no libjpeg scale",
                    r.name,
                    ours.dimensions()
                );
            };
            if let Some(d) = first_difference(&ours, &pillow(&r.name, &format!("draft{got}"))) {
                panic!("{} at 1/{got}: differs from Pillow's draft: {d}", r.name);
            }
            scales.push(got);
        }
    }
    scales.sort();
    scales.dedup();
    eprintln!("scales compared with Pillow's draft: {scales:?}");
    assert_eq!(scales, [2, 4, 8], "every libjpeg scale was exercised");
}

/// A baseline JPEG with its entropy-coded data overwritten from `from` (a fraction of the
/// file) on: TurboJPEG warns or fails, and the pure-Rust decoders decide.
fn damaged(from: f64) -> Vec<u8> {
    let mut bytes = std::fs::read(fixtures().join("images/photo_q90_420.jpg")).expect("jpeg");
    let n = bytes.len();
    let start = (n as f64 * from) as usize;
    for (i, b) in bytes[start..n - 2].iter_mut().enumerate() {
        *b = if i % 7 == 0 { 0xFF } else { (i * 37) as u8 };
    }
    bytes
}

#[test]
fn damaged_and_truncated_jpegs_are_typed_errors_that_do_not_stop_a_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = fixtures().join("images/photo_q90_420.jpg");
    let bytes = std::fs::read(&good).expect("jpeg");
    let truncated = dir.path().join("truncated.jpg");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, damaged(0.3)).expect("write");
    let header_only = dir.path().join("header_only.jpg");
    let mut h = bytes[..bytes.len() / 4].to_vec();
    h.extend_from_slice(&[0xFF, 0xD9]);
    std::fs::write(&header_only, &h).expect("write");
    let pre = Preprocessor::from_dir(fixtures().join("preprocessor-224")).expect("config");
    let paths = [&good, &truncated, &garbage, &header_only, &good];
    let results = pre.preprocess_paths(&paths);
    assert!(results[0].is_ok() && results[4].is_ok(), "{results:?}");
    assert_eq!(results[0].as_ref().ok(), results[4].as_ref().ok());
    match &results[1] {
        Err(Error::ImageDecode { path, message }) => {
            assert_eq!(path, &truncated);
            assert!(message.contains("truncated"), "{message}");
        }
        other => panic!("truncated: {other:?}"),
    }
    // Scan data turned to noise: either decoded (a decoder that tolerates it, as Pillow does
    // with a warning) or an ImageDecode error naming the file; never a panic or another error.
    for (i, path) in [(2, &garbage), (3, &header_only)] {
        match &results[i] {
            Ok(p) => assert_eq!((p.height, p.width), (224, 224)),
            Err(Error::ImageDecode { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{}: {other:?}", path.display()),
        }
    }
    eprintln!(
        "garbage: {}, header only: {}",
        results[2]
            .as_ref()
            .map_or_else(|e| e.to_string(), |_| "decoded".into()),
        results[3]
            .as_ref()
            .map_or_else(|e| e.to_string(), |_| "decoded".into())
    );
}
