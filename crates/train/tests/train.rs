//! Contrastive training: the loss goes down, checkpoints are the loader's exact inverse, and
//! autodiff's gradient agrees with finite differences.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::prelude::*;
use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::{ClipConfig, ClipTextConfig, ClipVisionConfig, Device, Towers};
use glimpse_synth::{self as synth, Colour, Shape, Size, Spec};
use glimpse_train::{
    checkpoint, Augment, Batch, ContrastiveModel, Dataset, SaveDType, TrainConfig, Trainer,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../encoder/tests/fixtures/tiny-clip")
}

fn tiny_config() -> ClipConfig {
    ClipConfig {
        text_config: ClipTextConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            ..ClipTextConfig::default()
        },
        vision_config: ClipVisionConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            image_size: 16,
            patch_size: 8,
            ..ClipVisionConfig::default()
        },
        projection_dim: 8,
        logit_scale_init_value: 2.6592,
    }
}

/// Pictures of four colour + shape combinations, each captioned with its query.
fn four_kinds(n: usize) -> Dataset {
    let kinds = [
        (Colour::Red, Shape::Circle),
        (Colour::Blue, Shape::Square),
        (Colour::Yellow, Shape::Triangle),
        (Colour::Green, Shape::Cross),
    ];
    let specs = synth::random_specs(n, 5);
    Dataset::from_pairs(specs.into_iter().enumerate().map(|(i, spec)| {
        let (colour, shape) = kinds[i % kinds.len()];
        let spec = Spec {
            colour,
            shape,
            size: Size::Large,
            ..spec
        };
        (synth::render(&spec, 32), spec.query())
    }))
}

fn trainer(config: TrainConfig) -> Trainer {
    Trainer::from_scratch(
        tiny_config(),
        fixture().join("tokenizer.json"),
        config,
        &Device::flex(),
    )
    .unwrap()
}

#[test]
fn loss_decreases_on_a_tiny_problem() {
    let data = four_kinds(64);
    let mut trainer = trainer(TrainConfig {
        steps: 100,
        batch_size: 16,
        learning_rate: 3e-3,
        warmup_steps: 5,
        seed: 1,
        ..TrainConfig::default()
    });
    let mut losses = Vec::new();
    trainer
        .train(&data, |report| {
            assert!(report.loss.is_finite(), "{report}");
            losses.push(report.loss);
        })
        .unwrap();
    assert_eq!(losses.len(), 100);
    assert_eq!(trainer.step_count(), 100);
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[95..].iter().sum::<f32>() / 5.0;
    // ln(16) = 2.77 at chance; with four kinds of pair the floor is about ln(4) = 1.39.
    assert!(
        last < first * 0.75,
        "loss went from {first} to {last}: {losses:?}"
    );
}

/// A minimal safetensors reader: key → (dtype, shape, raw bytes).
fn read_safetensors(path: &Path) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = BTreeMap::new();
    for (key, entry) in header.as_object().unwrap() {
        if key == "__metadata__" {
            continue;
        }
        let dtype = entry["dtype"].as_str().unwrap().to_owned();
        let shape = entry["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let begin = entry["data_offsets"][0].as_u64().unwrap() as usize;
        let end = entry["data_offsets"][1].as_u64().unwrap() as usize;
        out.insert(key.clone(), (dtype, shape, data[begin..end].to_vec()));
    }
    out
}

#[test]
fn saving_a_loaded_checkpoint_reproduces_its_tensors_exactly() {
    // The writer is the loader's inverse: transformers' own file, loaded and written back,
    // gives the same keys, shapes and bytes.
    let dir = fixture();
    let config = ClipConfig::from_file(dir.join("config.json")).unwrap();
    let device = Device::flex();
    let model = Checkpoint::open_dir(&dir)
        .unwrap()
        .load_model(&config, Towers::Both, &device)
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    checkpoint::save_checkpoint(
        &model,
        &config,
        &checkpoint::default_preprocess(config.vision_config.image_size),
        &checkpoint::TokenizerSource::Dir(dir.clone()),
        out.path(),
        SaveDType::F32,
    )
    .unwrap();
    let original = read_safetensors(&dir.join("model.safetensors"));
    let saved = read_safetensors(&out.path().join("model.safetensors"));
    assert_eq!(
        original.keys().collect::<Vec<_>>(),
        saved.keys().collect::<Vec<_>>()
    );
    for (key, (dtype, shape, bytes)) in &original {
        let (sdtype, sshape, sbytes) = &saved[key];
        assert_eq!((dtype, shape), (sdtype, sshape), "{key}");
        assert!(bytes == sbytes, "{key}: values differ");
    }
    let reloaded = ClipConfig::from_file(out.path().join("config.json")).unwrap();
    assert_eq!(reloaded, config);
    assert!(out.path().join("tokenizer.json").exists());
    assert!(out.path().join("preprocessor_config.json").exists());
}

