//! Our graph against hnsw_rs (the reference) on the same data and parameters, searched by the
//! same walk; structure checks; the file round trip.

use std::time::Instant;

use super::*;
use crate::exact;
use crate::flat::FlatGraph;
use crate::reference::ReferenceGraph;
use crate::slots::Slots;

#[path = "../../tests/common/data.rs"]
mod data;

fn slots_of(base: &[f32], dims: usize) -> Slots {
    let norm = data::normalize_rows(base, dims);
    let mut slots = Slots::new(dims);
    for (i, v) in norm.chunks_exact(dims).enumerate() {
        slots.push(i as u64, v);
    }
    slots
}

fn build(config: &IndexConfig, slots: &Slots) -> Graph {
    let mut g = Graph::new(config, slots.slot_len());
    g.grow(slots.slot_len());
    g.insert_parallel(0..slots.slot_len(), slots);
    g
}

/// Mean recall@10 of the walk over `flat` at `ef`, and mean nodes scored per query.
fn recall(flat: &FlatGraph, slots: &Slots, queries: &[Vec<f32>], ef: usize) -> (f64, f64) {
    let (mut total, mut visited) = (0.0, 0usize);
    for q in queries {
        let truth: Vec<usize> = exact::top_k(slots, q, 10, &|_| true, &mut 0)
            .iter()
            .map(|h| h.slot)
            .collect();
        let got = flat.search(slots, q, ef, &|_| true);
        visited += got.visited;
        let hit = got
            .hits
            .iter()
            .take(10)
            .filter(|h| truth.contains(&h.slot))
            .count();
        total += hit as f64 / 10.0;
    }
    let nq = queries.len() as f64;
    (total / nq, visited as f64 / nq)
}

/// The acceptance test for replacing hnsw_rs: on the same clustered 128-d data, `m`,
/// `ef_construction` and walk, our graph recalls as well from ef = 32 on (within 0.03 below,
/// at less work, at ef 10-16), strands no more nodes, and builds faster.
#[test]
fn recalls_at_least_as_well_as_hnsw_rs() {
    let (dims, n, nq) = (128, 20_000, 200);
    let mut gen = data::Generator::new(dims, 11);
    let slots = slots_of(&gen.points(n), dims);
    let queries: Vec<Vec<f32>> = data::normalize_rows(&gen.points(nq), dims)
        .chunks_exact(dims)
        .map(<[f32]>::to_vec)
        .collect();
    let config = IndexConfig {
        m: 16,
        ef_construction: 100,
        ..IndexConfig::new(dims)
    };
    let t = Instant::now();
    let ours = build(&config, &slots);
    let ours_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let reference = ReferenceGraph::new(&config, n);
    let work: Vec<(&[f32], usize)> = (0..n).map(|s| (slots.vector(s), s)).collect();
    reference.insert_parallel(&work);
    let ref_s = t.elapsed().as_secs_f64();
    let flat_ours = FlatGraph::snapshot(&ours, &slots);
    let flat_ref = FlatGraph::snapshot(&reference, &slots);
    println!(
        "build {n} x {dims}: ours {ours_s:.2} s, hnsw_rs {ref_s:.2} s; unreachable before \
         repair: ours {}, hnsw_rs {}; mean layer-0 links: ours {:.1}, hnsw_rs {:.1}",
        flat_ours.repair().unreachable,
        flat_ref.repair().unreachable,
        flat_ours.mean_degree(),
        flat_ref.mean_degree(),
    );
    // The heuristic prunes reverse links too, which can strand a node (hnswlib's graphs do
    // the same; the snapshot's repair pass links them in): fewer than hnsw_rs's drops.
    assert!(
        flat_ours.repair().unreachable <= flat_ref.repair().unreachable,
        "stranded nodes"
    );
    assert_eq!(flat_ours.repair().left, 0);
    // Measured 2.2-3.3 s against 9.8-20 s on a loaded 2-core machine.
    assert!(ours_s < ref_s, "ours {ours_s:.2} s, hnsw_rs {ref_s:.2} s");
    for ef in [10, 16, 32, 64, 128] {
        let ((a, va), (b, vb)) = (
            recall(&flat_ours, &slots, &queries, ef),
            recall(&flat_ref, &slots, &queries, ef),
        );
        println!("ef {ef}: recall@10 ours {a:.4} ({va:.0} nodes scored), hnsw_rs {b:.4} ({vb:.0})");
        // Measured (20k x 128, m = 16, ef_construction = 100, 2 threads, two runs): equal
        // from ef = 32 (0.999-1.000 both); at ef = 10 / 16 ours 0.9135 / 0.976 against
        // hnsw_rs's 0.924-0.932 / 0.983-0.985, with ~10 % fewer nodes scored (its lists
        // are denser: 16.9 links against 15.3). On 100k x 384 ours matched hnswlib at equal
        // ef (docs/PERFORMANCE.md).
        let slack = if ef >= 32 { 0.002 } else { 0.03 };
        assert!(a >= b - slack, "ef {ef}: ours {a:.4} < hnsw_rs {b:.4}");
    }
}

