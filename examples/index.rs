//! Index a photo folder into a library.
//!
//! `cargo run --release --example index -- --library <DIR> [--model <DIR>] [--keep-missing]
//!  <PHOTOS_DIR>`

mod common;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Index a photo folder into a Glimpse library")]
struct Args {
    /// Library directory (created if missing).
    #[arg(long)]
    library: PathBuf,
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Compute backend: cpu or wgpu.
    #[arg(long)]
    device: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Keep the photos whose files are gone (default: remove those certainly gone).
    #[arg(long)]
    keep_missing: bool,
    /// Folder of photos.
    photos: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lib = common::open(&args.library, args.model.as_ref(), args.device.as_deref())?;
    let report = common::index_with(&lib, &args.photos, args.json, !args.keep_missing)?;
    if args.json {
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|f| {
                // "path" for display, "path_b64" the exact bytes (see common::path_b64).
                let (path, path_b64) = common::json_path(&f.path);
                serde_json::json!({"path": path, "path_b64": path_b64, "error": f.error.to_string()})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "added": report.added, "updated": report.updated, "unchanged": report.unchanged,
                "moved": report.moved, "removed": report.removed, "failed": failed,
            })
        );
    }
    Ok(())
}
