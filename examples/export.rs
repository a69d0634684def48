//! Export a library to Parquet, or import Parquet parts into one.
//!
//! ```sh
//! # one Parquet file (DuckDB, Spark, pyarrow, Milvus read it)
//! cargo run --release --features parquet --example export -- --library <DIR> --out photos.parquet
//! # clip-retrieval's layout: <OUT>/img_emb/img_emb_N.npy + <OUT>/metadata/metadata_N.parquet
//! cargo run --release --features parquet --example export -- --library <DIR> --out emb/ --clip-retrieval
//! # import parts computed elsewhere (examples/shard.rs) with the same model
//! cargo run --release --features parquet --example export -- --library <DIR> --import parts/*.parquet
//! ```
//!
//! Prints a JSON summary on stdout.

mod common;

use clap::Parser;
use glimpse::{ExportLayout, ExportOptions, ImportOptions};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Export a Glimpse library to Parquet, or import Parquet parts into it")]
struct Args {
    /// Library directory.
    #[arg(long)]
    library: PathBuf,
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to export: a file, or a folder with --clip-retrieval.
    #[arg(long, conflicts_with = "import")]
    out: Option<PathBuf>,
    /// Write clip-retrieval's layout (img_emb/*.npy + metadata/*.parquet) under --out.
    #[arg(long)]
    clip_retrieval: bool,
    /// Rows per Parquet row group (the export's memory bound).
    #[arg(long, default_value_t = 4096)]
    rows_per_group: usize,
    /// Parquet files to import (written by an export or examples/shard.rs).
    #[arg(long, num_args = 1..)]
    import: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lib = common::open(&args.library, args.model.as_ref(), None)?;
    let start = Instant::now();
    if let Some(out) = &args.out {
        let layout = if args.clip_retrieval {
            ExportLayout::ClipRetrieval
        } else {
            ExportLayout::Parquet
        };
        let opts = ExportOptions::default()
            .layout(layout)
            .rows_per_group(args.rows_per_group);
        let r = lib.export(out, &opts)?;
        println!(
            "{}",
            serde_json::json!({
                "rows": r.rows,
                "skipped": r.skipped,
                "bytes": r.bytes,
                "files": r.files.iter().map(|f| f.to_string_lossy()).collect::<Vec<_>>(),
                "seconds": start.elapsed().as_secs_f64(),
            })
        );
    } else if !args.import.is_empty() {
        let r = lib.import(&args.import, &ImportOptions::default())?;
        for f in &r.failed {
            eprintln!("failed: {}: {}", f.path.display(), f.error);
        }
        println!(
            "{}",
            serde_json::json!({
                "added": r.added,
                "present": r.present,
                "failed": r.failed.len(),
                "photos": lib.len(),
                "seconds": start.elapsed().as_secs_f64(),
            })
        );
    } else {
        anyhow::bail!("give --out (export) or --import <FILES>");
    }
    Ok(())
}
