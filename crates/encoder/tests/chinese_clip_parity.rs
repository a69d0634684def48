//! Chinese-CLIP parity with Hugging Face `transformers` on the tiny random `ChineseCLIPModel`
//! made by `scripts/make_chinese_clip_fixtures.py` (`fixtures/chinese_clip/`): token ids
//! identical (Chinese, mixed, unknown characters, literal special tokens, truncation; from
//! `tokenizer.json` and from a `vocab.txt`-only folder), pixels bit-exact (every non-JPEG
//! image, fixed-size resize without centre crop), embeddings cosine >= 0.99999 (text) and
//! >= 0.9999 (image) on both engines.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{cosine, fixtures, read_safetensors, RefTensor};
use glimpse_encoder::bert::BertTokenizer;
use glimpse_encoder::preprocess::Preprocessor;
use glimpse_encoder::{
    Architecture, Device, Encoder, Engine, Error, LoadOptions, Precision, TextTokenizer, Towers,
};

struct Reference {
    tensors: HashMap<String, RefTensor>,
    json: serde_json::Value,
}

impl Reference {
    fn load() -> Self {
        let dir = fixtures().join("chinese_clip");
        let json = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
        Self {
            tensors: read_safetensors(&dir.join("reference.safetensors")),
            json: serde_json::from_str(&json).expect("reference.json parses"),
        }
    }

    fn f32(&self, name: &str) -> Vec<f32> {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("no tensor `{name}`"))
            .f32()
    }

    fn images(&self) -> Vec<(String, PathBuf)> {
        self.json["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let name = i["name"].as_str().unwrap().to_string();
                (name, fixtures().join(i["file"].as_str().unwrap()))
            })
            .collect()
    }

    fn texts(&self) -> Vec<(String, Vec<u32>)> {
        self.json["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let ids = t["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                (t["text"].as_str().unwrap().to_string(), ids)
            })
            .collect()
    }
}

fn dir() -> PathBuf {
    fixtures().join("chinese_clip/tiny-chinese-clip")
}

fn load(options: LoadOptions) -> Encoder {
    load_on(&Device::flex(), options)
}

fn load_on(device: &Device, options: LoadOptions) -> Encoder {
    Encoder::load_with(dir(), device, &options).unwrap()
}

fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| cosine(x, y))
        .fold(1.0, f64::min)
}

#[test]
fn token_ids_match_transformers() {
    let reference = Reference::load();
    let encoder = load(LoadOptions::default().towers(Towers::TextOnly));
    assert_eq!(encoder.architecture(), Architecture::ChineseClip);
    let tokenizer = encoder.tokenizer().unwrap();
    assert!(matches!(tokenizer, TextTokenizer::Bert(_)));
    assert_eq!((tokenizer.context_length(), tokenizer.pad_id()), (40, 0));
    let texts = reference.texts();
    let batch: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
    let from_vocab_txt =
        BertTokenizer::from_dir(fixtures().join("chinese_clip/vocab-txt"), 40).unwrap();
    let ids = tokenizer.encode_batch(&batch).unwrap();
    let ids_vocab = from_vocab_txt.encode_batch(&batch).unwrap();
    for (((text, want), got), got_vocab) in texts.iter().zip(&ids).zip(&ids_vocab) {
        assert_eq!(got, want, "{text:?}");
        assert_eq!(got_vocab, want, "vocab.txt: {text:?}");
        assert_eq!(&tokenizer.encode(text).unwrap(), want, "{text:?}");
    }
    // [CLS] first and [SEP] last, also when truncated to 40; Chinese characters are tokens of
    // their own; unseen ones are [UNK]; literal special tokens are special.
    assert!(ids.iter().all(|r| r[0] == 2 && *r.last().unwrap() == 3));
    assert!(ids.iter().filter(|r| r.len() == 40).count() >= 2);
    let chinese = tokenizer.encode("一只猫").unwrap();
    assert_eq!(chinese.len(), 5, "{chinese:?}");
    assert!(tokenizer.encode("杰尼龟").unwrap()[1..4] == [1, 1, 1]);
    assert!(tokenizer.encode("a [MASK] b").unwrap().contains(&4));
}

#[test]
fn pixels_are_bit_exact() {
    let reference = Reference::load();
    let preprocessor = Preprocessor::from_dir(dir()).unwrap();
    let mut exact = 0;
    for (name, path) in reference.images() {
        let want = reference.f32(&format!("pixel_values.{name}"));
        let got = preprocessor.preprocess_path(&path).unwrap();
        assert_eq!((got.width, got.height), (48, 48));
        // JPEG decoding may differ from PIL's (see fixtures/README.md); every other format is
        // decoded identically, so its pixels must be equal bit for bit.
        if path.extension().is_some_and(|e| e == "jpg") {
            let worst = got
                .data
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            println!("{name} (JPEG): max |diff| {worst:.3}");
            continue;
        }
        assert!(got.data == want, "{name}: pixels differ");
        exact += 1;
    }
    println!("{exact} images bit-exact");
    assert_eq!(exact, 18);
}

