//! Query-tower parity with sentence-transformers on the tiny random towers made by
//! `scripts/make_sentence_fixtures.py` (`fixtures/sentence/`): a DistilBERT tower with mean
//! pooling and a Dense without bias (the layout of
//! `sentence-transformers/clip-ViT-B-32-multilingual-v1`), and a BERT tower with [CLS]
//! pooling and a biased Dense. Token ids identical to `SentenceTransformer.tokenize`,
//! embeddings cosine >= 0.99999 to `encode()` on both engines; layouts Glimpse does not load
//! are typed errors.

mod common;

use std::path::{Path, PathBuf};

use common::{cosine, fixtures};
use glimpse_encoder::sentence::{DeclaredBy, Pooling, QueryTower};
use glimpse_encoder::{Device, Engine, Error, LoadOptions};

struct Reference {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn reference(model: &str) -> Reference {
    let path = fixtures().join("sentence/reference.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("reference.json")).unwrap();
    let m = &json["models"][model];
    let list = |key: &str| m[key].as_array().unwrap().clone();
    Reference {
        texts: list("texts")
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect(),
        ids: list("ids")
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect()
            })
            .collect(),
        embeddings: list("embeddings")
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect(),
    }
}

fn tower_dir(name: &str) -> PathBuf {
    fixtures().join("sentence").join(name)
}

fn load(dir: &Path, engine: Engine) -> glimpse_encoder::Result<QueryTower> {
    QueryTower::load(dir, &Device::flex(), &LoadOptions::default().engine(engine))
}

/// Ids and embeddings of `model` against the reference on `engine` (flex CPU device); returns
/// the worst cosine.
fn check(model: &str, engine: Engine) -> f64 {
    check_on(model, engine, &Device::flex())
}

fn check_on(model: &str, engine: Engine, device: &Device) -> f64 {
    let r = reference(model);
    let tower = QueryTower::load(
        tower_dir(model),
        device,
        &LoadOptions::default().engine(engine),
    )
    .expect("tower loads");
    assert_eq!(tower.engine(), engine, "the engine asked for ran");
    let ids = tower.tokenizer().encode_batch(&r.texts).unwrap();
    for ((text, ours), theirs) in r.texts.iter().zip(&ids).zip(&r.ids) {
        assert_eq!(ours, theirs, "{model}: ids of {text:?}");
    }
    let embedded = tower.embed_texts(&r.texts).unwrap();
    let mut worst = 1.0f64;
    for ((text, ours), theirs) in r.texts.iter().zip(&embedded).zip(&r.embeddings) {
        assert_eq!(ours.len(), theirs.len());
        let norm: f64 = ours
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "{model}: not unit length ({norm})"
        );
        let c = cosine(ours, theirs);
        assert!(
            c >= 0.99999,
            "{model} on {engine:?}: cosine {c} for {text:?}"
        );
        worst = worst.min(c);
    }
    // The check has teeth: the texts' embeddings are far apart.
    let spread = cosine(&embedded[0], &embedded[2]);
    assert!(
        spread < 0.99,
        "{model}: embeddings nearly parallel ({spread})"
    );
    println!(
        "{model} on {engine:?}: {} texts, ids identical, worst 1 - cos = {:.2e}",
        r.texts.len(),
        1.0 - worst
    );
    worst
}

#[test]
fn distilbert_mean_tower_matches_sentence_transformers_on_both_engines() {
    check("tiny-distilbert", Engine::Native);
    check("tiny-distilbert", Engine::Burn);
}

#[test]
fn bert_cls_tower_matches_sentence_transformers_on_both_engines() {
    check("tiny-bert", Engine::Native);
    check("tiny-bert", Engine::Burn);
}

/// The burn modules on wgpu (Mesa's lavapipe where there is no GPU); run by
/// `bash scripts/test_wgpu.sh`, which builds burn's GPU stack.
#[cfg(feature = "wgpu")]
#[test]
fn towers_match_sentence_transformers_on_wgpu() {
    let device = glimpse_encoder::Backend::Wgpu
        .device()
        .expect("a wgpu adapter (install mesa-vulkan-drivers)");
    println!("burn on the wgpu device {device:?}");
    check_on("tiny-distilbert", Engine::Burn, &device);
    check_on("tiny-bert", Engine::Burn, &device);
}

#[test]
fn metadata_comes_from_the_tower_file_or_the_card() {
    let distil = load(&tower_dir("tiny-distilbert"), Engine::Native).unwrap();
    assert_eq!(distil.dims(), 24);
    assert_eq!(distil.layout().pooling, Pooling::Mean);
    assert_eq!(distil.layout().transformer.max_seq_length, 24);
    let declared = distil.image_model().expect("declared");
    assert_eq!(declared.id, "tiny-clip");
    assert!(matches!(declared.declared_by, DeclaredBy::File(_)));

    let bert = load(&tower_dir("tiny-bert"), Engine::Native).unwrap();
    assert_eq!(bert.layout().pooling, Pooling::Cls);
    let declared = bert.image_model().expect("declared by the card");
    assert_eq!(declared.id, "openai/clip-vit-base-patch32");
    assert!(matches!(declared.declared_by, DeclaredBy::Card(_)));
}

