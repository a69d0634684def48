//! Shared by the examples: opening a library from command-line options, progress bars.
#![allow(dead_code)]

use anyhow::Context;
use glimpse::{IndexOptions, Library, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The exact bytes of `path` (on Unix; its UTF-8 elsewhere) in standard base64 (RFC 4648, padded):
/// the lossless form of a path in the examples' JSON output, beside the display form `"path"`,
/// which replaces bytes that are not UTF-8 with U+FFFD and may name no file at all. Decode it
/// with `os.fsdecode(base64.b64decode(hit["path_b64"]))` in Python, or jq's `@base64d` for UTF-8
/// names.
pub fn path_b64(path: &Path) -> String {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A path as the examples' JSON output carries it: `{"path": <display>, "path_b64": <exact>}`
/// (see [`path_b64`]).
pub fn json_path(path: &Path) -> (String, String) {
    (path.to_string_lossy().into_owned(), path_b64(path))
}

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
    open_with(dir, model, device, |b| b)
}

/// [`open`], with further builder settings (e.g. a query model).
pub fn open_with(
    dir: &Path,
    model: Option<&PathBuf>,
    device: Option<&str>,
    configure: impl FnOnce(glimpse::LibraryBuilder) -> glimpse::LibraryBuilder,
) -> anyhow::Result<Library> {
    let mut b = configure(Library::builder().model(resolve_model(model)));
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
    for p in &lib.open_report().quarantined {
        eprintln!("quarantined: {p} (see `cargo run --example doctor`)");
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
    index_with(lib, photos, quiet, true)
}

/// [`index`], removing photos that are certainly gone only when `remove_missing`
/// (`--keep-missing` turns it off).
pub fn index_with(
    lib: &Library,
    photos: &Path,
    quiet: bool,
    remove_missing: bool,
) -> anyhow::Result<glimpse::IndexReport> {
    let (opts, bar) = index_options(quiet);
    let opts = opts.remove_missing(remove_missing);
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