fn check_engine(engine: Engine) {
    check_engine_on(&Device::flex(), engine);
}

fn check_engine_on(device: &Device, engine: Engine) {
    let reference = Reference::load();
    let encoder = load_on(device, LoadOptions::default().engine(engine));
    assert_eq!(encoder.engine(), engine);
    assert_eq!(encoder.dim(), 40);
    let pixels: Vec<Vec<f32>> = reference
        .images()
        .iter()
        .map(|(name, _)| reference.f32(&format!("pixel_values.{name}")))
        .collect();
    let images = encoder.embed_pixel_values(&pixels).unwrap();
    let want_images: Vec<Vec<f32>> = reference
        .images()
        .iter()
        .map(|(name, _)| reference.f32(&format!("image_embeds.{name}")))
        .collect();
    let texts: Vec<String> = reference.texts().into_iter().map(|(t, _)| t).collect();
    let got_texts = encoder.embed_texts(&texts).unwrap();
    let want_texts: Vec<Vec<f32>> = (0..texts.len())
        .map(|i| reference.f32(&format!("text_embeds.{i}")))
        .collect();
    let (ci, ct) = (
        min_cosine(&images, &want_images),
        min_cosine(&got_texts, &want_texts),
    );
    println!(
        "{engine:?}: min cosine to transformers: images {ci:.9} (1-cos {:.1e}), texts {ct:.9} (1-cos {:.1e})",
        1.0 - ci,
        1.0 - ct
    );
    assert!(ci >= 0.9999, "{engine:?}: images {ci}");
    assert!(ct >= 0.99999, "{engine:?}: texts {ct}");
    // One text alone equals its embedding in the padded batch (padding is masked).
    let alone = encoder.embed_texts(&texts[10..11]).unwrap();
    assert!(cosine(&alone[0], &got_texts[10]) > 0.999999);
    let scale = reference.f32("logit_scale")[0];
    assert!((encoder.logit_scale_exp() - scale.exp()).abs() < 1e-3);
    assert_eq!(
        encoder.relevance(0.3),
        None,
        "Chinese-CLIP is not calibrated"
    );
}

#[test]
fn burn_engine_matches_transformers() {
    check_engine(Engine::Burn);
}

#[test]
fn native_engine_matches_transformers() {
    check_engine(Engine::Native);
}

/// The burn modules on wgpu (Mesa's lavapipe where there is no GPU); run by
/// `bash scripts/test_wgpu.sh`, which builds burn's GPU stack.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_engine_matches_transformers() {
    let device = glimpse_encoder::Backend::Wgpu
        .device()
        .expect("a wgpu adapter (install mesa-vulkan-drivers)");
    println!("burn on the wgpu device {device:?}");
    check_engine_on(&device, Engine::Burn);
}

#[test]
fn native_bf16_stays_close() {
    let reference = Reference::load();
    let f32 = load(LoadOptions::default().engine(Engine::Native));
    let bf16 = load(
        LoadOptions::default()
            .engine(Engine::Native)
            .precision(Precision::Bf16),
    );
    let texts: Vec<String> = reference.texts().into_iter().map(|(t, _)| t).collect();
    let ct = min_cosine(
        &f32.embed_texts(&texts).unwrap(),
        &bf16.embed_texts(&texts).unwrap(),
    );
    println!("bf16 ({:?}) vs f32: texts {ct:.6}", bf16.precision());
    assert!(ct >= 0.999);
}

#[test]
fn errors_are_typed() {
    for engine in [Engine::Burn, Engine::Native] {
        let encoder = load(
            LoadOptions::default()
                .engine(engine)
                .towers(Towers::TextOnly),
        );
        assert!(matches!(
            encoder.embed_pixel_values(&[vec![0.0; 3 * 48 * 48]]),
            Err(Error::TowerNotLoaded { tower: "vision" })
        ));
        assert!(matches!(
            encoder.embed_token_ids(&[vec![2u32; 41]]),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            encoder.embed_token_ids(&[vec![100_000u32]]),
            Err(Error::InvalidInput(_))
        ));
        // The vision tower alone needs no tokenizer.
        let vision = load(
            LoadOptions::default()
                .engine(engine)
                .towers(Towers::VisionOnly),
        );
        assert!(matches!(
            vision.embed_texts(&["一只猫"]),
            Err(Error::TowerNotLoaded { tower: "text" })
        ));
    }
}
