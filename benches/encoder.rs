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

mod common;

use common::{big_jpeg, pixels, tokens};
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
