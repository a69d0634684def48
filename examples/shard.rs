//! Embed one shard of a file list into a Parquet part: the worker of a cluster job (Spark,
//! Ray, Slurm; recipes in docs/SCALE.md).
//!
//! ```sh
//! cargo run --release --features parquet --example shard -- \
//!     --model <DIR> --files list.txt --shard 3/16 --out parts/
//! ```
//!
//! `list.txt` holds one path per line (any bytes but newline; `-` reads stdin); give absolute
//! paths, as the part records them as given. The worker keeps the files whose
//! `glimpse::shard_of(path, 16)` is 3 (a hash of the path: the same file always lands in the
//! same shard, whatever the list's order) and writes `parts/part-3.parquet`. Rerun after a
//! kill, or with a longer list: files already in the part (or in its finished chunks,
//! `part-3.parquet.partial/`) are not read again. Progress goes to stderr, a JSON summary to
//! stdout (`{"part":…,"rows":…,"embedded":…,"present":…,"failed":…,"seconds":…}`).
//! Files that fail (unreadable, not an image) are listed on stderr and left out of the part;
//! the exit code is 0 unless the model or the part could not be written (or `--strict` and a
//! file failed). Import the parts with `cargo run --features parquet --example export --
//! --library <DIR> --import parts/part-*.parquet`.

mod common;

use anyhow::{bail, Context};
use clap::Parser;
use glimpse::{shard_of, EmbedFilesOptions, Library, Precision};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Embed shard i of n of a file list into part-i.parquet")]
struct Args {
    /// CLIP checkpoint directory (Hugging Face layout); default: the library's lookup.
    #[arg(long)]
    model: Option<PathBuf>,
    /// File with one path per line (`-`: stdin).
    #[arg(long)]
    files: PathBuf,
    /// This worker's shard, `i/n` (0 <= i < n).
    #[arg(long, default_value = "0/1")]
    shard: String,
    /// Folder of the parts.
    #[arg(long)]
    out: PathBuf,
    /// Images per encoder batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Rows per chunk: the most work a kill loses.
    #[arg(long, default_value_t = 1024)]
    chunk: usize,
    /// Encoder precision: f32 or bf16.
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Compute backend: cpu or wgpu.
    #[arg(long)]
    device: Option<String>,
    /// Exit 1 when a file could not be embedded.
    #[arg(long)]
    strict: bool,
}

/// `i/n` → (i, n).
fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let (i, n) = s.split_once('/').context("--shard is i/n, e.g. 3/16")?;
    let (i, n): (usize, usize) = (i.trim().parse()?, n.trim().parse()?);
    if n == 0 || i >= n {
        bail!("--shard {s}: need 0 <= i < n");
    }
    Ok((i, n))
}

/// The paths of the list, each line's exact bytes (non-UTF-8 names included, on Unix).
fn read_list(path: &PathBuf) -> anyhow::Result<Vec<PathBuf>> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .read_to_end(&mut bytes)?;
    }
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        #[cfg(unix)]
        out.push(PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(line),
        ));
        #[cfg(not(unix))]
        out.push(PathBuf::from(String::from_utf8_lossy(line).into_owned()));
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (i, n) = parse_shard(&args.shard)?;
    let all = read_list(&args.files)?;
    let mine: Vec<PathBuf> = all.into_iter().filter(|p| shard_of(p, n) == i).collect();
    std::fs::create_dir_all(&args.out)?;
    let part = args.out.join(format!("part-{i}.parquet"));
    let precision = match args.precision.as_str() {
        "f32" => Precision::F32,
        "bf16" => Precision::Bf16,
        p => bail!("--precision {p}: f32 or bf16"),
    };
    let mut builder = Library::builder()
        .model(common::resolve_model(args.model.as_ref()))
        .precision(precision);
    if let Some(d) = &args.device {
        builder = builder.device(
            d.parse()
                .map_err(|e| anyhow::anyhow!("--device {d}: {e}"))?,
        );
    }
    eprintln!("shard {i}/{n}: {} files -> {}", mine.len(), part.display());
    let start = Instant::now();
    let last = Arc::new(Mutex::new(Instant::now()));
    let label = format!("shard {i}/{n}");
    let progress: glimpse::ProgressFn = Arc::new(move |p: &glimpse::Progress| {
        let mut last = last.lock().unwrap();
        if last.elapsed().as_secs_f64() >= 2.0 || p.encoded + p.failed >= p.to_encode {
            *last = Instant::now();
            eprintln!(
                "{label}: {}/{} embedded, {} failed, {:.1} images/s",
                p.encoded, p.to_encode, p.failed, p.rate
            );
        }
    });
    let opts = EmbedFilesOptions::default()
        .batch_size(args.batch)
        .rows_per_chunk(args.chunk)
        .progress(progress);
    let report = builder.embed_files(&mine, &part, &opts)?;
    for f in &report.failed {
        eprintln!("failed: {}: {}", f.path.display(), f.error);
    }
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} rows ({} embedded now, {} already there, {} failed) in {seconds:.1} s",
        part.display(),
        report.rows,
        report.embedded,
        report.present,
        report.failed.len()
    );
    println!(
        "{}",
        serde_json::json!({
            "part": part.to_string_lossy(),
            "rows": report.rows,
            "bytes": report.bytes,
            "embedded": report.embedded,
            "present": report.present,
            "failed": report.failed.len(),
            "seconds": seconds,
        })
    );
    if args.strict && !report.failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
