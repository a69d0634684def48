//! The dual tower (`CLIPModel`): both transformers with their projections into the shared
//! embedding space, and the learned `logit_scale`.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::clip::text::ClipTextTransformer;
use crate::clip::vision::ClipVisionTransformer;
use crate::config::ClipConfig;
use crate::error::{Error, Result};

/// Which towers to load. A process that only answers text queries needs only the text tower
/// (about a third of ViT-B/32's weights); one that only indexes images needs only the vision
/// tower. The other tower's weights are never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Towers {
    /// Text and vision.
    #[default]
    Both,
    /// Text only: [`ClipModel::encode_images`] fails with [`Error::TowerNotLoaded`].
    TextOnly,
    /// Vision only: [`ClipModel::encode_texts`] fails with [`Error::TowerNotLoaded`].
    VisionOnly,
}

impl Towers {
    /// Whether the text tower is included.
    pub fn text(self) -> bool {
        matches!(self, Towers::Both | Towers::TextOnly)
    }

    /// Whether the vision tower is included.
    pub fn vision(self) -> bool {
        matches!(self, Towers::Both | Towers::VisionOnly)
    }
}

/// The text transformer and its projection.
#[derive(Module, Debug)]
pub struct ClipTextTower {
    /// `text_model.*`.
    pub text_model: ClipTextTransformer,
    /// `text_projection.weight`: `[hidden, projection]`, no bias.
    pub text_projection: Linear,
}

impl ClipTextTower {
    /// Checks that `ids` (sequence number `index` of a batch, for the message) can be encoded:
    /// `1..=context` ids, all inside the vocabulary.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn check_ids(&self, ids: &[u32], index: usize) -> Result<()> {
        let context = self.text_model.context_length();
        let vocab = self.text_model.embeddings.token_embedding.weight.dims()[0];
        if ids.is_empty() || ids.len() > context {
            return Err(Error::InvalidInput(format!(
                "token sequence {index} has {} ids; the model takes 1..={context}",
                ids.len()
            )));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token sequence {index} has id {id}, outside the vocabulary of {vocab}"
            )));
        }
        Ok(())
    }

    /// Projected, *unnormalised* text features (`CLIPModel.get_text_features`).
    ///
    /// # Shapes
    /// - ids: `[batch, seq]`, `seq <= context`
    /// - pooled: `batch` pooled positions (see [`crate::ClipTextConfig::pooled_position`])
    /// - output: `[batch, projection]`
    pub fn forward(&self, ids: Tensor<2, Int>, pooled: &[usize]) -> Tensor<2> {
        let x = self.text_model.forward(ids, pooled); // [batch, hidden]
        self.text_projection.forward(x) // [batch, projection]
    }
}

/// The vision transformer and its projection.
#[derive(Module, Debug)]
pub struct ClipVisionTower {
    /// `vision_model.*`.
    pub vision_model: ClipVisionTransformer,
    /// `visual_projection.weight`: `[hidden, projection]`, no bias.
    pub visual_projection: Linear,
}

impl ClipVisionTower {
    /// Projected, *unnormalised* image features (`CLIPModel.get_image_features`).
    ///
    /// # Shapes
    /// - pixels: `[batch, channels, image, image]`
    /// - output: `[batch, projection]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let x = self.vision_model.forward(pixels); // [batch, hidden]
        self.visual_projection.forward(x) // [batch, projection]
    }

    /// L2-normalised image embeddings, after checking the pixels' shape (CLIP's and
    /// Chinese-CLIP's `encode_images`).
    ///
    /// # Shapes
    /// - pixels: `[batch, channels, image, image]` (normalised as by the image processor)
    /// - output: `[batch, projection]`, unit rows
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the channels or size differ from the config or the batch is
    /// empty.
    pub fn embed(&self, pixels: Tensor<4>) -> Result<Tensor<2>> {
        let e = &self.vision_model.embeddings;
        let [batch, channels, height, width] = pixels.dims();
        if batch == 0
            || channels != e.num_channels
            || height != e.image_size
            || width != e.image_size
        {
            return Err(Error::InvalidInput(format!(
                "pixels have shape {:?}, the model takes [batch >= 1, {}, {}, {}]",
                pixels.dims(),
                e.num_channels,
                e.image_size,
                e.image_size
            )));
        }
        Ok(l2_normalize(self.forward(pixels)))
    }
}

/// Divides each row by its L2 norm (rows of zeros stay zero).
///
/// # Shapes
/// - x: `[batch, dim]`
/// - output: `[batch, dim]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12); // [batch, 1]
    x / norm
}

