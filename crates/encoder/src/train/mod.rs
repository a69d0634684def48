//! Contrastive training (CLIP's objective) in burn, behind the `train` feature.
//!
//! Matching image–caption pairs are pulled together and every other pair in the batch pushed
//! apart: the symmetric InfoNCE loss over the image × text similarity matrix scaled by
//! `exp(logit_scale)` — a learned temperature, clamped at 100 as CLIP does
//! ([Radford et al. 2021](https://arxiv.org/abs/2103.00020), §2.3 and Figure 3).
//!
//! - **Optimiser**: AdamW (decay on matrices only: biases, layer norms, the class embedding
//!   and `logit_scale` are not decayed, as in OpenCLIP), a linear warm-up then a cosine decay
//!   of the learning rate ([`learning_rate`]), clipping of the *global* gradient norm, fixed
//!   seeds (weights, batch order and augmentation are reproducible for a given seed and
//!   thread count).
//! - **Data**: a [`Dataset`] from a folder with a `captions.tsv` or from any iterator of
//!   `(image, caption)` pairs; random resized crops and (where the caption names no side)
//!   mirror flips, computed on the CPU in parallel ([`Augment`]).
//! - **Starting points**: [`Trainer::from_scratch`] (a [`ClipConfig`]), [`Trainer::fine_tune`]
//!   (a Hugging Face checkpoint folder), optionally with one tower frozen ([`Freeze`]: LiT
//!   freezes the image tower), and [`Trainer::resume`] from a checkpoint this trainer saved.
//! - **Progress**: a [`StepReport`] per step (loss, in-batch accuracy, learning rate,
//!   temperature, gradient norm).
//! - **Checkpoints**: [`Trainer::save`] writes a Hugging Face checkpoint folder
//!   ([`checkpoint`]) that [`crate::loader::Checkpoint`] and `transformers` load, plus the
//!   trainer's own state (`trainer_state.json`, `optimizer.bpk`) for [`Trainer::resume`].
//!
//! ```no_run
//! # fn main() -> glimpse_encoder::Result<()> {
//! use glimpse_encoder::train::{Dataset, TrainConfig, Trainer};
//! use glimpse_encoder::{ClipConfig, Device};
//!
//! let data = Dataset::from_folder("my-photos")?; // my-photos/captions.tsv
//! let config = TrainConfig { steps: 500, batch_size: 64, ..TrainConfig::default() };
//! let mut trainer = Trainer::fine_tune("models/clip-vit-base-patch32", config, &Device::flex())?;
//! trainer.train(&data, |report| println!("{report}"))?;
//! trainer.save("models/my-clip")?;
//! # Ok(()) }
//! ```

pub mod checkpoint;
mod data;
mod model;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use checkpoint::{save_checkpoint, SaveDType, TokenizerSource};
pub use data::{Augment, Dataset};
pub use model::{
    contrastive_loss, in_batch_accuracy, Batch, ContrastiveModel, ContrastiveOutput,
    MAX_LOGIT_SCALE,
};

use crate::config::ClipConfig;
use crate::error::{Error, Result};
use crate::loader::Checkpoint;
use crate::model::{ClipModel, Towers};
use crate::preprocess::{PreprocessConfig, Preprocessor};
use crate::tokenize::ClipTokenizer;
use data::{batch_pixels, Sampler};

/// Which tower, if any, keeps its weights fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Freeze {
    /// Train both towers.
    #[default]
    None,
    /// Keep the text tower fixed (train images to meet a fixed text space).
    Text,
    /// Keep the image tower fixed: LiT ("locked-image tuning", Zhai et al. 2022).
    Vision,
}

