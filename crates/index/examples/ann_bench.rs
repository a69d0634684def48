//! ANN benchmark harness for `glimpse-index`: build rate, recall@10 / single-thread QPS over an
//! `ef` sweep, brute-force QPS and memory, on vectors read from `.npy` / raw f32 files or on a
//! generated clustered set (a 64-d Gaussian mixture projected to `dims`, see
//! `tests/common/data.rs`).
//!
//! ```text
//! cargo run --release -p glimpse-index --example ann_bench -- \
//!     [--base FILE.npy|FILE.f32] [--queries FILE] [--dims D] \
//!     [--generate N] [--nq 1000] [--seed 42] [--m 16] [--efc 200] [--k 10] \
//!     [--write DIR]        # write base.npy, queries.npy, gt.npy for scripts/bench_hnswlib.py
//!     [--gt FILE.npy]      # ground truth (int64, k ids per query) instead of an exact scan
//!     [--exact-sweep]      # graph vs exact-scan latency by collection size (exact_threshold)
//!     [--efs 32,48,64]     # ef values to sweep (default 10..768)
//!     [--reps 3]           # timed passes per setting; the best is reported
//!     [--cache DIR]        # load the index from DIR if saved there, else build and save it
//!     [--no-reload]        # after saving, do not time a reload
//!     [--open-only DIR]    # only open a saved index, one query, verification, a full load
//!     [--filters 50,10,1]  # filtered sweep: filters keeping these % of ids (with --write:
//!                          # filter_<pct>.npy and gt_filter_<pct>.npy for the Python peers)
//!     [--filter-efs 16,64] # ef values of the filtered sweep (default 16,32,64,128,256)
//! ```
//! Raw `.f32` files are little-endian f32 rows and need `--dims`. Ground truth is computed by
//! exact scan (multi-threaded). Results are printed as a table and as JSON lines.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use glimpse_index::{Index, IndexConfig};
use rayon::prelude::*;

#[path = "../tests/common/data.rs"]
mod data;

const EFS: &[usize] = &[10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768];