fn embeddings(model: &glimpse_encoder::ClipModel, pixels: Tensor<4>, ids: &[Vec<u32>]) -> Vec<f32> {
    let mut v: Vec<f32> = model
        .encode_images(pixels)
        .unwrap()
        .into_data()
        .try_into_vec()
        .unwrap();
    v.extend(
        model
            .encode_texts(ids)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap(),
    );
    v
}

#[test]
fn a_saved_checkpoint_reloads_with_the_same_embeddings_and_resumes() {
    let data = four_kinds(16);
    let config = TrainConfig {
        steps: 3,
        batch_size: 8,
        learning_rate: 1e-3,
        warmup_steps: 1,
        seed: 2,
        ..TrainConfig::default()
    };
    let mut trainer = trainer(config.clone());
    trainer.train(&data, |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    trainer.save(dir.path()).unwrap();

    let trained = trainer.clip_model();
    let clip_config = ClipConfig::from_file(dir.path().join("config.json")).unwrap();
    assert_eq!(&clip_config, trainer.clip_config());
    let device = Device::flex();
    let loaded = Checkpoint::open_dir(dir.path())
        .unwrap()
        .load_model(&clip_config, Towers::Both, &device)
        .unwrap();
    assert_eq!(loaded.logit_scale, trained.logit_scale);

    let pre = glimpse_encoder::Preprocessor::from_dir(dir.path()).unwrap();
    let tokenizer = glimpse_encoder::ClipTokenizer::from_dir(dir.path()).unwrap();
    let pixels: Vec<f32> = data.images()[..4]
        .iter()
        .flat_map(|im| pre.preprocess_rgb8(im).data)
        .collect();
    let pixels = Tensor::<4>::from_data(TensorData::new(pixels, [4, 3, 16, 16]), &device);
    let ids = tokenizer
        .encode_batch(&["a red circle", "a blue square at the top"])
        .unwrap();
    let a = embeddings(&trained, pixels.clone(), &ids);
    let b = embeddings(&loaded, pixels, &ids);
    assert_eq!(a.len(), b.len());
    let max = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-6, "embeddings differ by {max}");

    // f16 checkpoints load too (the loader widens them), close to the f32 weights.
    let half = tempfile::tempdir().unwrap();
    trainer.export(half.path(), SaveDType::F16).unwrap();
    let h = Checkpoint::open_dir(half.path())
        .unwrap()
        .load_model(&clip_config, Towers::TextOnly, &device)
        .unwrap();
    let e16: Vec<f32> = h
        .encode_texts(&ids)
        .unwrap()
        .into_data()
        .try_into_vec()
        .unwrap();
    let e32: Vec<f32> = trained
        .encode_texts(&ids)
        .unwrap()
        .into_data()
        .try_into_vec()
        .unwrap();
    let max = e16
        .iter()
        .zip(&e32)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-2, "f16 embeddings differ by {max}");

    // Resuming continues from the saved step with the saved optimiser state.
    let mut resumed =
        Trainer::resume(dir.path(), TrainConfig { steps: 5, ..config }, &device).unwrap();
    assert_eq!(resumed.step_count(), 3);
    let mut steps = Vec::new();
    resumed.train(&data, |r| steps.push(r.step)).unwrap();
    assert_eq!(steps, vec![4, 5]);
}

/// Replaces element `index` of a parameter's value by `value + delta`.
fn perturbed<const D: usize>(
    param: &Param<Tensor<D>>,
    index: usize,
    delta: f32,
) -> Param<Tensor<D>> {
    let tensor = param.val();
    let shape = tensor.shape();
    let device = tensor.device();
    let mut values: Vec<f32> = tensor.into_data().try_into_vec().unwrap();
    values[index] += delta;
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), &device))
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec().unwrap()
}

fn argmax_abs(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs()))
        .unwrap()
}

