//! The vision tower (ViT) on the native kernels: patch convolution as one GEMM over unfolded
//! patches, positions, the stack, then one of two poolings ([`VisionPooling`]): CLIP's class
//! token (pre-LN, post-LN of the class token, projection) or SigLIP's attention-pooling ("MAP")
//! head over every token.

use rayon::prelude::*;

use crate::dense::{buffer, project, Dense, Norm, Pool, Scratch};
use crate::layer::Stack;
use crate::{ops, Activation, Isa, Precision};

/// How the vision tower turns its tokens into one vector.
#[derive(Debug)]
pub enum VisionPooling {
    /// CLIP (`CLIPVisionTransformer`): a class token in front of the patches, a layer norm
    /// before the stack, and the class token's final state layer-normed.
    ClassToken {
        /// The class token `[hidden]`.
        class: Vec<f32>,
        /// Layer norm before the stack (`pre_layrnorm`).
        pre_ln: Norm,
        /// Layer norm of the pooled class token (`post_layernorm`).
        post_ln: Norm,
    },
    /// SigLIP (`SiglipVisionTransformer`): no class token, no norm before the stack, every
    /// token layer-normed (`post_layernorm`), then the attention-pooling head.
    AttentionPool {
        /// `post_layernorm`, applied to every token.
        post_ln: Norm,
        /// `head` (boxed: it is much larger than the other variant).
        head: Box<MapHead>,
    },
}

/// SigLIP's multi-head attention pooling (`SiglipMultiheadAttentionPoolingHead`): a learned
/// probe attends over the tokens (`nn.MultiheadAttention`), then `r + mlp(layernorm(r))`.
///
/// The probe is a constant, so its query projection is computed once, at construction; per
/// image the head costs one `[tokens, 2·hidden]` key-value GEMM and a single-query attention.
#[derive(Debug)]
pub struct MapHead {
    /// The probe's projected query `[hidden]`, scaled by `head_dim^-½`.
    query: Vec<f32>,
    /// Key and value projections fused, `[hidden, 2·hidden]`.
    kv: Dense,
    out: Dense,
    ln: Norm,
    fc1: Dense,
    fc2: Dense,
    heads: usize,
    act: Activation,
}

/// The PyTorch tensors of a [`MapHead`] (`nn.MultiheadAttention` layout: `in_proj_weight`
/// `[3·hidden, hidden]` = queries, keys, values; linear weights `[out, in]`).
#[derive(Debug)]
pub struct MapHeadTensors<'a> {
    /// `probe` `[1, 1, hidden]`.
    pub probe: &'a [f32],
    /// `attention.in_proj_weight` `[3·hidden, hidden]`.
    pub in_proj_weight: &'a [f32],
    /// `attention.in_proj_bias` `[3·hidden]`.
    pub in_proj_bias: &'a [f32],
    /// `attention.out_proj` (weight `[hidden, hidden]`, bias `[hidden]`), packed.
    pub out: Dense,
    /// `layernorm`.
    pub ln: Norm,
    /// `mlp.fc1`, packed.
    pub fc1: Dense,
    /// `mlp.fc2`, packed.
    pub fc2: Dense,
}

impl MapHead {
    /// Packs the head of width `hidden` with `heads` attention heads and MLP activation `act`.
    ///
    /// # Panics
    /// If a tensor's size disagrees with `hidden`, or `heads` does not divide it.
    pub fn new(
        t: MapHeadTensors<'_>,
        hidden: usize,
        heads: usize,
        act: Activation,
        precision: Precision,
    ) -> Self {
        let d = hidden;
        assert!(
            heads > 0 && d.is_multiple_of(heads),
            "heads must divide hidden"
        );
        assert_eq!(t.probe.len(), d, "probe size");
        assert_eq!(t.in_proj_weight.len(), 3 * d * d, "in_proj_weight size");
        assert_eq!(t.in_proj_bias.len(), 3 * d, "in_proj_bias size");
        assert_eq!((t.out.inputs(), t.out.outputs()), (d, d), "out_proj shape");
        assert_eq!(t.fc1.inputs(), d, "fc1 inputs");
        assert_eq!(
            (t.fc2.inputs(), t.fc2.outputs()),
            (t.fc1.outputs(), d),
            "fc2 shape"
        );
        // q = probe·Wqᵀ + bq, in f64 then scaled (a constant of the model).
        let scale = ((d / heads) as f64).powf(-0.5);
        let query = (0..d)
            .map(|o| {
                let row = &t.in_proj_weight[o * d..(o + 1) * d];
                let dot: f64 = row
                    .iter()
                    .zip(t.probe)
                    .map(|(&w, &p)| f64::from(w) * f64::from(p))
                    .sum();
                ((dot + f64::from(t.in_proj_bias[o])) * scale) as f32
            })
            .collect();
        let kv = Dense::from_torch(
            &t.in_proj_weight[d * d..],
            d,
            2 * d,
            Some(t.in_proj_bias[d..].to_vec()),
            precision,
        );
        Self {
            query,
            kv,
            out: t.out,
            ln: t.ln,
            fc1: t.fc1,
            fc2: t.fc2,
            heads,
            act,
        }
    }

