//! The retrieval effect of a reduced precision (`int8` or `bf16`) against f32: the same
//! checkpoint loaded twice, the same pictures and queries embedded by both, and per query the
//! overlap of the two top-10 lists (and whether the first hit is the same), plus the cosines
//! of the embeddings themselves.
//!
//! Pictures: `--pictures N` synthetic pictures from `glimpse_synth` (seed 7), plus every image
//! of `crates/encoder/tests/fixtures/images` (the parity photos). Queries: the 48 colour ×
//! shape queries of `glimpse_synth::queries`, each searched over the images embedded at both
//! precisions (image-side effect), and over the f32 images with both query precisions
//! (query-side effect: what an f32 index queried with int8 text sees).
//!
//! ```sh
//! # the trained tiny CLIP (meaningful rankings)
//! cargo run --example int8_retrieval -- --model models/glimpse-shapes --pictures 1000
//! # full-size ViT-B/32 shapes with random weights (speed; rankings are arbitrary but stable)
//! cargo run --example int8_retrieval -- --model ~/.cache/glimpse/vit-b32-random --pictures 200
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use glimpse_encoder::{ClipEncoder, Device, Engine, LoadOptions, Precision, Preprocessor};

/// Compare retrieval at a reduced precision with f32.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Checkpoint directory (Hugging Face layout).
    #[arg(long, default_value = "models/glimpse-shapes")]
    model: PathBuf,
    /// Synthetic pictures to add to the fixture photos.
    #[arg(long, default_value_t = 500)]
    pictures: usize,
    /// The precision compared with f32: int8 or bf16.
    #[arg(long, default_value = "int8")]
    precision: String,
    /// Hits compared per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn top(query: &[f32], images: &[Vec<f32>], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = images
        .iter()
        .enumerate()
        .map(|(i, e)| (cosine(query, e), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, i)| i).collect()
}

/// Mean top-k overlap (fraction) and the share of queries whose first hit agrees.
fn compare(
    queries: (&[Vec<f32>], &[Vec<f32>]),
    images: (&[Vec<f32>], &[Vec<f32>]),
    k: usize,
) -> (f64, f64, usize) {
    let (mut overlap, mut first, mut identical) = (0.0, 0.0, 0);
    for (qa, qb) in queries.0.iter().zip(queries.1) {
        let (ta, tb) = (top(qa, images.0, k), top(qb, images.1, k));
        let shared = ta.iter().filter(|i| tb.contains(i)).count();
        overlap += shared as f64 / k as f64;
        first += f64::from(u8::from(ta[0] == tb[0]));
        identical += usize::from(ta == tb);
    }
    let n = queries.0.len() as f64;
    (overlap / n, first / n, identical)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let precision = match args.precision.as_str() {
        "int8" => Precision::Int8,
        "bf16" => Precision::Bf16,
        other => bail!("--precision {other}: int8 or bf16"),
    };
    let device = Device::flex();
    let load = |p: Precision| {
        ClipEncoder::load_with(
            &args.model,
            &device,
            &LoadOptions::default().engine(Engine::Native).precision(p),
        )
        .with_context(|| format!("loading {}", args.model.display()))
    };
    let (reference, reduced) = (load(Precision::F32)?, load(precision)?);
    eprintln!(
        "model {}, {:?} against {:?}, rayon threads {}",
        args.model.display(),
        reduced.precision(),
        reference.precision(),
        rayon::current_num_threads()
    );

    let preprocessor = Preprocessor::from_dir(&args.model)?;
    let mut pixels = Vec::new();
    let fixtures = PathBuf::from("crates/encoder/tests/fixtures/images");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .with_context(|| format!("reading {}", fixtures.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    for r in preprocessor.preprocess_paths(&paths) {
        pixels.push(r?);
    }
    let photos = pixels.len();
    for spec in glimpse_synth::random_specs(args.pictures, 7) {
        let img = glimpse_synth::render(&spec, glimpse_synth::DEFAULT_SIZE);
        pixels.push(preprocessor.preprocess_rgb8(&img));
    }
    let t = Instant::now();
    let images_f32 = reference.embed_pixels(&pixels)?;
    let t_f32 = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let images_red = reduced.embed_pixels(&pixels)?;
    let t_red = t.elapsed().as_secs_f64();

    let texts: Vec<String> = glimpse_synth::queries()
        .into_iter()
        .map(|(q, _, _)| q)
        .collect();
    let queries_f32 = reference.embed_texts(&texts)?;
    let queries_red = reduced.embed_texts(&texts)?;

    let cos = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        let c: Vec<f64> = a.iter().zip(b).map(|(x, y)| cosine(x, y)).collect();
        let min = c.iter().copied().fold(f64::INFINITY, f64::min);
        (min, c.iter().sum::<f64>() / c.len() as f64)
    };
    let (img_min, img_mean) = cos(&images_f32, &images_red);
    let (txt_min, txt_mean) = cos(&queries_f32, &queries_red);
    let k = args.k.min(pixels.len());
    let both = compare((&queries_f32, &queries_red), (&images_f32, &images_red), k);
    let images_only = compare((&queries_f32, &queries_f32), (&images_f32, &images_red), k);
    let queries_only = compare((&queries_f32, &queries_red), (&images_f32, &images_f32), k);
    // The query side over the parity photos alone (the fixture images).
    let photos_only = compare(
        (&queries_f32, &queries_red),
        (&images_f32[..photos], &images_f32[..photos]),
        k.min(photos),
    );
    let same_sets = queries_f32
        .iter()
        .zip(&queries_red)
        .filter(|(a, b)| {
            let (mut x, mut y) = (
                top(a, &images_f32[..photos], k.min(photos)),
                top(b, &images_f32[..photos], k.min(photos)),
            );
            x.sort_unstable();
            y.sort_unstable();
            x == y
        })
        .count();
    println!(
        "{{\"model\":{:?},\"precision\":\"{}\",\"images\":{},\"photos\":{photos},\"queries\":{},\
         \"k\":{k},\"image_cos_min\":{img_min:.5},\"image_cos_mean\":{img_mean:.5},\
         \"text_cos_min\":{txt_min:.5},\"text_cos_mean\":{txt_mean:.5},\
         \"overlap_both\":{:.4},\"first_hit_both\":{:.4},\"identical_both\":{},\
         \"overlap_images\":{:.4},\"overlap_queries\":{:.4},\"identical_queries\":{},\
         \"photos_overlap_queries\":{:.4},\"photos_identical_queries\":{},\"photos_same_sets\":{same_sets},\
         \"image_s_f32\":{t_f32:.2},\"image_s_reduced\":{t_red:.2}}}",
        args.model.display().to_string(),
        args.precision,
        pixels.len(),
        texts.len(),
        both.0,
        both.1,
        both.2,
        images_only.0,
        queries_only.0,
        queries_only.2,
        photos_only.0,
        photos_only.2,
    );
    Ok(())
}
