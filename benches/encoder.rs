//! Criterion benches of the encoder on ViT-B/32-shaped weights: image batches 1/8/32, texts of
//! 5/20/77 tokens (batch 1), the cold load of the text tower, and decode + preprocess of a
//! 12 MP JPEG (exact and reduced-scale).
//!
//! ```sh
//! python3 scripts/make_fixtures.py --full          # random ViT-B/32, real HF layout (once)
//! cargo bench --bench encoder                      # or GLIMPSE_BENCH_MODEL=<DIR>
//! ```
//!
//! Without a checkpoint only the JPEG benches run. `scripts/bench_encoder.sh` times the same
//! shapes against PyTorch in one run and prints the ratios; figures are in docs/PERFORMANCE.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glimpse_encoder::preprocess::{PreprocessConfig, Preprocessor};
use glimpse_encoder::{Backend, ClipEncoder, Towers};

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GLIMPSE_BENCH_MODEL")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/glimpse/vit-b32-random"))
        })?;
    if dir.join("model.safetensors").exists() {
        Some(dir)
    } else {
        eprintln!(
            "no checkpoint at {} (run scripts/make_fixtures.py --full or set GLIMPSE_BENCH_MODEL): \
             only the JPEG benches run",
            dir.display()
        );
        None
    }
}

/// Deterministic pixel values in [-1, 1] (fixed pattern: no seed to vary).
fn pixels(batch: usize, size: usize) -> Vec<Vec<f32>> {
    (0..batch)
        .map(|b| {
            (0..3 * size * size)
                .map(|i| ((i * 31 + b * 7) % 255) as f32 / 127.5 - 1.0)
                .collect()
        })
        .collect()
}

/// Start token, `n - 2` word ids, end token.
fn tokens(n: usize) -> Vec<u32> {
    let mut ids = vec![49_406u32];
    ids.extend((0..n.saturating_sub(2)).map(|i| 320 + i as u32 * 37));
    ids.push(49_407);
    ids
}

fn encoder(c: &mut Criterion) {
    let Some(dir) = model_dir() else { return };
    let device = Backend::Flex.device().expect("cpu device");
    let enc = ClipEncoder::load(&dir, &device, Towers::Both).expect("load checkpoint");
    let size = enc.image_size();

    let mut g = c.benchmark_group("image_batch");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for batch in [1usize, 8, 32] {
        let input = pixels(batch, size);
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &input, |b, input| {
            b.iter(|| black_box(enc.embed_pixel_values(input).expect("embed")))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("text_tokens");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for n in [5usize, 20, 77] {
        let ids = vec![tokens(n)];
        g.bench_with_input(BenchmarkId::from_parameter(n), &ids, |b, ids| {
            b.iter(|| black_box(enc.embed_token_ids(ids).expect("embed")))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cold_text");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("load_and_first_query", |b| {
        b.iter(|| {
            let enc = ClipEncoder::load(&dir, &device, Towers::TextOnly).expect("load");
            black_box(
                enc.embed_texts(&["a dog on the beach at sunset"])
                    .expect("embed"),
            )
        })
    });
    g.finish();
}

/// A 4000×3000 photo-like JPEG (quality 90): gradients and noise from a fixed xorshift seed.
fn big_jpeg() -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let mut state = 0x9E37_79B9u32;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 21) as f32 - 10.0;
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let base = [
            60.0 + 150.0 * fx,
            40.0 + 120.0 * fy,
            90.0 + 80.0 * (fx * 9.0).sin(),
        ];
        image::Rgb(base.map(|v| (v + n).clamp(0.0, 255.0) as u8))
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode");
    out
}

fn jpeg(c: &mut Criterion) {
    let bytes = big_jpeg();
    let exact = Preprocessor::new(PreprocessConfig::default());
    let reduced = exact.clone().with_reduced_jpeg(2);
    let mut g = c.benchmark_group("jpeg_12mp");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, p) in [("exact", &exact), ("reduced", &reduced)] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(p.preprocess_bytes(&bytes, "12mp.jpg").expect("preprocess")))
        });
    }
    g.finish();
}

criterion_group!(benches, jpeg, encoder);
criterion_main!(benches);