    /// Pools `x` (`[batch × tokens, hidden]`, already layer-normed) into `[batch, hidden]`.
    fn run(
        &self,
        isa: Isa,
        x: &[f32],
        batch: usize,
        tokens: usize,
        scratch: &mut Scratch,
    ) -> Vec<f32> {
        let d = self.query.len();
        let dh = d / self.heads;
        let mut kv = vec![0.0; batch * tokens * 2 * d];
        self.kv
            .run(isa, x, batch * tokens, &mut kv, false, None, scratch);
        // Single-query attention per (item, head): ctx[b, h] = Σ_t softmax(q_h·k_t) v_t.
        let mut ctx = vec![0.0; batch * d];
        ctx.par_chunks_mut(d)
            .zip(kv.par_chunks(tokens * 2 * d))
            .for_each(|(ctx, kv)| {
                let mut scores = vec![0.0; tokens];
                for h in 0..self.heads {
                    let q = &self.query[h * dh..(h + 1) * dh];
                    for (t, s) in scores.iter_mut().enumerate() {
                        let k = &kv[t * 2 * d + h * dh..t * 2 * d + (h + 1) * dh];
                        *s = q.iter().zip(k).map(|(a, b)| a * b).sum();
                    }
                    ops::softmax_prefix(&mut scores, tokens);
                    let out = &mut ctx[h * dh..(h + 1) * dh];
                    out.fill(0.0);
                    for (t, &p) in scores.iter().enumerate() {
                        let v = &kv[t * 2 * d + d + h * dh..t * 2 * d + d + (h + 1) * dh];
                        out.iter_mut().zip(v).for_each(|(o, &v)| *o += p * v);
                    }
                }
            });
        // r = out_proj(ctx); r += fc2(act(fc1(ln(r)))).
        let mut r = vec![0.0; batch * d];
        self.out.run(isa, &ctx, batch, &mut r, false, None, scratch);
        let mut h = vec![0.0; batch * d];
        self.ln.run(&r, &mut h);
        let mut f = vec![0.0; batch * self.fc1.outputs()];
        self.fc1
            .run(isa, &h, batch, &mut f, false, Some(self.act), scratch);
        self.fc2.run(isa, &f, batch, &mut r, true, None, scratch);
        r
    }
}

/// The vision tower on the native kernels.
#[derive(Debug)]
pub struct NativeVision {
    isa: Isa,
    channels: usize,
    image_size: usize,
    patch: usize,
    hidden: usize,
    patch_embed: Dense,
    positions: Vec<f32>,
    stack: Stack,
    pooling: VisionPooling,
    projection: Option<Dense>,
    pool: Pool,
}

/// The weights of a [`NativeVision`], already packed.
#[derive(Debug)]
pub struct VisionWeights {
    /// Input channels.
    pub channels: usize,
    /// Side of the square input, in pixels.
    pub image_size: usize,
    /// Side of a square patch.
    pub patch: usize,
    /// The patch convolution as a linear layer from `channels × patch × patch` unfolded
    /// values (channel, row, column order) to the hidden width (CLIP: no bias; SigLIP: bias).
    pub patch_embed: Dense,
    /// Position embeddings `[tokens, hidden]`: `patches + 1` with a class token, else
    /// `patches`.
    pub positions: Vec<f32>,
    /// The transformer stack.
    pub stack: Stack,
    /// How the tokens are pooled.
    pub pooling: VisionPooling,
    /// Projection into the embedding space (CLIP's `visual_projection`, no bias); `None`
    /// where the pooled state is the embedding (SigLIP).
    pub projection: Option<Dense>,
}

