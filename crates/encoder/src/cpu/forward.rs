//! Both towers on the native kernels: the pre-LN transformer stack, the vision embeddings
//! (patch convolution as one GEMM over unfolded patches, class token, positions, pre-LN), the
//! text embeddings, pooling and projections. Weights are taken from the loaded burn modules
//! once and packed for the kernels.
//!
//! Activations are row-major `[tokens, width]` f32 buffers, `tokens = batch × seq`.
//! Per layer: `h = ln1(x)`, `qkv = h·Wqkv + b` (one GEMM, the query scale `head_dim^-½` folded
//! into the query weights), attention per (image, head), `x += ctx·Wo + bo` (the residual added
//! by the GEMM), `h = ln2(x)`, `f = act(h·W1 + b1)` (activation fused into the GEMM's tile
//! epilogue), `x += f·W2 + b2`.

mod checkpoint;

use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use rayon::prelude::*;

use super::bf16::{gemm_bf16, PackedBf16};
use super::gemm::{gemm, gemm_packed_serial, pack_a, Epilogue, PackedB};
use super::ops;
use super::{Isa, Precision};
use crate::config::{Activation, ClipTextConfig, ClipVisionConfig};
use crate::encoder::{ClipEncoder, ClipEncoderLayer};
use crate::error::{Error, Result};
use crate::model::{ClipTextTower, ClipVisionTower};

/// Reads a burn tensor's values.
fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("reading weights for the native path: {e:?}")))
}

/// The text tower's token embeddings: a copy, or (packed straight from a checkpoint) the rows
/// left in the mapped file, so that a query process does not copy 100 MB it reads ~10 rows of.
#[derive(Debug)]
enum TokenTable {
    Owned(Vec<f32>),
    Mapped(crate::loader::MappedF32),
}

impl TokenTable {
    fn rows(&self) -> &[f32] {
        match self {
            TokenTable::Owned(v) => v,
            TokenTable::Mapped(m) => m.as_slice(),
        }
    }
}

/// A weight matrix packed for one precision's kernels.
#[derive(Debug)]
enum Packed {
    F32(PackedB),
    Bf16(PackedBf16),
}

/// A linear layer `y = x·W + b` with `W` packed.
#[derive(Debug)]
struct Dense {
    weight: Packed,
    bias: Option<Vec<f32>>,
    k: usize,
    n: usize,
}

/// Reusable buffers for the packed activations.
#[derive(Debug, Default)]
struct Scratch {
    f32: Vec<f32>,
    u32: Vec<u32>,
}

/// Every buffer of one forward pass. A tower keeps the last one for the next call: fresh
/// allocations of this size cost page faults and zeroing on every call (about 5% of a
/// batch-32 ViT-B/32 pass), at the price of holding the largest batch's activations (about
/// 90 MB for 32 images of ViT-B/32) while the tower lives.
#[derive(Debug, Default)]
struct Workspace {
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    f: Vec<f32>,
    tmp: Vec<f32>,
    scratch: Scratch,
}

/// A buffer of `len` values with unspecified contents (every user overwrites it fully).
fn buffer(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    super::gemm::resize_scratch(v, len);
    v
}

/// The workspace a tower keeps between calls (one; concurrent callers make their own).
#[derive(Debug, Default)]
struct Pool(std::sync::Mutex<Option<Workspace>>);

impl Pool {
    fn take(&self) -> Workspace {
        self.0
            .lock()
            .map(|mut w| w.take())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn put(&self, workspace: Workspace) {
        if let Ok(mut w) = self.0.lock() {
            *w = Some(workspace);
        }
    }
}

impl Dense {
    /// `w` is `[k, n]` row-major.
    fn new(w: &[f32], k: usize, n: usize, bias: Option<Vec<f32>>, precision: Precision) -> Self {
        let weight = match precision {
            Precision::F32 => Packed::F32(PackedB::from_rows(w, k, n, n)),
            Precision::Bf16 => Packed::Bf16(PackedBf16::from_rows(w, k, n, n)),
        };
        Self { weight, bias, k, n }
    }

    fn from_linear(linear: &Linear, precision: Precision) -> Result<Self> {
        let [k, n] = linear.weight.dims();
        let w = values(linear.weight.val())?;
        let bias = linear.bias.as_ref().map(|b| values(b.val())).transpose()?;
        Ok(Self::new(&w, k, n, bias, precision))
    }

