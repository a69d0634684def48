//! Queries in Chinese, end to end and offline: fresh pictures are indexed with the English demo
//! model (`models/glimpse-shapes`), then the same library, reopened with the distilled query
//! tower (`models/glimpse-shapes-zh`, `LibraryBuilder::query_model`), answers "一个红色圆形",
//! ... without re-embedding a photo. A query succeeds at k when one of its top k hits shows its
//! colour and shape (as in `semantic.rs`).

use glimpse::{IndexOptions, Library};
use glimpse_synth::{self as synth, Colour, Shape};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

type Truth = HashMap<PathBuf, (Colour, Shape)>;

/// Recall@1 and @5 of `queries` over the library.
fn recall(lib: &Library, queries: &[(String, Colour, Shape)], truth: &Truth) -> (f64, f64) {
    let (mut at1, mut at5) = (0, 0);
    for (query, colour, shape) in queries {
        let hits = lib.search_text(query, 5).unwrap();
        let relevant: Vec<bool> = hits
            .iter()
            .map(|h| truth[&h.path] == (*colour, *shape))
            .collect();
        at1 += usize::from(relevant.first() == Some(&true));
        at5 += usize::from(relevant.contains(&true));
    }
    let n = queries.len() as f64;
    (at1 as f64 / n, at5 as f64 / n)
}

#[test]
fn chinese_queries_through_the_distilled_tower() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (model, tower) = (
        root.join("models/glimpse-shapes"),
        root.join("models/glimpse-shapes-zh"),
    );
    let photos = tempfile::tempdir().unwrap();
    let lib_dir = tempfile::tempdir().unwrap();
    // Two pictures of every colour × shape; a seed that neither the model's nor the tower's
    // training (random_specs(12000, 7)) nor the other tests use.
    let specs = synth::balanced_specs(2 * synth::queries().len(), 0x2C4E_D15C);
    let samples = synth::generate_specs(
        photos.path(),
        &specs,
        23,
        synth::DEFAULT_SIZE,
        synth::Format::Png,
    )
    .unwrap();
    let truth: Truth = samples
        .iter()
        .map(|s| {
            (
                s.path.canonicalize().unwrap(),
                (s.spec.colour, s.spec.shape),
            )
        })
        .collect();
    let (english, chinese) = (synth::queries(), synth::queries_zh());

    // Indexed and searched in English with the image model alone.
    let (en, zh_without_tower) = {
        let lib = Library::builder()
            .model(&model)
            .open(lib_dir.path())
            .unwrap();
        let report = lib
            .index_folder(photos.path(), &IndexOptions::default())
            .unwrap();
        assert_eq!(report.added, samples.len(), "{:?}", report.failed);
        (
            recall(&lib, &english, &truth),
            recall(&lib, &chinese, &truth),
        )
    };

    // The same library with the query tower: nothing is re-embedded, queries go through it.
    let lib = Library::builder()
        .model(&model)
        .query_model(&tower)
        .open(lib_dir.path())
        .unwrap();
    assert_eq!(lib.len(), samples.len());
    let report = lib
        .index_folder(photos.path(), &IndexOptions::default())
        .unwrap();
    assert_eq!(report.added, 0, "a query tower must not re-embed photos");
    let zh = recall(&lib, &chinese, &truth);
    let en_tower = recall(&lib, &english, &truth);
    println!(
        "{} queries, {} pictures: English (glimpse-shapes) recall@1 {:.3} @5 {:.3}; \
         Chinese (glimpse-shapes-zh) @1 {:.3} @5 {:.3}; English through the tower @1 {:.3} \
         @5 {:.3}; Chinese without the tower @1 {:.3} @5 {:.3}",
        english.len(),
        samples.len(),
        en.0,
        en.1,
        zh.0,
        zh.1,
        en_tower.0,
        en_tower.1,
        zh_without_tower.0,
        zh_without_tower.1,
    );
    // The bar: recall@5 >= 0.9 and recall@1 within 0.1 of the English queries'.
    // Measured with the committed models (models/glimpse-shapes-zh/README.md): Chinese 0.750 /
    // 1.000, English 0.708 / 1.000, Chinese without the tower 0.021 / 0.104. The pictures and
    // models are deterministic; the bounds below leave room for two queries to flip at rank 1
    // and one at rank 5 (the order of f32 sums differs between kernel sets).
    assert!(zh.1 >= 0.979, "Chinese recall@5 {:.3} < 0.979", zh.1);
    assert!(zh.0 >= 0.708, "Chinese recall@1 {:.3} < 0.708", zh.0);
    assert!(
        (zh.0 - en.0).abs() <= 0.1,
        "Chinese recall@1 {:.3} is not within 0.1 of the English {:.3}",
        zh.0,
        en.0
    );
    // Without the tower the English model's BPE reads Chinese as byte soup: near chance.
    assert!(
        zh_without_tower.1 < 0.25,
        "Chinese through the English model: recall@5 {:.3}",
        zh_without_tower.1
    );
}
