//! Trains the small demo CLIP (`models/glimpse-shapes/`) from scratch on synthetic captioned
//! pictures, on the CPU, and measures text→image recall on held-out pictures.
//!
//! ```text
//! cargo run --release -p glimpse-train --example train -- --out models/glimpse-shapes
//! cargo run --release -p glimpse-train --example train -- --eval-only models/glimpse-shapes
//! cargo run --release -p glimpse-train --example train -- --distill --out models/glimpse-shapes-zh
//! ```
//!
//! `--distill` trains a Chinese (and English) query tower into the space of `--teacher`
//! instead ([`distill`]).
//!
//! Steps: generate the training pictures ([`glimpse_synth`]) into a folder with a
//! `captions.tsv`; train a tiny ViT + tiny text transformer (the real CLIP vocabulary and
//! tokenizer) with the contrastive objective; export a Hugging Face checkpoint; reload it through
//! the normal loader and rank freshly generated validation pictures (balanced over every colour
//! × shape) for each query "a red circle", "a blue star", ...: recall@k is the fraction of
//! queries with at least one picture of that colour and shape among the top k.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::{
    Activation, ClipConfig, ClipModel, ClipTextConfig, ClipTokenizer, ClipVisionConfig, Device,
    Preprocessor, Towers,
};
use glimpse_synth::{self as synth, Format};
use glimpse_train::{Dataset, SaveDType, TrainConfig, Trainer};

mod distill;

#[derive(Parser, Debug)]
#[command(about = "Train the small demo CLIP on synthetic shapes and measure its recall")]
struct Args {
    /// Where to write the trained checkpoint (default: models/glimpse-shapes, with
    /// `--distill` models/glimpse-shapes-zh).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue training from this Hugging Face checkpoint (e.g. a previous run's output)
    /// instead of starting from scratch; the model-size options are then ignored.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Only evaluate this checkpoint (no training).
    #[arg(long)]
    eval_only: Option<PathBuf>,
    /// Folder for the generated pictures (train/ and validation/).
    #[arg(long, default_value = "target/glimpse-shapes-data")]
    data: PathBuf,
    /// Number of training pictures.
    #[arg(long, default_value_t = 12000)]
    train_images: usize,
    /// Number of validation pictures (balanced over the 48 colour × shape queries).
    #[arg(long, default_value_t = 480)]
    val_images: usize,
    /// Optimiser steps (default: 3670, with `--distill` 1000).
    #[arg(long)]
    steps: Option<usize>,
    /// Pairs per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Peak learning rate (default: 2e-3, with `--distill` 1e-3).
    #[arg(long)]
    lr: Option<f64>,
    /// Warm-up steps.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Seed of the data, the weights and the batch order.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Width of the vision transformer.
    #[arg(long, default_value_t = 64)]
    vision_width: usize,
    /// Layers of the vision transformer.
    #[arg(long, default_value_t = 3)]
    vision_layers: usize,
    /// Width of the text transformer.
    #[arg(long, default_value_t = 32)]
    text_width: usize,
    /// Layers of the text transformer.
    #[arg(long, default_value_t = 2)]
    text_layers: usize,
    /// Side of the model's input in pixels.
    #[arg(long, default_value_t = 48)]
    image_size: usize,
    /// Patch side in pixels.
    #[arg(long, default_value_t = 8)]
    patch: usize,
    /// Width of the shared embedding space.
    #[arg(long, default_value_t = 64)]
    projection: usize,
    /// Store the weights as f32 instead of f16.
    #[arg(long)]
    f32: bool,
    /// Draw every batch from this many colours (hard negatives: pictures that share a colour
    /// differ in shape, size, position, background); 0 draws batches uniformly.
    #[arg(long, default_value_t = 2)]
    colours_per_batch: usize,
    /// Train for about this many seconds instead of a fixed number of steps: the warm-up runs
    /// first, its step time sets the total (printed, so that `--steps` can repeat the run
    /// exactly), capped at `--steps`.
    #[arg(long)]
    time_budget: Option<f64>,
    /// The tokenizer of a from-scratch model (CLIP's BPE vocabulary); by default the test
    /// fixture's.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Print a progress line every this many steps.
    #[arg(long, default_value_t = 25)]
    log_every: usize,
    /// Distil a multilingual query tower (Chinese and English captions → the teacher's
    /// embeddings of the English captions) instead of training a CLIP.
    #[arg(long)]
    distill: bool,
    /// With `--distill`: the CLIP whose text tower is the teacher and whose image tower the
    /// evaluation uses.
    #[arg(long, default_value = "models/glimpse-shapes")]
    teacher: PathBuf,
    /// With `--distill`: the folder with the tower's `tokenizer.json` and
    /// `tokenizer_config.json` (made by `scripts/make_zh_vocab.py`).
    #[arg(long, default_value = "models/glimpse-shapes-zh")]
    vocab: PathBuf,
    /// With `--distill`: the student's width.
    #[arg(long, default_value_t = 128)]
    student_width: usize,
    /// With `--distill`: the student's layers.
    #[arg(long, default_value_t = 4)]
    student_layers: usize,
    /// With `--distill`: train on the Chinese captions only (by default the English ones
    /// too, so that the tower answers both languages).
    #[arg(long)]
    chinese_only: bool,
}

