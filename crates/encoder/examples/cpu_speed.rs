//! Times the CPU encoder: images at batch 1/8/32 and single texts of 5/20/77 tokens, for each
//! engine/precision asked for, and prints milliseconds per image / per text.
//!
//! ```sh
//! cargo run -p glimpse-encoder --example cpu_speed -- [MODEL_DIR] [--reps N] [--modes f32,bf16,int8,burn] [--batches 1,8,32]
//! ```
//! `MODEL_DIR` defaults to `~/.cache/glimpse/vit-b32-random` (a ViT-B/32 checkpoint in Hugging
//! Face layout; random weights time the same as trained ones). Threads: rayon's default (all
//! cores), or `RAYON_NUM_THREADS`.

use std::path::PathBuf;
use std::time::Instant;

use glimpse_encoder::{ClipEncoder, Device, Engine, LoadOptions, Precision, Towers};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = None;
    let mut reps = 3usize;
    let mut modes = vec!["f32".to_string(), "bf16".to_string()];
    let mut batches = vec![1usize, 8, 32];
    let mut lengths = vec![5usize, 20, 77];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().ok_or("--reps N")?.parse()?,
            "--modes" => {
                modes = args
                    .next()
                    .ok_or("--modes LIST")?
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            "--batches" => batches = numbers(args.next().ok_or("--batches LIST")?)?,
            "--lengths" => lengths = numbers(args.next().ok_or("--lengths LIST")?)?,
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".cache/glimpse/vit-b32-random")
    });
    println!(
        "model {}, {} rayon threads, ISA {:?}, {reps} timed runs each (best, median and mean shown)",
        dir.display(),
        rayon::current_num_threads(),
        glimpse_encoder::kernels::Isa::detect()
    );
    let device = Device::flex();
    // Cold start of a text-only process: load the text tower, encode one short query.
    for mode in &modes {
        let options = mode_options(mode)?.towers(Towers::TextOnly);
        let start = Instant::now();
        let encoder = ClipEncoder::load_with(&dir, &device, &options)?;
        let loaded = start.elapsed().as_secs_f64();
        encoder.embed_texts(&["a photo of a dog on the beach"])?;
        println!(
            "[{mode}] cold start, text tower only: load {:.3} s, + first query {:.3} s",
            loaded,
            start.elapsed().as_secs_f64()
        );
    }
    for mode in &modes {
        let options = mode_options(mode)?;
        let start = Instant::now();
        let encoder = ClipEncoder::load_with(&dir, &device, &options.towers(Towers::Both))?;
        println!(
            "[{mode}] loaded in {:.2} s; runs {:?} on kernel set {:?}",
            start.elapsed().as_secs_f64(),
            encoder.precision(),
            encoder.kernel_set()
        );
        let s = encoder.image_size();
        for &batch in &batches {
            let images: Vec<Vec<f32>> = (0..batch)
                .map(|b| {
                    (0..3 * s * s)
                        .map(|i| (((i + 31 * b) * 2654435761usize) % 2001) as f32 / 1000.0 - 1.0)
                        .collect()
                })
                .collect();
            encoder.embed_pixel_values(&images)?; // warm-up
            let times = time(reps, || encoder.embed_pixel_values(&images).map(|_| ()))?;
            let per = |t: f64| t * 1e3 / batch as f64;
            println!(
                "[{mode}] image batch {batch:>2}: {:>7.2} ms/img best, {:>7.2} median, {:>7.2} mean, {:>7.2} CPU-ms/img ({:.0} GFLOP per CPU-s if a full ViT-B/32 pass: the class-token-only last layer skips ~6 %)",
                per(times.best),
                per(times.median),
                per(times.mean),
                per(times.cpu),
                8.82 * batch as f64 / times.cpu.max(1e-9)
            );
        }
        for &len in &lengths {
            let mut ids = vec![49406u32];
            ids.extend((0..len.saturating_sub(2)).map(|i| 320 + i as u32));
            ids.push(49407);
            let batch = [ids];
            encoder.embed_token_ids(&batch)?;
            let times = time(reps.max(5), || encoder.embed_token_ids(&batch).map(|_| ()))?;
            println!(
                "[{mode}] text {len:>2} tokens, batch 1: {:>7.2} ms best, {:>7.2} median, {:>7.2} mean, {:>7.2} CPU-ms",
                times.best * 1e3,
                times.median * 1e3,
                times.mean * 1e3,
                times.cpu * 1e3
            );
        }
    }
    Ok(())
}

/// A comma-separated list of numbers.
fn numbers(list: String) -> Result<Vec<usize>, std::num::ParseIntError> {
    list.split(',').map(str::parse).collect()
}

fn mode_options(mode: &str) -> Result<LoadOptions, Box<dyn std::error::Error>> {
    Ok(match mode {
        "f32" => LoadOptions::default().engine(Engine::Native),
        "bf16" => LoadOptions::default()
            .engine(Engine::Native)
            .precision(Precision::Bf16),
        "int8" => LoadOptions::default()
            .engine(Engine::Native)
            .precision(Precision::Int8),
        "burn" => LoadOptions::default().engine(Engine::Burn),
        other => return Err(format!("unknown mode {other} (f32, bf16, int8, burn)").into()),
    })
}

/// CPU seconds this process has used (user + system, all threads; Linux only, else 0). On a
/// machine shared with other work, CPU time per image divided by the thread count is what the
/// wall time would be on an idle machine with perfect scaling.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Seconds per run: wall best, median (what `scripts/bench_pytorch.py` reports) and mean;
/// mean CPU.
struct Times {
    best: f64,
    median: f64,
    mean: f64,
    cpu: f64,
}

/// Times `reps` runs of `f`.
fn time<E>(reps: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<Times, E> {
    let reps = reps.max(1);
    let mut all = Vec::with_capacity(reps);
    let cpu = cpu_seconds();
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        all.push(t.elapsed().as_secs_f64());
    }
    let cpu = (cpu_seconds() - cpu) / reps as f64;
    let mean = all.iter().sum::<f64>() / reps as f64;
    all.sort_by(f64::total_cmp);
    Ok(Times {
        best: all[0],
        median: all[all.len() / 2],
        mean,
        cpu,
    })
}