/// Hyper-parameters of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Total number of optimiser steps.
    pub steps: usize,
    /// Pairs per batch (the number of negatives each pair sees, plus one).
    pub batch_size: usize,
    /// Peak learning rate, reached at the end of the warm-up.
    pub learning_rate: f64,
    /// Steps of linear warm-up from zero.
    pub warmup_steps: usize,
    /// The learning rate at the last step, as a fraction of the peak (the cosine decays to it).
    pub final_lr_fraction: f64,
    /// AdamW's decoupled weight decay (matrices only).
    pub weight_decay: f32,
    /// AdamW's β₁.
    pub beta_1: f32,
    /// AdamW's β₂.
    pub beta_2: f32,
    /// AdamW's ε.
    pub epsilon: f32,
    /// Rescale the gradient when its global L2 norm exceeds this; `None` disables clipping.
    pub grad_clip_norm: Option<f32>,
    /// Seed of the weights (from scratch), the batch order and the augmentation.
    pub seed: u64,
    /// A tower to keep fixed.
    pub freeze: Freeze,
    /// Augmentation of the training images.
    #[serde(skip)]
    pub augment: Augment,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 64,
            learning_rate: 5e-4,
            warmup_steps: 100,
            final_lr_fraction: 0.0,
            weight_decay: 0.1,
            beta_1: 0.9,
            beta_2: 0.98,
            epsilon: 1e-6,
            grad_clip_norm: Some(1.0),
            seed: 0,
            freeze: Freeze::None,
            augment: Augment::default(),
        }
    }
}

/// The learning rate at `step` (0-based): linear warm-up from `lr / warmup` to `lr` over
/// `warmup_steps`, then a cosine from `lr` down to `lr · final_lr_fraction` at the last step.
pub fn learning_rate(config: &TrainConfig, step: usize) -> f64 {
    let peak = config.learning_rate;
    if step < config.warmup_steps {
        return peak * (step + 1) as f64 / config.warmup_steps as f64;
    }
    let decay_steps = config.steps.saturating_sub(config.warmup_steps).max(1);
    let progress = ((step - config.warmup_steps) as f64 / decay_steps as f64).min(1.0);
    let floor = peak * config.final_lr_fraction;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// What one optimiser step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// The step just taken, 1-based.
    pub step: usize,
    /// Total steps of the run.
    pub steps: usize,
    /// The batch's loss before the update.
    pub loss: f32,
    /// In-batch accuracy before the update ([`in_batch_accuracy`]).
    pub accuracy: f32,
    /// The learning rate of the step.
    pub learning_rate: f64,
    /// `logit_scale` after the update (the multiplier is its exponential).
    pub logit_scale: f32,
    /// Global L2 norm of the gradient, before clipping.
    pub grad_norm: f32,
    /// Wall time of the step (data preparation included).
    pub elapsed: Duration,
}

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {}/{}  loss {:.4}  acc {:.3}  lr {:.2e}  scale {:.2}  |g| {:.3}  {:.0} ms",
            self.step,
            self.steps,
            self.loss,
            self.accuracy,
            self.learning_rate,
            self.logit_scale.exp(),
            self.grad_norm,
            self.elapsed.as_secs_f64() * 1e3
        )
    }
}

/// The trainer's own state, saved beside a checkpoint (`trainer_state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    /// Steps taken.
    step: usize,
    /// The run's hyper-parameters.
    config: TrainConfig,
}

const TRAINER_STATE: &str = "trainer_state.json";
const OPTIMIZER_STATE: &str = "optimizer.bpk";

/// Trains a [`ContrastiveModel`]. See the [module docs](self).
#[allow(missing_debug_implementations)] // ModuleOptimizer is not Debug
pub struct Trainer {
    model: ContrastiveModel,
    optimizer: ModuleOptimizer,
    config: TrainConfig,
    clip_config: ClipConfig,
    preprocess: PreprocessConfig,
    preprocessor: Preprocessor,
    tokenizer: ClipTokenizer,
    tokenizer_source: TokenizerSource,
    device: Device,
    step: usize,
}

/// Gives every parameter an id derived from its path in the module tree, so that optimiser
/// state saved by one process matches the parameters another process loads.
struct StableIds {
    path: Vec<String>,
}

impl ModuleMapper for StableIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // FNV-1a of the path: stable across processes and platforms.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.path.join(".").bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let (_, tensor, mapper) = param.consume();
        Param::from_mapped_value(ParamId::from(hash), tensor, mapper)
    }
}