/// CLIP: a text tower and a vision tower that embed into the same space.
#[derive(Module, Debug)]
pub struct ClipModel {
    /// The text tower, unless loaded with [`Towers::VisionOnly`].
    pub text: Option<ClipTextTower>,
    /// The vision tower, unless loaded with [`Towers::TextOnly`].
    pub vision: Option<ClipVisionTower>,
    /// The learned temperature, as stored (`log` of the scale): zero-shot logits are
    /// `exp(logit_scale) * cosine`.
    #[module(skip)]
    pub logit_scale: f32,
}

impl ClipModel {
    /// A randomly initialised model (for tests and benchmarks; real weights come from
    /// [`crate::checkpoint::Checkpoint::load_model`]).
    pub fn init(config: &ClipConfig, towers: Towers, device: &Device) -> Self {
        let text = towers.text().then(|| ClipTextTower {
            text_model: config.text_config.init(device),
            text_projection: LinearConfig::new(
                config.text_config.hidden_size,
                config.projection_dim,
            )
            .with_bias(false)
            .init(device),
        });
        let vision = towers.vision().then(|| ClipVisionTower {
            vision_model: config.vision_config.init(device),
            visual_projection: LinearConfig::new(
                config.vision_config.hidden_size,
                config.projection_dim,
            )
            .with_bias(false)
            .init(device),
        });
        Self {
            text,
            vision,
            logit_scale: config.logit_scale_init_value as f32,
        }
    }

    /// The multiplier of cosine similarities in zero-shot logits: `exp(logit_scale)` (100 for
    /// OpenAI's trained checkpoints).
    pub fn logit_scale_exp(&self) -> f32 {
        self.logit_scale.exp()
    }

    /// The text tower, or [`Error::TowerNotLoaded`].
    pub fn text_tower(&self) -> Result<&ClipTextTower> {
        self.text
            .as_ref()
            .ok_or(Error::TowerNotLoaded { tower: "text" })
    }

    /// The vision tower, or [`Error::TowerNotLoaded`].
    pub fn vision_tower(&self) -> Result<&ClipVisionTower> {
        self.vision
            .as_ref()
            .ok_or(Error::TowerNotLoaded { tower: "vision" })
    }

    /// L2-normalised image embeddings.
    ///
    /// # Shapes
    /// - pixels: `[batch, channels, image, image]` (normalised as by `CLIPImageProcessor`)
    /// - output: `[batch, projection]`, unit rows
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] if the channels or size differ from
    /// the config or the batch is empty.
    pub fn encode_images(&self, pixels: Tensor<4>) -> Result<Tensor<2>> {
        self.vision_tower()?.embed(pixels)
    }

    /// L2-normalised text embeddings of unpadded token id sequences (each as the tokenizer
    /// returns it: start token, text, end-of-text token).
    ///
    /// The batch runs only as long as its longest sequence; shorter ones are padded after
    /// their end, which the causal tower ignores (see [`crate::clip::text`]).
    ///
    /// # Shapes
    /// - ids: `batch` sequences of `1..=context` ids
    /// - output: `[batch, projection]`, unit rows
    ///
    /// # Errors
    /// [`Error::TowerNotLoaded`]; [`Error::InvalidInput`] for an empty batch, an empty sequence,
    /// a sequence longer than the context or an id outside the vocabulary.
    pub fn encode_texts<S: AsRef<[u32]>>(&self, ids: &[S]) -> Result<Tensor<2>> {
        let tower = self.text_tower()?;
        let device = tower.text_projection.weight.device();
        let model = &tower.text_model;
        if ids.is_empty() {
            return Err(Error::InvalidInput("no token sequences".into()));
        }
        for (i, row) in ids.iter().enumerate() {
            tower.check_ids(row.as_ref(), i)?;
        }
        let seq = ids.iter().map(|row| row.as_ref().len()).max().unwrap_or(0);
        let mut flat = Vec::with_capacity(ids.len() * seq);
        let mut pooled = Vec::with_capacity(ids.len());
        for row in ids {
            let row = row.as_ref();
            pooled.push(crate::clip::text::pooled_position(row, model.eos_token_id));
            flat.extend(row.iter().map(|&id| id as i64));
            // Padding after the end: never attended to by the pooled position.
            flat.extend(std::iter::repeat_n(0i64, seq - row.len()));
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [ids.len(), seq]), &device);
        Ok(l2_normalize(tower.forward(ids, &pooled)))
    }
}