fn main() -> Result<()> {
    let args = Args::parse()?;
    if let Some(dir) = args.value("open-only") {
        return open_only(Path::new(dir));
    }
    let seed: u64 = args.get("seed", 42)?;
    let k: usize = args.get("k", 10)?;
    let m: usize = args.get("m", 16)?;
    let efc: usize = args.get("efc", 200)?;
    let nq: usize = args.get("nq", 1000)?;
    let reps: usize = args.get("reps", 3)?;

    let (base, queries, dims) = match args.value("base") {
        Some(path) => {
            let (base, dims) = read_vectors(Path::new(path), args.value("dims"))?;
            let (queries, qd) = match args.value("queries") {
                Some(q) => read_vectors(Path::new(q), Some(&dims.to_string()))?,
                None => bail!("--base needs --queries"),
            };
            anyhow::ensure!(qd == dims, "query dims {qd} != base dims {dims}");
            (base, queries, dims)
        }
        None => {
            let dims: usize = args.get("dims", 512)?;
            let n: usize = args.get("generate", 100_000)?;
            let t = Instant::now();
            let mut g = data::Generator::new(dims, seed);
            let base = g.points(n);
            let queries = g.points(nq);
            eprintln!(
                "generated {n} x {dims} (seed {seed}) in {:.1?}",
                t.elapsed()
            );
            (base, queries, dims)
        }
    };
    let n = base.len() / dims;
    let nq = queries.len() / dims;

    if args.flag("exact-sweep") {
        return exact_sweep(&base, &queries, dims, m, efc, k);
    }

    let rss0 = rss_kib();
    let config = IndexConfig {
        m,
        ef_construction: efc,
        exact_threshold: 0,
        ..IndexConfig::new(dims)
    };
    let index = Index::new(config)?;
    let items: Vec<(u64, &[f32])> = base
        .chunks_exact(dims)
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    let cache = args.value("cache").map(PathBuf::from);
    let cached = cache
        .as_ref()
        .is_some_and(|c| c.join(glimpse_index::persist::FILE_NAME).exists());
    let t = Instant::now();
    let index = if cached {
        let dir = cache.as_ref().expect("cached implies a cache dir");
        // `open` (the vectors file's checksum checked in the background), its first query,
        // then the wait for that check; then a `load` (everything checked first), for scale.
        let loaded = Index::open(dir)?;
        let opened = t.elapsed();
        let first = loaded.search(&queries[..dims], k, None)?;
        let answered = t.elapsed();
        loaded.verify()?;
        println!(
            "opened the index from {} in {opened:.2?}; open + first query {answered:.2?} ({} \
             hits); vectors verified by {:.2?}",
            dir.display(),
            first.len(),
            t.elapsed()
        );
        let t = Instant::now();
        drop(Index::load(dir)?);
        println!(
            "Index::load (every checksum before returning): {:.2?}",
            t.elapsed()
        );
        anyhow::ensure!(
            loaded.len() == n,
            "cached index has {} entries",
            loaded.len()
        );
        loaded
    } else {
        index.insert_batch(&items)?;
        index
    };
    let build_s = t.elapsed().as_secs_f64();
    let rss1 = rss_kib();
    let (anon1, file1, hwm1) = (
        status_kib("RssAnon:"),
        status_kib("RssFile:"),
        status_kib("VmHWM:"),
    );
    if let (Some(dir), false) = (&cache, cached) {
        let t = Instant::now();
        index.save(dir)?;
        // The manifest and the graph files it names.
        let size: u64 = fs::read_dir(dir)?
            .map(|e| Ok(e?.metadata()?.len()))
            .sum::<std::io::Result<u64>>()?;
        println!(
            "saved to {} in {:.2?} ({:.0} MiB)",
            dir.display(),
            t.elapsed(),
            size as f64 / (1 << 20) as f64
        );
        if !args.flag("no-reload") {
            let t = Instant::now();
            drop(Index::load(dir)?);
            println!("reloaded in {:.2?}", t.elapsed());
        }
    }
    let threads = rayon::current_num_threads();
    let stats = index.stats();
    if !cached {
        println!(
            "build: {n} x {dims}, M={m}, ef_construction={efc}: {build_s:.1} s = {:.0} vectors/s \
             ({threads} rayon threads)",
            n as f64 / build_s
        );
    }
    println!(
        "mean layer-0 links per node: {:.1}; nodes linked in to be reachable: {}, still \
         unreachable: {}",
        stats.mean_links, stats.relinked, stats.unreachable
    );
    println!(
        "memory after the build (or load): RSS +{:.0} MiB over the raw vectors' load (stats \
         estimate {:.0} MiB, raw f32 {:.0} MiB); RssAnon {:.0} MiB, RssFile {:.0} MiB, peak VmHWM {:.0} MiB (the base vectors alone {:.0} MiB)",
        (rss1.saturating_sub(rss0)) as f64 / 1024.0,
        stats.memory_bytes as f64 / (1 << 20) as f64,
        (n * dims * 4) as f64 / (1 << 20) as f64,
        anon1 as f64 / 1024.0,
        file1 as f64 / 1024.0,
        hwm1 as f64 / 1024.0,
        (rss0 as f64) / 1024.0
    );
    println!(
        "memory after the save / reload step: RSS +{:.0} MiB (RssAnon {:.0}, RssFile {:.0})",
        rss_kib().saturating_sub(rss0) as f64 / 1024.0,
        status_kib("RssAnon:") as f64 / 1024.0,
        status_kib("RssFile:") as f64 / 1024.0
    );

    // Ground truth (exact scan, parallel over queries), unless given.
    let t = Instant::now();
    let gt: Vec<Vec<u64>> = match args.value("gt") {
        Some(path) => read_gt(Path::new(path), k, nq)?,
        None => queries
            .par_chunks_exact(dims)
            .map(|q| {
                index
                    .search_exact(q, k, None)
                    .map(|h| h.into_iter().map(|x| x.0).collect())
            })
            .collect::<glimpse_index::Result<_>>()?,
    };
    eprintln!("ground truth in {:.1?}", t.elapsed());

    // Brute force, single thread.
    let bq = nq.min(200);
    let mut brute_secs = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        for q in queries.chunks_exact(dims).take(bq) {
            std::hint::black_box(index.search_exact(q, k, None)?);
        }
        brute_secs = brute_secs.min(t.elapsed().as_secs_f64());
    }
    let brute_qps = bq as f64 / brute_secs;
    println!("brute force (exact scan, 1 thread): {brute_qps:.1} QPS");

    if let Some(dir) = args.value("write") {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir)?;
        write_npy_f32(&dir.join("base.npy"), &base, dims)?;
        write_npy_f32(&dir.join("queries.npy"), &queries, dims)?;
        let flat: Vec<i64> = gt.iter().flatten().map(|&x| x as i64).collect();
        write_npy_i64(&dir.join("gt.npy"), &flat, k)?;
        eprintln!("wrote base.npy, queries.npy, gt.npy to {}", dir.display());
    }

    println!(
        "\n{:>5} {:>9} {:>10} {:>10}",
        "ef", "recall@10", "QPS", "ms/query"
    );
    let mut sweep = Vec::new();
    let efs: Vec<usize> = match args.value("efs") {
        Some(list) => list
            .split(',')
            .map(|e| e.trim().parse())
            .collect::<Result<_, _>>()?,
        None => EFS.to_vec(),
    };
    for &ef in &efs {
        // Warm-up pass, then the timed pass (single thread).
        for q in queries.chunks_exact(dims).take(50) {
            std::hint::black_box(index.search_with_ef(q, k, None, ef)?);
        }
        // Best of `reps` timed passes: the machine is shared, the minimum is the least disturbed.
        let mut secs = f64::INFINITY;
        let mut results = Vec::with_capacity(nq);
        for _ in 0..reps {
            results.clear();
            let t = Instant::now();
            for q in queries.chunks_exact(dims) {
                results.push(index.search_with_ef(q, k, None, ef)?);
            }
            secs = secs.min(t.elapsed().as_secs_f64());
        }
        let recall: f64 = results
            .iter()
            .zip(&gt)
            .map(|(r, truth)| {
                let got: Vec<u64> = r.iter().map(|x| x.0).collect();
                data::recall(&got, truth)
            })
            .sum::<f64>()
            / nq as f64;
        let qps = nq as f64 / secs;
        println!(
            "{ef:>5} {recall:>9.4} {qps:>10.1} {:>10.3}",
            1000.0 * secs / nq as f64
        );
        println!(
            "JSON {{\"lib\":\"glimpse-index\",\"ef\":{ef},\"recall\":{recall:.5},\"qps\":{qps:.1}}}"
        );
        sweep.push((ef, recall, qps));
        if recall > 0.999 {
            break;
        }
    }
    println!();
    for target in [0.90, 0.95, 0.99] {
        match sweep
            .iter()
            .filter(|s| s.1 >= target)
            .max_by(|a, b| a.2.total_cmp(&b.2))
        {
            Some((ef, r, qps)) => {
                println!("recall@10 >= {target}: {qps:.1} QPS (ef={ef}, recall {r:.4})")
            }
            None => println!("recall@10 >= {target}: not reached"),
        }
    }
    if let Some(list) = args.value("filters") {
        let pcts: Vec<f64> = list
            .split(',')
            .map(|e| e.trim().parse())
            .collect::<Result<_, _>>()?;
        let fefs: Vec<usize> = match args.value("filter-efs") {
            Some(list) => list
                .split(',')
                .map(|e| e.trim().parse())
                .collect::<Result<_, _>>()?,
            None => vec![16, 32, 64, 128, 256],
        };
        let write = args.value("write").map(PathBuf::from);
        filtered_sweep(
            &index,
            &queries,
            dims,
            n,
            k,
            reps,
            &pcts,
            &fefs,
            write.as_deref(),
        )?;
    }
    println!(
        "JSON {{\"lib\":\"glimpse-index\",\"build_s\":{build_s:.2},\"n\":{n},\"dims\":{dims},\
         \"threads\":{threads},\"brute_qps\":{brute_qps:.1}}}"
    );
    Ok(())
}

