//! End-to-end parity on a full-size ViT-B/32 checkpoint (random weights in the exact layout of
//! openai/clip-vit-base-patch32), made by `scripts/make_fixtures.py --full` and not committed
//! (600 MB). Ignored by default; run with
//!
//! ```sh
//! python scripts/make_fixtures.py --full --skip-committed   # once
//! cargo test -p glimpse-encoder --test full_size -- --ignored --nocapture
//! ```
//!
//! `GLIMPSE_FULL_MODEL` overrides the directory (default `/root/.cache/glimpse/vit-b32-random`);
//! `GLIMPSE_FULL_BACKEND=wgpu` (with `--features wgpu`) runs it on the GPU backend.
//! Unlike `model_parity`, images go through the whole pipeline (decode, preprocess, encode).

mod common;

use common::cosine;

use std::path::PathBuf;
use std::time::Instant;

use common::read_safetensors;
use glimpse_encoder::{Backend, ClipConfig, ClipEncoder, Preprocessor, Towers};

#[test]
#[ignore = "needs the full-size checkpoint from make_fixtures.py --full"]
fn full_size_vit_b32_matches_reference() {
    let dir = common::full_model_dir();
    let config = ClipConfig::from_file(dir.join("config.json")).unwrap();
    assert_eq!(
        config,
        ClipConfig::vit_b32(),
        "the vit_b32 preset mirrors the config"
    );

    let reference = read_safetensors(&dir.join("reference/reference.safetensors"));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference/reference.json")).unwrap(),
    )
    .unwrap();
    // GLIMPSE_FULL_BACKEND=wgpu (with `--features wgpu`) runs the same check on the GPU backend.
    let backend: Backend = std::env::var("GLIMPSE_FULL_BACKEND")
        .unwrap_or_else(|_| "cpu".into())
        .parse()
        .unwrap();
    let device = backend.device().unwrap();
    println!("backend: {backend}");

    let t = Instant::now();
    let encoder = ClipEncoder::load(&dir, &device, Towers::Both).unwrap();
    println!("load both towers: {:?}", t.elapsed());
    let t = Instant::now();
    drop(ClipEncoder::load(&dir, &device, Towers::TextOnly).unwrap());
    println!("load text tower only: {:?}", t.elapsed());

    let images: Vec<(String, PathBuf)> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let file = PathBuf::from(i["file"].as_str().unwrap());
            // The reference stores absolute paths of the fixture images; fall back to this
            // checkout's copy.
            let file = if file.exists() {
                file
            } else {
                common::fixtures()
                    .join("images")
                    .join(file.file_name().unwrap())
            };
            (i["name"].as_str().unwrap().to_owned(), file)
        })
        .collect();
    let preprocessor = Preprocessor::from_dir(&dir).unwrap();
    let paths: Vec<&PathBuf> = images.iter().map(|(_, p)| p).collect();
    let pixels: Vec<_> = preprocessor
        .preprocess_paths(&paths)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let t = Instant::now();
    let first = encoder.embed_pixels(&pixels[..1]).unwrap();
    println!("1 image (batch 1): {:?}", t.elapsed());
    let t = Instant::now();
    let embeds = encoder.embed_pixels(&pixels).unwrap();
    let n = pixels.len();
    println!(
        "{n} images (one batch): {:?}, {:.1} ms/image",
        t.elapsed(),
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    );
    assert!(cosine(&first[0], &embeds[0]) > 0.99999);
    // JPEG decoding is not bit-exact across decoders (the `image` crate's vs libjpeg-turbo in
    // Pillow: chroma upsampling and IDCT rounding), so JPEG inputs reach the model slightly
    // different and get a looser bar; every other format decodes exactly and must meet the
    // model's own bar.
    let mut min = f64::INFINITY;
    for ((name, path), e) in images.iter().zip(&embeds) {
        let c = cosine(e, &reference[&format!("image_embeds.{name}")].f32());
        let jpeg = path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg"));
        println!(
            "  image {name}: cosine {c:.9}{}",
            if jpeg { " (JPEG)" } else { "" }
        );
        if jpeg {
            assert!(c >= 0.9999, "JPEG image {name}: cosine {c}");
        } else {
            min = min.min(c);
        }
    }
    println!(
        "full-size images (non-JPEG): min cosine {min:.10} (1 - cos = {:.1e})",
        1.0 - min
    );

    let ids: Vec<Vec<u32>> = json["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    let texts: Vec<&str> = json["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        encoder.tokenizer().unwrap().encode_batch(&texts).unwrap(),
        ids
    );
    let t = Instant::now();
    let one = encoder.embed_token_ids(&ids[..1]).unwrap();
    println!("1 text of {} tokens: {:?}", ids[0].len(), t.elapsed());
    let t = Instant::now();
    let embeds = encoder.embed_token_ids(&ids).unwrap();
    println!(
        "{} texts (one batch, longest {} tokens): {:?}",
        ids.len(),
        ids.iter().map(Vec::len).max().unwrap(),
        t.elapsed()
    );
    assert!(cosine(&one[0], &embeds[0]) > 0.99999);
    let mut min_text = f64::INFINITY;
    for (i, e) in embeds.iter().enumerate() {
        let c = cosine(e, &reference[&format!("text_embeds.{i}")].f32());
        println!("  text {i}: cosine {c:.9}");
        min_text = min_text.min(c);
    }
    println!(
        "full-size texts: min cosine {min_text:.10} (1 - cos = {:.1e})",
        1.0 - min_text
    );
    assert!(
        min >= 0.99999 && min_text >= 0.99999,
        "images {min}, texts {min_text}"
    );
}
