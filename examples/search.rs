//! Search a library by text or by an example photo; optionally index a folder first.
//!
//! `cargo run --release --example search -- --library <DIR> [--model <DIR>] [--k N] [--json]
//!  [--photos <DIR>] (<QUERY>... | --image <PATH>)`

mod common;

use anyhow::Context;
use clap::Parser;
use glimpse::Hit;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Search a Glimpse library by text or by example photo")]
struct Args {
    /// Library directory (default: a `.glimpse` folder inside --photos).
    #[arg(long)]
    library: Option<PathBuf>,
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Compute backend: cpu or wgpu.
    #[arg(long)]
    device: Option<String>,
    /// Index (or update) this folder before searching.
    #[arg(long)]
    photos: Option<PathBuf>,
    /// Number of results per query.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// One JSON object per hit: {"query":..,"rank":..,"score":..,"path":..}.
    #[arg(long)]
    json: bool,
    /// Search by this example photo instead of text.
    #[arg(long, conflicts_with = "queries")]
    image: Option<PathBuf>,
    /// Text queries.
    #[arg(required_unless_present = "image")]
    queries: Vec<String>,
}

fn print_hits(query: &str, hits: &[Hit], json: bool) {
    if !json {
        println!("{query}");
    }
    for (rank, hit) in hits.iter().enumerate() {
        if json {
            println!(
                "{}",
                serde_json::json!({"query": query, "rank": rank + 1, "score": hit.score,
                                   "path": hit.path.to_string_lossy()})
            );
        } else {
            println!(
                "  {:>2}. {:.4}  {}",
                rank + 1,
                hit.score,
                hit.path.display()
            );
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let library = match (&args.library, &args.photos) {
        (Some(l), _) => l.clone(),
        (None, Some(p)) => p.join(".glimpse"),
        (None, None) => anyhow::bail!("give --library or --photos"),
    };
    let lib = common::open(&library, args.model.as_ref(), args.device.as_deref())?;
    if let Some(photos) = &args.photos {
        common::index(&lib, photos, args.json)?;
    }
    if let Some(image) = &args.image {
        let hits = lib
            .search_image(image, args.k)
            .with_context(|| format!("searching by {}", image.display()))?;
        print_hits(&image.to_string_lossy(), &hits, args.json);
    }
    for q in &args.queries {
        let hits = lib
            .search_text(q, args.k)
            .with_context(|| format!("searching for {q:?}"))?;
        print_hits(q, &hits, args.json);
    }
    Ok(())
}
