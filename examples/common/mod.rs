//! Shared by the examples: opening a library from command-line options, progress bars.
#![allow(dead_code)]

use anyhow::Context;
use glimpse::{IndexOptions, Library, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The small demo model that ships in the repository (`models/glimpse-shapes`).
pub fn bundled_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/glimpse-shapes")
}

/// The model to use: `model` if given, else the library's default lookup (`$GLIMPSE_MODEL`,
/// the Hugging Face cache, then a download of openai/clip-vit-base-patch32), else, when none
/// can be found or fetched (offline), the bundled demo model, with a note on stderr.
pub fn resolve_model(model: Option<&PathBuf>) -> PathBuf {
    if let Some(m) = model {
        return m.clone();
    }
    match glimpse::default_model() {
        Ok(dir) => dir,
        Err(e) => {
            let bundled = bundled_model();
            eprintln!(
                "no CLIP model given or found ({e}); using the bundled demo model {} \
                 (it knows only synthetic shapes: give --model for real photos)",
                bundled.display()
            );
            bundled
        }
    }
}

/// Opens the library at `dir` with `model` (or the default lookup, see [`resolve_model`]).
pub fn open(dir: &Path, model: Option<&PathBuf>, device: Option<&str>) -> anyhow::Result<Library> {
    let mut b = Library::builder().model(resolve_model(model));
    if let Some(d) = device {
        b = b.device(
            d.parse()
                .map_err(|e| anyhow::anyhow!("--device {d}: {e}"))?,
        );
    }
    let lib = b
        .open(dir)
        .with_context(|| format!("opening library {}", dir.display()))?;
    if *lib.index_recovery() != glimpse::IndexRecovery::Loaded {
        eprintln!("index: {:?}", lib.index_recovery());
    }
    Ok(lib)
}

/// Index options with an indicatif progress bar on stderr (hidden when `quiet`).
pub fn index_options(quiet: bool) -> (IndexOptions, ProgressBar) {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} encoded, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let progress = Arc::new(move |p: &Progress| {
        b.set_length(p.to_encode as u64);
        b.set_position(p.encoded as u64);
        b.set_message(format!("{} failed, {:.1} img/s", p.failed, p.rate));
    });
    (IndexOptions::default().progress(progress), bar)
}

/// Indexes `photos` and prints the report to stderr.
pub fn index(lib: &Library, photos: &Path, quiet: bool) -> anyhow::Result<glimpse::IndexReport> {
    let (opts, bar) = index_options(quiet);
    let report = lib
        .index_folder(photos, &opts)
        .with_context(|| format!("indexing {}", photos.display()))?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!(
            "indexed {}: {} added, {} updated, {} unchanged, {} moved, {} removed, {} failed",
            photos.display(),
            report.added,
            report.updated,
            report.unchanged,
            report.moved,
            report.removed,
            report.failed.len()
        );
        for f in &report.failed {
            eprintln!("  failed: {}: {}", f.path.display(), f.error);
        }
    }
    Ok(report)
}