#[test]
fn gradient_matches_finite_differences() {
    let data = four_kinds(8);
    let trainer = trainer(TrainConfig {
        seed: 3,
        ..TrainConfig::default()
    });
    let indices: Vec<usize> = (0..8).collect();
    let seeds = vec![0; 8];
    let batch = trainer
        .make_batch(&data, &indices, &seeds, &Augment::none())
        .unwrap();

    // Analytic gradients from autodiff.
    let model = trainer.model().clone();
    let grads = model.forward(&batch).loss.backward();
    let g = |t: Option<Tensor<1>>| values(t.expect("a gradient"));
    let grad_scale = g(model.logit_scale.val().grad(&grads));
    let grad_vproj: Vec<f32> = values(
        model
            .vision
            .visual_projection
            .weight
            .val()
            .grad(&grads)
            .unwrap(),
    );
    let grad_tproj: Vec<f32> = values(
        model
            .text
            .text_projection
            .weight
            .val()
            .grad(&grads)
            .unwrap(),
    );
    let grad_patch: Vec<f32> = values(
        model
            .vision
            .vision_model
            .embeddings
            .patch_embedding
            .val()
            .grad(&grads)
            .unwrap(),
    );
    let grad_ln = g(model
        .vision
        .vision_model
        .pre_layrnorm
        .gamma
        .val()
        .grad(&grads));
    let grad_q = values(
        model.text.text_model.encoder.layers[0]
            .self_attn
            .q_proj
            .weight
            .val()
            .grad(&grads)
            .unwrap(),
    );

    // Central differences on the plain (no autodiff) model.
    let plain = model.valid();
    let plain_batch = Batch {
        pixels: batch.pixels.clone().inner(),
        ids: batch.ids.clone().inner(),
        pooled: batch.pooled.clone(),
    };
    let loss =
        |m: &ContrastiveModel| -> f64 { m.forward(&plain_batch).loss.into_scalar::<f32>() as f64 };
    let eps = 1e-2f32;
    let check = |name: &str, analytic: f32, plus: &ContrastiveModel, minus: &ContrastiveModel| {
        let numeric = ((loss(plus) - loss(minus)) / (2.0 * eps as f64)) as f32;
        let tolerance = 2e-2 * analytic.abs().max(numeric.abs()) + 2e-4;
        assert!(
            (numeric - analytic).abs() <= tolerance,
            "{name}: autodiff {analytic}, finite differences {numeric}"
        );
        assert!(
            analytic.abs() > 1e-4,
            "{name}: gradient too small to check ({analytic})"
        );
    };

    let with = |f: &dyn Fn(&mut ContrastiveModel, f32), delta: f32| {
        let mut m = plain.clone();
        f(&mut m, delta);
        m
    };
    type Perturb = Box<dyn Fn(&mut ContrastiveModel, f32)>;
    let cases: Vec<(&str, f32, Perturb)> = vec![
        (
            "logit_scale",
            grad_scale[0],
            Box::new(|m: &mut ContrastiveModel, d| m.logit_scale = perturbed(&m.logit_scale, 0, d)),
        ),
        {
            let i = argmax_abs(&grad_vproj);
            (
                "visual_projection",
                grad_vproj[i],
                Box::new(move |m: &mut ContrastiveModel, d| {
                    let w = &mut m.vision.visual_projection.weight;
                    *w = perturbed(w, i, d)
                }),
            )
        },
        {
            let i = argmax_abs(&grad_tproj);
            (
                "text_projection",
                grad_tproj[i],
                Box::new(move |m: &mut ContrastiveModel, d| {
                    let w = &mut m.text.text_projection.weight;
                    *w = perturbed(w, i, d)
                }),
            )
        },
        {
            let i = argmax_abs(&grad_patch);
            (
                "patch_embedding",
                grad_patch[i],
                Box::new(move |m: &mut ContrastiveModel, d| {
                    let w = &mut m.vision.vision_model.embeddings.patch_embedding;
                    *w = perturbed(w, i, d)
                }),
            )
        },
        {
            let i = argmax_abs(&grad_ln);
            (
                "pre_layrnorm.gamma",
                grad_ln[i],
                Box::new(move |m: &mut ContrastiveModel, d| {
                    let w = &mut m.vision.vision_model.pre_layrnorm.gamma;
                    *w = perturbed(w, i, d)
                }),
            )
        },
        {
            let i = argmax_abs(&grad_q);
            (
                "text q_proj",
                grad_q[i],
                Box::new(move |m: &mut ContrastiveModel, d| {
                    let w = &mut m.text.text_model.encoder.layers[0].self_attn.q_proj.weight;
                    *w = perturbed(w, i, d)
                }),
            )
        },
    ];
    for (name, analytic, f) in &cases {
        check(
            name,
            *analytic,
            &with(f.as_ref(), eps),
            &with(f.as_ref(), -eps),
        );
    }
}

#[test]
fn setting_the_total_after_the_warm_up_repeats_a_run_started_with_it() {
    // What `examples/train/main.rs --time-budget` does: warm up, then set the total from the step
    // time. The steps and weights are those of a run given that total from the start.
    let data = four_kinds(32);
    let config = TrainConfig {
        steps: 6,
        batch_size: 8,
        learning_rate: 2e-3,
        warmup_steps: 2,
        seed: 4,
        ..TrainConfig::default()
    };
    let batches = || (0..).map(|i: usize| (0..8).map(|j| (i * 8 + j) % 32).collect::<Vec<_>>());
    let mut whole = trainer(config.clone());
    let mut lrs = Vec::new();
    whole
        .train_batches(&data, batches(), |r| lrs.push(r.learning_rate))
        .unwrap();

    let mut split = trainer(TrainConfig {
        steps: 1000,
        ..config
    });
    let mut split_lrs = Vec::new();
    let mut it = batches();
    split.set_steps(2);
    split
        .train_batches(&data, &mut it, |r| split_lrs.push(r.learning_rate))
        .unwrap();
    split.set_steps(6);
    split
        .train_batches(&data, &mut it, |r| split_lrs.push(r.learning_rate))
        .unwrap();
    assert_eq!(split.step_count(), 6);
    assert_eq!(lrs, split_lrs);

    let pixels = Tensor::<4>::zeros([1, 3, 16, 16], &Device::flex());
    let ids = vec![vec![49406u32, 320, 49407]];
    assert_eq!(
        embeddings(&whole.clip_model(), pixels.clone(), &ids),
        embeddings(&split.clip_model(), pixels, &ids)
    );
}
