//! Embeds images and texts with a CLIP checkpoint in Hugging Face layout and prints one JSON
//! object per input on stdout, images first then texts, in the order given:
//!
//! ```text
//! {"image":"<PATH>","image_b64":"<BYTES>","embedding":[...]}
//! {"text":"<STRING>","ids":[...],"embedding":[...]}
//! {"image":"<PATH>","image_b64":"<BYTES>","error":"<message>"}   (an input that failed; the rest continue)
//! ```
//!
//! `"image"` is the path for display (bytes that are not UTF-8 become U+FFFD); `"image_b64"` is
//! the exact path's bytes in base64, from which a non-UTF-8 name is recovered.
//!
//! Embeddings are L2-normalised; `ids` are the token ids without padding. The exit code is 1 if
//! any input failed (or the model could not be loaded), 0 otherwise. Timings go to stderr.
//!
//! ```sh
//! cargo run --release --example embed -- --model <DIR> [--device cpu|wgpu] \
//!     [--engine auto|native|burn] [--precision f32|bf16|int8] [--isa avx512|avx2|portable] \
//!     [--batch 32] [--image <PATH>]... [--text <STRING>]...
//! ```
//!
//! Images are read, decoded and preprocessed one batch at a time (in parallel within the
//! batch) and their lines printed before the next batch is read, so memory stays bounded
//! however many images are given. stderr says which engine, kernel set and precision ran, and
//! the time spent preprocessing and encoding.
//!
//! `--device wgpu` needs the `wgpu` feature (`--features wgpu`).
//!
//! Texts through a query-only tower in sentence-transformers layout (a folder with
//! `modules.json`, e.g. `sentence-transformers/clip-ViT-B-32-multilingual-v1`):
//!
//! ```sh
//! cargo run --release --example embed -- --query-model <DIR> [--engine native|burn] \
//!     --text <STRING>...
//! ```
//!
//! (`--model <DIR>` naming such a folder does the same.) Each line is
//! `{"text":…,"ids":[…],"embedding":[…]}` with the ids `SentenceTransformer.tokenize` gives
//! (unpadded) and the embedding L2-normalised (`encode()` returns it unnormalised when the
//! tower has no Normalize module: compare by cosine).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use glimpse_encoder::kernels::Isa;
use glimpse_encoder::{
    Backend, ClipEncoder, Engine, LoadOptions, Precision, Preprocessor, QueryTower, Towers,
};

/// Embed images and texts with a CLIP checkpoint.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Checkpoint directory: config.json, model.safetensors, tokenizer.json,
    /// preprocessor_config.json (a sentence-transformers folder is taken as --query-model).
    #[arg(long, required_unless_present = "query_model")]
    model: Option<PathBuf>,
    /// A query-only text tower in sentence-transformers layout (modules.json: Transformer →
    /// Pooling → Dense): embeds the --text inputs.
    #[arg(long, conflicts_with = "model")]
    query_model: Option<PathBuf>,
    /// Which implementation runs: auto (native on a vectorised CPU), native or burn.
    #[arg(long, default_value = "auto")]
    engine: String,
    /// Compute backend: cpu (flex) or wgpu.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// An image to embed (repeatable).
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// A text to embed (repeatable).
    #[arg(long = "text")]
    texts: Vec<String>,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Arithmetic of the native CPU engine: f32 (reproduces transformers), bf16 or int8.
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Caps the native engine's kernel set (avx512bf16, avx512, avx2 or portable), as the
    /// environment variable GLIMPSE_ISA does for the whole process.
    #[arg(long)]
    isa: Option<String>,
}

/// A text's token ids and embedding.
type TextEmbedding = (Vec<u32>, Vec<f32>);

/// One output line: the input's key and value, `extra` fields (each followed by a comma), then
/// either the result fields or the error.
fn line(key: &str, input: &str, extra: &str, result: Result<String, String>) -> String {
    let input = serde_json::to_string(input).expect("strings serialise");
    match result {
        Ok(fields) => format!("{{\"{key}\":{input},{extra}{fields}}}"),
        Err(message) => {
            let message = serde_json::to_string(&message).expect("strings serialise");
            format!("{{\"{key}\":{input},{extra}\"error\":{message}}}")
        }
    }
}