/// Latency of graph search (default ef) vs exact scan at growing collection sizes.
fn exact_sweep(
    base: &[f32],
    queries: &[f32],
    dims: usize,
    m: usize,
    efc: usize,
    k: usize,
) -> Result<()> {
    println!(
        "{:>7} {:>12} {:>12} {:>12}",
        "n", "graph µs", "exact µs", "graph recall"
    );
    for n in [250usize, 500, 1000, 2000, 4000, 8000, 16000] {
        if n * dims > base.len() {
            break;
        }
        let config = IndexConfig {
            m,
            ef_construction: efc,
            exact_threshold: 0,
            ..IndexConfig::new(dims)
        };
        let index = Index::new(config)?;
        let items: Vec<(u64, &[f32])> = base[..n * dims]
            .chunks_exact(dims)
            .enumerate()
            .map(|(i, v)| (i as u64, v))
            .collect();
        index.insert_batch(&items)?;
        let qs: Vec<&[f32]> = queries.chunks_exact(dims).take(300).collect();
        type Hits = Vec<(u64, f32)>;
        let time = |f: &dyn Fn(&[f32]) -> Hits| {
            let t = Instant::now();
            let out: Vec<_> = qs.iter().map(|q| f(q)).collect();
            (t.elapsed().as_secs_f64() * 1e6 / qs.len() as f64, out)
        };
        let (g_us, g) = time(&|q| index.search(q, k, None).unwrap());
        let (e_us, e) = time(&|q| index.search_exact(q, k, None).unwrap());
        let recall: f64 = g
            .iter()
            .zip(&e)
            .map(|(a, b)| {
                let a: Vec<u64> = a.iter().map(|x| x.0).collect();
                let b: Vec<u64> = b.iter().map(|x| x.0).collect();
                data::recall(&a, &b)
            })
            .sum::<f64>()
            / qs.len() as f64;
        println!("{n:>7} {g_us:>12.1} {e_us:>12.1} {recall:>12.4}");
    }
    Ok(())
}

