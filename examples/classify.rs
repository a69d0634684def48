//! Zero-shot classification of photos with a library's model.
//!
//! `cargo run --release --example classify -- [--model <DIR>] --labels dog,cat,beach <IMAGE>...`

mod common;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Zero-shot classification (\"a photo of a {label}\") of image files")]
struct Args {
    /// Library directory (its model is used; a temporary one when omitted).
    #[arg(long)]
    library: Option<PathBuf>,
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Comma-separated labels.
    #[arg(long, value_delimiter = ',', required = true)]
    labels: Vec<String>,
    /// Print JSON: {"image":..,"image_b64":..,"labels":[{"label":..,"p":..}]}; "image" for
    /// display (bytes that are not UTF-8 become U+FFFD), "image_b64" the exact path's bytes in
    /// base64.
    #[arg(long)]
    json: bool,
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args
        .library
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let lib = common::open(&dir, args.model.as_ref(), None)?;
    let labels: Vec<&str> = args.labels.iter().map(String::as_str).collect();
    let mut failed = false;
    for image in &args.images {
        match lib.classify(image, &labels) {
            Ok(mut probs) => {
                probs.sort_by(|a, b| b.1.total_cmp(&a.1));
                if args.json {
                    let l: Vec<_> = probs
                        .iter()
                        .map(|(l, p)| serde_json::json!({"label": l, "p": p}))
                        .collect();
                    let (path, path_b64) = common::json_path(image);
                    println!(
                        "{}",
                        serde_json::json!({"image": path, "image_b64": path_b64, "labels": l})
                    );
                } else {
                    let top: Vec<String> = probs
                        .iter()
                        .take(3)
                        .map(|(l, p)| format!("{l} {:.1}%", p * 100.0))
                        .collect();
                    println!("{}: {}", image.display(), top.join(", "));
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("{}: {e}", image.display());
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