fn embedding_field(embedding: &[f32]) -> String {
    format!(
        "\"embedding\":{}",
        serde_json::to_string(embedding).expect("floats serialise")
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            // The chain of causes, skipping those a message already quotes.
            let mut message = e.to_string();
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                if !message.contains(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether every input succeeded.
fn run(args: &Args) -> anyhow::Result<bool> {
    let backend: Backend = args.device.parse()?;
    let device = backend.device()?;
    let engine = match args.engine.as_str() {
        "auto" => Engine::Auto,
        "native" => Engine::Native,
        "burn" => Engine::Burn,
        other => anyhow::bail!("--engine {other}: expected auto, native or burn"),
    };
    let tower_dir = match (&args.query_model, &args.model) {
        (Some(q), _) => Some(q.clone()),
        (None, Some(m)) if m.join("modules.json").exists() => Some(m.clone()),
        _ => None,
    };
    if let Some(dir) = tower_dir {
        anyhow::ensure!(
            args.images.is_empty(),
            "a query tower embeds texts only; give the image model with --model for --image"
        );
        return run_tower(args, &dir, &device, engine);
    }
    let model = args.model.as_ref().expect("clap requires --model");
    let towers = match (args.images.is_empty(), args.texts.is_empty()) {
        (false, true) => Towers::VisionOnly,
        (true, false) => Towers::TextOnly,
        _ => Towers::Both,
    };
    let start = Instant::now();
    let options = LoadOptions::default()
        .towers(towers)
        .engine(engine)
        .precision(precision(&args.precision)?);
    let options = match &args.isa {
        Some(name) => options.isa(
            Isa::parse(name)
                .with_context(|| format!("--isa {name}: avx512bf16, avx512, avx2 or portable"))?,
        ),
        None => options,
    };
    let encoder = ClipEncoder::load_with(model, &device, &options)
        .with_context(|| format!("loading {}", model.display()))?;
    eprintln!(
        "loaded {} on {backend} in {:.2?}: engine {:?}, kernel set {}, precision {:?}",
        model.display(),
        start.elapsed(),
        encoder.engine(),
        encoder
            .kernel_set()
            .map_or_else(|| "none (burn)".to_string(), |isa| format!("{isa:?}")),
        encoder.precision()
    );
    let batch = args.batch.max(1);
    let mut all_ok = true;

    if !args.images.is_empty() {
        let preprocessor = Preprocessor::from_dir(model)?;
        let (mut preprocess_time, mut encode_time) = (Duration::ZERO, Duration::ZERO);
        let start = Instant::now();
        for paths in args.images.chunks(batch) {
            // Decoding and preprocessing run in parallel; each image succeeds or fails alone.
            let t = Instant::now();
            let pixels = preprocessor.preprocess_paths(paths);
            preprocess_time += t.elapsed();
            let ok: Vec<_> = pixels
                .iter()
                .filter_map(|p| p.as_ref().ok())
                .cloned()
                .collect();
            let t = Instant::now();
            let embedded = encoder.embed_pixels(&ok).map_err(|e| e.to_string());
            encode_time += t.elapsed();
            let mut embedded = match embedded {
                Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e); ok.len()],
            }
            .into_iter();
            for (path, p) in paths.iter().zip(&pixels) {
                let result = match p {
                    Ok(_) => embedded.next().expect("one row per image"),
                    Err(e) => Err(e.to_string()),
                };
                all_ok &= result.is_ok();
                let result = result.map(|e| embedding_field(&e));
                let b64 =
                    serde_json::to_string(&common::path_b64(path)).expect("strings serialise");
                let extra = format!("\"image_b64\":{b64},");
                println!(
                    "{}",
                    line("image", &path.display().to_string(), &extra, result)
                );
            }
        }
        let n = args.images.len() as f64;
        eprintln!(
            "{n} images in {:.2?}: preprocess {preprocess_time:.2?} ({:.1} ms/image), \
             encode {encode_time:.2?} ({:.1} ms/image)",
            start.elapsed(),
            preprocess_time.as_secs_f64() * 1e3 / n,
            encode_time.as_secs_f64() * 1e3 / n
        );
    }

    if !args.texts.is_empty() {
        let tokenizer = encoder.tokenizer()?;
        let start = Instant::now();
        let ids: Vec<Result<Vec<u32>, String>> = args
            .texts
            .iter()
            .map(|t| tokenizer.encode(t).map_err(|e| e.to_string()))
            .collect();
        let mut results: Vec<Result<TextEmbedding, String>> = Vec::new();
        for chunk in ids.chunks(batch) {
            let ok: Vec<&Vec<u32>> = chunk.iter().filter_map(|r| r.as_ref().ok()).collect();
            let embedded = encoder.embed_token_ids(&ok).map_err(|e| e.to_string());
            let mut embedded = match embedded {
                Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e); ok.len()],
            }
            .into_iter();
            for r in chunk {
                results.push(match r {
                    Ok(ids) => embedded
                        .next()
                        .expect("one row per text")
                        .map(|e| (ids.clone(), e)),
                    Err(e) => Err(e.clone()),
                });
            }
        }
        let n = args.texts.len();
        eprintln!(
            "{n} texts: {:.2?} ({:.1} ms/text)",
            start.elapsed(),
            start.elapsed().as_secs_f64() * 1e3 / n as f64
        );
        for (text, result) in args.texts.iter().zip(results) {
            all_ok &= result.is_ok();
            let result = result.map(|(ids, e)| {
                let ids = serde_json::to_string(&ids).expect("ids serialise");
                format!("\"ids\":{ids},{}", embedding_field(&e))
            });
            println!("{}", line("text", text, "", result));
        }
    }
    Ok(all_ok)
}