impl Args {
    fn out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            PathBuf::from(if self.distill {
                "models/glimpse-shapes-zh"
            } else {
                "models/glimpse-shapes"
            })
        })
    }

    fn steps(&self) -> usize {
        self.steps.unwrap_or(if self.distill { 1000 } else { 3670 })
    }

    fn lr(&self) -> f64 {
        self.lr.unwrap_or(if self.distill { 1e-3 } else { 2e-3 })
    }
}

fn model_config(args: &Args) -> ClipConfig {
    ClipConfig {
        text_config: ClipTextConfig {
            hidden_size: args.text_width,
            intermediate_size: 4 * args.text_width,
            num_hidden_layers: args.text_layers,
            num_attention_heads: (args.text_width / 16).max(1),
            hidden_act: Activation::QuickGelu,
            ..ClipTextConfig::default()
        },
        vision_config: ClipVisionConfig {
            hidden_size: args.vision_width,
            intermediate_size: 4 * args.vision_width,
            num_hidden_layers: args.vision_layers,
            num_attention_heads: (args.vision_width / 16).max(1),
            image_size: args.image_size,
            patch_size: args.patch,
            hidden_act: Activation::QuickGelu,
            ..ClipVisionConfig::default()
        },
        projection_dim: args.projection,
        logit_scale_init_value: 2.6592,
    }
}

/// Text→image recall@1 and @5 of `model_dir` on `val_images` freshly generated pictures.
fn evaluate(model_dir: &Path, data: &Path, val_images: usize, seed: u64) -> Result<(f64, f64)> {
    let device = Device::flex();
    let config = ClipConfig::from_file(model_dir.join("config.json"))?;
    let model = Checkpoint::open_dir(model_dir)?.load_model(&config, Towers::Both, &device)?;
    let tokenizer = ClipTokenizer::from_dir(model_dir)?;
    let pre = Preprocessor::from_dir(model_dir)?;

    // Validation pictures: a seed the training set never uses, written as files and read back
    // through the checkpoint's own preprocessing, as the library does.
    let dir = data.join("validation");
    let specs = synth::balanced_specs(val_images, seed.wrapping_add(1_000_003));
    let samples = synth::generate_specs(&dir, &specs, seed, synth::DEFAULT_SIZE, Format::Png)?;
    let image_embeddings = embed_images(&model, &pre, &samples, &device)?;
    let queries = synth::queries();
    let texts: Vec<&str> = queries.iter().map(|(q, _, _)| q.as_str()).collect();
    let ids = tokenizer.encode_batch(&texts)?;
    let text_embeddings: Vec<f32> = model
        .encode_texts(&ids)?
        .into_data()
        .try_into_vec()
        .unwrap();
    Ok(recall(
        &image_embeddings,
        &samples,
        &text_embeddings,
        &queries,
        config.projection_dim,
    ))
}