/// `--open-only DIR`: open a saved index, answer one query (its first entry's own vector),
/// wait for the background verification, then time a full `load`; nothing else (for profiles
/// of the open path).
fn open_only(dir: &Path) -> Result<()> {
    let t = Instant::now();
    let index = Index::open(dir)?;
    let opened = t.elapsed();
    let q = (0..u64::MAX)
        .find_map(|id| index.get(id))
        .context("empty index")?;
    let t1 = Instant::now();
    let hits = index.search(&q, 10, None)?;
    let first = t1.elapsed();
    index.verify()?;
    println!(
        "open {opened:.2?}; first query {first:.2?} ({} hits); verified {:.2?} after the open \
         began; {} entries",
        hits.len(),
        t.elapsed(),
        index.len()
    );
    drop(index);
    let t = Instant::now();
    drop(Index::load(dir)?);
    println!("Index::load (every checksum first): {:.2?}", t.elapsed());
    Ok(())
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A `/proc/self/status` field in KiB (`VmRSS:`, `RssAnon:`, `RssFile:`, `VmHWM:`).
fn status_kib(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether `id` passes the filter keeping `pct` % of ids (a fixed hash of the id, so every
/// library filters the same ids: `--write` stores them as `filter_<pct>.npy`).
fn allowed(id: u64, pct: f64) -> bool {
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z % 10_000) as f64) < pct * 100.0
}

/// Filtered search as VectorDBBench measures it: for filters keeping `pcts` % of the ids,
/// recall@k against the filtered exact top-k and single-thread QPS over an `ef` sweep.
#[allow(clippy::too_many_arguments)]
fn filtered_sweep(
    index: &Index,
    queries: &[f32],
    dims: usize,
    n: usize,
    k: usize,
    reps: usize,
    pcts: &[f64],
    efs: &[usize],
    write: Option<&Path>,
) -> Result<()> {
    let nq = queries.len() / dims;
    for &pct in pcts {
        let mask: Vec<bool> = (0..n as u64).map(|id| allowed(id, pct)).collect();
        let keep = |id: u64| mask[id as usize];
        let gt: Vec<Vec<u64>> = queries
            .par_chunks_exact(dims)
            .map(|q| {
                index
                    .search_exact(q, k, Some(&keep))
                    .map(|h| h.into_iter().map(|x| x.0).collect())
            })
            .collect::<glimpse_index::Result<_>>()?;
        let kept = mask.iter().filter(|&&m| m).count();
        if let Some(dir) = write {
            let ids: Vec<i64> = (0..n as i64).filter(|&i| mask[i as usize]).collect();
            write_npy_i64(&dir.join(format!("filter_{pct}.npy")), &ids, 1)?;
            let flat: Vec<i64> = gt.iter().flatten().map(|&x| x as i64).collect();
            write_npy_i64(&dir.join(format!("gt_filter_{pct}.npy")), &flat, k)?;
        }
        println!("\nfilter keeping {pct} % ({kept} of {n} ids)");
        println!(
            "{:>5} {:>9} {:>10} {:>10}  path",
            "ef", "recall@10", "QPS", "ms/query"
        );
        for &ef in efs {
            let mut secs = f64::INFINITY;
            let mut results = Vec::with_capacity(nq);
            let mut path = None;
            for _ in 0..reps {
                results.clear();
                let t = Instant::now();
                for q in queries.chunks_exact(dims) {
                    let (hits, stats) = index.search_with_stats(q, k, Some(&keep), Some(ef))?;
                    path.get_or_insert(stats.path);
                    results.push(hits);
                }
                secs = secs.min(t.elapsed().as_secs_f64());
            }
            let recall: f64 = results
                .iter()
                .zip(&gt)
                .map(|(r, truth)| {
                    let got: Vec<u64> = r.iter().map(|x| x.0).collect();
                    data::recall(&got, truth)
                })
                .sum::<f64>()
                / nq as f64;
            let qps = nq as f64 / secs;
            println!(
                "{ef:>5} {recall:>9.4} {qps:>10.1} {:>10.3}  {:?}",
                1000.0 * secs / nq as f64,
                path.expect("at least one query")
            );
            println!(
                "JSON {{\"lib\":\"glimpse-index\",\"filter_pct\":{pct},\"ef\":{ef},\"recall\":{recall:.5},\"qps\":{qps:.1}}}"
            );
            if recall > 0.999 {
                break;
            }
        }
    }
    Ok(())
}

/// Reads an `.npy` (little-endian f4, C order, 2-d) or a raw little-endian f32 file.
fn read_vectors(path: &Path, dims: Option<&String>) -> Result<(Vec<f32>, usize)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (payload, dims) = if bytes.starts_with(b"\x93NUMPY") {
        let (payload, shape) = npy_payload(&bytes, "<f4")?;
        (payload, shape[1])
    } else {
        let dims: usize = dims.context("raw f32 files need --dims")?.parse()?;
        (&bytes[..], dims)
    };
    anyhow::ensure!(
        payload.len() % (4 * dims) == 0,
        "file size is not a multiple of the row size"
    );
    let v = payload
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Ok((v, dims))
}