/// Parses `--precision`.
fn precision(name: &str) -> anyhow::Result<Precision> {
    match name.to_ascii_lowercase().as_str() {
        "f32" => Ok(Precision::F32),
        "bf16" => Ok(Precision::Bf16),
        "int8" => Ok(Precision::Int8),
        other => anyhow::bail!("--precision {other}: expected f32, bf16 or int8"),
    }
}

/// Embeds the texts with the query tower in `dir`; returns whether every text succeeded.
fn run_tower(
    args: &Args,
    dir: &std::path::Path,
    device: &glimpse_encoder::Device,
    engine: Engine,
) -> anyhow::Result<bool> {
    let start = Instant::now();
    let tower = QueryTower::load(
        dir,
        device,
        &LoadOptions::default()
            .engine(engine)
            .precision(precision(&args.precision)?),
    )
    .with_context(|| format!("loading query model {}", dir.display()))?;
    let declared = tower.image_model().map_or_else(
        || "no image model declared".to_string(),
        |m| format!("for {}", m.id),
    );
    eprintln!(
        "loaded query model {} ({} dims, {declared}) on {:?} in {:.2?}",
        dir.display(),
        tower.dims(),
        tower.engine(),
        start.elapsed()
    );
    let start = Instant::now();
    let mut all_ok = true;
    for chunk in args.texts.chunks(args.batch.max(1)) {
        let ids: Vec<Result<Vec<u32>, String>> = chunk
            .iter()
            .map(|t| tower.tokenizer().encode(t).map_err(|e| e.to_string()))
            .collect();
        let ok: Vec<&Vec<u32>> = ids.iter().filter_map(|r| r.as_ref().ok()).collect();
        let embedded = tower.embed_token_ids(&ok).map_err(|e| e.to_string());
        let mut embedded = match embedded {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e); ok.len()],
        }
        .into_iter();
        for (text, r) in chunk.iter().zip(ids) {
            let result = r.and_then(|ids| {
                let e = embedded.next().expect("one row per text")?;
                let ids = serde_json::to_string(&ids).expect("ids serialise");
                Ok(format!("\"ids\":{ids},{}", embedding_field(&e)))
            });
            all_ok &= result.is_ok();
            println!("{}", line("text", text, "", result));
        }
    }
    let n = args.texts.len().max(1);
    eprintln!(
        "{} texts: {:.2?} ({:.1} ms/text)",
        args.texts.len(),
        start.elapsed(),
        start.elapsed().as_secs_f64() * 1e3 / n as f64
    );
    Ok(all_ok)
}
