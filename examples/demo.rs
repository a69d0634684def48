//! The demo: generate a small photo folder, index it, search it by text — offline.
//!
//! `cargo run --example demo -- [--model <DIR>] [--photos <DIR>] [--library <DIR>] [QUERY]...`
//!
//! Without `--model` it uses `$GLIMPSE_MODEL`, the committed demo model `models/glimpse-shapes`
//! when present, or else the tiny random-weight parity checkpoint shipped with the encoder's
//! tests (which exercises the whole pipeline, but whose rankings mean nothing).

mod common;

use clap::Parser;
use glimpse_synth as synth;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(about = "Generate a photo folder, index it with Glimpse, and search it by text")]
struct Args {
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Photo folder to generate (if empty) and index.
    #[arg(long, default_value = "target/glimpse-demo/photos")]
    photos: PathBuf,
    /// Library directory.
    #[arg(long, default_value = "target/glimpse-demo/library")]
    library: PathBuf,
    /// Number of photos to generate.
    #[arg(long, default_value_t = 60)]
    count: u32,
    /// Results per query.
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Text queries (default: a few colour + shape queries).
    queries: Vec<String>,
}

/// Writes `count` captioned synthetic photos (shapes on backgrounds) into `dir`.
fn generate(dir: &Path, count: u32) -> anyhow::Result<()> {
    let specs = synth::random_specs(count as usize, 2026);
    // A mix of formats, sizes and folders, as in a real collection.
    let half = specs.len() / 2;
    synth::generate_specs(dir, &specs[..half], 1, 224, synth::Format::Jpeg)?;
    synth::generate_specs(dir.join("more"), &specs[half..], 2, 160, synth::Format::Png)?;
    Ok(())
}

/// Path → caption, from the `captions.tsv` files the generator wrote (to show what each hit is).
fn read_captions(root: &Path) -> HashMap<PathBuf, String> {
    let mut out = HashMap::new();
    for dir in [root.to_path_buf(), root.join("more")] {
        let Ok(text) = std::fs::read_to_string(dir.join("captions.tsv")) else {
            continue;
        };
        for line in text.lines() {
            if let Some((file, caption)) = line.split_once('\t') {
                let path = dir.join(file);
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                out.insert(path, caption.to_string());
            }
        }
    }
    out
}

fn default_model() -> Option<PathBuf> {
    if std::env::var_os("GLIMPSE_MODEL").is_some() {
        return None; // the library's own lookup reads it
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shapes = root.join("models/glimpse-shapes");
    if shapes.join("model.safetensors").exists() {
        return Some(shapes);
    }
    let tiny = root.join("crates/encoder/tests/fixtures/tiny-clip");
    eprintln!(
        "demo: no model given; using the tiny random-weight test checkpoint ({}): the pipeline \
         runs end to end but its rankings are meaningless. Pass --model <CLIP dir> for real \
         results.",
        tiny.display()
    );
    Some(tiny)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let empty = std::fs::read_dir(&args.photos).map_or(true, |mut d| d.next().is_none());
    if empty {
        generate(&args.photos, args.count)?;
        eprintln!(
            "demo: generated {} photos in {}",
            args.count,
            args.photos.display()
        );
    }
    let model = args.model.clone().or_else(default_model);
    let lib = common::open(&args.library, model.as_ref(), None)?;
    common::index(&lib, &args.photos, false)?;
    let queries: Vec<String> = if args.queries.is_empty() {
        synth::queries()
            .into_iter()
            .step_by(7)
            .take(4)
            .map(|(q, _, _)| q)
            .collect()
    } else {
        args.queries.clone()
    };
    let captions = read_captions(&args.photos);
    for q in &queries {
        println!("{q}");
        for (rank, hit) in lib.search_text(q, args.k)?.iter().enumerate() {
            let caption = captions.get(&hit.path).map_or("", String::as_str);
            let (score, path) = (hit.score, hit.path.display());
            println!("  {:>2}. {score:.4}  {path}  ({caption})", rank + 1);
        }
    }
    Ok(())
}
