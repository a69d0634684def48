//! Folder indexing end to end against the encoder alone (issue 15, item 6), with a per-stage
//! breakdown so the limit is known.
//!
//! ```sh
//! python3 scripts/make_folder_jpegs.py /tmp/glimpse_12mp 64
//! cargo run --example bench_folder --features turbojpeg -- \
//!     --model ~/.cache/glimpse/vit-b32-random --photos /tmp/glimpse_12mp
//! ```
//! (`scripts/bench_folder.sh` does both and runs it twice: `GLIMPSE_TURBOJPEG=0` and `=1`.)
//!
//! Prints one JSON object per measurement:
//!
//! * `stage`: one thread, the first `--sample` files, per file: `read`, `hash` (BLAKE3, as the
//!   library hashes every file), `decode_exact` (every pixel, EXIF orientation applied),
//!   `decode_reduced` (the library's setting: DCT scaling keeping the shorter side at least
//!   2 × the model input), `resize_exact` / `resize_reduced` (resize + crop + normalise of each
//!   decode's output); wall and thread-CPU milliseconds per file;
//! * `encoder`: the vision tower alone on already-preprocessed pixels of every file, in
//!   batches of `--batch` (the library's default batch size), images/s and process CPU-ms per
//!   image;
//! * `library`: `Library::index_folder` on the folder into a fresh library directory (the
//!   vision tower loaded beforehand), images/s and process CPU-ms per image;
//! * `summary`: `ratio` = library images/s ÷ encoder images/s (the issue's target: ≥ 0.9),
//!   and where the library's CPU time per image goes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use glimpse::{IndexOptions, Library};
use glimpse_encoder::preprocess::decode::{decode_dynamic, jpeg_decoder};
use glimpse_encoder::preprocess::{DecodeOptions, Pixels, Preprocessor};
use glimpse_encoder::{Backend, ClipEncoder, LoadOptions, Towers};

/// Time folder indexing against the encoder alone.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: PathBuf,
    /// Folder of JPEGs (scripts/make_folder_jpegs.py makes one).
    #[arg(long)]
    photos: PathBuf,
    /// Encoder batch size, for the encoder alone and the library.
    #[arg(long, default_value_t = IndexOptions::default().batch_size)]
    batch: usize,
    /// Files timed stage by stage on one thread.
    #[arg(long, default_value_t = 8)]
    sample: usize,
    /// Timed runs of the encoder and of the library (each library run in a fresh directory).
    #[arg(long, default_value_t = 2)]
    reps: usize,
    /// What to run: stage, encoder, library.
    #[arg(long, value_delimiter = ',', default_value = "stage,encoder,library")]
    cases: Vec<String>,
}

/// Milliseconds of CPU time of `clock` (a `CLOCK_*_CPUTIME_ID`).
fn cpu_ms(clock: libc::clockid_t) -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(clock, &mut t) } == 0 {
        return t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6;
    }
    0.0
}