/// A copy of the DistilBERT tower to break.
fn copy_tower() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = tower_dir("tiny-distilbert");
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap();
        let dst = tmp.path().join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&entry, dst).unwrap();
    }
    tmp
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn layout_error(dir: &Path) -> String {
    match load(dir, Engine::Native) {
        Err(Error::UnsupportedLayout { path, message }) => {
            format!("{}: {message}", path.display())
        }
        other => panic!("expected UnsupportedLayout, got {other:?}"),
    }
}

#[test]
fn unsupported_layouts_are_typed_errors() {
    // No Dense module.
    let t = copy_tower();
    edit_json(&t.path().join("modules.json"), |v| {
        v.as_array_mut().unwrap().truncate(2);
    });
    let e = layout_error(t.path());
    assert!(e.contains("modules.json") && e.contains("Dense"), "{e}");

    // A pooling mode Glimpse does not compute.
    let t = copy_tower();
    edit_json(&t.path().join("1_Pooling/config.json"), |v| {
        v["pooling_mode"] = "max".into();
    });
    let e = layout_error(t.path());
    assert!(e.contains("max") && e.contains("mean, cls"), "{e}");

    // The Dense weights only as a pickle.
    let t = copy_tower();
    std::fs::rename(
        t.path().join("2_Dense/model.safetensors"),
        t.path().join("2_Dense/pytorch_model.bin"),
    )
    .unwrap();
    let e = layout_error(t.path());
    assert!(
        e.contains("pytorch_model.bin") && e.contains("safetensors"),
        "{e}"
    );

    // An activation other than Identity / Tanh.
    let t = copy_tower();
    edit_json(&t.path().join("2_Dense/config.json"), |v| {
        v["activation_function"] = "torch.nn.modules.activation.ReLU".into();
    });
    let e = layout_error(t.path());
    assert!(e.contains("ReLU"), "{e}");

    // Not a sentence-transformers directory at all (a CLIP checkpoint).
    let e = layout_error(&fixtures().join("tiny-clip"));
    assert!(e.contains("modules.json"), "{e}");

    // A tower file whose dimension is not the tower's.
    let t = copy_tower();
    std::fs::write(
        t.path().join("glimpse_query_tower.json"),
        r#"{"image_model": "tiny-clip", "dims": 512}"#,
    )
    .unwrap();
    match load(t.path(), Engine::Native) {
        Err(Error::Config { message, .. }) => assert!(message.contains("512"), "{message}"),
        other => panic!("expected Config, got {other:?}"),
    }

    // A Transformer that is not BERT-family.
    let t = copy_tower();
    edit_json(&t.path().join("config.json"), |v| {
        v["model_type"] = "xlm-roberta".into();
    });
    assert!(matches!(
        load(t.path(), Engine::Native),
        Err(Error::UnsupportedArchitecture { .. })
    ));
}

#[test]
fn the_legacy_pooling_config_loads_the_same_tower() {
    // sentence-transformers < 6 (the Hub's multilingual CLIP towers) wrote flags and
    // max_seq_length in sentence_bert_config.json.
    let t = copy_tower();
    std::fs::write(
        t.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 32, "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false}"#,
    )
    .unwrap();
    std::fs::write(
        t.path().join("sentence_bert_config.json"),
        r#"{"max_seq_length": 24, "do_lower_case": false}"#,
    )
    .unwrap();
    edit_json(&t.path().join("tokenizer_config.json"), |v| {
        v["model_max_length"] = 512.into();
    });
    let r = reference("tiny-distilbert");
    let tower = load(t.path(), Engine::Native).unwrap();
    assert_eq!(tower.layout().pooling, Pooling::Mean);
    assert_eq!(tower.layout().transformer.max_seq_length, 24);
    let embedded = tower.embed_texts(&r.texts).unwrap();
    for (ours, theirs) in embedded.iter().zip(&r.embeddings) {
        assert!(cosine(ours, theirs) >= 0.99999);
    }
}

#[test]
fn the_check_has_teeth() {
    // The DistilBERT tower pooled at [CLS] instead of the mean: far below the bound.
    let t = copy_tower();
    edit_json(&t.path().join("1_Pooling/config.json"), |v| {
        v["pooling_mode"] = "cls".into();
    });
    let r = reference("tiny-distilbert");
    let tower = load(t.path(), Engine::Native).unwrap();
    let embedded = tower.embed_texts(&r.texts).unwrap();
    let worst = embedded
        .iter()
        .zip(&r.embeddings)
        .map(|(a, b)| cosine(a, b))
        .fold(1.0f64, f64::min);
    println!("[CLS] instead of mean: worst cosine {worst:.3}");
    assert!(worst < 0.9, "{worst}");
}
