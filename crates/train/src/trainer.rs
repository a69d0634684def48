//! The [`Trainer`]: a model, its optimiser and data pipeline, stepping and saving.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, Param, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::clip::{ClipModel, Towers};
use glimpse_encoder::config::ClipConfig;
use glimpse_encoder::error::{Error, Result};
use glimpse_encoder::preprocess::{PreprocessConfig, Preprocessor};
use glimpse_encoder::tokenize::ClipTokenizer;

use crate::checkpoint::{self, save_checkpoint, SaveDType, TokenizerSource};
use crate::config::{learning_rate, Freeze, StepReport, TrainConfig};
use crate::data::{batch_pixels, Augment, Dataset, Sampler};
use crate::model::{in_batch_accuracy, Batch, ContrastiveModel};
use crate::params::*;

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
