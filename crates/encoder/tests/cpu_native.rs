//! The native CPU path ([`glimpse_encoder::cpu`]) against the burn path and the
//! `transformers` reference outputs, in f32 and bf16, on the detected and the portable
//! kernels; the engine choice and the burn fallback of [`ClipEncoder`].

mod common;

use common::cosine;

use common::{fixtures, Reference};
use glimpse_encoder::clip::pack::pack_model;
use glimpse_encoder::kernels::{Isa, NativeText, NativeVision};
use glimpse_encoder::{
    Activation, ClipConfig, ClipEncoder, ClipModel, Device, Engine, Error, LoadOptions, Precision,
    Towers,
};

fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| cosine(x, y))
        .fold(f64::INFINITY, f64::min)
}

fn load(name: &str, options: LoadOptions) -> ClipEncoder {
    ClipEncoder::load_with(fixtures().join(name), &Device::flex(), &options).unwrap()
}

/// The reference pixel values (one per image) and token ids.
fn inputs() -> (Vec<Vec<f32>>, Vec<Vec<u32>>) {
    let reference = Reference::load();
    let pixels = reference
        .images()
        .iter()
        .map(|(name, _)| reference.tensor(&format!("pixel_values.{name}")).f32())
        .collect();
    let ids = reference.texts().into_iter().map(|(_, ids)| ids).collect();
    (pixels, ids)
}

fn embed(encoder: &ClipEncoder) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let (pixels, ids) = inputs();
    (
        encoder.embed_pixel_values(&pixels).unwrap(),
        encoder.embed_token_ids(&ids).unwrap(),
    )
}

/// The `transformers` embeddings of the fixture (`prefix` "" or "gelu.").
fn reference_embeddings(prefix: &str) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let reference = Reference::load();
    let images = reference
        .images()
        .iter()
        .map(|(name, _)| {
            reference
                .tensor(&format!("{prefix}image_embeds.{name}"))
                .f32()
        })
        .collect();
    let texts = (0..reference.texts().len())
        .map(|i| reference.tensor(&format!("{prefix}text_embeds.{i}")).f32())
        .collect();
    (images, texts)
}

