//! Times the encoder on the shapes that matter (image batches, text lengths, the cold start of
//! a query process, large-JPEG preprocessing) and prints one JSON object per measurement, the
//! same fields that `scripts/bench_pytorch.py` prints, so `scripts/bench_encoder.sh` can set
//! them side by side.
//!
//! ```sh
//! # CPU, a ViT-B/32 checkpoint (scripts/make_fixtures.py --full writes a random one)
//! cargo run --release --example encoder_bench -- --model ~/.cache/glimpse/vit-b32-random
//! # GPU (feature wgpu): random ViT-B/32 weights made in memory, large batches
//! cargo run --release --features wgpu --example encoder_bench -- --device wgpu \
//!     --random vit-b32 --images 64,128,256 --cases image
//! ```
//!
//! Each figure is the median of `--reps` timed runs after warm-up runs. Rows:
//! `{"case":"image","batch":32,"ms_per_item":..,"items_per_s":..,"cpu_ms_per_item":..,"runs":..}`
//! (`cpu_ms_per_item`: process CPU time, all threads, per item; what load inflates least);
//! `text` rows carry
//! `tokens` (batch 1); `cold_text` is load + first query in this process; `jpeg` rows time
//! decoding + preprocessing one 12 MP JPEG (`exact` or `reduced`).

#[path = "../benches/common/mod.rs"]
mod inputs;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::prelude::*;
use clap::Parser;
use glimpse_encoder::preprocess::{PreprocessConfig, Preprocessor};
use glimpse_encoder::{
    Backend, ClipConfig, ClipEncoder, ClipModel, Engine, LoadOptions, Precision, Towers,
};

/// Time the CLIP encoder.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Checkpoint directory (Hugging Face layout).
    #[arg(long, conflicts_with = "random")]
    model: Option<PathBuf>,
    /// Instead of a checkpoint, random weights of this preset: vit-b32, vit-b16, vit-l14.
    #[arg(long)]
    random: Option<String>,
    /// Compute backend: cpu (flex) or wgpu.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Precision of the native CPU path: f32, bf16 or int8.
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Implementation: auto (native CPU path where it applies), native or burn.
    #[arg(long, default_value = "auto")]
    engine: String,
    /// Image batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    images: Vec<usize>,
    /// Text lengths in tokens (start and end tokens included), batch 1.
    #[arg(long, value_delimiter = ',', default_value = "5,20,77")]
    texts: Vec<usize>,
    /// What to time: image, text, cold_text, jpeg.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "cold_text,image,text,jpeg"
    )]
    cases: Vec<String>,
    /// Timed runs per figure (the median is printed).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Untimed runs before timing (kernel compilation, autotuning, caches).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
}

/// A model to time: a loaded checkpoint (the library's path) or random weights.
#[allow(clippy::large_enum_variant)] // one value per run
enum Subject {
    Checkpoint(ClipEncoder),
    Random(Box<ClipModel>, Device),
}

impl Subject {
    fn images(&self, batch: usize, size: usize) -> anyhow::Result<()> {
        let values = inputs::pixels(batch, size);
        match self {
            Subject::Checkpoint(enc) => {
                enc.embed_pixel_values(&values)?;
            }
            Subject::Random(model, device) => {
                let flat: Vec<f32> = values.concat();
                let pixels =
                    Tensor::<4>::from_data(TensorData::new(flat, [batch, 3, size, size]), device);
                let out = model.encode_images(pixels)?;
                // Wait for the device: the data must reach the host.
                let _ = out.into_data();
            }
        }
        Ok(())
    }

    fn text(&self, tokens: usize) -> anyhow::Result<()> {
        let ids = inputs::tokens(tokens);
        match self {
            Subject::Checkpoint(enc) => {
                enc.embed_token_ids(&[ids])?;
            }
            Subject::Random(model, _) => {
                let _ = model.encode_texts(&[ids])?.into_data();
            }
        }
        Ok(())
    }
}

/// CPU milliseconds this process has used, all threads (`CLOCK_PROCESS_CPUTIME_ID`; 0 where
/// unavailable). On a machine shared with other work, CPU time is what load inflates least.
fn cpu_ms() -> f64 {
    #[cfg(unix)]
    {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec for the call to fill.
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0 {
            return t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6;
        }
    }
    0.0
}

/// (median wall ms, mean CPU ms) of `reps` timed runs after `warmup` untimed ones.
fn median_ms(
    reps: usize,
    warmup: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(f64, f64)> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(reps);
    let cpu = cpu_ms();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = (cpu_ms() - cpu) / times.len() as f64;
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], cpu))
}

