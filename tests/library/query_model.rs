//! A query model (`LibraryBuilder::query_model`): a library indexed with
//! `models/glimpse-shapes` takes a sentence-transformers tower of its dimension declared for
//! it, answers text queries through it with the hits the tower's embedding implies, and
//! re-embeds nothing; a tower of another dimension or declared for another model is refused
//! with `Error::QueryModelMismatch` (the declaration check, not the dimension, can be
//! overridden with `query_model_unchecked`).
//!
//! The 64-dimension tower is the random DistilBERT fixture
//! (`crates/encoder/tests/fixtures/sentence/tiny-distilbert`) with its Dense module replaced
//! by a seeded random 32 → 64 one: a real tower whose meaning is random, which is all a
//! check of the plumbing needs.

use super::common::write_photo;
use glimpse::{Error, IndexOptions, Library, SearchOptions};
use glimpse_encoder::{Device, LoadOptions, QueryTower};
use std::path::{Path, PathBuf};

const QUERY: &str = "条纹背景左上角的一个红色小圆";

fn shapes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/glimpse-shapes")
}

fn fixture_tower() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/encoder/tests/fixtures/sentence/tiny-distilbert")
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let p = entry.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

/// A safetensors file holding one f32 tensor `linear.weight` of `shape`.
fn write_dense_weights(path: &Path, shape: [usize; 2], seed: u64) {
    let n = shape[0] * shape[1];
    let mut state = seed;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            // xorshift64*: uniform in [-0.5, 0.5) scaled to ~1/sqrt(in).
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let u = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
            (u - 0.5) * 2.0 / (shape[1] as f32).sqrt()
        })
        .collect();
    let mut header = format!(
        r#"{{"linear.weight":{{"dtype":"F32","shape":[{},{}],"data_offsets":[0,{}]}}}}"#,
        shape[0],
        shape[1],
        n * 4
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// The fixture tower with a `dims`-wide Dense, declaring `image_model` (none: no file).
fn make_tower(dst: &Path, dims: usize, image_model: Option<&str>) -> PathBuf {
    copy_dir(&fixture_tower(), dst);
    let config = format!(
        r#"{{"in_features": 32, "out_features": {dims}, "bias": false,
            "activation_function": "torch.nn.modules.linear.Identity"}}"#
    );
    std::fs::write(dst.join("2_Dense/config.json"), config).unwrap();
    write_dense_weights(&dst.join("2_Dense/model.safetensors"), [dims, 32], 7);
    let file = dst.join("glimpse_query_tower.json");
    match image_model {
        Some(m) => std::fs::write(
            &file,
            serde_json::json!({"image_model": m, "dims": dims}).to_string(),
        )
        .unwrap(),
        None => std::fs::remove_file(&file).unwrap(),
    }
    dst.to_path_buf()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A library of 12 photos indexed with glimpse-shapes (no query model).
fn indexed_library(root: &Path) -> PathBuf {
    let photos = root.join("photos");
    for seed in 0..12 {
        write_photo(&photos.join(format!("p{seed:02}.png")), seed, 80, 60);
    }
    let lib_dir = root.join("lib");
    let lib = Library::builder()
        .model(shapes_dir())
        .open(&lib_dir)
        .unwrap();
    let report = lib.index_folder(&photos, &IndexOptions::default()).unwrap();
    assert_eq!(report.added, 12, "{report:?}");
    lib_dir
}

fn open_with_tower(lib_dir: &Path, tower: &Path) -> glimpse::Result<Library> {
    Library::builder()
        .model(shapes_dir())
        .query_model(tower)
        .open(lib_dir)
}