#[test]
fn native_f32_matches_burn_and_transformers() {
    for (name, prefix) in [("tiny-clip", ""), ("tiny-clip-gelu", "gelu.")] {
        let burn = load(name, LoadOptions::default().engine(Engine::Burn));
        let native = load(name, LoadOptions::default().engine(Engine::Native));
        assert_eq!(burn.engine(), Engine::Burn);
        assert_eq!(native.engine(), Engine::Native);
        let (bi, bt) = embed(&burn);
        let (ni, nt) = embed(&native);
        let (ri, rt) = reference_embeddings(prefix);
        let (ci, ct) = (min_cosine(&ni, &bi), min_cosine(&nt, &bt));
        println!(
            "{name}: native vs burn 1 - cos: images {:.1e}, texts {:.1e}",
            1.0 - ci,
            1.0 - ct
        );
        assert!(
            1.0 - ci < 1e-5 && 1.0 - ct < 1e-5,
            "{name}: native differs from burn"
        );
        let (hi, ht) = (min_cosine(&ni, &ri), min_cosine(&nt, &rt));
        println!("{name}: native vs transformers: images {hi:.8}, texts {ht:.8}");
        assert!(
            hi >= 0.99999 && ht >= 0.99999,
            "{name}: native differs from transformers"
        );
        for e in ni.iter().chain(&nt) {
            assert!((e.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn bf16_stays_close_to_f32() {
    for (name, prefix) in [("tiny-clip", ""), ("tiny-clip-gelu", "gelu.")] {
        let f32_ = load(name, LoadOptions::default().engine(Engine::Native));
        let bf16 = load(name, LoadOptions::default().precision(Precision::Bf16));
        assert_eq!(bf16.engine(), Engine::Native);
        // Where the CPU has no native bf16 multiply, f32 runs instead (never slower).
        assert_eq!(bf16.precision(), Precision::Bf16.runs_on(Isa::detect()));
        let (fi, ft) = embed(&f32_);
        let (hi, ht) = embed(&bf16);
        let (ci, ct) = (min_cosine(&hi, &fi), min_cosine(&ht, &ft));
        println!("{name}: bf16 vs f32 cos: images {ci:.6}, texts {ct:.6}");
        // Measured (2026-11-29, both fixtures, every kernel set: bf16 rounding is emulated
        // exactly where the CPU lacks it): cosine >= 0.99995 to f32 and to transformers. The
        // bound allows twice that distance.
        const MIN: f64 = 0.9999;
        assert!(ci >= MIN && ct >= MIN, "{name}: bf16 too far from f32");
        let (ri, rt) = reference_embeddings(prefix);
        let (ti, tt) = (min_cosine(&hi, &ri), min_cosine(&ht, &rt));
        println!("{name}: bf16 vs transformers cos: images {ti:.6}, texts {tt:.6}");
        assert!(
            ti >= MIN && tt >= MIN,
            "{name}: bf16 too far from transformers"
        );
    }
}

/// The towers built with a given kernel set, from a burn model (through its state dict).
fn native_towers(
    model: &ClipModel,
    config: &ClipConfig,
    precision: Precision,
    isa: Isa,
) -> (NativeVision, NativeText) {
    pack_model(model, config, precision, isa).unwrap()
}

fn rows(flat: Vec<f32>, dim: usize) -> Vec<Vec<f32>> {
    flat.chunks(dim).map(<[f32]>::to_vec).collect()
}

/// A mid-sized random model with awkward widths (not multiples of the tiles), compared on
/// both kernel sets and precisions against burn.
#[test]
fn portable_and_simd_kernels_agree_with_burn_on_a_random_model() {
    let mut config = ClipConfig {
        projection_dim: 40,
        ..Default::default()
    };
    let v = &mut config.vision_config;
    (
        v.hidden_size,
        v.intermediate_size,
        v.num_hidden_layers,
        v.num_attention_heads,
    ) = (96, 200, 2, 3);
    (v.image_size, v.patch_size, v.hidden_act) = (64, 16, Activation::Gelu);
    let t = &mut config.text_config;
    (
        t.hidden_size,
        t.intermediate_size,
        t.num_hidden_layers,
        t.num_attention_heads,
    ) = (72, 150, 2, 2);
    t.hidden_act = Activation::GeluTanh;
    let device = Device::flex();
    let model = ClipModel::init(&config, Towers::Both, &device);

    let batch = 3;
    let len = 3 * 64 * 64;
    let pixels: Vec<f32> = (0..batch * len)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let ids: Vec<Vec<u32>> = vec![
        vec![49406, 320, 1125, 49407],
        vec![49406, 49407],
        vec![49406, 5, 6, 7, 8, 9, 10, 49407],
    ];

    use burn::prelude::*;
    let burn_images = model
        .encode_images(Tensor::<4>::from_data(
            TensorData::new(pixels.clone(), [batch, 3, 64, 64]),
            &device,
        ))
        .unwrap()
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let burn_images = rows(burn_images, 40);
    let burn_texts = rows(
        model
            .encode_texts(&ids)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap(),
        40,
    );

    // Every kernel set this CPU runs, capped by GLIMPSE_ISA; printed, so the log says which.
    let isas = Isa::available();
    println!("kernel sets: {isas:?} (CPU {:?})", Isa::hardware());
    for isa in isas {
        for precision in [Precision::F32, Precision::Bf16] {
            let (vision, text) = native_towers(&model, &config, precision, isa);
            let images = rows(vision.encode(&pixels, batch), 40);
            let texts = rows(text.encode(&ids).unwrap(), 40);
            let (ci, ct) = (
                min_cosine(&images, &burn_images),
                min_cosine(&texts, &burn_texts),
            );
            println!(
                "{isa:?} {precision:?}: 1 - cos images {:.1e}, texts {:.1e}",
                1.0 - ci,
                1.0 - ct
            );
            let bar = if precision == Precision::F32 {
                1e-5
            } else {
                1e-3
            };
            assert!(1.0 - ci < bar && 1.0 - ct < bar, "{isa:?} {precision:?}");
            // A text alone equals the same text inside a longer batch (padding is ignored).
            let alone = text.encode(&ids[1..2]).unwrap();
            assert!(1.0 - cosine(&alone, &texts[1]) < 1e-6);
        }
    }
}

/// `LoadOptions::isa` caps the kernel set of one encoder (as `GLIMPSE_ISA` does for the
/// process); the encoder reports the set and the precision that run, and bf16 runs as f32 on
/// every set without a native bf16 multiply (issue 15: never slower than f32).
#[test]
fn isa_cap_and_precision_used_are_reported() {
    let isas = Isa::available();
    println!("kernel sets: {isas:?} (CPU {:?})", Isa::hardware());
    let f32_ = load("tiny-clip", LoadOptions::default().engine(Engine::Native));
    let (fi, ft) = embed(&f32_);
    for isa in isas {
        let options = LoadOptions::default()
            .engine(Engine::Native)
            .precision(Precision::Bf16)
            .isa(isa);
        let capped = load("tiny-clip", options);
        let want = match isa {
            Isa::Avx512Bf16 => Precision::Bf16,
            _ => Precision::F32,
        };
        println!(
            "cap {isa:?}: runs {:?} {:?}",
            capped.kernel_set(),
            capped.precision()
        );
        assert_eq!(capped.kernel_set(), Some(isa));
        assert_eq!(capped.precision(), want, "{isa:?}");
        let (ci, ct) = embed(&capped);
        let (di, dt) = (1.0 - min_cosine(&ci, &fi), 1.0 - min_cosine(&ct, &ft));
        println!("cap {isa:?}: 1 - cos to uncapped f32: images {di:.1e}, texts {dt:.1e}");
        // f32 on every set: the order of additions only (measured 2e-16 to 3e-13); native
        // bf16: measured 2-5e-5 on this fixture (2026-11-29).
        let bar = if want == Precision::F32 { 1e-6 } else { 1e-4 };
        assert!(di < bar && dt < bar, "{isa:?}: {di:e} {dt:e}");
    }
    let burn = load("tiny-clip", LoadOptions::default().engine(Engine::Burn));
    assert_eq!(burn.kernel_set(), None);
}

#[test]
fn auto_engine_uses_native_only_where_it_pays() {
    let auto = load("tiny-clip", LoadOptions::default());
    let expected = if Isa::detect().vectorised() {
        Engine::Native
    } else {
        Engine::Burn
    };
    assert_eq!(auto.engine(), expected);
    // The plain `load` is the default options.
    let plain =
        ClipEncoder::load(fixtures().join("tiny-clip"), &Device::flex(), Towers::Both).unwrap();
    assert_eq!(plain.engine(), expected);
    // A native tower's burn modules are gone; the logit scale stays.
    if expected == Engine::Native {
        assert!(auto
            .model()
            .as_clip()
            .is_some_and(|m| m.text.is_none() && m.vision.is_none()));
        assert!(auto.model().logit_scale_exp() > 1.0);
    }
}

#[test]
fn burn_fallback_serves_everything() {
    let burn = load("tiny-clip", LoadOptions::default().engine(Engine::Burn));
    assert!(burn
        .model()
        .as_clip()
        .is_some_and(|m| m.text.is_some() && m.vision.is_some()));
    let texts = burn.embed_texts(&["a photo of a cat", "a dog"]).unwrap();
    assert_eq!(texts.len(), 2);
    let native = load("tiny-clip", LoadOptions::default().engine(Engine::Native));
    let native_texts = native.embed_texts(&["a photo of a cat", "a dog"]).unwrap();
    assert!(min_cosine(&texts, &native_texts) > 0.99999);
}

#[test]
fn native_errors_are_typed() {
    // bf16 needs the native engine.
    let err = ClipEncoder::load_with(
        fixtures().join("tiny-clip"),
        &Device::flex(),
        &LoadOptions::default()
            .engine(Engine::Burn)
            .precision(Precision::Bf16),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");

    let text = load(
        "tiny-clip",
        LoadOptions::default()
            .engine(Engine::Native)
            .towers(Towers::TextOnly),
    );
    assert!(matches!(
        text.embed_pixel_values(&[vec![0.0; 3 * 56 * 56]]),
        Err(Error::TowerNotLoaded { tower: "vision" })
    ));
    assert!(matches!(
        text.embed_token_ids(&[Vec::<u32>::new()]),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        text.embed_token_ids(&[vec![49406, 1_000_000]]),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        text.embed_token_ids(&[vec![1u32; 78]]),
        Err(Error::InvalidInput(_))
    ));

    let vision = load(
        "tiny-clip",
        LoadOptions::default()
            .engine(Engine::Native)
            .towers(Towers::VisionOnly),
    );
    assert!(matches!(
        vision.embed_pixel_values(&[vec![0.0; 10]]),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        vision.embed_texts(&["x"]),
        Err(Error::TowerNotLoaded { tower: "text" })
    ));
    assert!(vision
        .embed_pixel_values::<Vec<f32>>(&[])
        .unwrap()
        .is_empty());
}