    /// `c = a·W + b` (`c += …` with `accumulate`), then `act`; `a` is `[m, k]`, `c` `[m, n]`,
    /// both contiguous.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        isa: Isa,
        a: &[f32],
        m: usize,
        c: &mut [f32],
        accumulate: bool,
        act: Option<Activation>,
        scratch: &mut Scratch,
    ) {
        let epilogue = match (&self.bias, act) {
            (Some(b), Some(act)) => Epilogue::BiasAct(b, act),
            (Some(b), None) => Epilogue::Bias(b),
            (None, None) => Epilogue::None,
            (None, Some(_)) => unreachable!("activations follow biased layers only"),
        };
        match &self.weight {
            Packed::F32(w) => gemm(
                isa,
                a,
                m,
                self.k,
                w,
                c,
                self.n,
                accumulate,
                epilogue,
                &mut scratch.f32,
            ),
            Packed::Bf16(w) => gemm_bf16(
                isa,
                a,
                m,
                self.k,
                w,
                c,
                self.n,
                accumulate,
                epilogue,
                &mut scratch.u32,
            ),
        }
    }
}

/// A layer norm's parameters.
#[derive(Debug)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn from_burn(ln: &LayerNorm, eps: f64) -> Result<Self> {
        let gamma = values(ln.gamma.val())?;
        let beta = match &ln.beta {
            Some(b) => values(b.val())?,
            None => vec![0.0; gamma.len()],
        };
        Ok(Self {
            gamma,
            beta,
            eps: eps as f32,
        })
    }

    fn run(&self, x: &[f32], out: &mut [f32]) {
        ops::layer_norm(x, out, &self.gamma, &self.beta, self.eps);
    }
}

/// One encoder layer.
#[derive(Debug)]
struct Layer {
    ln1: Norm,
    qkv: Dense,
    out: Dense,
    ln2: Norm,
    fc1: Dense,
    fc2: Dense,
}

impl Layer {
    fn from_burn(
        layer: &ClipEncoderLayer,
        heads: usize,
        eps: f64,
        precision: Precision,
    ) -> Result<Self> {
        let a = &layer.self_attn;
        let [d, _] = a.q_proj.weight.dims();
        let scale = ((d / heads) as f32).powf(-0.5);
        // [d, 3d]: queries (scaled), keys, values side by side.
        let (q, k, v) = (
            values(a.q_proj.weight.val())?,
            values(a.k_proj.weight.val())?,
            values(a.v_proj.weight.val())?,
        );
        let mut w = Vec::with_capacity(3 * d * d);
        for r in 0..d {
            w.extend(q[r * d..(r + 1) * d].iter().map(|x| x * scale));
            w.extend_from_slice(&k[r * d..(r + 1) * d]);
            w.extend_from_slice(&v[r * d..(r + 1) * d]);
        }
        let bias = |l: &Linear| -> Result<Vec<f32>> {
            match &l.bias {
                Some(b) => values(b.val()),
                None => Ok(vec![0.0; d]),
            }
        };
        let mut b: Vec<f32> = bias(&a.q_proj)?.into_iter().map(|x| x * scale).collect();
        b.extend(bias(&a.k_proj)?);
        b.extend(bias(&a.v_proj)?);
        Ok(Layer {
            ln1: Norm::from_burn(&layer.layer_norm1, eps)?,
            qkv: Dense::new(&w, d, 3 * d, Some(b), precision),
            out: Dense::from_linear(&a.out_proj, precision)?,
            ln2: Norm::from_burn(&layer.layer_norm2, eps)?,
            fc1: Dense::from_linear(&layer.mlp.fc1, precision)?,
            fc2: Dense::from_linear(&layer.mlp.fc2, precision)?,
        })
    }
}

/// The transformer stack of one tower.
#[derive(Debug)]
struct Stack {
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    act: Activation,
}

impl Stack {
    /// Packs every layer (in parallel: packing is a good part of a cold start).
    fn from_burn(
        encoder: &ClipEncoder,
        sizes: (usize, usize, usize),
        act: Activation,
        eps: f64,
        precision: Precision,
    ) -> Result<Self> {
        let (hidden, intermediate, heads) = sizes;
        let layers = encoder
            .layers
            .par_iter()
            .map(|layer| Layer::from_burn(layer, heads, eps, precision))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            hidden,
            heads,
            intermediate,
            act,
        })
    }

    /// Runs every layer over `w.x` (`[batch × seq, hidden]`) in place.
    fn forward(&self, isa: Isa, w: &mut Workspace, batch: usize, seq: usize, causal: bool) {
        let (d, t) = (self.hidden, batch * seq);
        let x = &mut w.x[..t * d];
        let h = buffer(&mut w.h, t * d);
        let qkv = buffer(&mut w.qkv, t * 3 * d);
        let ctx = buffer(&mut w.ctx, t * d);
        let f = buffer(&mut w.f, t * self.intermediate);
        let scratch = &mut w.scratch;
        for layer in &self.layers {
            layer.ln1.run(x, h);
            layer.qkv.run(isa, h, t, qkv, false, None, scratch);
            attention(isa, qkv, ctx, batch, seq, d, self.heads, causal);
            layer.out.run(isa, ctx, t, x, true, None, scratch);
            layer.ln2.run(x, h);
            layer.fc1.run(isa, h, t, f, false, Some(self.act), scratch);
            layer.fc2.run(isa, f, t, x, true, None, scratch);
        }
    }
}