#[test]
fn a_compatible_tower_answers_queries_without_re_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let lib_dir = indexed_library(tmp.path());
    let tower = make_tower(&tmp.path().join("tower"), 64, Some("glimpse-shapes"));

    // Before: the model's own text tower.
    let lib = Library::builder()
        .model(shapes_dir())
        .open(&lib_dir)
        .unwrap();
    let fingerprint = lib.model_fingerprint().clone();
    let own = lib.embed_text(QUERY).unwrap();
    let stored: Vec<(u64, Vec<f32>)> = lib
        .photos()
        .into_iter()
        .map(|(id, _)| (id, lib.embedding(id).unwrap().unwrap()))
        .collect();
    drop(lib);

    let lib = open_with_tower(&lib_dir, &tower).expect("a compatible tower is accepted");
    assert_eq!(lib.query_model_dir(), Some(tower.as_path()));
    // Nothing re-embedded, the model's identity unchanged, the saved index used as is.
    assert_eq!(lib.model_fingerprint(), &fingerprint);
    assert_eq!(*lib.index_recovery(), glimpse::IndexRecovery::Loaded);
    for (id, e) in &stored {
        assert_eq!(lib.embedding(*id).unwrap().as_ref(), Some(e), "photo {id}");
    }

    // Queries go through the tower: the library's query embedding is the tower's own.
    let direct = QueryTower::load(&tower, &Device::flex(), &LoadOptions::default())
        .unwrap()
        .embed_texts(&[QUERY])
        .unwrap()
        .remove(0);
    let q = lib.embed_text(QUERY).unwrap();
    assert_eq!(q.len(), 64);
    assert!(dot(&q, &direct) > 0.99999, "{}", dot(&q, &direct));
    assert!(dot(&q, &own) < 0.9, "the model's own text tower answered");

    // The hits are the exact ranking of the stored embeddings by the tower's query.
    let mut exact: Vec<(u64, f32)> = stored
        .iter()
        .map(|(id, e)| (*id, dot(&direct, e)))
        .collect();
    exact.sort_by(|a, b| b.1.total_cmp(&a.1));
    let k = 5;
    let hits = lib
        .search_text_with(QUERY, k, &SearchOptions::default().hybrid(false))
        .unwrap();
    assert_eq!(hits.len(), k);
    for (hit, (id, score)) in hits.iter().zip(&exact) {
        assert_eq!(hit.id, *id, "hits {hits:?} vs exact {exact:?}");
        assert!((hit.score - score).abs() < 1e-4, "{} vs {score}", hit.score);
        assert!(hit.relevance.is_none());
    }
    // The tower's scores are not calibrated.
    let refused = lib.search_text_with(QUERY, k, &SearchOptions::default().min_relevance(0.5));
    assert!(refused.is_err());
    // Photos are still embedded by the image model.
    let new_photo = tmp.path().join("new.png");
    write_photo(&new_photo, 99, 80, 60);
    assert_eq!(lib.embed_image(&new_photo).unwrap().len(), 64);
}

#[test]
fn incompatible_towers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib_dir = indexed_library(tmp.path());
    let mismatch = |r: glimpse::Result<Library>| match r {
        Err(Error::QueryModelMismatch { reason, .. }) => reason,
        Err(other) => panic!("expected QueryModelMismatch, got {other}"),
        Ok(_) => panic!("expected QueryModelMismatch, the library opened"),
    };

    // Another dimension (the fixture as made: 24): refused, even unchecked.
    let reason = mismatch(open_with_tower(&lib_dir, &fixture_tower()));
    assert!(reason.contains("24") && reason.contains("64"), "{reason}");
    let unchecked = Library::builder()
        .model(shapes_dir())
        .query_model_unchecked(fixture_tower())
        .open(&lib_dir);
    assert!(mismatch(unchecked).contains("24"));

    // Declared for another image model: refused, unless unchecked.
    let other = make_tower(
        &tmp.path().join("other"),
        64,
        Some("openai/clip-vit-base-patch32"),
    );
    let reason = mismatch(open_with_tower(&lib_dir, &other));
    assert!(reason.contains("openai/clip-vit-base-patch32"), "{reason}");
    let lib = Library::builder()
        .model(shapes_dir())
        .query_model_unchecked(&other)
        .open(&lib_dir)
        .expect("unchecked skips the declaration");
    assert_eq!(lib.search_text(QUERY, 3).unwrap().len(), 3);
    let fingerprint = lib.model_fingerprint().clone();
    drop(lib);

    // Declaring nothing is refused when checked.
    let silent = make_tower(&tmp.path().join("silent"), 64, None);
    assert!(mismatch(open_with_tower(&lib_dir, &silent)).contains("declares no image model"));

    // Declared by the library's fingerprint digest: accepted.
    let by_digest = make_tower(
        &tmp.path().join("digest"),
        64,
        Some(&fingerprint.config_digest),
    );
    let lib = open_with_tower(&lib_dir, &by_digest).expect("the digest names the model");
    assert_eq!(lib.model_fingerprint(), &fingerprint);
    assert_eq!(lib.len(), 12);
}
