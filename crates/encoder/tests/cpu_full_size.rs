//! bf16 against f32 on the full-size ViT-B/32 checkpoint (random weights, see `full_size.rs`
//! for how it is made; not committed). Ignored by default; run with
//!
//! ```sh
//! cargo test -p glimpse-encoder --test cpu_full_size -- --ignored --nocapture
//! ```
//!
//! `GLIMPSE_FULL_MODEL` overrides the directory (default `/root/.cache/glimpse/vit-b32-random`).

mod common;

use common::cosine;

use std::path::PathBuf;

use glimpse_encoder::{ClipEncoder, Device, Engine, LoadOptions, Precision, Preprocessor};

#[test]
#[ignore = "needs the full-size checkpoint from make_fixtures.py --full"]
fn full_size_bf16_stays_close_to_f32() {
    let dir = common::full_model_dir();
    let device = Device::flex();
    let load = |options: LoadOptions| ClipEncoder::load_with(&dir, &device, &options).unwrap();
    let f32_ = load(LoadOptions::default().engine(Engine::Native));
    let bf16 = load(LoadOptions::default().precision(Precision::Bf16));

    let mut paths: Vec<PathBuf> = std::fs::read_dir(common::fixtures().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let preprocessor = Preprocessor::from_dir(&dir).unwrap();
    let pixels: Vec<_> = preprocessor
        .preprocess_paths(&paths)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let (a, b) = (
        f32_.embed_pixels(&pixels).unwrap(),
        bf16.embed_pixels(&pixels).unwrap(),
    );
    let min_image = a
        .iter()
        .zip(&b)
        .map(|(x, y)| cosine(x, y))
        .fold(f64::INFINITY, f64::min);

    let texts = [
        "a photo of a cat",
        "a dog on the beach at sunset",
        "a red circle on a blue background",
        "an extremely long caption that goes on and on about many different things in the \
         picture, the weather, the light, the people and the animals, until it nearly fills \
         the whole context of the text tower",
    ];
    let (a, b) = (
        f32_.embed_texts(&texts).unwrap(),
        bf16.embed_texts(&texts).unwrap(),
    );
    let min_text = a
        .iter()
        .zip(&b)
        .map(|(x, y)| cosine(x, y))
        .fold(f64::INFINITY, f64::min);
    println!(
        "full-size bf16 vs f32: {} images min cosine {min_image:.6}, {} texts min cosine {min_text:.6}",
        pixels.len(),
        texts.len()
    );
    assert!(min_image >= 0.999 && min_text >= 0.999);
}