/// A shared pointer to the attention output; each (item, head) task writes its own columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements (their own rows × head columns) through raw pointers,
// and the buffer outlives the parallel section.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the whole `Send` wrapper, not its field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Scaled dot-product attention (the scale is already in the queries) of every item and head:
/// `qkv` is `[batch × seq, 3d]` (queries, keys, values), `ctx` receives `[batch × seq, d]`.
#[allow(clippy::too_many_arguments)]
fn attention(
    isa: Isa,
    qkv: &[f32],
    ctx: &mut [f32],
    batch: usize,
    seq: usize,
    d: usize,
    heads: usize,
    causal: bool,
) {
    let dh = d / heads;
    let out = OutPtr(ctx.as_mut_ptr());
    assert!(ctx.len() >= batch * seq * d && qkv.len() >= batch * seq * 3 * d);
    (0..batch * heads).into_par_iter().for_each(|task| {
        let (b, h) = (task / heads, task % heads);
        let base = b * seq * 3 * d + h * dh;
        let mut packed = Vec::new();
        // scores = q·kᵀ: [seq, seq]
        pack_a(&qkv[base..], seq, dh, 3 * d, &mut packed);
        let keys = PackedB::from_transposed(&qkv[base + d..], dh, seq, 3 * d);
        let mut scores = vec![0.0; seq * seq];
        gemm_packed_serial(
            isa,
            &packed,
            seq,
            &keys,
            &mut scores,
            seq,
            false,
            Epilogue::None,
        );
        for (i, row) in scores.chunks_exact_mut(seq).enumerate() {
            ops::softmax_prefix(row, if causal { i + 1 } else { seq });
        }
        // context = p·v: [seq, dh]
        pack_a(&scores, seq, seq, seq, &mut packed);
        let values = PackedB::from_rows(&qkv[base + 2 * d..], seq, dh, 3 * d);
        let mut o = vec![0.0; seq * dh];
        gemm_packed_serial(
            isa,
            &packed,
            seq,
            &values,
            &mut o,
            dh,
            false,
            Epilogue::None,
        );
        for (i, row) in o.chunks_exact(dh).enumerate() {
            // SAFETY: row `b·seq + i`, columns `h·dh..(h+1)·dh` of ctx (inside it by the
            // assertion above) are written by this task only.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    row.as_ptr(),
                    out.get().add((b * seq + i) * d + h * dh),
                    dh,
                );
            }
        }
    });
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
    class: Vec<f32>,
    positions: Vec<f32>,
    pre_ln: Norm,
    stack: Stack,
    post_ln: Norm,
    projection: Dense,
    pool: Pool,
}

