//! The post-LayerNorm (BERT-family) encoder on the native kernels: embeddings
//! `LN(word + token_type + position)`, then per layer `x = LN(x + attn(x))`,
//! `x = LN(x + fc2(act(fc1(x))))`, bidirectional attention with padded keys masked.
//!
//! The GEMMs, layer norms and activations are the pre-LN stack's ([`crate::Layer`]): one fused
//! query-key-value product (scale folded into the queries), the residual added by the output
//! GEMMs, the activation fused into the MLP's first GEMM. Sequences of a batch are
//! right-padded to the longest; a padded position is never attended to, so a sequence's
//! states do not depend on what it is batched with.

use rayon::prelude::*;

use crate::dense::{buffer, Dense, Norm, Pool, Workspace};
use crate::error::{Error, Result};
use crate::gemm::{gemm_packed_serial, pack_a, Epilogue, PackedB};
use crate::text::TokenTable;
use crate::{ops, Activation, Isa};

/// One post-LN layer's packed weights.
#[derive(Debug)]
pub struct PostLnLayer {
    /// Fused query-key-value projection ([`Dense::fused_qkv`]).
    pub qkv: Dense,
    /// Attention output projection.
    pub out: Dense,
    /// Layer norm of `x + attention`.
    pub ln1: Norm,
    /// MLP input layer (activation applied after it).
    pub fc1: Dense,
    /// MLP output layer.
    pub fc2: Dense,
    /// Layer norm of `x + mlp`.
    pub ln2: Norm,
}

/// A post-LN transformer stack.
#[derive(Debug)]
pub struct PostLnStack {
    layers: Vec<PostLnLayer>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    act: Activation,
}

impl PostLnStack {
    /// A stack of `layers` of width `hidden`, `heads` attention heads, MLP activation `act`.
    ///
    /// # Panics
    /// If a layer's shapes disagree with `hidden` (or with each other), or `hidden` is not a
    /// multiple of `heads`.
    pub fn new(layers: Vec<PostLnLayer>, hidden: usize, heads: usize, act: Activation) -> Self {
        assert!(
            heads > 0 && hidden.is_multiple_of(heads),
            "heads must divide hidden"
        );
        let intermediate = layers.first().map_or(0, |l| l.fc1.outputs());
        for l in &layers {
            assert_eq!(
                (l.qkv.inputs(), l.qkv.outputs()),
                (hidden, 3 * hidden),
                "qkv"
            );
            assert_eq!((l.out.inputs(), l.out.outputs()), (hidden, hidden), "out");
            assert_eq!(
                (l.fc1.inputs(), l.fc1.outputs()),
                (hidden, intermediate),
                "fc1"
            );
            assert_eq!(
                (l.fc2.inputs(), l.fc2.outputs()),
                (intermediate, hidden),
                "fc2"
            );
        }
        Self {
            layers,
            hidden,
            heads,
            intermediate,
            act,
        }
    }

