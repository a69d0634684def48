//! The vision tower (ViT) on the native kernels: patch convolution as one GEMM over unfolded
//! patches, class token, positions, pre-LN, the stack, post-LN of the class token, projection.

use rayon::prelude::*;

use crate::dense::{buffer, project, Dense, Norm, Pool};
use crate::layer::Stack;
use crate::{ops, Isa};

/// The vision tower on the native kernels.
#[derive(Debug)]
pub struct NativeVision {
    isa: Isa,
    channels: usize,
    image_size: usize,
    patch: usize,
    hidden: usize,
    patch_embed: Dense,
    class: Vec<f32>,
    positions: Vec<f32>,
    pre_ln: Norm,
    stack: Stack,
    post_ln: Norm,
    projection: Dense,
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
    /// values (channel, row, column order) to the hidden width, no bias.
    pub patch_embed: Dense,
    /// The class token `[hidden]`.
    pub class: Vec<f32>,
    /// Position embeddings `[patches + 1, hidden]`.
    pub positions: Vec<f32>,
    /// Layer norm before the stack.
    pub pre_ln: Norm,
    /// The transformer stack.
    pub stack: Stack,
    /// Layer norm of the pooled class token.
    pub post_ln: Norm,
    /// Projection into the embedding space (no bias).
    pub projection: Dense,
}

impl NativeVision {
    /// The tower from its packed weights, run with the kernels of `isa`.
    ///
    /// # Panics
    /// If the shapes disagree (patch size not dividing the image, widths, position count).
    pub fn new(weights: VisionWeights, isa: Isa) -> Self {
        let w = weights;
        let hidden = w.stack.hidden();
        let grid = w.image_size / w.patch.max(1);
        assert!(
            w.patch > 0 && w.image_size.is_multiple_of(w.patch),
            "patch size"
        );
        assert_eq!(
            w.patch_embed.inputs(),
            w.channels * w.patch * w.patch,
            "patch length"
        );
        assert_eq!(w.patch_embed.outputs(), hidden, "patch embedding width");
        assert_eq!(w.class.len(), hidden, "class token width");
        assert_eq!(w.positions.len(), (grid * grid + 1) * hidden, "positions");
        assert_eq!(w.projection.inputs(), hidden, "projection inputs");
        Self {
            isa,
            channels: w.channels,
            image_size: w.image_size,
            patch: w.patch,
            hidden,
            patch_embed: w.patch_embed,
            class: w.class,
            positions: w.positions,
            pre_ln: w.pre_ln,
            stack: w.stack,
            post_ln: w.post_ln,
            projection: w.projection,
            pool: Pool::default(),
        }
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.projection.outputs()
    }

    /// The values per image: `channels × image × image`.
    pub fn image_len(&self) -> usize {
        self.channels * self.image_size * self.image_size
    }

    /// L2-normalised embeddings of `batch` images given as one `[batch, channels, image,
    /// image]` slice; returns `[batch, projection]` row-major.
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
            item[..d].copy_from_slice(&self.class);
            item[d..].copy_from_slice(&emb[b * np * d..(b + 1) * np * d]);
            ops::add_in_place(item, &self.positions);
        }
        let x = buffer(&mut w.x, batch * seq * d);
        self.pre_ln.run(tokens, x);
        self.stack.forward(self.isa, &mut w, batch, seq, false);
        // Class tokens → post-LN → projection.
        let mut class = Vec::with_capacity(batch * d);
        for b in 0..batch {
            class.extend_from_slice(&w.x[b * seq * d..b * seq * d + d]);
        }
        let mut normed = vec![0.0; batch * d];
        self.post_ln.run(&class, &mut normed);
        let out = project(self.isa, &self.projection, &normed, batch, &mut w.scratch);
        self.pool.put(w);
        out
    }
}
