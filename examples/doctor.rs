//! Check a library for damage and, with `--repair`, fix it (never deleting a photo's record).
//!
//! `cargo run --release --example doctor -- --library <DIR> [--model <DIR>] [--repair]`
//!
//! Lists what opening quarantined, then every problem `Library::check` finds (store invariants,
//! unusable or missing embeddings, index against store, leftover temp files). With `--repair`,
//! runs `Library::repair` and lists what it fixed and what remains. Exit status: 0 when the
//! library is sound (after the repair, with `--repair`), 1 when problems remain.

mod common;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Check a Glimpse library and optionally repair it")]
struct Args {
    /// Library directory.
    #[arg(long)]
    library: PathBuf,
    /// CLIP checkpoint directory the library was built with (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Fix what can be fixed: consistent store entries, re-embedded photos, a rebuilt index.
    #[arg(long)]
    repair: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.library.join(glimpse::STORE_DIR).exists() {
        anyhow::bail!("{} is not a Glimpse library", args.library.display());
    }
    let lib = common::open(&args.library, args.model.as_ref(), None)?;
    let opened = lib.open_report();
    println!(
        "library {}: {} photos, model {}, index {:?}, {} temp file(s) cleaned",
        args.library.display(),
        lib.len(),
        lib.model_name(),
        opened.index,
        opened.cleaned
    );
    let check = lib.check()?;
    if check.is_ok() {
        println!("check: no problem found");
    } else {
        println!("check: {} problem(s)", check.problems.len());
        for p in &check.problems {
            println!("  {p}");
        }
    }
    let remaining = if args.repair {
        let report = lib.repair()?;
        println!(
            "repair: {} fix(es), {} photo(s) re-embedded",
            report.fixed.len(),
            report.reembedded
        );
        for f in &report.fixed {
            println!("  fixed: {f}");
        }
        for p in &report.remaining {
            println!("  remains: {p}");
        }
        report.remaining.len()
    } else {
        if !check.is_ok() {
            println!("run again with --repair to fix what can be fixed");
        }
        check.problems.len()
    };
    std::process::exit(i32::from(remaining > 0));
}