/// Collects the ids of parameters with fewer than two dimensions (not weight-decayed).
#[derive(Default)]
struct VectorParams {
    ids: Vec<ParamId>,
}

impl ModuleVisitor for VectorParams {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if D < 2 {
            self.ids.push(param.id);
        }
    }
}

/// Sums the squares of every gradient.
struct GradNorm<'a> {
    grads: &'a GradientsParams,
    sum: f64,
}

impl ModuleVisitor for GradNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.sum += grad.square().sum().into_scalar::<f32>() as f64;
        }
    }
}

/// Multiplies every gradient by a factor.
struct ScaleGrads<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads
                .register::<D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// Rescales the gradients so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping.
fn clip_global_norm(
    model: &ContrastiveModel,
    grads: &mut GradientsParams,
    max_norm: Option<f32>,
) -> f32 {
    let mut norm = GradNorm { grads, sum: 0.0 };
    model.visit(&mut norm);
    let total = norm.sum.sqrt();
    if let Some(max) = max_norm {
        if total > max as f64 && total.is_finite() {
            model.visit(&mut ScaleGrads {
                grads,
                factor: max as f64 / (total + 1e-6),
            });
        }
    }
    total as f32
}

/// Re-initialises the embeddings as CLIP does (`CLIPPreTrainedModel._init_weights`): token and
/// position embeddings `N(0, 0.02)`, the class embedding `N(0, width^-0.5)`. burn's default
/// `N(0, 1)` position embeddings would swamp the patch features at the start of training.
fn clip_init(mut model: ClipModel, device: &Device) -> ClipModel {
    use burn::tensor::Distribution::Normal;
    let normal = |dims: [usize; 2], std: f64| {
        Param::from_tensor(Tensor::<2>::random(dims, Normal(0.0, std), device))
    };
    if let Some(text) = model.text.as_mut() {
        let e = &mut text.text_model.embeddings;
        e.token_embedding.weight = normal(e.token_embedding.weight.dims(), 0.02);
        e.position_embedding.weight = normal(e.position_embedding.weight.dims(), 0.02);
    }
    if let Some(vision) = model.vision.as_mut() {
        let e = &mut vision.vision_model.embeddings;
        let [width] = e.class_embedding.dims();
        e.class_embedding = Param::from_tensor(Tensor::<1>::random(
            [width],
            Normal(0.0, (width as f64).powf(-0.5)),
            device,
        ));
        e.position_embedding.weight = normal(e.position_embedding.weight.dims(), 0.02);
    }
    model
}

impl Trainer {
    /// A randomly initialised model with `clip_config`'s sizes (seeded with `config.seed`; the
    /// embeddings initialised as CLIP does),
    /// using the tokenizer at `tokenizer_json` and CLIP's preprocessing at the config's image
    /// size. `device` is a plain (inference) device; training runs on its autodiff
    /// counterpart.
    ///
    /// # Errors
    /// [`Error::Config`] for an inconsistent config; [`Error::Tokenizer`] if the tokenizer
    /// cannot be loaded or its vocabulary exceeds the config's.
    pub fn from_scratch(
        clip_config: ClipConfig,
        tokenizer_json: impl AsRef<Path>,
        config: TrainConfig,
        device: &Device,
    ) -> Result<Self> {
        clip_config.validate()?;
        let tokenizer_json = tokenizer_json.as_ref();
        let tokenizer = ClipTokenizer::from_file(tokenizer_json)?;
        device.seed(config.seed);
        let model = clip_init(ClipModel::init(&clip_config, Towers::Both, device), device);
        let preprocess = checkpoint::default_preprocess(clip_config.vision_config.image_size);
        Self::new(
            model,
            clip_config,
            preprocess,
            tokenizer,
            TokenizerSource::File(tokenizer_json.to_owned()),
            config,
            device,
        )
    }