fn process_ms() -> f64 {
    cpu_ms(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn thread_ms() -> f64 {
    cpu_ms(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Wall and thread-CPU milliseconds summed over calls.
#[derive(Default, Clone, Copy)]
struct Tally {
    wall: f64,
    cpu: f64,
}

impl Tally {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (w, c) = (Instant::now(), thread_ms());
        let out = f();
        self.cpu += thread_ms() - c;
        self.wall += w.elapsed().as_secs_f64() * 1e3;
        out
    }
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn jpegs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no JPEGs in {}", args_hint(dir));
    }
    Ok(files)
}

fn args_hint(dir: &Path) -> String {
    format!(
        "{} (make some: python3 scripts/make_folder_jpegs.py {} 64)",
        dir.display(),
        dir.display()
    )
}

/// The library's decode settings (src/model.rs): EXIF orientation on; `reduced` adds DCT
/// scaling that keeps the shorter side at least twice the model input.
fn preprocessor(model: &Path, reduced: bool) -> anyhow::Result<Preprocessor> {
    let decode = DecodeOptions {
        apply_exif_orientation: true,
        ..DecodeOptions::default()
    };
    let pre = Preprocessor::from_dir(model)?.with_decode_options(decode);
    Ok(if reduced {
        pre.with_reduced_jpeg(2)
    } else {
        pre
    })
}

/// Per-file stage times on this thread; returns the per-file (wall, cpu) of the library's
/// decode + preprocess (reduced) and of the hash.
fn stages(args: &Args, files: &[PathBuf]) -> anyhow::Result<(Tally, Tally)> {
    let exact = preprocessor(&args.model, false)?;
    let reduced = preprocessor(&args.model, true)?;
    let names = [
        "read",
        "hash",
        "decode_exact",
        "resize_exact",
        "decode_reduced",
        "resize_reduced",
    ];
    let mut t = [Tally::default(); 6];
    let sample = &files[..args.sample.clamp(1, files.len())];
    let (mut bytes_total, mut dims) = (0usize, (0, 0, 0, 0));
    for path in sample {
        let bytes = t[0].time(|| std::fs::read(path))?;
        bytes_total += bytes.len();
        t[1].time(|| blake3::hash(&bytes));
        let img = t[2].time(|| decode_dynamic(&bytes, path, exact.decode_options()))?;
        t[3].time(|| exact.preprocess_image(img.clone()));
        let small = t[4].time(|| decode_dynamic(&bytes, path, reduced.decode_options()))?;
        t[5].time(|| reduced.preprocess_image(small.clone()));
        dims = (img.width(), img.height(), small.width(), small.height());
    }
    let n = sample.len() as f64;
    for (name, t) in names.iter().zip(&t) {
        println!(
            "{{\"case\":\"stage\",\"stage\":\"{name}\",\"ms_per_file\":{:.2},\"cpu_ms_per_file\":{:.2},\"files\":{n},\"jpeg_decoder\":\"{}\"}}",
            t.wall / n,
            t.cpu / n,
            jpeg_decoder()
        );
    }
    eprintln!(
        "stage sample: {n} files, {:.2} MB mean, decoded {}x{} exact / {}x{} reduced",
        bytes_total as f64 / n / 1e6,
        dims.0,
        dims.1,
        dims.2,
        dims.3
    );
    let per = |a: Tally| Tally {
        wall: a.wall / n,
        cpu: a.cpu / n,
    };
    let library = Tally {
        wall: t[4].wall + t[5].wall,
        cpu: t[4].cpu + t[5].cpu,
    };
    Ok((per(library), per(t[1])))
}

/// Images/s and process CPU-ms per image of the vision tower alone, best of `reps`.
fn encoder_only(args: &Args, files: &[PathBuf]) -> anyhow::Result<(f64, f64)> {
    let pre = preprocessor(&args.model, true)?;
    let pixels: Vec<Pixels> = pre
        .preprocess_paths(files)
        .into_iter()
        .collect::<Result<_, _>>()?;
    let device = Backend::Flex.device()?; // what `Library` uses by default
    let options = LoadOptions::default().towers(Towers::VisionOnly);
    let enc = ClipEncoder::load_with(&args.model, &device, &options)?;
    eprintln!(
        "encoder: engine {:?}, precision {:?}, batch {}",
        enc.engine(),
        enc.precision(),
        args.batch
    );
    enc.embed_pixels(&pixels[..args.batch.min(pixels.len())])?; // warm-up
    let mut best = (0.0f64, f64::MAX);
    for _ in 0..args.reps.max(1) {
        let (w, c) = (Instant::now(), process_ms());
        for chunk in pixels.chunks(args.batch.max(1)) {
            enc.embed_pixels(chunk)?;
        }
        let cpu = (process_ms() - c) / pixels.len() as f64;
        let rate = pixels.len() as f64 / w.elapsed().as_secs_f64();
        println!(
            "{{\"case\":\"encoder\",\"batch\":{},\"images\":{},\"images_per_s\":{rate:.2},\"cpu_ms_per_image\":{cpu:.1},\"load\":\"{}\"}}",
            args.batch,
            pixels.len(),
            load_avg()
        );
        if rate > best.0 {
            best = (rate, cpu);
        }
    }
    Ok(best)
}

/// Images/s and process CPU-ms per image of `Library::index_folder`, best of `reps`, each in a
/// fresh library directory.
fn library(args: &Args, files: &[PathBuf]) -> anyhow::Result<(f64, f64)> {
    let mut best = (0.0f64, f64::MAX);
    for _ in 0..args.reps.max(1) {
        let dir = tempfile::tempdir()?;
        let lib = Library::builder().model(&args.model).open(dir.path())?;
        lib.embed_image(&files[0])?; // loads the vision tower outside the timing
        let opts = IndexOptions::default().batch_size(args.batch);
        let (w, c) = (Instant::now(), process_ms());
        let report = lib.index_folder(&args.photos, &opts)?;
        let secs = w.elapsed().as_secs_f64();
        let cpu = (process_ms() - c) / files.len() as f64;
        if report.added != files.len() {
            bail!(
                "indexed {} of {} files; failures: {:?}",
                report.added,
                files.len(),
                report.failed
            );
        }
        let rate = files.len() as f64 / secs;
        println!(
            "{{\"case\":\"library\",\"batch\":{},\"images\":{},\"images_per_s\":{rate:.2},\"cpu_ms_per_image\":{cpu:.1},\"jpeg_decoder\":\"{}\",\"load\":\"{}\"}}",
            args.batch,
            files.len(),
            jpeg_decoder(),
            load_avg()
        );
        if rate > best.0 {
            best = (rate, cpu);
        }
    }
    Ok(best)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let files = jpegs(&args.photos)?;
    let wants = |c: &str| args.cases.iter().any(|x| x == c);
    eprintln!(
        "{} files, rayon threads {}, JPEG decoder {}, load {}",
        files.len(),
        rayon::current_num_threads(),
        jpeg_decoder(),
        load_avg()
    );
    let stage = if wants("stage") {
        Some(stages(&args, &files)?)
    } else {
        None
    };
    let encoder = if wants("encoder") {
        Some(encoder_only(&args, &files)?)
    } else {
        None
    };
    let lib = if wants("library") {
        Some(library(&args, &files)?)
    } else {
        None
    };
    if let (Some((enc_rate, enc_cpu)), Some((lib_rate, lib_cpu))) = (encoder, lib) {
        let (prep, hash) = stage.map_or((0.0, 0.0), |(p, h)| (p.cpu, h.cpu));
        let other = lib_cpu - enc_cpu - prep - hash;
        println!(
            "{{\"case\":\"summary\",\"ratio\":{:.3},\"encoder_images_per_s\":{enc_rate:.2},\"library_images_per_s\":{lib_rate:.2},\"cpu_ms_per_image\":{{\"library\":{lib_cpu:.1},\"encode\":{enc_cpu:.1},\"decode_preprocess\":{prep:.1},\"hash\":{hash:.1},\"other\":{other:.1}}},\"jpeg_decoder\":\"{}\",\"load\":\"{}\"}}",
            lib_rate / enc_rate,
            jpeg_decoder(),
            load_avg()
        );
    }
    Ok(())
}
