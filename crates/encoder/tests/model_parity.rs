//! Parity of the model with `transformers`' `CLIPModel` on the tiny fixture checkpoints, on the
//! CPU (flex) backend. The inputs are the *reference* pixel tensors and token ids, so these
//! tests isolate the model from preprocessing and tokenization.

mod common;

use common::cosine;

use std::time::Instant;

use burn::prelude::*;
use common::{fixtures, Reference};
use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::{ClipConfig, ClipModel, Device, Error, Towers};

/// The bar every embedding must clear.
const MIN_COSINE: f64 = 0.99999;

fn load(name: &str, towers: Towers) -> (ClipConfig, ClipModel, Device) {
    let dir = fixtures().join(name);
    let device = Device::flex();
    let config = ClipConfig::from_file(dir.join("config.json")).unwrap();
    let model = Checkpoint::open_dir(&dir)
        .unwrap()
        .load_model(&config, towers, &device)
        .unwrap();
    (config, model, device)
}

fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, d] = t.dims();
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap()
        .chunks(d)
        .map(<[f32]>::to_vec)
        .collect()
}

/// Embeds every reference image (one batch) and returns `(name, cosine to reference)`.
fn image_cosines(model: &ClipModel, device: &Device, prefix: &str) -> Vec<(String, f64)> {
    let reference = Reference::load();
    let images = reference.images();
    let mut flat = Vec::new();
    for (name, _) in &images {
        flat.extend(reference.tensor(&format!("pixel_values.{name}")).f32());
    }
    let size = reference
        .tensor(&format!("pixel_values.{}", images[0].0))
        .shape[1];
    let pixels =
        Tensor::<4>::from_data(TensorData::new(flat, [images.len(), 3, size, size]), device);
    let embeds = rows(model.encode_images(pixels).unwrap());
    images
        .iter()
        .zip(embeds)
        .map(|((name, _), e)| {
            let want = reference
                .tensor(&format!("{prefix}image_embeds.{name}"))
                .f32();
            (name.clone(), cosine(&e, &want))
        })
        .collect()
}

/// Embeds every reference text (one batch, run at its longest sequence) and returns
/// `(index, cosine to reference)`.
fn text_cosines(model: &ClipModel, prefix: &str) -> Vec<(usize, f64)> {
    let reference = Reference::load();
    let ids: Vec<Vec<u32>> = reference.texts().into_iter().map(|(_, ids)| ids).collect();
    let embeds = rows(model.encode_texts(&ids).unwrap());
    embeds
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let want = reference.tensor(&format!("{prefix}text_embeds.{i}")).f32();
            (i, cosine(e, &want))
        })
        .collect()
}

fn assert_all_close<K: std::fmt::Debug>(what: &str, cosines: &[(K, f64)]) {
    let min = cosines.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
    println!(
        "{what}: {} embeddings, min cosine {min:.10} (1 - cos = {:.1e})",
        cosines.len(),
        1.0 - min
    );
    for (k, c) in cosines {
        assert!(c >= &MIN_COSINE, "{what} {k:?}: cosine {c} < {MIN_COSINE}");
    }
}

#[test]
fn image_embeddings_match_reference() {
    let (_, model, device) = load("tiny-clip", Towers::VisionOnly);
    let start = Instant::now();
    let cosines = image_cosines(&model, &device, "");
    println!("tiny-clip images on flex: {:?}", start.elapsed());
    assert_all_close("tiny-clip image", &cosines);
}

#[test]
fn text_embeddings_match_reference() {
    let (_, model, _) = load("tiny-clip", Towers::TextOnly);
    let start = Instant::now();
    let cosines = text_cosines(&model, "");
    println!("tiny-clip texts on flex: {:?}", start.elapsed());
    assert_all_close("tiny-clip text", &cosines);
}

#[test]
fn gelu_checkpoint_matches_reference() {
    // Exact-erf GELU and the non-legacy pooling rule (first eos id).
    let (config, model, device) = load("tiny-clip-gelu", Towers::Both);
    assert_eq!(config.text_config.eos_token_id, 49407);
    assert_all_close("gelu image", &image_cosines(&model, &device, "gelu."));
    assert_all_close("gelu text", &text_cosines(&model, "gelu."));
}

