//! Criterion benches for `glimpse-index` on clustered 512-d data (fixed seeds).
//!
//! `cargo bench -p glimpse-index --bench index`. The 100k comparison with hnswlib is the
//! `ann_bench` example (see docs/PERFORMANCE.md); these track regressions at sizes that build in
//! seconds: batch build rate, graph search at the default ef, exact scan around the
//! `exact_threshold`, a 1 %-selective filtered search, and save/load.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glimpse_index::{Index, IndexConfig};

#[path = "../tests/common/data.rs"]
mod data;

const DIMS: usize = 512;
const SEED: u64 = 0x61_6e_6e;

fn build(base: &[f32], exact_threshold: usize) -> Index {
    let index = Index::new(IndexConfig {
        exact_threshold,
        ..IndexConfig::new(DIMS)
    })
    .unwrap();
    let items: Vec<(u64, &[f32])> = base
        .chunks_exact(DIMS)
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    index.insert_batch(&items).unwrap();
    index
}

fn benches(c: &mut Criterion) {
    let mut g = data::Generator::new(DIMS, SEED);
    let base = g.points(20_000);
    let queries = g.points(100);
    let qs: Vec<&[f32]> = queries.chunks_exact(DIMS).collect();

    let mut group = c.benchmark_group("build");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(5_000));
    group.bench_function("insert_batch_5k", |b| {
        b.iter(|| build(&base[..5_000 * DIMS], 0))
    });
    group.finish();

    let mut group = c.benchmark_group("search");
    group.measurement_time(Duration::from_secs(5));
    for n in [1_000usize, 2_000, 4_000, 20_000] {
        let index = build(&base[..n * DIMS], 0);
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("graph_default_ef", n), &n, |b, _| {
            b.iter(|| {
                i += 1;
                black_box(index.search(qs[i % qs.len()], 10, None).unwrap())
            })
        });
        group.bench_with_input(BenchmarkId::new("exact_scan", n), &n, |b, _| {
            b.iter(|| {
                i += 1;
                black_box(index.search_exact(qs[i % qs.len()], 10, None).unwrap())
            })
        });
        if n == 20_000 {
            let one_percent = |id: u64| id % 100 == 3;
            group.bench_function("filtered_1pct_20000", |b| {
                b.iter(|| {
                    i += 1;
                    black_box(
                        index
                            .search(qs[i % qs.len()], 10, Some(&one_percent))
                            .unwrap(),
                    )
                })
            });
            let half = |id: u64| id.is_multiple_of(2);
            group.bench_function("filtered_50pct_20000", |b| {
                b.iter(|| {
                    i += 1;
                    black_box(index.search(qs[i % qs.len()], 10, Some(&half)).unwrap())
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("persist");
    group.sample_size(10);
    let index = build(&base[..5_000 * DIMS], 0);
    let dir = tempfile::tempdir().unwrap();
    group.bench_function("save_5k", |b| b.iter(|| index.save(dir.path()).unwrap()));
    group.bench_function("load_5k", |b| b.iter(|| Index::load(dir.path()).unwrap()));
    group.finish();
}

criterion_group!(index_benches, benches);
criterion_main!(index_benches);
