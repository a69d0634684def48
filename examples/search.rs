//! Search a library by text or by an example photo; optionally index a folder first.
//!
//! `cargo run --release --example search -- --library <DIR> [--model <DIR>] [--k N] [--json]
//!  [--min-relevance P] [--no-hybrid] [--photos <DIR>] [--query-model <DIR>
//!  [--query-model-unchecked]] (<QUERY>... | --image <PATH>)`
//!
//! `--query-model DIR` answers text queries through a query-only tower in sentence-transformers
//! layout (e.g. a multilingual one trained into the model's space): photos keep the image
//! model's embeddings, nothing is re-embedded. The tower must have the model's dimension and
//! declare the model as its image model (`glimpse_query_tower.json` or its model card);
//! `--query-model-unchecked` skips the declaration check.
//!
//! Text searches are hybrid by default: a query word that names a folder, a file, a keyword,
//! a camera or a capture month/year lifts those photos (the matched words are shown);
//! `--no-hybrid` ranks by CLIP alone.
//!
//! With a SigLIP model every text hit also shows its calibrated relevance (the model's
//! probability that the text describes the photo) and `--min-relevance 0.5` keeps only the
//! hits the model believes match. CLIP scores are not calibrated: there is no relevance, and
//! `--min-relevance` is refused.

mod common;

use anyhow::Context;
use clap::Parser;
use glimpse::{Hit, SearchOptions};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(about = "Search a Glimpse library by text or by example photo")]
struct Args {
    /// Library directory (default: a `.glimpse` folder inside --photos).
    #[arg(long)]
    library: Option<PathBuf>,
    /// Checkpoint directory (Hugging Face layout: CLIPModel or SiglipModel).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Compute backend: cpu or wgpu.
    #[arg(long)]
    device: Option<String>,
    /// Index (or update) this folder before searching.
    #[arg(long)]
    photos: Option<PathBuf>,
    /// With --photos: keep the photos whose files are gone (default: remove those certainly
    /// gone).
    #[arg(long)]
    keep_missing: bool,
    /// Number of results per query (at most the number of photos in the library).
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Text queries: keep only hits whose calibrated relevance is at least this probability
    /// (SigLIP models only).
    #[arg(long)]
    min_relevance: Option<f32>,
    /// Text queries: fuse CLIP with the photos' words — folder and file names, EXIF/IPTC/XMP
    /// keywords, camera, capture year and month (the default); each hit shows the words that
    /// matched.
    #[arg(long, overrides_with = "no_hybrid")]
    hybrid: bool,
    /// Text queries: rank by CLIP alone.
    #[arg(long, overrides_with = "hybrid")]
    no_hybrid: bool,
    /// One JSON object per hit: {"query":..,"rank":..,"score":..,"relevance":..,"id":..,
    /// "path":.., "path_b64":..} ("relevance" is null without calibration); "path" is for
    /// display (bytes that are not UTF-8 become U+FFFD), "path_b64" the exact file name's
    /// bytes in base64. An --image query also carries "query_b64", its path's bytes.
    #[arg(long)]
    json: bool,
    /// Answer text queries through this query-only tower (sentence-transformers layout),
    /// checked against the model.
    #[arg(long)]
    query_model: Option<PathBuf>,
    /// With --query-model: do not check which image model the tower declares (the dimension
    /// is still checked).
    #[arg(long, requires = "query_model")]
    query_model_unchecked: bool,
    /// Search by this example photo instead of text.
    #[arg(long, conflicts_with = "queries")]
    image: Option<PathBuf>,
    /// Text queries.
    #[arg(required_unless_present = "image")]
    queries: Vec<String>,
}

fn print_hits(query: &str, query_path: Option<&Path>, hits: &[Hit], json: bool) {
    if !json {
        println!("{query}");
    }
    for (rank, hit) in hits.iter().enumerate() {
        if json {
            let (path, path_b64) = common::json_path(&hit.path);
            let mut line = serde_json::json!({"query": query, "rank": rank + 1,
                "score": hit.score, "relevance": hit.relevance, "id": hit.id, "path": path,
                "path_b64": path_b64, "matched": hit.matched});
            if let Some(q) = query_path {
                line["query_b64"] = common::path_b64(q).into();
            }
            println!("{line}");
        } else {
            let relevance = hit
                .relevance
                .map(|r| format!("  p={r:.3}"))
                .unwrap_or_default();
            let matched = if hit.matched.is_empty() {
                String::new()
            } else {
                format!("  [{}]", hit.matched.join(", "))
            };
            println!(
                "  {:>2}. {:.4}{relevance}  {}{matched}",
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
    let lib = common::open_with(
        &library,
        args.model.as_ref(),
        args.device.as_deref(),
        |b| match (&args.query_model, args.query_model_unchecked) {
            (Some(q), false) => b.query_model(q),
            (Some(q), true) => b.query_model_unchecked(q),
            (None, _) => b,
        },
    )?;
    if let Some(photos) = &args.photos {
        common::index_with(&lib, photos, args.json, !args.keep_missing)?;
    }
    // No search returns more hits than the library holds (the library clamps too).
    let k = args.k.min(lib.len());
    if let Some(image) = &args.image {
        let hits = lib
            .search_image(image, k)
            .with_context(|| format!("searching by {}", image.display()))?;
        print_hits(&image.to_string_lossy(), Some(image), &hits, args.json);
    }
    let mut options = SearchOptions::default().hybrid(!args.no_hybrid);
    if let Some(p) = args.min_relevance {
        options = options.min_relevance(p);
    }
    for q in &args.queries {
        let hits = lib
            .search_text_with(q, k, &options)
            .with_context(|| format!("searching for {q:?}"))?;
        print_hits(q, None, &hits, args.json);
    }
    Ok(())
}
