//! The demo: generate a small photo folder, index it, search it by text — offline.
//!
//! `cargo run --example demo -- [--model <DIR>] [--photos <DIR>] [--library <DIR>] [QUERY]...
//! [--query-zh <TEXT>] [--query-model <DIR>]`
//!
//! Without `--model` it uses `$GLIMPSE_MODEL`, the committed demo model `models/glimpse-shapes`
//! when present, or else the tiny random-weight parity checkpoint shipped with the encoder's
//! tests (which exercises the whole pipeline, but whose rankings mean nothing).
//!
//! With the demo model it then searches once more in Chinese ("一个蓝色三角形" unless
//! `--query-zh` says otherwise): the same library reopened with the Chinese query tower
//! `models/glimpse-shapes-zh` (`LibraryBuilder::query_model`; `--query-model` names another),
//! no photo re-embedded.

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
    /// A query for the query tower (default with the demo model: "一个蓝色三角形").
    #[arg(long)]
    query_zh: Option<String>,
    /// A query tower in sentence-transformers layout for `--query-zh` (default with the demo
    /// model: models/glimpse-shapes-zh).
    #[arg(long)]
    query_model: Option<PathBuf>,
}

/// The query tower and query of the Chinese search, if one is asked for or the demo model runs
/// with its defaults.
fn chinese_query(args: &Args, model: Option<&PathBuf>) -> Option<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo_model = model.is_some_and(|m| m.ends_with("models/glimpse-shapes"));
    let tower = args.query_model.clone().or_else(|| {
        let zh = root.join("models/glimpse-shapes-zh");
        (demo_model && zh.join("modules.json").exists()).then_some(zh)
    })?;
    let query = args.query_zh.clone().or_else(|| {
        (args.queries.is_empty() && args.query_model.is_none())
            .then(|| "一个蓝色三角形".to_string())
    })?;
    Some((tower, query))
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

/// Path → caption, from the caption files (`captions.tsv`, or `captions_zh.tsv`) the generator
/// wrote (to show what each hit is).
fn read_captions(root: &Path, file: &str) -> HashMap<PathBuf, String> {
    let mut out = HashMap::new();
    for dir in [root.to_path_buf(), root.join("more")] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
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
    let captions = read_captions(&args.photos, synth::CAPTIONS_FILE);
    for q in &queries {
        print_hits(&lib, q, args.k, &captions)?;
    }
    if let Some((tower, query)) = chinese_query(&args, model.as_ref()) {
        // The same library, its photos as they are, queries through the tower.
        drop(lib);
        let lib = common::open_with(&args.library, model.as_ref(), None, |b| {
            b.query_model(&tower)
        })?;
        let captions = read_captions(&args.photos, synth::CAPTIONS_ZH_FILE);
        println!("(query tower {})", tower.display());
        print_hits(&lib, &query, args.k, &captions)?;
    }
    Ok(())
}

fn print_hits(
    lib: &glimpse::Library,
    query: &str,
    k: usize,
    captions: &HashMap<PathBuf, String>,
) -> anyhow::Result<()> {
    println!("{query}");
    for (rank, hit) in lib.search_text(query, k)?.iter().enumerate() {
        let caption = captions.get(&hit.path).map_or("", String::as_str);
        let (score, path) = (hit.score, hit.path.display());
        println!("  {:>2}. {score:.4}  {path}  ({caption})", rank + 1);
    }
    Ok(())
}
