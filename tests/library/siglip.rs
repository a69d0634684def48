//! A library with a SigLIP model (the tiny random `SiglipModel` fixture): it opens, indexes,
//! searches, and every text hit carries the calibrated relevance that `min_relevance` filters
//! on; CLIP libraries have none and refuse `min_relevance`.

use super::common::{open, write_photo};
use glimpse::{IndexOptions, Library, SearchOptions};
use std::path::{Path, PathBuf};

fn siglip_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/encoder/tests/fixtures/tiny-siglip")
}

#[test]
fn siglip_hits_carry_calibrated_relevance() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    for seed in 0..8 {
        write_photo(&photos.join(format!("p{seed}.png")), seed, 90, 70);
    }
    let lib = Library::builder()
        .model(siglip_dir())
        .open(tmp.path().join("lib"))
        .expect("a SigLIP library opens");
    let report = lib.index_folder(&photos, &IndexOptions::default()).unwrap();
    assert_eq!(report.added, 8, "{report:?}");
    // The embedding width comes from the model (48, the vision tower's width).
    assert_eq!(lib.embed_text("a photo of a cat").unwrap().len(), 48);

    let hits = lib.search_text("a photo of a cat", 8).unwrap();
    assert_eq!(hits.len(), 8);
    let (scale, bias) = (10f32, -2.5f32); // the fixture's exp(logit_scale) and logit_bias
    for h in &hits {
        let r = h.relevance.expect("SigLIP text hits are calibrated");
        let want = 1.0 / (1.0 + (-(scale * h.score + bias)).exp());
        assert!((r - want).abs() < 1e-5, "{r} vs {want}");
        assert!((0.0..=1.0).contains(&r));
    }
    // min_relevance keeps exactly the hits at or above it.
    let mut rs: Vec<f32> = hits.iter().map(|h| h.relevance.unwrap()).collect();
    rs.sort_by(|a, b| b.total_cmp(a));
    let cut = rs[3];
    let kept = lib
        .search_text_with(
            "a photo of a cat",
            8,
            &SearchOptions::default().min_relevance(cut),
        )
        .unwrap();
    assert!(kept.iter().all(|h| h.relevance.unwrap() >= cut));
    assert_eq!(kept.len(), rs.iter().filter(|&&r| r >= cut).count());
    // Image queries have no relevance and refuse min_relevance.
    let by_image = lib.search_image(photos.join("p0.png"), 3).unwrap();
    assert!(by_image.iter().all(|h| h.relevance.is_none()));
    let err = lib.search_image_with(
        photos.join("p0.png"),
        3,
        &SearchOptions::default().min_relevance(0.5),
    );
    assert!(err.is_err());
}

#[test]
fn clip_scores_are_not_calibrated() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    for seed in 0..3 {
        write_photo(&photos.join(format!("p{seed}.png")), seed, 80, 60);
    }
    let lib = open(&tmp.path().join("lib"));
    lib.index_folder(&photos, &IndexOptions::default()).unwrap();
    let hits = lib.search_text("a photo of a cat", 3).unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.relevance.is_none()));
    let err = lib
        .search_text_with("a cat", 3, &SearchOptions::default().min_relevance(0.5))
        .unwrap_err();
    assert!(err.to_string().contains("not calibrated"), "{err}");
}