/// Text→image recall@1 and @5 of `queries` (embedded as `query_embeddings`) over the pictures
/// `samples` (embedded as `image_embeddings`), printing each query's first relevant rank: a
/// query succeeds at k when a picture of its colour and shape is among the top k.
fn recall(
    image_embeddings: &[f32],
    samples: &[synth::Sample],
    query_embeddings: &[f32],
    queries: &[(String, synth::Colour, synth::Shape)],
    dim: usize,
) -> (f64, f64) {
    let (mut hits1, mut hits5) = (0usize, 0usize);
    for (q, (query, colour, shape)) in queries.iter().enumerate() {
        let t = &query_embeddings[q * dim..(q + 1) * dim];
        let mut scored: Vec<(f32, usize)> = image_embeddings
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, e)| (e.iter().zip(t).map(|(a, b)| a * b).sum(), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let relevant =
            |i: usize| samples[i].spec.colour == *colour && samples[i].spec.shape == *shape;
        let rank = scored.iter().position(|&(_, i)| relevant(i));
        if rank == Some(0) {
            hits1 += 1;
        }
        if rank.is_some_and(|r| r < 5) {
            hits5 += 1;
        }
        let top: Vec<String> = scored[..3]
            .iter()
            .map(|&(s, i)| {
                format!(
                    "{} {} ({s:.2})",
                    samples[i].spec.colour, samples[i].spec.shape
                )
            })
            .collect();
        println!(
            "  {query:<22} first relevant at rank {:>3}   top: {}",
            rank.map_or(0, |r| r + 1),
            top.join(", ")
        );
    }
    let n = queries.len() as f64;
    (hits1 as f64 / n, hits5 as f64 / n)
}

fn embed_images(
    model: &ClipModel,
    pre: &Preprocessor,
    samples: &[synth::Sample],
    device: &Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for chunk in samples.chunks(64) {
        let paths: Vec<&Path> = chunk.iter().map(|s| s.path.as_path()).collect();
        let pixels = pre
            .preprocess_paths(&paths)
            .into_iter()
            .collect::<glimpse_encoder::Result<Vec<_>>>()?;
        let [c, h, w] = pixels[0].shape();
        let flat: Vec<f32> = pixels.into_iter().flat_map(|p| p.data).collect();
        let tensor = burn::tensor::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(flat, [chunk.len(), c, h, w]),
            device,
        );
        let e: Vec<f32> = model
            .encode_images(tensor)?
            .into_data()
            .try_into_vec()
            .unwrap();
        out.extend(e);
    }
    Ok(out)
}

/// Endless batches, each drawn from `colours_per_batch` random colours in equal parts: once
/// colour is learnt, uniformly drawn batches hold few pictures of the same colour, so little of
/// the loss is about shape; these batches keep shape (and the rest) the thing to tell apart.
fn colour_batches(specs: &[synth::Spec], args: &Args) -> impl Iterator<Item = Vec<usize>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    let by_colour: Vec<Vec<usize>> = synth::Colour::ALL
        .iter()
        .map(|&c| (0..specs.len()).filter(|&i| specs[i].colour == c).collect())
        .collect();
    let k = args.colours_per_batch.clamp(1, by_colour.len());
    let per_colour = (args.batch_size / k).max(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x0BA7_C4E5);
    std::iter::from_fn(move || {
        let colours: Vec<&Vec<usize>> = by_colour.choose_multiple(&mut rng, k).collect();
        let mut batch = Vec::with_capacity(per_colour * k);
        for pool in colours {
            batch.extend(pool.choose_multiple(&mut rng, per_colour).copied());
        }
        Some(batch)
    })
}

/// Uniformly drawn batches: a shuffled pass over the pictures, reshuffled each epoch.
fn uniform_batches(len: usize, args: &Args) -> impl Iterator<Item = Vec<usize>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x0BA7_C4E5);
    let batch = args.batch_size.min(len);
    let mut order: Vec<usize> = (0..len).collect();
    let mut next = len;
    std::iter::from_fn(move || {
        if next + batch > len {
            order.shuffle(&mut rng);
            next = 0;
        }
        next += batch;
        Some(order[next - batch..next].to_vec())
    })
}

