//! Groups of near-identical photos in a library.
//!
//! `cargo run --release --example duplicates -- --library <DIR> [--model <DIR>] [--min 0.95]`

mod common;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Find groups of near-identical photos in a Glimpse library")]
struct Args {
    /// Library directory.
    #[arg(long)]
    library: PathBuf,
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Minimum cosine similarity between members of a group.
    #[arg(long, default_value_t = 0.95)]
    min: f32,
    /// One JSON array per group, of {"id":..,"score":..,"path":..,"path_b64":..}: "path" for
    /// display (bytes that are not UTF-8 become U+FFFD), "path_b64" the exact file name's bytes
    /// in base64.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lib = common::open(&args.library, args.model.as_ref(), None)?;
    let groups = lib.duplicates(args.min)?;
    for (i, group) in groups.iter().enumerate() {
        if args.json {
            let members: Vec<_> = group
                .iter()
                .map(|h| {
                    let (path, path_b64) = common::json_path(&h.path);
                    serde_json::json!({"id": h.id, "score": h.score, "path": path,
                                       "path_b64": path_b64})
                })
                .collect();
            println!("{}", serde_json::json!(members));
        } else {
            println!("group {} ({} photos)", i + 1, group.len());
            for hit in group {
                println!("  {:.4}  {}", hit.score, hit.path.display());
            }
        }
    }
    if !args.json {
        println!("{} groups", groups.len());
    }
    Ok(())
}