impl NativeVision {
    /// The tower from its packed weights, run with the kernels of `isa`.
    ///
    /// # Panics
    /// If the shapes disagree (patch size 0 or larger than the image, widths, position
    /// count). The image need not be a multiple of the patch: as with a stride-`patch`
    /// convolution, the pixels no patch covers are dropped (SigLIP So400m/14 at 384).
    pub fn new(weights: VisionWeights, isa: Isa) -> Self {
        let w = weights;
        let hidden = w.stack.hidden();
        let grid = w.image_size / w.patch.max(1);
        assert!(w.patch > 0 && w.patch <= w.image_size, "patch size");
        assert_eq!(
            w.patch_embed.inputs(),
            w.channels * w.patch * w.patch,
            "patch length"
        );
        assert_eq!(w.patch_embed.outputs(), hidden, "patch embedding width");
        let class = match &w.pooling {
            VisionPooling::ClassToken { class, .. } => {
                assert_eq!(class.len(), hidden, "class token width");
                1
            }
            VisionPooling::AttentionPool { head, .. } => {
                assert_eq!(head.query.len(), hidden, "head width");
                0
            }
        };
        assert_eq!(
            w.positions.len(),
            (grid * grid + class) * hidden,
            "positions"
        );
        if let Some(p) = &w.projection {
            assert_eq!(p.inputs(), hidden, "projection inputs");
        }
        Self {
            isa,
            channels: w.channels,
            image_size: w.image_size,
            patch: w.patch,
            hidden,
            patch_embed: w.patch_embed,
            positions: w.positions,
            stack: w.stack,
            pooling: w.pooling,
            projection: w.projection,
            pool: Pool::default(),
        }
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.projection.as_ref().map_or(self.hidden, Dense::outputs)
    }

    /// The values per image: `channels × image × image`.
    pub fn image_len(&self) -> usize {
        self.channels * self.image_size * self.image_size
    }

    /// L2-normalised embeddings of `batch` images given as one `[batch, channels, image,
    /// image]` slice; returns `[batch, dim]` row-major.
    ///
    /// # Panics
    /// If `pixels.len() != batch * image_len()`.
    pub fn encode(&self, pixels: &[f32], batch: usize) -> Vec<f32> {
        assert_eq!(pixels.len(), batch * self.image_len(), "pixel buffer size");
        let (c, s, p, d) = (self.channels, self.image_size, self.patch, self.hidden);
        let grid = s / p;
        let np = grid * grid;
        let patch_len = c * p * p;
        let mut w = self.pool.take();
        // Unfold patches: [batch × np, (channel, y, x)].
        let patches = buffer(&mut w.tmp, batch * np * patch_len);
        patches
            .par_chunks_mut(np * patch_len)
            .zip(pixels.par_chunks(c * s * s))
            .for_each(|(dst, img)| {
                for (gi, patch) in dst.chunks_exact_mut(patch_len).enumerate() {
                    let (py, px) = (gi / grid, gi % grid);
                    for ch in 0..c {
                        for y in 0..p {
                            let src = ch * s * s + (py * p + y) * s + px * p;
                            let o = (ch * p + y) * p;
                            patch[o..o + p].copy_from_slice(&img[src..src + p]);
                        }
                    }
                }
            });
        let pooled = match &self.pooling {
            VisionPooling::ClassToken {
                class,
                pre_ln,
                post_ln,
            } => {
                let emb = buffer(&mut w.h, batch * np * d);
                self.patch_embed.run(
                    self.isa,
                    patches,
                    batch * np,
                    emb,
                    false,
                    None,
                    &mut w.scratch,
                );
                // Tokens: class token, then patches; plus positions; then the pre-LN into x.
                let seq = np + 1;
                let tokens = buffer(&mut w.ctx, batch * seq * d);
                for b in 0..batch {
                    let item = &mut tokens[b * seq * d..(b + 1) * seq * d];
                    item[..d].copy_from_slice(class);
                    item[d..].copy_from_slice(&emb[b * np * d..(b + 1) * np * d]);
                    ops::add_in_place(item, &self.positions);
                }
                let x = buffer(&mut w.x, batch * seq * d);
                pre_ln.run(tokens, x);
                // Only the class tokens' final states are read.
                self.stack.forward_first_rows(self.isa, &mut w, batch, seq);
                // Class tokens → post-LN.
                let mut class = Vec::with_capacity(batch * d);
                for b in 0..batch {
                    class.extend_from_slice(&w.x[b * seq * d..b * seq * d + d]);
                }
                let mut normed = vec![0.0; batch * d];
                post_ln.run(&class, &mut normed);
                normed
            }
            VisionPooling::AttentionPool { post_ln, head } => {
                // Patches (with the convolution's bias) plus positions, straight into x.
                let x = buffer(&mut w.x, batch * np * d);
                self.patch_embed.run(
                    self.isa,
                    patches,
                    batch * np,
                    x,
                    false,
                    None,
                    &mut w.scratch,
                );
                for item in x.chunks_exact_mut(np * d) {
                    ops::add_in_place(item, &self.positions);
                }
                self.stack.forward(self.isa, &mut w, batch, np, false);
                let normed = buffer(&mut w.h, batch * np * d);
                post_ln.run(&w.x[..batch * np * d], normed);
                head.run(self.isa, normed, batch, np, &mut w.scratch)
            }
        };
        let out = match &self.projection {
            Some(projection) => project(self.isa, projection, &pooled, batch, &mut w.scratch),
            None => {
                let mut out = pooled;
                for row in out.chunks_exact_mut(d) {
                    ops::l2_normalize(row);
                }
                out
            }
        };
        self.pool.put(w);
        out
    }
}