/// One JSON row; `cpu_ms_per_item` is process CPU time (all threads) per item.
fn row(case: &str, key: &str, value: usize, (ms_total, cpu): (f64, f64), per: usize, reps: usize) {
    let ms = ms_total / per as f64;
    let cpu = cpu / per as f64;
    println!(
        "{{\"case\":\"{case}\",\"{key}\":{value},\"ms_per_item\":{ms:.3},\"items_per_s\":{:.2},\"cpu_ms_per_item\":{cpu:.3},\"runs\":{reps}}}",
        1e3 / ms
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend: Backend = args
        .device
        .parse()
        .map_err(|e| anyhow::anyhow!("--device {}: {e}", args.device))?;
    let device = backend.device()?;
    eprintln!(
        "backend {}, rayon threads {}",
        backend.name(),
        rayon::current_num_threads()
    );
    let wants = |c: &str| args.cases.iter().any(|x| x == c);
    let precision = match args.precision.as_str() {
        "f32" => Precision::F32,
        "bf16" => Precision::Bf16,
        "int8" => Precision::Int8,
        other => bail!("--precision {other}: f32, bf16 or int8"),
    };
    let engine = match args.engine.as_str() {
        "auto" => Engine::Auto,
        "native" => Engine::Native,
        "burn" => Engine::Burn,
        other => bail!("--engine {other}: auto, native or burn"),
    };
    let options = |towers| {
        LoadOptions::default()
            .towers(towers)
            .precision(precision)
            .engine(engine)
    };

    if wants("cold_text") {
        let Some(dir) = &args.model else {
            bail!("cold_text needs --model (it times loading a checkpoint)");
        };
        let t = Instant::now();
        let enc = ClipEncoder::load_with(dir, &device, &options(Towers::TextOnly))?;
        let load = t.elapsed().as_secs_f64() * 1e3;
        enc.embed_texts(&["a dog on the beach at sunset"])?;
        let total = t.elapsed().as_secs_f64() * 1e3;
        // Where the load goes: the tokenizer alone, timed again after the load.
        let t = Instant::now();
        glimpse_encoder::ClipTokenizer::from_dir(dir)?;
        let tok = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "{{\"case\":\"cold_text\",\"load_ms\":{load:.1},\"tokenizer_ms\":{tok:.1},\"ms_per_item\":{total:.1}}}"
        );
    }

    let needs_model = wants("image") || wants("text");
    let subject = match (&args.model, &args.random) {
        _ if !needs_model => None,
        (Some(dir), _) => Some(Subject::Checkpoint(
            ClipEncoder::load_with(dir, &device, &options(Towers::Both))
                .with_context(|| format!("loading {}", dir.display()))?,
        )),
        (None, Some(preset)) => {
            let config = match preset.as_str() {
                "vit-b32" => ClipConfig::vit_b32(),
                "vit-b16" => ClipConfig::vit_b16(),
                "vit-l14" => ClipConfig::vit_l14(),
                other => bail!("unknown preset {other}"),
            };
            Some(Subject::Random(
                Box::new(ClipModel::init(&config, Towers::Both, &device)),
                device.clone(),
            ))
        }
        (None, None) => bail!("give --model <DIR> or --random <PRESET>"),
    };
    if let Some(Subject::Checkpoint(enc)) = &subject {
        eprintln!("engine {:?}, precision {:?}", enc.engine(), enc.precision());
    }
    let size = match (&subject, &args.random) {
        (Some(Subject::Checkpoint(enc)), _) => enc.image_size(),
        _ => 224,
    };

    if let (true, Some(s)) = (wants("image"), &subject) {
        for &batch in &args.images {
            let ms = median_ms(args.reps, args.warmup, || s.images(batch, size))?;
            row("image", "batch", batch, ms, batch, args.reps);
        }
    }
    if let (true, Some(s)) = (wants("text"), &subject) {
        for &tokens in &args.texts {
            let ms = median_ms(args.reps, args.warmup, || s.text(tokens))?;
            row("text", "tokens", tokens, ms, 1, args.reps);
        }
    }
    if wants("jpeg") {
        let bytes = inputs::big_jpeg();
        let pre = Preprocessor::new(PreprocessConfig::default());
        for (mode, p) in [
            ("exact", pre.clone()),
            ("reduced", pre.clone().with_reduced_jpeg(2)),
        ] {
            let (ms, _) = median_ms(args.reps, args.warmup, || {
                p.preprocess_bytes(&bytes, "12mp.jpg")?;
                Ok(())
            })?;
            println!(
                "{{\"case\":\"jpeg\",\"mode\":\"{mode}\",\"megapixels\":12,\"ms_per_item\":{ms:.1}}}"
            );
        }
    }
    Ok(())
}