#[test]
fn logit_scale_and_logits_match_reference() {
    let (_, model, device) = load("tiny-clip", Towers::Both);
    let reference = Reference::load();
    let want = reference.tensor("logit_scale").f32()[0];
    assert!(
        (model.logit_scale - want).abs() < 1e-6,
        "{} vs {want}",
        model.logit_scale
    );
    // logits_per_image = exp(logit_scale) * image_embeds @ text_embeds.T
    let images = image_cosines(&model, &device, "");
    let logits = reference.tensor("logits_per_image");
    assert_eq!(logits.shape, [images.len(), reference.texts().len()]);
    let ids: Vec<Vec<u32>> = reference.texts().into_iter().map(|(_, ids)| ids).collect();
    let text = rows(model.encode_texts(&ids).unwrap());
    let names: Vec<String> = reference.images().into_iter().map(|(n, _)| n).collect();
    let mut flat = Vec::new();
    for name in &names {
        flat.extend(reference.tensor(&format!("pixel_values.{name}")).f32());
    }
    let pixels = Tensor::<4>::from_data(TensorData::new(flat, [names.len(), 3, 56, 56]), &device);
    let image = rows(model.encode_images(pixels).unwrap());
    let want = logits.f32();
    for (i, e) in image.iter().enumerate() {
        for (j, t) in text.iter().enumerate() {
            let got = model.logit_scale_exp() * e.iter().zip(t).map(|(a, b)| a * b).sum::<f32>();
            let expected = want[i * text.len() + j];
            assert!(
                (got - expected).abs() < 1e-3,
                "logit [{i},{j}] {got} vs {expected}"
            );
        }
    }
}

/// The parity check has teeth: small, plausible bugs push the cosine far below the bar.
#[test]
fn perturbed_models_fail_the_check() {
    let worst = |c: &[(String, f64)]| c.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
    let worst_text = |c: &[(usize, f64)]| c.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);

    // Skip the last vision layer.
    let (_, mut model, device) = load("tiny-clip", Towers::Both);
    model
        .vision
        .as_mut()
        .unwrap()
        .vision_model
        .encoder
        .layers
        .pop();
    let w = worst(&image_cosines(&model, &device, ""));
    println!("vision, last layer skipped: min cosine {w}");
    assert!(w < 0.99, "skipping a vision layer went unnoticed: {w}");

    // Skip the last text layer.
    model.text.as_mut().unwrap().text_model.encoder.layers.pop();
    let w = worst_text(&text_cosines(&model, ""));
    println!("text, last layer skipped: min cosine {w}");
    assert!(w < 0.99, "skipping a text layer went unnoticed: {w}");

    // Zero one attention bias of the first vision layer.
    let (_, mut model, device) = load("tiny-clip", Towers::VisionOnly);
    let layer = &mut model.vision.as_mut().unwrap().vision_model.encoder.layers[0];
    let bias = layer.self_attn.v_proj.bias.as_ref().unwrap().val();
    layer.self_attn.v_proj.bias = Some(burn::module::Param::from_tensor(bias.zeros_like()));
    let w = worst(&image_cosines(&model, &device, ""));
    println!("vision, one v_proj bias zeroed: min cosine {w}");
    assert!(w < 0.999, "zeroing a bias went unnoticed: {w}");

    // Pooling one token early (the last word instead of the end-of-text token).
    let (_, model, device) = load("tiny-clip", Towers::TextOnly);
    let reference = Reference::load();
    let (_, ids) = reference.texts().remove(0);
    let tower = model.text.as_ref().unwrap();
    let tensor = Tensor::<2, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i as i64).collect(), [1, ids.len()]),
        &device,
    );
    let early = rows(tower.forward(tensor, &[ids.len() - 2])).remove(0);
    let c = cosine(&early, &reference.tensor("text_embeds.0").f32());
    println!("text pooled one token early: cosine {c}");
    assert!(c < 0.99, "pooling at the wrong token went unnoticed: {c}");
}

/// Running a text alone (its own length) and in a batch padded to a longer sequence gives the
/// same embedding: the causal tower ignores what follows the end-of-text token.
#[test]
fn text_embedding_is_independent_of_batch_length() {
    let (_, model, _) = load("tiny-clip", Towers::TextOnly);
    let reference = Reference::load();
    let texts = reference.texts();
    let short = texts[0].1.clone(); // "a photo of a cat", 7 ids
    let long = texts
        .iter()
        .map(|t| t.1.clone())
        .max_by_key(|ids| ids.len())
        .unwrap();
    assert!(long.len() > 3 * short.len());
    let alone = rows(model.encode_texts(std::slice::from_ref(&short)).unwrap()).remove(0);
    let batched = rows(model.encode_texts(&[long.clone(), short.clone()]).unwrap()).remove(1);
    let max_diff = alone
        .iter()
        .zip(&batched)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "short text alone vs padded to {}: max |diff| {max_diff:e}",
        long.len()
    );
    assert!(max_diff < 1e-5, "{max_diff}");
    // And equal to the reference, which was computed padded to 77.
    let want = reference.tensor("text_embeds.0").f32();
    assert!(cosine(&alone, &want) >= MIN_COSINE);
}

