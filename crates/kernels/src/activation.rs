//! The MLP activations of the supported checkpoints.

use serde::{Deserialize, Serialize};

/// The activation between the two linear layers of every MLP block (`hidden_act` in a
/// Hugging Face `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Activation {
    /// `x * sigmoid(1.702 * x)`: OpenAI's CLIP checkpoints.
    #[serde(rename = "quick_gelu")]
    #[default]
    QuickGelu,
    /// The exact, erf-based GELU: most LAION OpenCLIP checkpoints.
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
}