    /// Width of the stack.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Runs every layer over `w.x` (`[batch × seq, hidden]`) in place; item `b` has
    /// `lengths[b]` real positions (the rest are padding, masked as keys).
    fn forward(&self, isa: Isa, w: &mut Workspace, lengths: &[usize], seq: usize) {
        let (d, t) = (self.hidden, lengths.len() * seq);
        let x = &mut w.x[..t * d];
        let h = buffer(&mut w.h, t * d);
        let qkv = buffer(&mut w.qkv, t * 3 * d);
        let ctx = buffer(&mut w.ctx, t * d);
        let f = buffer(&mut w.f, t * self.intermediate);
        let scratch = &mut w.scratch;
        for layer in &self.layers {
            layer.qkv.run(isa, x, t, qkv, false, None, scratch);
            masked_attention(isa, qkv, ctx, lengths, seq, d, self.heads);
            h.copy_from_slice(x);
            layer.out.run(isa, ctx, t, h, true, None, scratch);
            layer.ln1.run(h, x);
            layer.fc1.run(isa, x, t, f, false, Some(self.act), scratch);
            h.copy_from_slice(x);
            layer.fc2.run(isa, f, t, h, true, None, scratch);
            layer.ln2.run(h, x);
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
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Scaled dot-product attention (scale already in the queries) of every item and head, keys
/// at positions `>= lengths[b]` masked: `qkv` is `[batch × seq, 3d]`, `ctx` receives
/// `[batch × seq, d]`.
fn masked_attention(
    isa: Isa,
    qkv: &[f32],
    ctx: &mut [f32],
    lengths: &[usize],
    seq: usize,
    d: usize,
    heads: usize,
) {
    let batch = lengths.len();
    let dh = d / heads;
    let out = OutPtr(ctx.as_mut_ptr());
    assert!(ctx.len() >= batch * seq * d && qkv.len() >= batch * seq * 3 * d);
    (0..batch * heads).into_par_iter().for_each(|task| {
        let (b, h) = (task / heads, task % heads);
        let len = lengths[b];
        let base = b * seq * 3 * d + h * dh;
        let mut packed = Vec::new();
        // scores = q·kᵀ over the real keys: [seq, len]
        pack_a(&qkv[base..], seq, dh, 3 * d, &mut packed);
        let keys = PackedB::from_transposed(&qkv[base + d..], dh, len, 3 * d);
        let mut scores = vec![0.0; seq * len];
        gemm_packed_serial(
            isa,
            &packed,
            seq,
            &keys,
            &mut scores,
            len,
            false,
            Epilogue::None,
        );
        for row in scores.chunks_exact_mut(len) {
            ops::softmax_prefix(row, len);
        }
        // context = p·v: [seq, dh]
        pack_a(&scores, seq, len, len, &mut packed);
        let values = PackedB::from_rows(&qkv[base + 2 * d..], len, dh, 3 * d);
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

fn table_rows(table: &TokenTable) -> &[f32] {
    match table {
        TokenTable::Owned(v) => v,
        TokenTable::Shared(s) => (**s).as_ref(),
    }
}

/// The weights of a [`NativeBert`], already packed.
#[derive(Debug)]
pub struct BertWeights {
    /// Vocabulary size (rows of the token table).
    pub vocab: usize,
    /// Word embeddings `[vocab, hidden]`.
    pub tokens: TokenTable,
    /// Position embeddings `[positions, hidden]`.
    pub positions: Vec<f32>,
    /// Token-type embeddings `[types, hidden]`; `None` for DistilBERT.
    pub token_types: Option<Vec<f32>>,
    /// The embeddings' layer norm.
    pub embedding_ln: Norm,
    /// The post-LN stack.
    pub stack: PostLnStack,
}

/// A BERT-family encoder (`BertModel` without pooler, `DistilBertModel`) on the native kernels.
#[derive(Debug)]
pub struct NativeBert {
    isa: Isa,
    hidden: usize,
    vocab: usize,
    max_positions: usize,
    types: usize,
    tokens: TokenTable,
    positions: Vec<f32>,
    token_types: Option<Vec<f32>>,
    embedding_ln: Norm,
    stack: PostLnStack,
    pool: Pool,
}

/// The last hidden states of a batch: `[batch, seq, hidden]` row-major, item `b` real at
/// positions `0..lengths[b]` (the rest is padding, its states unspecified).
#[derive(Debug, Clone, PartialEq)]
pub struct BertStates {
    /// `[batch × seq × hidden]`.
    pub hidden: Vec<f32>,
    /// Positions per item (the longest sequence).
    pub seq: usize,
    /// Width.
    pub width: usize,
    /// Real positions of each item.
    pub lengths: Vec<usize>,
}

impl BertStates {
    /// The state of item `b` at position `i`.
    pub fn row(&self, b: usize, i: usize) -> &[f32] {
        let start = (b * self.seq + i) * self.width;
        &self.hidden[start..start + self.width]
    }

    /// Position 0 (`[CLS]`) of every item: `[batch, hidden]`.
    pub fn first(&self) -> Vec<f32> {
        (0..self.lengths.len())
            .flat_map(|b| self.row(b, 0).iter().copied())
            .collect()
    }

    /// The mean over each item's real positions (sentence-transformers' mean pooling with the
    /// attention mask): `[batch, hidden]`.
    pub fn mean(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.lengths.len() * self.width];
        for (b, &len) in self.lengths.iter().enumerate() {
            let acc = &mut out[b * self.width..(b + 1) * self.width];
            for i in 0..len {
                ops::add_in_place(acc, self.row(b, i));
            }
            let inv = 1.0 / len.max(1) as f32;
            acc.iter_mut().for_each(|v| *v *= inv);
        }
        out
    }
}

impl NativeBert {
    /// The encoder from its packed weights, run with the kernels of `isa`.
    ///
    /// # Panics
    /// If a table's size disagrees with the stack's width.
    pub fn new(weights: BertWeights, isa: Isa) -> Self {
        let w = weights;
        let hidden = w.stack.hidden();
        assert_eq!(table_rows(&w.tokens).len(), w.vocab * hidden, "token table");
        assert!(
            !w.positions.is_empty() && w.positions.len().is_multiple_of(hidden),
            "positions"
        );
        if let Some(t) = &w.token_types {
            assert!(
                t.len().is_multiple_of(hidden) && !t.is_empty(),
                "token types"
            );
        }
        Self {
            isa,
            hidden,
            vocab: w.vocab,
            max_positions: w.positions.len() / hidden,
            types: w.token_types.as_ref().map_or(0, |t| t.len() / hidden),
            tokens: w.tokens,
            positions: w.positions,
            token_types: w.token_types,
            embedding_ln: w.embedding_ln,
            stack: w.stack,
            pool: Pool::default(),
        }
    }

    /// Width of the hidden states.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// Longest sequence.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Checks that `ids` (sequence `index` of a batch, for the message) can be encoded:
    /// `1..=max_positions` ids, all inside the vocabulary.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn check_ids(&self, ids: &[u32], index: usize) -> Result<()> {
        if ids.is_empty() || ids.len() > self.max_positions {
            return Err(Error::InvalidInput(format!(
                "token sequence {index} has {} ids; the model takes 1..={}",
                ids.len(),
                self.max_positions
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

    /// The last hidden states of unpadded id sequences (batched right-padded to the longest,
    /// padding masked). `token_types` (one sequence per id sequence, same lengths) default to
    /// 0; they are ignored by an encoder without a token-type table (DistilBERT).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty batch, an empty or over-long sequence, an id
    /// outside the vocabulary, or token types that do not match the ids or the table.
    pub fn forward<S: AsRef<[u32]>>(
        &self,
        ids: &[S],
        token_types: Option<&[S]>,
    ) -> Result<BertStates> {
        if ids.is_empty() {
            return Err(Error::InvalidInput("no token sequences".into()));
        }
        for (i, row) in ids.iter().enumerate() {
            self.check_ids(row.as_ref(), i)?;
        }
        if let Some(types) = token_types {
            let same = types.len() == ids.len()
                && types
                    .iter()
                    .zip(ids)
                    .all(|(t, i)| t.as_ref().len() == i.as_ref().len());
            if !same {
                return Err(Error::InvalidInput(
                    "token type ids do not match the token ids' lengths".into(),
                ));
            }
            if self.types > 0 {
                if let Some(&t) = types
                    .iter()
                    .flat_map(|t| t.as_ref().iter())
                    .find(|&&t| t as usize >= self.types)
                {
                    return Err(Error::InvalidInput(format!(
                        "token type id {t} is outside the {} token types",
                        self.types
                    )));
                }
            }
        }
        let d = self.hidden;
        let lengths: Vec<usize> = ids.iter().map(|r| r.as_ref().len()).collect();
        let seq = lengths.iter().copied().max().unwrap_or(0);
        let batch = ids.len();
        let mut w = self.pool.take();
        let sum = buffer(&mut w.h, batch * seq * d);
        let table = table_rows(&self.tokens);
        for (b, row) in ids.iter().enumerate() {
            let row = row.as_ref();
            for i in 0..seq {
                // Padding embeds id 0; it is never attended to.
                let id = row.get(i).copied().unwrap_or(0) as usize;
                let dst = &mut sum[(b * seq + i) * d..(b * seq + i + 1) * d];
                dst.copy_from_slice(&table[id * d..(id + 1) * d]);
                if let Some(types) = &self.token_types {
                    let t = token_types
                        .and_then(|t| t[b].as_ref().get(i).copied())
                        .unwrap_or(0) as usize;
                    ops::add_in_place(dst, &types[t * d..(t + 1) * d]);
                }
                ops::add_in_place(dst, &self.positions[i * d..(i + 1) * d]);
            }
        }
        let x = buffer(&mut w.x, batch * seq * d);
        self.embedding_ln.run(&w.h[..batch * seq * d], x);
        self.stack.forward(self.isa, &mut w, &lengths, seq);
        let hidden = w.x[..batch * seq * d].to_vec();
        self.pool.put(w);
        Ok(BertStates {
            hidden,
            seq,
            width: d,
            lengths,
        })
    }
}

/// How [`NativeBertText`] pools the hidden states of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BertPooling {
    /// Position 0, the `[CLS]` token (Chinese-CLIP).
    First,
    /// The mean over the real positions (sentence-transformers' mean pooling).
    Mean,
}

/// A text tower made of a BERT-family encoder, a pooling and an optional projection:
/// token ids in, L2-normalised embeddings out.
#[derive(Debug)]
pub struct NativeBertText {
    bert: NativeBert,
    pooling: BertPooling,
    projection: Option<Dense>,
}

impl NativeBertText {
    /// The tower: `bert`, then `pooling`, then `projection` (a linear layer, with or without
    /// bias) if any.
    ///
    /// # Panics
    /// If the projection's inputs differ from the encoder's width.
    pub fn new(bert: NativeBert, pooling: BertPooling, projection: Option<Dense>) -> Self {
        if let Some(p) = &projection {
            assert_eq!(p.inputs(), bert.hidden(), "projection inputs");
        }
        Self {
            bert,
            pooling,
            projection,
        }
    }

    /// The encoder.
    pub fn bert(&self) -> &NativeBert {
        &self.bert
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.projection
            .as_ref()
            .map_or(self.bert.hidden(), Dense::outputs)
    }

    /// L2-normalised embeddings `[batch, dim]` of unpadded id sequences (token types as
    /// [`NativeBert::forward`] takes them).
    ///
    /// # Errors
    /// As [`NativeBert::forward`].
    pub fn encode<S: AsRef<[u32]>>(
        &self,
        ids: &[S],
        token_types: Option<&[S]>,
    ) -> Result<Vec<f32>> {
        let states = self.bert.forward(ids, token_types)?;
        let pooled = match self.pooling {
            BertPooling::First => states.first(),
            BertPooling::Mean => states.mean(),
        };
        let batch = ids.len();
        Ok(match &self.projection {
            Some(p) => {
                let mut scratch = Default::default();
                crate::dense::project(self.bert.isa, p, &pooled, batch, &mut scratch)
            }
            None => {
                let mut out = pooled;
                for row in out.chunks_exact_mut(self.bert.hidden) {
                    ops::l2_normalize(row);
                }
                out
            }
        })
    }
}