impl NativeVision {
    /// Packs a loaded vision tower for the kernels of `isa`.
    ///
    /// # Errors
    /// [`Error::Execution`] if the weights cannot be read back from their device.
    pub fn from_burn(
        tower: &ClipVisionTower,
        config: &ClipVisionConfig,
        precision: Precision,
        isa: Isa,
    ) -> Result<Self> {
        let v = &tower.vision_model;
        let e = &v.embeddings;
        let [patch_len, hidden] = e.patch_embedding.dims();
        let eps = config.layer_norm_eps;
        Ok(Self {
            isa,
            channels: e.num_channels,
            image_size: e.image_size,
            patch: e.patch_size,
            hidden,
            patch_embed: Dense::new(
                &values(e.patch_embedding.val())?,
                patch_len,
                hidden,
                None,
                precision,
            ),
            class: values(e.class_embedding.val())?,
            positions: values(e.position_embedding.weight.val())?,
            pre_ln: Norm::from_burn(&v.pre_layrnorm, eps)?,
            stack: Stack::from_burn(
                &v.encoder,
                (hidden, config.intermediate_size, config.num_attention_heads),
                config.hidden_act,
                eps,
                precision,
            )?,
            post_ln: Norm::from_burn(&v.post_layernorm, eps)?,
            projection: Dense::from_linear(&tower.visual_projection, precision)?,
            pool: Pool::default(),
        })
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

/// Projection and L2 normalisation of pooled states.
fn project(
    isa: Isa,
    projection: &Dense,
    pooled: &[f32],
    batch: usize,
    scratch: &mut Scratch,
) -> Vec<f32> {
    let mut out = vec![0.0; batch * projection.n];
    projection.run(isa, pooled, batch, &mut out, false, None, scratch);
    for row in out.chunks_exact_mut(projection.n) {
        ops::l2_normalize(row);
    }
    out
}

/// The text tower on the native kernels.
#[derive(Debug)]
pub struct NativeText {
    isa: Isa,
    hidden: usize,
    vocab: usize,
    context: usize,
    eos_token_id: u32,
    tokens: TokenTable,
    positions: Vec<f32>,
    stack: Stack,
    final_ln: Norm,
    projection: Dense,
    pool: Pool,
}

impl NativeText {
    /// Packs a loaded text tower for the kernels of `isa`.
    ///
    /// # Errors
    /// [`Error::Execution`] if the weights cannot be read back from their device.
    pub fn from_burn(
        tower: &ClipTextTower,
        config: &ClipTextConfig,
        precision: Precision,
        isa: Isa,
    ) -> Result<Self> {
        let t = &tower.text_model;
        let [vocab, hidden] = t.embeddings.token_embedding.weight.dims();
        let eps = config.layer_norm_eps;
        Ok(Self {
            isa,
            hidden,
            vocab,
            context: t.context_length(),
            eos_token_id: t.eos_token_id,
            tokens: TokenTable::Owned(values(t.embeddings.token_embedding.weight.val())?),
            positions: values(t.embeddings.position_embedding.weight.val())?,
            stack: Stack::from_burn(
                &t.encoder,
                (hidden, config.intermediate_size, config.num_attention_heads),
                config.hidden_act,
                eps,
                precision,
            )?,
            final_ln: Norm::from_burn(&t.final_layer_norm, eps)?,
            projection: Dense::from_linear(&tower.text_projection, precision)?,
            pool: Pool::default(),
        })
    }

    /// The context length (longest sequence).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// Checks that `ids` (sequence number `index` of a batch, for the message) can be encoded:
    /// `1..=context` ids, all inside the vocabulary.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn check_ids(&self, ids: &[u32], index: usize) -> Result<()> {
        if ids.is_empty() || ids.len() > self.context {
            return Err(Error::InvalidInput(format!(
                "token sequence {index} has {} ids; the model takes 1..={}",
                ids.len(),
                self.context
            )));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(Error::InvalidInput(format!(
                "token sequence {index} has id {id}, outside the vocabulary of {}",
                self.vocab
            )));
        }
        Ok(())
    }

    /// L2-normalised embeddings of unpadded token id sequences, run only as long as the
    /// longest one (see [`crate::text`]); returns `[batch, projection]` row-major.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty batch, an empty or over-long sequence, or an id
    /// outside the vocabulary.
    pub fn encode<S: AsRef<[u32]>>(&self, ids: &[S]) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Err(Error::InvalidInput("no token sequences".into()));
        }
        for (i, row) in ids.iter().enumerate() {
            self.check_ids(row.as_ref(), i)?;
        }
        let d = self.hidden;
        let batch = ids.len();
        let seq = ids.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
        let mut w = self.pool.take();
        let x = buffer(&mut w.x, batch * seq * d);
        for (b, row) in ids.iter().enumerate() {
            let row = row.as_ref();
            for i in 0..seq {
                // Padding after the end (id 0) is never attended to by the pooled position.
                let id = row.get(i).copied().unwrap_or(0) as usize;
                let dst = &mut x[(b * seq + i) * d..(b * seq + i + 1) * d];
                dst.copy_from_slice(&self.tokens.rows()[id * d..(id + 1) * d]);
                ops::add_in_place(dst, &self.positions[i * d..(i + 1) * d]);
            }
        }
        self.stack.forward(self.isa, &mut w, batch, seq, true);
        let mut pooled = Vec::with_capacity(batch * d);
        for (b, row) in ids.iter().enumerate() {
            let p = crate::text::pooled_position(row.as_ref(), self.eos_token_id);
            pooled.extend_from_slice(&w.x[(b * seq + p) * d..(b * seq + p + 1) * d]);
        }
        let mut normed = vec![0.0; batch * d];
        self.final_ln.run(&pooled, &mut normed);
        let out = project(self.isa, &self.projection, &normed, batch, &mut w.scratch);
        self.pool.put(w);
        Ok(out)
    }
}