    /// Fine-tunes the Hugging Face checkpoint in `dir` (`config.json`, `model.safetensors`,
    /// `tokenizer.json`; `preprocessor_config.json` if present, else CLIP's defaults at the
    /// model's image size).
    ///
    /// # Errors
    /// Those of [`ClipConfig::from_file`], [`Checkpoint::load_model`] and
    /// [`ClipTokenizer::from_dir`].
    pub fn fine_tune(dir: impl AsRef<Path>, config: TrainConfig, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let clip_config = ClipConfig::from_file(dir.join("config.json"))?;
        let model = Checkpoint::open_dir(dir)?.load_model(&clip_config, Towers::Both, device)?;
        let tokenizer = ClipTokenizer::from_dir(dir)?;
        let preprocess = if dir.join("preprocessor_config.json").exists() {
            PreprocessConfig::from_dir(dir)?
        } else {
            checkpoint::default_preprocess(clip_config.vision_config.image_size)
        };
        device.seed(config.seed);
        Self::new(
            model,
            clip_config,
            preprocess,
            tokenizer,
            TokenizerSource::Dir(dir.to_owned()),
            config,
            device,
        )
    }

    /// Continues a run from a checkpoint that [`Trainer::save`] wrote: the weights, the step
    /// count and the optimiser's moments. `config` should be the run's (its `steps` may be
    /// raised to train longer; the schedule is recomputed).
    ///
    /// # Errors
    /// Those of [`Trainer::fine_tune`]; [`Error::Checkpoint`] if `trainer_state.json` or
    /// `optimizer.bpk` is missing or unreadable.
    pub fn resume(dir: impl AsRef<Path>, config: TrainConfig, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let state_path = dir.join(TRAINER_STATE);
        let text = std::fs::read_to_string(&state_path).map_err(|source| Error::Io {
            path: state_path.clone(),
            source,
        })?;
        let state: TrainerState = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: state_path.clone(),
            message: e.to_string(),
        })?;
        let mut trainer = Self::fine_tune(dir, config, device)?;
        trainer.step = state.step;
        let optimizer_path = dir.join(OPTIMIZER_STATE);
        trainer.optimizer = trainer
            .optimizer
            .clone()
            .load(&optimizer_path)
            .map_err(|e| Error::Checkpoint {
                path: optimizer_path,
                message: format!("{e:?}"),
            })?;
        Ok(trainer)
    }

    fn new(
        model: ClipModel,
        clip_config: ClipConfig,
        preprocess: PreprocessConfig,
        tokenizer: ClipTokenizer,
        tokenizer_source: TokenizerSource,
        config: TrainConfig,
        device: &Device,
    ) -> Result<Self> {
        if tokenizer.vocab_size() > clip_config.text_config.vocab_size {
            return Err(Error::Tokenizer {
                path: PathBuf::new(),
                message: format!(
                    "the tokenizer has {} tokens, the model's vocabulary only {}",
                    tokenizer.vocab_size(),
                    clip_config.text_config.vocab_size
                ),
            });
        }
        let device = device.clone().autodiff();
        let model = ContrastiveModel::from_clip(model, &device)?
            .map(&mut StableIds { path: Vec::new() })
            .train();
        let model = match config.freeze {
            Freeze::None => model,
            Freeze::Text => ContrastiveModel {
                text: model.text.no_grad(),
                ..model
            },
            Freeze::Vision => ContrastiveModel {
                vision: model.vision.no_grad(),
                ..model
            },
        };
        let adamw = |decay: f32| {
            AdamWConfig::new()
                .with_beta_1(config.beta_1)
                .with_beta_2(config.beta_2)
                .with_epsilon(config.epsilon)
                .with_weight_decay(decay)
        };
        let mut vectors = VectorParams::default();
        model.visit(&mut vectors);
        let optimizer = adamw(config.weight_decay).init().with_group(
            ParamGroup::from_ids(vectors.ids),
            adamw(0.0).build(),
            None,
        );
        Ok(Self {
            model,
            optimizer,
            clip_config,
            preprocessor: Preprocessor::new(preprocess.clone()),
            preprocess,
            tokenizer,
            tokenizer_source,
            device,
            step: 0,
            config,
        })
    }

    /// The run's hyper-parameters.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The model's configuration.
    pub fn clip_config(&self) -> &ClipConfig {
        &self.clip_config
    }

    /// The preprocessing the saved checkpoint will carry (and evaluation should use).
    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// Sets the run's total number of steps (`config.steps`), e.g. once the time a step takes
    /// is known. The schedule is recomputed from it. Warm-up learning rates do not depend on
    /// the total, so steps taken during the warm-up had the learning rates of a run started
    /// with the new total: a run whose total is set at the end of its warm-up (with batches
    /// from one continuing iterator, see [`Trainer::train_batches`]) repeats exactly as a run
    /// started with that total.
    pub fn set_steps(&mut self, steps: usize) {
        self.config.steps = steps;
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The model being trained.
    pub fn model(&self) -> &ContrastiveModel {
        &self.model
    }

    /// An inference copy of the current weights.
    pub fn clip_model(&self) -> ClipModel {
        self.model.to_clip()
    }

    /// Builds the batch of the pairs at `indices`, augmented with one seed per pair.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if a caption cannot be encoded.
    pub fn make_batch(
        &self,
        data: &Dataset,
        indices: &[usize],
        seeds: &[u64],
        augment: &Augment,
    ) -> Result<Batch> {
        let size = self.clip_config.vision_config.image_size;
        let pixels = batch_pixels(data, indices, seeds, augment, size, &self.preprocessor);
        let captions: Vec<&str> = indices
            .iter()
            .map(|&i| data.captions()[i].as_str())
            .collect();
        let ids = self.tokenizer.encode_batch(&captions)?;
        self.batch_from_parts(pixels, &ids)
    }

    fn batch_from_parts(&self, pixels: Vec<f32>, ids: &[Vec<u32>]) -> Result<Batch> {
        let batch = ids.len();
        let size = self.clip_config.vision_config.image_size;
        let channels = self.clip_config.vision_config.num_channels;
        let text = &self.clip_config.text_config;
        let seq = ids.iter().map(Vec::len).max().unwrap_or(1);
        if seq > text.max_position_embeddings {
            return Err(Error::InvalidInput(format!(
                "a caption has {seq} tokens, the model's context is {}",
                text.max_position_embeddings
            )));
        }
        let mut flat = Vec::with_capacity(batch * seq);
        let mut pooled = Vec::with_capacity(batch);
        for row in ids {
            pooled.push(text.pooled_position(row));
            flat.extend(row.iter().map(|&id| id as i64));
            flat.extend(std::iter::repeat_n(0i64, seq - row.len()));
        }
        Ok(Batch {
            pixels: Tensor::from_data(
                TensorData::new(pixels, [batch, channels, size, size]),
                &self.device,
            ),
            ids: Tensor::from_data(TensorData::new(flat, [batch, seq]), &self.device),
            pooled,
        })
    }

    /// One optimiser step on `batch`: forward, backward, global-norm clipping, AdamW with the
    /// scheduled learning rate, then the `logit_scale` clamp.
    pub fn step(&mut self, batch: &Batch) -> StepReport {
        let start = Instant::now();
        let lr = learning_rate(&self.config, self.step);
        let output = self.model.forward(batch);
        let loss = output.loss.clone().detach().into_scalar::<f32>();
        let accuracy = in_batch_accuracy(&output.logits);
        let mut grads = GradientsParams::from_grads(output.loss.backward(), &self.model);
        let grad_norm = clip_global_norm(&self.model, &mut grads, self.config.grad_clip_norm);
        let model = self.model.clone();
        self.model = self.optimizer.step(lr, model, grads).clamp_logit_scale();
        self.step += 1;
        StepReport {
            step: self.step,
            steps: self.config.steps,
            loss,
            accuracy,
            learning_rate: lr,
            logit_scale: self.model.logit_scale_value(),
            grad_norm,
            elapsed: start.elapsed(),
        }
    }

    /// Trains on `data` until `config.steps` steps have been taken, calling `on_step` after each
    /// (with the time spent preparing the batch included in its `elapsed`).
    ///
    /// Batches are drawn without replacement within an epoch from a generator seeded with the
    /// run's seed and the starting step, so a resumed run draws a reproducible sequence too.
    ///
    /// # Errors
    /// [`Error::Dataset`] for an empty data set; [`Error::Tokenizer`] if a caption cannot be
    /// encoded.
    pub fn train(&mut self, data: &Dataset, on_step: impl FnMut(&StepReport)) -> Result<()> {
        let mut sampler = Sampler::new(
            data.len(),
            self.config.seed ^ (self.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let batch_size = self.config.batch_size;
        let batches = std::iter::from_fn(move || Some(sampler.next_batch(batch_size).0));
        self.train_batches(data, batches, on_step)
    }

    /// Like [`Trainer::train`], with the caller choosing the pairs of every batch (indices into
    /// `data`): for hard negatives, e.g. batches drawn from few classes so that the model must
    /// tell apart what the classes share. Stops after `config.steps` steps or when `batches`
    /// ends. Augmentation seeds come from the run's seed and the step.
    ///
    /// # Errors
    /// [`Error::Dataset`] for an empty data set or an index outside it; [`Error::Tokenizer`] if
    /// a caption cannot be encoded.
    pub fn train_batches(
        &mut self,
        data: &Dataset,
        batches: impl IntoIterator<Item = Vec<usize>>,
        mut on_step: impl FnMut(&StepReport),
    ) -> Result<()> {
        use rand::{Rng, SeedableRng};

        if data.is_empty() {
            return Err(Error::Dataset {
                path: PathBuf::new(),
                message: "no training pairs".into(),
            });
        }
        let ids = self.tokenizer.encode_batch(data.captions())?;
        let size = self.clip_config.vision_config.image_size;
        let mut batches = batches.into_iter();
        while self.step < self.config.steps {
            let Some(indices) = batches.next() else {
                break;
            };
            if let Some(&bad) = indices.iter().find(|&&i| i >= data.len()) {
                return Err(Error::Dataset {
                    path: PathBuf::new(),
                    message: format!("batch index {bad} outside the {} pairs", data.len()),
                });
            }
            let start = Instant::now();
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                self.config.seed ^ (self.step as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407),
            );
            let seeds: Vec<u64> = indices.iter().map(|_| rng.gen()).collect();
            let pixels = batch_pixels(
                data,
                &indices,
                &seeds,
                &self.config.augment,
                size,
                &self.preprocessor,
            );
            let batch_ids: Vec<Vec<u32>> = indices.iter().map(|&i| ids[i].clone()).collect();
            let batch = self.batch_from_parts(pixels, &batch_ids)?;
            let mut report = self.step(&batch);
            report.elapsed = start.elapsed();
            on_step(&report);
        }
        Ok(())
    }

    /// Saves a Hugging Face checkpoint of the current weights into `dir` (f32), with the
    /// trainer's state for [`Trainer::resume`].
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.save_as(dir, SaveDType::F32)
    }

    /// Like [`Trainer::save`], with the weights stored as `dtype`.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written.
    pub fn save_as(&self, dir: impl AsRef<Path>, dtype: SaveDType) -> Result<()> {
        let dir = dir.as_ref();
        save_checkpoint(
            &self.clip_model(),
            &self.clip_config,
            &self.preprocess,
            &self.tokenizer_source,
            dir,
            dtype,
        )?;
        let state = TrainerState {
            step: self.step,
            config: self.config.clone(),
        };
        let state_path = dir.join(TRAINER_STATE);
        let text = serde_json::to_string_pretty(&state).expect("JSON");
        std::fs::write(&state_path, text).map_err(|source| Error::Io {
            path: state_path,
            source,
        })?;
        let optimizer_path = dir.join(OPTIMIZER_STATE);
        self.optimizer.save(&optimizer_path).map_err(|e| Error::Io {
            path: optimizer_path,
            source: std::io::Error::other(format!("{e:?}")),
        })
    }

    /// Saves only the Hugging Face checkpoint (no trainer state): what a model to ship needs.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written.
    pub fn export(&self, dir: impl AsRef<Path>, dtype: SaveDType) -> Result<()> {
        save_checkpoint(
            &self.clip_model(),
            &self.clip_config,
            &self.preprocess,
            &self.tokenizer_source,
            dir,
            dtype,
        )
    }
}
