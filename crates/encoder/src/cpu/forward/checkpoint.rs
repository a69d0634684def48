//! Packing the text tower straight from a checkpoint, without building burn modules first:
//! the cold start of a query process. PyTorch's `[out, in]` linear weights are packed as the
//! transposed operand directly (no transpose pass, no burn tensors, no read-back), the layers in
//! parallel, the token table beside them.

use std::collections::HashSet;
use std::sync::Mutex;

use rayon::prelude::*;

use super::{Dense, Layer, NativeText, Norm, Packed, Pool, Stack, TokenTable};
use crate::config::ClipTextConfig;
use crate::cpu::bf16::PackedBf16;
use crate::cpu::gemm::PackedB;
use crate::cpu::{Isa, Precision};
use crate::error::Result;
use crate::loader::Checkpoint;
use crate::model::Towers;

/// Reads tensors, remembering which (for the unexpected-weight check).
struct Source<'a> {
    checkpoint: &'a Checkpoint,
    used: Mutex<HashSet<String>>,
}

impl Source<'_> {
    fn get(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.with(key, shape, <[f32]>::to_vec)
    }

    /// The token table left in the mapped file where it is stored as f32, else a copy.
    fn token_table(&self, key: &str, shape: &[usize]) -> Result<TokenTable> {
        let table = match self.checkpoint.mapped_f32(key, shape)? {
            Some(mapped) => TokenTable::Mapped(mapped),
            None => TokenTable::Owned(self.checkpoint.read_f32(key, shape)?),
        };
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned());
        Ok(table)
    }

    /// `f` over the tensor's values, borrowed from the mapped file where possible.
    fn with<R>(&self, key: &str, shape: &[usize], f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        let out = self.checkpoint.with_f32(key, shape, f)?;
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned());
        Ok(out)
    }

    /// A PyTorch linear layer `{prefix}.weight` `[d_out, d_in]` (+ bias) as a packed [`Dense`].
    fn dense(
        &self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        precision: Precision,
    ) -> Result<Dense> {
        let weight = self.with(
            &format!("{prefix}.weight"),
            &[d_out, d_in],
            |w| match precision {
                Precision::F32 => Packed::F32(PackedB::from_transposed(w, d_in, d_out, d_in)),
                Precision::Bf16 => {
                    Packed::Bf16(PackedBf16::from_fn(d_in, d_out, |k, n| w[n * d_in + k]))
                }
            },
        )?;
        let bias = match bias {
            true => Some(self.get(&format!("{prefix}.bias"), &[d_out])?),
            false => None,
        };
        Ok(Dense {
            weight,
            bias,
            k: d_in,
            n: d_out,
        })
    }

    fn norm(&self, prefix: &str, d: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            gamma: self.get(&format!("{prefix}.weight"), &[d])?,
            beta: self.get(&format!("{prefix}.bias"), &[d])?,
            eps: eps as f32,
        })
    }

    fn layer(
        &self,
        prefix: &str,
        sizes: (usize, usize, usize),
        eps: f64,
        precision: Precision,
    ) -> Result<Layer> {
        let (d, inter, heads) = sizes;
        let scale = ((d / heads) as f32).powf(-0.5);
        let a = format!("{prefix}.self_attn");
        let (q, k, v) = (
            self.get(&format!("{a}.q_proj.weight"), &[d, d])?,
            self.get(&format!("{a}.k_proj.weight"), &[d, d])?,
            self.get(&format!("{a}.v_proj.weight"), &[d, d])?,
        );
        // [d, 3d]: queries (scaled), keys, values side by side; PyTorch stores each [out, in].
        let (bq, bk, bv) = (
            self.get(&format!("{a}.q_proj.bias"), &[d])?,
            self.get(&format!("{a}.k_proj.bias"), &[d])?,
            self.get(&format!("{a}.v_proj.bias"), &[d])?,
        );
        let mut bias: Vec<f32> = bq.iter().map(|x| x * scale).collect();
        bias.extend(bk);
        bias.extend(bv);
        let get = |kk: usize, nn: usize| {
            let (which, col) = (nn / d, nn % d);
            match which {
                0 => q[col * d + kk] * scale,
                1 => k[col * d + kk],
                _ => v[col * d + kk],
            }
        };
        let weight = match precision {
            Precision::F32 => Packed::F32(PackedB::from_fn(d, 3 * d, get)),
            Precision::Bf16 => Packed::Bf16(PackedBf16::from_fn(d, 3 * d, get)),
        };
        Ok(Layer {
            ln1: self.norm(&format!("{prefix}.layer_norm1"), d, eps)?,
            qkv: Dense {
                weight,
                bias: Some(bias),
                k: d,
                n: 3 * d,
            },
            out: self.dense(&format!("{a}.out_proj"), d, d, true, precision)?,
            ln2: self.norm(&format!("{prefix}.layer_norm2"), d, eps)?,
            fc1: self.dense(&format!("{prefix}.mlp.fc1"), d, inter, true, precision)?,
            fc2: self.dense(&format!("{prefix}.mlp.fc2"), inter, d, true, precision)?,
        })
    }
}

impl NativeText {
    /// Packs the text tower of `checkpoint` (described by `config`, projecting to
    /// `projection` dimensions) for the kernels of `isa`, reading each tensor once.
    ///
    /// # Errors
    /// [`crate::Error::MissingWeight`], [`crate::Error::ShapeMismatch`],
    /// [`crate::Error::UnsupportedDType`] for a tensor the tower needs;
    /// [`crate::Error::UnexpectedWeight`] for a text tensor nothing consumes.
    pub fn from_checkpoint(
        checkpoint: &Checkpoint,
        config: &ClipTextConfig,
        projection: usize,
        precision: Precision,
        isa: Isa,
    ) -> Result<Self> {
        let src = Source {
            checkpoint,
            used: Mutex::new(HashSet::new()),
        };
        let (d, inter, heads) = (
            config.hidden_size,
            config.intermediate_size,
            config.num_attention_heads,
        );
        let eps = config.layer_norm_eps;
        let (tokens, layers) = rayon::join(
            || {
                src.token_table(
                    "text_model.embeddings.token_embedding.weight",
                    &[config.vocab_size, d],
                )
            },
            || {
                (0..config.num_hidden_layers)
                    .into_par_iter()
                    .map(|n| {
                        let prefix = format!("text_model.encoder.layers.{n}");
                        src.layer(&prefix, (d, inter, heads), eps, precision)
                    })
                    .collect::<Result<Vec<_>>>()
            },
        );
        let text = NativeText {
            isa,
            hidden: d,
            vocab: config.vocab_size,
            context: config.max_position_embeddings,
            eos_token_id: config.eos_token_id,
            tokens: tokens?,
            positions: src.get(
                "text_model.embeddings.position_embedding.weight",
                &[config.max_position_embeddings, d],
            )?,
            stack: Stack {
                layers: layers?,
                hidden: d,
                heads,
                intermediate: inter,
                act: config.hidden_act,
            },
            final_ln: src.norm("text_model.final_layer_norm", d, eps)?,
            projection: src.dense("text_projection", d, projection, false, precision)?,
            pool: Pool::default(),
        };
        let mut used = src.used.into_inner().unwrap_or_else(|p| p.into_inner());
        // Read by the caller, outside any tower.
        used.insert("logit_scale".to_owned());
        checkpoint.check_unused(&used, Towers::TextOnly)?;
        Ok(text)
    }
}
