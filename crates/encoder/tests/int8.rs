//! `Precision::Int8` (int8 weights, VNNI dot products) against the f32 native engine: it is
//! reported as the precision in use, refused on the burn engine, and its embeddings stay
//! within the cosine bounds of `docs/PERFORMANCE.md` on the tiny fixture, the trained tiny
//! CLIP (`models/glimpse-shapes`) and (ignored by default: not committed) the full-size
//! ViT-B/32 with random weights:
//!
//! ```sh
//! cargo test -p glimpse-encoder --test int8 -- --include-ignored --nocapture
//! ```
//!
//! The bounds sit a little below the values measured on 2026-11-29 (printed by each test).

mod common;

use std::path::{Path, PathBuf};

use common::cosine;
use glimpse_encoder::{ClipEncoder, Device, Engine, Error, LoadOptions, Precision, Preprocessor};
use glimpse_kernels::int8::Int8Kernel;
use glimpse_kernels::Isa;

fn load(dir: &Path, precision: Precision) -> ClipEncoder {
    let options = LoadOptions::default()
        .engine(Engine::Native)
        .precision(precision);
    ClipEncoder::load_with(dir, &Device::flex(), &options).unwrap()
}

/// The smallest cosine between the rows of `a` and `b`.
fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| cosine(x, y))
        .fold(f64::INFINITY, f64::min)
}

fn fixture_photos() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(common::fixtures().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

const TEXTS: [&str; 5] = [
    "a photo of a cat",
    "a dog on the beach at sunset",
    "a small red circle at the top left on a striped background",
    "a big blue star",
    "an extremely long caption that goes on and on about many different things in the \
     picture, the weather, the light, the people and the animals, until it nearly fills the \
     whole context of the text tower",
];

/// Image and text minimum cosines of int8 against f32 for the checkpoint in `dir`.
fn int8_against_f32(dir: &Path) -> (f64, f64) {
    println!(
        "int8 kernels: {:?} (ISA {:?})",
        Int8Kernel::for_isa(Isa::detect()),
        Isa::detect()
    );
    let (f32_, int8) = (load(dir, Precision::F32), load(dir, Precision::Int8));
    // Without VNNI under the cap (GLIMPSE_ISA=portable, a CPU without VNNI) int8 is asked
    // for but f32 runs (`Precision::runs_on`): the cosines below then compare f32 with f32.
    assert_eq!(int8.precision(), Precision::Int8.runs_on(Isa::detect()));
    if int8.precision() != Precision::Int8 {
        println!("int8 falls back to f32 on {:?}: the int8 bounds are not tested here (the kernels' own tests cover the portable int8 loops)", Isa::detect());
    }
    assert_eq!(int8.engine(), Engine::Native);
    assert_eq!(f32_.precision(), Precision::F32);
    let preprocessor = Preprocessor::from_dir(dir).unwrap();
    let pixels: Vec<_> = preprocessor
        .preprocess_paths(&fixture_photos())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let image = min_cosine(
        &f32_.embed_pixels(&pixels).unwrap(),
        &int8.embed_pixels(&pixels).unwrap(),
    );
    let text = min_cosine(
        &f32_.embed_texts(&TEXTS).unwrap(),
        &int8.embed_texts(&TEXTS).unwrap(),
    );
    println!(
        "{}: int8 vs f32, min cosine over {} photos {image:.6}, over {} texts {text:.6}",
        dir.display(),
        pixels.len(),
        TEXTS.len()
    );
    (image, text)
}

#[test]
fn int8_is_refused_on_the_burn_engine() {
    let dir = common::fixtures().join("tiny-clip");
    let options = LoadOptions::default()
        .engine(Engine::Burn)
        .precision(Precision::Int8);
    let err = ClipEncoder::load_with(&dir, &Device::flex(), &options).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[test]
fn int8_tiny_fixture_stays_close_to_f32() {
    let (image, text) = int8_against_f32(&common::fixtures().join("tiny-clip"));
    // Measured 0.99952 and 0.99993.
    assert!(image >= 0.9993, "image cosine {image}");
    assert!(text >= 0.9998, "text cosine {text}");
}

#[test]
fn int8_trained_tiny_clip_stays_close_to_f32() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/glimpse-shapes");
    let (image, text) = int8_against_f32(&dir);
    // Measured 0.99860 and 0.99998 (the issue's bounds: 0.998 for images, 0.999 for text).
    assert!(image >= 0.998, "image cosine {image}");
    assert!(text >= 0.9999, "text cosine {text}");
}

#[test]
#[ignore = "needs the full-size checkpoint from make_fixtures.py --full"]
fn int8_full_size_stays_close_to_f32() {
    let dir = common::full_model_dir();
    if !dir.join("model.safetensors").exists() {
        println!("skipped: no checkpoint at {}", dir.display());
        return;
    }
    let (image, text) = int8_against_f32(&dir);
    // Measured 0.99950 and 0.99951.
    assert!(image >= 0.9993, "image cosine {image}");
    assert!(text >= 0.9993, "text cosine {text}");
}