/// Keeps freed memory in the process (glibc): burn allocates and frees every intermediate
/// tensor of every step, and with glibc's defaults the larger ones go back to the kernel each
/// time and come back as fresh zeroed pages, page faults that cost about a fifth of a step.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_TOP_PAD: i32 = -2;
    const M_MMAP_THRESHOLD: i32 = -3;
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
        mallopt(M_TOP_PAD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> Result<()> {
    keep_freed_memory();
    let args = Args::parse();
    if args.distill {
        return distill::run(&args);
    }
    if let Some(dir) = &args.eval_only {
        let (r1, r5) = evaluate(dir, &args.data, args.val_images, args.seed)?;
        println!(
            "recall@1 {r1:.3}  recall@5 {r5:.3}  ({} queries)",
            synth::queries().len()
        );
        return Ok(());
    }

    let started = Instant::now();
    let train_dir = args.data.join("train");
    let specs = synth::random_specs(args.train_images, args.seed);
    synth::generate_specs(
        &train_dir,
        &specs,
        args.seed,
        synth::DEFAULT_SIZE,
        Format::Png,
    )
    .context("generating the training pictures")?;
    let data = Dataset::from_folder(&train_dir)?;
    println!(
        "{} training pictures in {} ({:.1} s)",
        data.len(),
        train_dir.display(),
        started.elapsed().as_secs_f64()
    );

    let tokenizer = args.tokenizer.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../encoder/tests/fixtures/tiny-clip/tokenizer.json")
    });
    let config = TrainConfig {
        steps: args.steps(),
        batch_size: args.batch_size,
        learning_rate: args.lr(),
        warmup_steps: args.warmup,
        seed: args.seed,
        ..TrainConfig::default()
    };
    println!("{config:?}");
    let clip = model_config(&args);
    let mut trainer = match &args.init {
        Some(dir) => Trainer::fine_tune(dir, config, &Device::flex())?,
        None => Trainer::from_scratch(clip, &tokenizer, config, &Device::flex())?,
    };
    let training = Instant::now();
    let mut window = Vec::new();
    let on_step = |report: &glimpse_train::StepReport| {
        window.push((report.loss, report.accuracy));
        if report.step.is_multiple_of(args.log_every) || report.step == report.steps {
            let n = window.len() as f32;
            let loss = window.iter().map(|w| w.0).sum::<f32>() / n;
            let acc = window.iter().map(|w| w.1).sum::<f32>() / n;
            window.clear();
            println!(
                "{report}  | mean loss {loss:.4} acc {acc:.3}  | {:.0} s",
                training.elapsed().as_secs_f64()
            );
        }
    };
    let mut batches: Box<dyn Iterator<Item = Vec<usize>>> = if args.colours_per_batch == 0 {
        Box::new(uniform_batches(data.len(), &args))
    } else {
        Box::new(colour_batches(&specs, &args))
    };
    match args.time_budget {
        None => trainer.train_batches(&data, &mut batches, on_step)?,
        Some(budget) => {
            // Warm-up first (its learning rates do not depend on the total), timing its second
            // half; then as many steps as the rest of the budget allows.
            let warmup = args.warmup.clamp(2, args.steps());
            trainer.set_steps(warmup);
            let mut timed = Vec::new();
            let mut on_step = on_step;
            trainer.train_batches(&data, &mut batches, |report| {
                if report.step > warmup / 2 {
                    timed.push(report.elapsed.as_secs_f64());
                }
                on_step(report);
            })?;
            let per_step = timed.iter().sum::<f64>() / timed.len().max(1) as f64;
            let left = budget - training.elapsed().as_secs_f64();
            let total = (warmup + (left / per_step).max(0.0) as usize).min(args.steps());
            println!("{per_step:.3} s per step: {total} steps in all (rerun with --steps {total})");
            trainer.set_steps(total);
            trainer.train_batches(&data, &mut batches, on_step)?;
        }
    }
    let train_secs = training.elapsed().as_secs_f64();
    let dtype = if args.f32 {
        SaveDType::F32
    } else {
        SaveDType::F16
    };
    let out = args.out();
    trainer.export(&out, dtype)?;
    println!(
        "trained {} steps in {train_secs:.0} s; saved {}",
        trainer.step_count(),
        out.display()
    );

    let (r1, r5) = evaluate(&out, &args.data, args.val_images, args.seed)?;
    println!(
        "recall@1 {r1:.3}  recall@5 {r5:.3}  ({} queries, {} validation pictures); total {:.0} s",
        synth::queries().len(),
        args.val_images,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
