//! [`Distiller`]: the student, its optimiser, and the mean-squared-error steps.

use std::fmt;
use std::time::{Duration, Instant};

use burn::module::{Module, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use glimpse_encoder::bert::BertConfig;
use glimpse_encoder::error::{Error, Result};

use super::data::DistillSet;
use super::student::{StudentTower, TextBatch};
use crate::config::{learning_rate, TrainConfig};
use crate::data::Sampler;
use crate::params::{clip_global_norm, VectorParams};

/// What one distillation step did.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillReport {
    /// The step just taken, 1-based.
    pub step: usize,
    /// Total steps of the run.
    pub steps: usize,
    /// The batch's mean squared error before the update.
    pub loss: f32,
    /// Mean cosine between the student's and the teacher's embeddings in the batch.
    pub cosine: f32,
    /// The learning rate of the step.
    pub learning_rate: f64,
    /// Global L2 norm of the gradient, before clipping.
    pub grad_norm: f32,
    /// Wall time of the step.
    pub elapsed: Duration,
}

impl fmt::Display for DistillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {}/{}  mse {:.6}  cos {:.4}  lr {:.2e}  |g| {:.3}  {:.0} ms",
            self.step,
            self.steps,
            self.loss,
            self.cosine,
            self.learning_rate,
            self.grad_norm,
            self.elapsed.as_secs_f64() * 1e3
        )
    }
}

/// Trains a [`StudentTower`] to reproduce a teacher's embeddings (mean squared error), as
/// sentence-transformers trained its multilingual CLIP text towers (Reimers & Gurevych 2020,
/// "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation").
#[allow(missing_debug_implementations)] // ModuleOptimizer is not Debug
pub struct Distiller {
    model: StudentTower,
    optimizer: ModuleOptimizer,
    config: TrainConfig,
    bert: BertConfig,
    pad_id: u32,
    device: Device,
    step: usize,
}

impl Distiller {
    /// A student with `bert`'s sizes and a Dense layer to `dims`, randomly initialised with
    /// `config.seed`; AdamW as [`crate::Trainer`]'s (no decay on vectors).
    pub fn new(
        bert: BertConfig,
        dims: usize,
        pad_id: u32,
        config: TrainConfig,
        device: &Device,
    ) -> Self {
        device.seed(config.seed);
        let device = device.clone().autodiff();
        let model = StudentTower::init(&bert, dims, &device).train();
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
        Self {
            model,
            optimizer,
            config,
            bert,
            pad_id,
            device,
            step: 0,
        }
    }

    /// The run's hyper-parameters.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The encoder's sizes.
    pub fn bert_config(&self) -> &BertConfig {
        &self.bert
    }

    /// Sets the total number of steps (the schedule follows).
    pub fn set_steps(&mut self, steps: usize) {
        self.config.steps = steps;
    }

    /// Steps taken.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// An inference copy of the student (no autodiff).
    pub fn tower(&self) -> StudentTower {
        self.model.valid()
    }

    /// One AdamW step on the pairs `indices` of `set`.
    ///
    /// # Errors
    /// [`Error::Dataset`] for an index outside `set`; [`Error::InvalidInput`] for an empty
    /// batch.
    pub fn step(&mut self, set: &DistillSet, indices: &[usize]) -> Result<DistillReport> {
        let start = Instant::now();
        if let Some(&bad) = indices.iter().find(|&&i| i >= set.len()) {
            return Err(Error::Dataset {
                path: Default::default(),
                message: format!("pair {bad} outside the {} pairs", set.len()),
            });
        }
        let rows: Vec<&[u32]> = indices.iter().map(|&i| set.ids[i].as_slice()).collect();
        let batch = TextBatch::new(&rows, self.pad_id, &self.device)?;
        let mut flat = Vec::with_capacity(indices.len() * set.dims);
        for &i in indices {
            flat.extend_from_slice(set.target(i));
        }
        let targets = Tensor::<2>::from_data(
            TensorData::new(flat, [indices.len(), set.dims]),
            &self.device,
        );
        let lr = learning_rate(&self.config, self.step);
        let output = self.model.forward(&batch); // [batch, dims]
        let loss = (output.clone() - targets.clone()).square().mean(); // [1]
        let cosine = mean_cosine(output.detach().inner(), targets.inner());
        let loss_value = loss.clone().detach().into_scalar::<f32>();
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let grad_norm = clip_global_norm(&self.model, &mut grads, self.config.grad_clip_norm);
        let model = self.model.clone();
        self.model = self.optimizer.step(lr, model, grads);
        self.step += 1;
        Ok(DistillReport {
            step: self.step,
            steps: self.config.steps,
            loss: loss_value,
            cosine,
            learning_rate: lr,
            grad_norm,
            elapsed: start.elapsed(),
        })
    }

    /// Trains until `config.steps` steps have been taken, batches drawn without replacement
    /// within an epoch from a generator seeded with the run's seed and the starting step.
    ///
    /// # Errors
    /// [`Error::Dataset`] for an empty set; those of [`Distiller::step`].
    pub fn train(
        &mut self,
        set: &DistillSet,
        mut on_step: impl FnMut(&DistillReport),
    ) -> Result<()> {
        if set.is_empty() {
            return Err(Error::Dataset {
                path: Default::default(),
                message: "no distillation pairs".into(),
            });
        }
        let mut sampler = Sampler::new(
            set.len(),
            self.config.seed ^ (self.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        while self.step < self.config.steps {
            let (indices, _) = sampler.next_batch(self.config.batch_size);
            let report = self.step(set, &indices)?;
            on_step(&report);
        }
        Ok(())
    }
}

/// Mean over rows of the cosine between `a` and `b`.
fn mean_cosine(a: Tensor<2>, b: Tensor<2>) -> f32 {
    let dot = (a.clone() * b.clone()).sum_dim(1); // [batch, 1]
    let norms = a.square().sum_dim(1).sqrt() * b.square().sum_dim(1).sqrt(); // [batch, 1]
    (dot / norms.clamp_min(1e-12)).mean().into_scalar::<f32>()
}
