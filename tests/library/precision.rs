//! `LibraryBuilder::precision(Precision::Bf16)`: the reduced-precision encoder indexes and
//! searches a real folder, and its embeddings stay within cosine 0.999 of the f32 library's.

use super::common::{index, make_folder, model_dir, QUERIES};
use glimpse::{Library, Precision};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn a_bf16_library_stays_close_to_the_f32_one() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    make_folder(&photos);
    let open = |name: &str, precision| {
        Library::builder()
            .model(model_dir())
            .precision(precision)
            .open(tmp.path().join(name))
            .unwrap()
    };
    let f32_lib = open("f32", Precision::F32);
    let bf16_lib = open("bf16", Precision::Bf16);
    let a = index(&f32_lib, &photos);
    let b = index(&bf16_lib, &photos);
    assert_eq!((a.added, b.added), (a.added, a.added));
    assert!(a.added > 0 && b.failed.is_empty(), "{b:?}");

    for (id, path) in f32_lib.photos() {
        let other = bf16_lib.id(&path).unwrap().expect("same photos");
        let x = f32_lib.embedding(id).unwrap().expect("embedded");
        let y = bf16_lib.embedding(other).unwrap().expect("embedded");
        let cos = cosine(&x, &y);
        assert!(cos >= 0.999, "{}: cosine {cos}", path.display());
    }
    for q in QUERIES {
        let x = f32_lib.embed_text(q).unwrap();
        let y = bf16_lib.embed_text(q).unwrap();
        assert!(cosine(&x, &y) >= 0.999, "{q}");
        assert!(!bf16_lib.search_text(q, 3).unwrap().is_empty());
    }
}
