//! The trainable dual tower: both towers of a [`ClipModel`] plus a learnable temperature, and
//! the symmetric InfoNCE loss.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use glimpse_encoder::clip::model::{l2_normalize, ClipModel, ClipTextTower, ClipVisionTower};
use glimpse_encoder::error::Result;

/// CLIP clamps the temperature multiplier at 100 (`logit_scale <= ln 100`).
pub const MAX_LOGIT_SCALE: f32 = 4.605_170_2; // ln(100)

/// Both towers and a learnable `logit_scale` (a one-element parameter; [`ClipModel`] keeps it
/// as a plain number for inference).
#[derive(Module, Debug)]
pub struct ContrastiveModel {
    /// The text tower.
    pub text: ClipTextTower,
    /// The vision tower.
    pub vision: ClipVisionTower,
    /// `[1]`: the log of the multiplier of cosine similarities.
    pub logit_scale: Param<Tensor<1>>,
}

/// One batch, ready for the model.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[batch, 3, image, image]`, normalised pixels.
    pub pixels: Tensor<4>,
    /// `[batch, seq]` token ids, padded after each sequence's end.
    pub ids: Tensor<2, Int>,
    /// The pooled (end-of-text) position of each sequence.
    pub pooled: Vec<usize>,
}

/// The forward pass's results.
#[derive(Debug, Clone)]
pub struct ContrastiveOutput {
    /// `[1]`: mean of the image→text and text→image cross-entropies.
    pub loss: Tensor<1>,
    /// `[batch, batch]`: `exp(logit_scale) · cos(image_i, text_j)`.
    pub logits: Tensor<2>,
}

impl ContrastiveModel {
    /// Takes the towers of `model` (both must be loaded) onto `device`, with its
    /// `logit_scale` as a parameter.
    ///
    /// # Errors
    /// [`glimpse_encoder::Error::TowerNotLoaded`] if a tower is missing.
    pub fn from_clip(model: ClipModel, device: &Device) -> Result<Self> {
        model.text_tower()?;
        model.vision_tower()?;
        let logit_scale = model.logit_scale;
        let ClipModel { text, vision, .. } = model;
        Ok(Self {
            text: text.expect("checked").fork(device),
            vision: vision.expect("checked").fork(device),
            logit_scale: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![logit_scale], [1]),
                device,
            )),
        })
    }

    /// The current `logit_scale` value.
    pub fn logit_scale_value(&self) -> f32 {
        self.logit_scale
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map(|v| v[0])
            .unwrap_or(f32::NAN)
    }

    /// An inference copy as a [`ClipModel`] (no autodiff, not tracking gradients).
    pub fn to_clip(&self) -> ClipModel {
        let snapshot = self.valid();
        ClipModel {
            logit_scale: snapshot.logit_scale_value(),
            text: Some(snapshot.text),
            vision: Some(snapshot.vision),
        }
    }

    /// Clamps `logit_scale` into `[0, ln 100]` in place, as CLIP does after every step.
    pub fn clamp_logit_scale(self) -> Self {
        let (id, tensor, mapper) = self.logit_scale.consume();
        let require_grad = tensor.is_require_grad();
        let autodiff = tensor.is_autodiff();
        let clamped = tensor.inner().clamp(0.0, MAX_LOGIT_SCALE);
        let clamped = if autodiff {
            clamped.autodiff()
        } else {
            clamped
        };
        let clamped = clamped.set_require_grad(require_grad);
        Self {
            logit_scale: Param::from_mapped_value(id, clamped, mapper),
            ..self
        }
    }

    /// L2-normalised image and text embeddings of a batch.
    ///
    /// # Shapes
    /// - output: `([batch, projection], [batch, projection])`
    pub fn embed(&self, batch: &Batch) -> (Tensor<2>, Tensor<2>) {
        let images = l2_normalize(self.vision.forward(batch.pixels.clone()));
        let texts = l2_normalize(self.text.forward(batch.ids.clone(), &batch.pooled));
        (images, texts)
    }

    /// The symmetric InfoNCE loss of a batch whose `i`-th image and `i`-th text match.
    pub fn forward(&self, batch: &Batch) -> ContrastiveOutput {
        let (images, texts) = self.embed(batch);
        let scale = self.logit_scale.val().clamp_max(MAX_LOGIT_SCALE).exp(); // [1]
        contrastive_loss(images, texts, scale)
    }
}

/// Symmetric cross-entropy over the similarity matrix, as in CLIP: `logits = scale · I Tᵀ`,
/// loss = (CE(rows, diagonal) + CE(columns, diagonal)) / 2.
///
/// # Shapes
/// - images, texts: `[batch, dim]`, unit rows
/// - scale: `[1]`
pub fn contrastive_loss(
    images: Tensor<2>,
    texts: Tensor<2>,
    scale: Tensor<1>,
) -> ContrastiveOutput {
    let [batch, _] = images.dims();
    let device = images.device();
    let logits = images.matmul(texts.transpose()) * scale.unsqueeze::<2>(); // [batch, batch]
    let eye = Tensor::<2>::eye(batch, &device);
    let image_to_text = log_softmax(logits.clone(), 1); // rows: each image over the texts
    let text_to_image = log_softmax(logits.clone(), 0); // columns: each text over the images
    let picked = (image_to_text + text_to_image) * eye; // [batch, batch]
    let loss = picked.sum().neg().div_scalar(2.0 * batch as f64); // [1]
    ContrastiveOutput { loss, logits }
}

/// In-batch accuracy: the fraction of rows (image→text) and of columns (text→image) whose
/// largest logit is on the diagonal, averaged.
pub fn in_batch_accuracy(logits: &Tensor<2>) -> f32 {
    let [batch, _] = logits.dims();
    let logits = logits.clone().detach().inner();
    let rows = logits.clone().argmax(1).into_data().convert::<i64>();
    let cols = logits.argmax(0).into_data().convert::<i64>();
    let (Ok(rows), Ok(cols)) = (rows.try_into_vec::<i64>(), cols.try_into_vec::<i64>()) else {
        return f32::NAN;
    };
    let hits = rows
        .iter()
        .enumerate()
        .filter(|&(i, &j)| j == i as i64)
        .count()
        + cols
            .iter()
            .enumerate()
            .filter(|&(j, &i)| i == j as i64)
            .count();
    hits as f32 / (2 * batch) as f32
}