/// Lists respect their capacities, hold no duplicates or self-links, link only nodes of their
/// layer, and the entry point is on the top layer.
#[test]
fn lists_are_well_formed() {
    let (dims, n) = (32, 3_000);
    let slots = slots_of(&data::Generator::new(dims, 5).points(n), dims);
    let config = IndexConfig {
        m: 6,
        ef_construction: 40,
        ..IndexConfig::new(dims)
    };
    let g = build(&config, &slots);
    let entry = *g.entry.read();
    let top = g.nodes.iter().map(|n| usize::from(n.level)).max().unwrap();
    assert_eq!(entry.level, top);
    assert_eq!(usize::from(g.nodes[entry.slot as usize].level), top);
    let mut per_level = vec![0usize; top + 1];
    g.nodes
        .iter()
        .for_each(|n| per_level[usize::from(n.level)] += 1);
    // Nodes on layer l or above.
    let on_layer = |l: usize| per_level[l..].iter().sum::<usize>();
    g.for_each_node(&mut |slot, _, links| {
        for (l, list) in links.iter().enumerate() {
            assert!(list.len() <= g.capacity(l), "slot {slot} layer {l}");
            assert!(
                !list.is_empty() || on_layer(l) == 1,
                "slot {slot} layer {l} has no links"
            );
            let mut sorted = list.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len(), "duplicate link at {slot}/{l}");
            for &t in list {
                assert_ne!(t as usize, slot);
                assert!(usize::from(g.nodes[t as usize].level) >= l);
            }
        }
    });
    // Level distribution: P(level >= 1) = 1/m.
    let above = n - per_level[0];
    assert!(
        (n / 6 / 2..n / 6 * 2).contains(&above),
        "{above} of {n} above layer 0"
    );
}

#[test]
fn dump_and_load_round_trip() {
    let (dims, n) = (16, 1_000);
    let slots = slots_of(&data::Generator::new(dims, 3).points(n), dims);
    let config = IndexConfig::new(dims);
    let g = build(&config, &slots);
    let dir = tempfile::tempdir().unwrap();
    let (lp, dp) = (dir.path().join("l"), dir.path().join("d"));
    let flat = crate::flat::FlatGraph::snapshot(&g, &slots);
    g.dump(&lp, &dp, &slots, &flat).unwrap();
    let load = |config: &IndexConfig, n: usize| {
        let file = std::fs::File::open(&lp).unwrap();
        // SAFETY: a test file nothing writes while it is mapped.
        let map = std::sync::Arc::new(unsafe { memmap2::Mmap::map(&file) }.unwrap());
        Graph::load(&map, &dp, config, n)
    };
    let (back, back_flat, data) = load(&config, n).unwrap();
    assert_eq!(back_flat.nodes(), n);
    assert_eq!(back_flat.mean_degree(), flat.mean_degree());
    let q = slots.vector(7);
    let ids = |f: &crate::flat::FlatGraph| {
        f.search(&slots, q, 20, &|_| true)
            .hits
            .iter()
            .map(|h| h.slot)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&back_flat),
        ids(&flat),
        "the saved snapshot walks the same"
    );
    assert_eq!(*back.entry.read(), *g.entry.read());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    g.for_each_node(&mut |s, l, links| a.push((s, l, links.to_vec())));
    back.for_each_node(&mut |s, l, links| b.push((s, l, links.to_vec())));
    assert_eq!(a, b);
    for s in 0..n {
        assert_eq!(data.row(s), slots.vector(s));
    }
    // A different m or node count is refused, as is a truncated file.
    let other = IndexConfig {
        m: 12,
        ..config.clone()
    };
    assert!(load(&other, n).unwrap_err().contains("m = 16"));
    assert!(load(&config, n + 1).is_err());
    let bytes = std::fs::read(&lp).unwrap();
    std::fs::write(&lp, &bytes[..bytes.len() - 3]).unwrap();
    assert!(load(&config, n).is_err());
}