#[test]
fn one_tower_models_refuse_the_other_input() {
    let (_, text_only, device) = load("tiny-clip", Towers::TextOnly);
    assert!(text_only.vision.is_none());
    let pixels = Tensor::<4>::zeros([1, 3, 56, 56], &device);
    assert!(matches!(
        text_only.encode_images(pixels),
        Err(Error::TowerNotLoaded { tower: "vision" })
    ));
    let (_, vision_only, device) = load("tiny-clip", Towers::VisionOnly);
    assert!(vision_only.text.is_none());
    assert!(matches!(
        vision_only.encode_texts(&[vec![49406, 49407]]),
        Err(Error::TowerNotLoaded { tower: "text" })
    ));
    // Wrong resolution and over-long text are input errors, not panics.
    let pixels = Tensor::<4>::zeros([1, 3, 64, 64], &device);
    assert!(matches!(
        vision_only.encode_images(pixels),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        text_only.encode_texts(&[vec![1u32; 78]]),
        Err(Error::InvalidInput(_))
    ));
    // A wrong channel count at the right resolution (grey or RGBA planes) too: the patch
    // embedding would otherwise fail inside burn or read the planes as other pixels.
    for channels in [1, 4] {
        let pixels = Tensor::<4>::zeros([1, channels, 56, 56], &device);
        let err = vision_only.encode_images(pixels).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains(&format!("[1, {channels}, 56, 56]"))),
            "{channels} channels: {err:?}"
        );
    }
    // The empty batch.
    let pixels = Tensor::<4>::zeros([0, 3, 56, 56], &device);
    assert!(matches!(
        vision_only.encode_images(pixels),
        Err(Error::InvalidInput(_))
    ));
}

/// The high-level API keeps the caller's order (it batches texts by length internally, in chunks
/// of 32) and matches the reference.
#[test]
fn clip_encoder_api_matches_reference() {
    use glimpse_encoder::ClipEncoder;
    let encoder =
        ClipEncoder::load(fixtures().join("tiny-clip"), &Device::flex(), Towers::Both).unwrap();
    let reference = Reference::load();
    let texts = reference.texts();
    // 42 sequences of mixed lengths: two chunks, reordered by length inside.
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .chain(texts.iter().rev())
        .map(|t| t.1.clone())
        .collect();
    let embeds = encoder.embed_token_ids(&ids).unwrap();
    let n = texts.len();
    for (k, e) in embeds.iter().enumerate() {
        let i = if k < n { k } else { 2 * n - 1 - k };
        let c = cosine(e, &reference.tensor(&format!("text_embeds.{i}")).f32());
        assert!(c >= MIN_COSINE, "text {k} (reference {i}): cosine {c}");
    }
    // Tokenizing inside gives the same embeddings.
    let strings: Vec<&str> = texts.iter().map(|t| t.0.as_str()).collect();
    let from_text = encoder.embed_texts(&strings).unwrap();
    for (a, b) in from_text.iter().zip(&embeds) {
        assert!(cosine(a, b) >= MIN_COSINE);
    }
    // Pixels.
    let images = reference.images();
    let pixels: Vec<Vec<f32>> = images
        .iter()
        .map(|(name, _)| reference.tensor(&format!("pixel_values.{name}")).f32())
        .collect();
    let embeds = encoder.embed_pixel_values(&pixels).unwrap();
    for ((name, _), e) in images.iter().zip(&embeds) {
        let c = cosine(e, &reference.tensor(&format!("image_embeds.{name}")).f32());
        assert!(c >= MIN_COSINE, "image {name}: cosine {c}");
        assert_eq!(e.len(), encoder.dim());
    }
    // Input errors name the input.
    let err = encoder.embed_pixel_values(&[vec![0.0; 10]]).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("image 0")),
        "{err:?}"
    );
    let err = encoder
        .embed_token_ids(&[vec![49406, 49407], vec![]])
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("sequence 1")),
        "{err:?}"
    );
    let err = encoder
        .embed_token_ids(&[vec![49406, 60000, 49407]])
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("60000")),
        "{err:?}"
    );
    let vision_only = ClipEncoder::load(
        fixtures().join("tiny-clip"),
        &Device::flex(),
        Towers::VisionOnly,
    )
    .unwrap();
    assert!(matches!(
        vision_only.embed_texts(&["a cat"]),
        Err(Error::TowerNotLoaded { tower: "text" })
    ));
}