/// The data bytes and the (2-d) shape of a C-order `.npy` file whose elements are `descr`.
fn npy_payload<'a>(bytes: &'a [u8], descr: &str) -> Result<(&'a [u8], [usize; 2])> {
    anyhow::ensure!(
        bytes.starts_with(b"\x93NUMPY") && bytes.len() >= 12,
        "not a .npy file"
    );
    let (major, rest) = (bytes[6], &bytes[8..]);
    let (hlen, off) = if major == 1 {
        (u16::from_le_bytes([rest[0], rest[1]]) as usize, 10)
    } else {
        (u32::from_le_bytes(rest[..4].try_into()?) as usize, 12)
    };
    let header = std::str::from_utf8(bytes.get(off..off + hlen).context("short header")?)?;
    anyhow::ensure!(
        header.contains(&format!("'{descr}'")),
        "expected elements '{descr}': {header}"
    );
    anyhow::ensure!(
        header.contains("'fortran_order': False"),
        "Fortran order: {header}"
    );
    let shape = header.split("'shape':").nth(1).context("no shape")?;
    let inner = shape
        .split('(')
        .nth(1)
        .and_then(|s| s.split(')').next())
        .context("shape")?;
    let dims_v: Vec<usize> = inner
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(dims_v.len() == 2, "expected a 2-d array, shape {dims_v:?}");
    Ok((&bytes[off + hlen..], [dims_v[0], dims_v[1]]))
}

