//! The feed-forward block of every encoder layer: `fc2(act(fc1(x)))`.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;

use crate::config::Activation;

/// Applies `act` element-wise.
///
/// # Shapes
/// - input: `[..]`
/// - output: same as the input
pub fn activate<const D: usize>(act: Activation, x: Tensor<D>) -> Tensor<D> {
    {
        match act {
            // transformers' QuickGELUActivation: x * sigmoid(1.702 * x)
            Activation::QuickGelu => x.clone() * activation::sigmoid(x.mul_scalar(1.702)),
            Activation::Gelu => activation::gelu(x),
            Activation::GeluTanh => activation::gelu_approximate(x),
        }
    }
}

/// `CLIPMLP`: two linear layers around the activation.
///
/// Checkpoint keys: `{layer}.mlp.fc1.{weight,bias}`, `{layer}.mlp.fc2.{weight,bias}`.
#[derive(Module, Debug)]
pub struct ClipMlp {
    /// `[hidden, intermediate]` (the transpose of the checkpoint's `fc1.weight`).
    pub fc1: Linear,
    /// `[intermediate, hidden]` (the transpose of the checkpoint's `fc2.weight`).
    pub fc2: Linear,
    /// Activation between the two.
    #[module(skip)]
    pub activation: Activation,
}

impl ClipMlp {
    /// A randomly initialised block (for tests; real weights come from the loader).
    pub fn init(
        hidden: usize,
        intermediate: usize,
        activation: Activation,
        device: &Device,
    ) -> Self {
        Self {
            fc1: LinearConfig::new(hidden, intermediate).init(device),
            fc2: LinearConfig::new(intermediate, hidden).init(device),
            activation,
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.fc1.forward(x); // [batch, seq, intermediate]
        let x = activate(self.activation, x);
        self.fc2.forward(x) // [batch, seq, hidden]
    }
}
