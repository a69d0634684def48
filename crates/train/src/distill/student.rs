//! The student: a BERT-family encoder (`glimpse_encoder::bert`, DistilBERT layout) with mean
//! pooling and a bias-free Dense layer to the image model's dimension — the modules of a
//! sentence-transformers query tower (`Transformer → Pooling(mean) → Dense`).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use glimpse_encoder::bert::{BertConfig, BertFlavor, BertModel};
use glimpse_encoder::error::{Error, Result};

/// A trainable query tower.
#[derive(Module, Debug)]
pub struct StudentTower {
    /// The encoder (DistilBERT layout: no token types).
    pub encoder: BertModel,
    /// The Dense module, `[hidden] → [dims]`, no bias, identity activation.
    pub dense: Linear,
}

/// A padded batch of token ids.
#[derive(Debug, Clone)]
pub struct TextBatch {
    /// `[batch, seq]` ids, right-padded with the pad id.
    pub ids: Tensor<2, Int>,
    /// `[batch, seq]`: 1 for a real token, 0 for padding.
    pub mask: Tensor<2, Int>,
}

impl TextBatch {
    /// Pads `rows` (each `1..` ids) into one batch on `device`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty batch or an empty row.
    pub fn new<S: AsRef<[u32]>>(rows: &[S], pad_id: u32, device: &Device) -> Result<Self> {
        if rows.is_empty() || rows.iter().any(|r| r.as_ref().is_empty()) {
            return Err(Error::InvalidInput(
                "an empty batch or an empty token sequence".into(),
            ));
        }
        let seq = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(1);
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for row in rows {
            let row = row.as_ref();
            ids.extend(row.iter().map(|&id| i64::from(id)));
            ids.extend(std::iter::repeat_n(i64::from(pad_id), seq - row.len()));
            mask.extend((0..seq).map(|i| i64::from(i < row.len())));
        }
        let shape = [rows.len(), seq];
        Ok(Self {
            ids: Tensor::from_data(TensorData::new(ids, shape), device),
            mask: Tensor::from_data(TensorData::new(mask, shape), device),
        })
    }
}

impl StudentTower {
    /// A randomly initialised tower: `config`'s encoder (DistilBERT layout) and a Dense layer to
    /// `dims`. Token and position embeddings start at `N(0, 0.02)`, as `transformers`
    /// initialises BERT (burn's default `N(0, 1)` would drown the position signal).
    pub fn init(config: &BertConfig, dims: usize, device: &Device) -> Self {
        use burn::module::Param;
        use burn::tensor::Distribution::Normal;
        let mut encoder = BertModel::init(config, BertFlavor::DistilBert, device);
        let e = &mut encoder.embeddings;
        for table in [&mut e.word_embeddings, &mut e.position_embeddings] {
            let dims = table.weight.dims();
            table.weight = Param::from_tensor(Tensor::<2>::random(dims, Normal(0.0, 0.02), device));
        }
        let dense = LinearConfig::new(config.hidden_size, dims)
            .with_bias(false)
            .init(device);
        Self { encoder, dense }
    }

    /// The output dimension.
    pub fn dims(&self) -> usize {
        self.dense.weight.dims()[1]
    }

    /// Sentence embeddings, not normalised (as sentence-transformers' `encode`): the mean of
    /// the last hidden states over the real tokens, then the Dense layer.
    ///
    /// # Shapes
    /// - output: `[batch, dims]`
    pub fn forward(&self, batch: &TextBatch) -> Tensor<2> {
        let hidden = self
            .encoder
            .forward(batch.ids.clone(), batch.mask.clone(), None); // [batch, seq, hidden]
        let [b, _, h] = hidden.dims();
        let mask = batch.mask.clone().float(); // [batch, seq]
        let counts = mask.clone().sum_dim(1).clamp_min(1e-9); // [batch, 1]
        let summed = (hidden * mask.unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .reshape([b, h]); // [batch, hidden]
        self.dense.forward(summed / counts) // [batch, dims]
    }
}
