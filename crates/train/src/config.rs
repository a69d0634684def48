//! What a training run does ([`TrainConfig`], [`Freeze`], the learning-rate schedule) and
//! what each step reports ([`StepReport`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::data::Augment;

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