fn npy_header(descr: &str, rows: usize, cols: usize) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let total = 10 + dict.len() + 1;
    let pad = (64 - total % 64) % 64;
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((dict.len() + pad + 1) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    h
}

fn write_npy_f32(path: &Path, v: &[f32], cols: usize) -> Result<()> {
    let mut f = std::io::BufWriter::new(fs::File::create(path)?);
    f.write_all(&npy_header("<f4", v.len() / cols, cols))?;
    for x in v {
        f.write_all(&x.to_le_bytes())?;
    }
    Ok(f.flush()?)
}

/// Reads `nq` rows of `k` ids from an int64 `.npy` written by `--write`.
fn read_gt(path: &Path, k: usize, nq: usize) -> Result<Vec<Vec<u64>>> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (payload, shape) = npy_payload(&bytes, "<i8")?;
    anyhow::ensure!(
        shape == [nq, k],
        "{}: shape {shape:?}, expected [{nq}, {k}]",
        path.display()
    );
    anyhow::ensure!(
        payload.len() == 8 * k * nq,
        "{}: {} data bytes, expected {}",
        path.display(),
        payload.len(),
        8 * k * nq
    );
    Ok(payload
        .chunks_exact(8 * k)
        .map(|row| {
            row.chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as u64)
                .collect()
        })
        .collect())
}

fn write_npy_i64(path: &Path, v: &[i64], cols: usize) -> Result<()> {
    let mut f = std::io::BufWriter::new(fs::File::create(path)?);
    f.write_all(&npy_header("<i8", v.len() / cols, cols))?;
    for x in v {
        f.write_all(&x.to_le_bytes())?;
    }
    Ok(f.flush()?)
}

/// `--key value` / `--flag` arguments.
struct Args(HashMap<String, Option<String>>);

impl Args {
    fn parse() -> Result<Self> {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1).peekable();
        while let Some(a) = it.next() {
            let key = a
                .strip_prefix("--")
                .with_context(|| format!("unexpected argument {a}"))?;
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next(),
                _ => None,
            };
            map.insert(key.to_string(), value);
        }
        Ok(Args(map))
    }
    fn value(&self, key: &str) -> Option<&String> {
        self.0.get(key).and_then(|v| v.as_ref())
    }
    fn flag(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.value(key) {
            Some(v) => v.parse().map_err(|e| anyhow::anyhow!("--{key} {v}: {e}")),
            None => Ok(default),
        }
    }
}
