//! The pre-LN transformer stack both towers share, and its attention.
//!
//! Per layer: `h = ln1(x)`, `qkv = h·Wqkv + b` (one GEMM, the query scale `head_dim^-½` folded
//! into the query weights), attention per (item, head), `x += ctx·Wo + bo` (the residual added
//! by the GEMM), `h = ln2(x)`, `f = act(h·W1 + b1)` (activation fused into the GEMM's tile
//! epilogue), `x += f·W2 + b2`.

use rayon::prelude::*;

use crate::dense::{buffer, Dense, Norm, Workspace};
use crate::gemm::{block_units, gemm_packed_serial, pack_a_serial, packed_len, Epilogue, PackedB};
use crate::{ops, Activation, Isa};

/// One encoder layer's packed weights.
#[derive(Debug)]
pub struct Layer {
    /// Layer norm before attention.
    pub ln1: Norm,
    /// Fused query-key-value projection ([`Dense::fused_qkv`]).
    pub qkv: Dense,
    /// Attention output projection.
    pub out: Dense,
    /// Layer norm before the MLP.
    pub ln2: Norm,
    /// MLP input layer (activation applied after it).
    pub fc1: Dense,
    /// MLP output layer.
    pub fc2: Dense,
}

/// The transformer stack of one tower.
#[derive(Debug)]
pub struct Stack {
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    act: Activation,
}

impl Stack {
    /// A stack of `layers` of width `hidden` with `heads` attention heads and MLP activation
    /// `act`.
    ///
    /// # Panics
    /// If a layer's shapes disagree with `hidden` (or with each other), or `hidden` is not a
    /// multiple of `heads`.
    pub fn new(layers: Vec<Layer>, hidden: usize, heads: usize, act: Activation) -> Self {
        assert!(
            heads > 0 && hidden.is_multiple_of(heads),
            "heads must divide hidden"
        );
        let intermediate = layers.first().map_or(0, |l| l.fc1.outputs());
        for l in &layers {
            assert_eq!(l.qkv.inputs(), hidden, "qkv inputs");
            assert_eq!(l.qkv.outputs(), 3 * hidden, "qkv outputs");
            assert_eq!(
                (l.out.inputs(), l.out.outputs()),
                (hidden, hidden),
                "out shape"
            );
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

    /// Runs every layer over `w.x` (`[batch × seq, hidden]`) in place.
    pub(crate) fn forward(
        &self,
        isa: Isa,
        w: &mut Workspace,
        batch: usize,
        seq: usize,
        causal: bool,
    ) {
        self.run(isa, w, batch, seq, causal, false);
    }

    /// [`Stack::forward`] for a caller that reads only each item's first row (CLIP's class
    /// token): the last layer computes keys and values for every token, but its attention,
    /// output projection and MLP for the first rows only — about three quarters of a layer's
    /// products (~6 % of a ViT-B pass). The first rows of `w.x` then hold what
    /// [`Stack::forward`] computes, bit for bit on the native kernel sets (the same products
    /// in the same order; the portable set's `gemm` crate may sum in another order); the other
    /// rows hold the input of the last layer.
    pub(crate) fn forward_first_rows(&self, isa: Isa, w: &mut Workspace, batch: usize, seq: usize) {
        self.run(isa, w, batch, seq, false, true);
    }

    fn run(
        &self,
        isa: Isa,
        w: &mut Workspace,
        batch: usize,
        seq: usize,
        causal: bool,
        first_rows_last: bool,
    ) {
        let (d, t) = (self.hidden, batch * seq);
        let x = &mut w.x[..t * d];
        let h = buffer(&mut w.h, t * d);
        let qkv = buffer(&mut w.qkv, t * 3 * d);
        let ctx = buffer(&mut w.ctx, t * d);
        // Room for the MLP's hidden activations in rows or in fc2's packed input layout.
        let f = buffer(
            &mut w.f,
            (t * self.intermediate).max(packed_len(t, self.intermediate)),
        );
        let scratch = &mut w.scratch;
        let full = if first_rows_last {
            self.layers.len().saturating_sub(1)
        } else {
            self.layers.len()
        };
        for layer in &self.layers[..full] {
            layer.ln1.run(x, h);
            layer.qkv.run(isa, h, t, qkv, false, None, scratch);
            attention(isa, qkv, ctx, batch, seq, seq, d, self.heads, causal);
            layer.out.run(isa, ctx, t, x, true, None, scratch);
            layer.ln2.run(x, h);
            self.mlp(isa, layer, h, t, f, x, scratch);
        }
        let Some(layer) = self.layers.get(full) else {
            return;
        };
        // The last layer for the first row of each item: keys and values of every token,
        // then a [batch, d] residual stream.
        layer.ln1.run(x, h);
        layer.qkv.run(isa, h, t, qkv, false, None, scratch);
        let ctx = &mut ctx[..batch * d];
        attention(isa, qkv, ctx, batch, seq, 1, d, self.heads, causal);
        let first = buffer(&mut w.tmp, batch * d);
        for (b, row) in first.chunks_exact_mut(d).enumerate() {
            row.copy_from_slice(&x[b * seq * d..b * seq * d + d]);
        }
        layer.out.run(isa, ctx, batch, first, true, None, scratch);
        let h = &mut h[..batch * d];
        layer.ln2.run(first, h);
        self.mlp(isa, layer, h, batch, f, first, scratch);
        for (b, row) in first.chunks_exact(d).enumerate() {
            x[b * seq * d..b * seq * d + d].copy_from_slice(row);
        }
    }

    /// `x += fc2(act(fc1(h)))` over `t` rows, `f` the hidden activations' buffer.
    #[allow(clippy::too_many_arguments)]
    fn mlp(
        &self,
        isa: Isa,
        layer: &Layer,
        h: &[f32],
        t: usize,
        f: &mut [f32],
        x: &mut [f32],
        scratch: &mut crate::dense::Scratch,
    ) {
        if layer.fc1.hands_packed_to(&layer.fc2, isa) {
            // fc1 writes fc2's packed input: no copy of the [t, intermediate] matrix.
            layer
                .fc1
                .run_into_packed(isa, h, t, f, Some(self.act), scratch);
            layer.fc2.run_from_packed(isa, f, t, x, true);
        } else {
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

/// One thread's attention buffers (see [`attention`]).
struct AttentionScratch {
    packed: Vec<f32>,
    keys: PackedB,
    values: PackedB,
    scores: Vec<f32>,
    o: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<AttentionScratch> = std::cell::RefCell::new(AttentionScratch {
        packed: Vec::new(),
        keys: PackedB::empty(),
        values: PackedB::empty(),
        scores: Vec::new(),
        o: Vec::new(),
    });
}

/// Scaled dot-product attention (the scale is already in the queries) of every item and head,
/// for the first `queries` positions of each item (`seq` for all of them): `qkv` is
/// `[batch × seq, 3d]` (queries, keys, values), `ctx` receives `[batch × queries, d]`.
#[allow(clippy::too_many_arguments)]
fn attention(
    isa: Isa,
    qkv: &[f32],
    ctx: &mut [f32],
    batch: usize,
    seq: usize,
    queries: usize,
    d: usize,
    heads: usize,
    causal: bool,
) {
    let dh = d / heads;
    let out = OutPtr(ctx.as_mut_ptr());
    assert!(queries <= seq, "{queries} queries of {seq} positions");
    assert!(ctx.len() >= batch * queries * d && qkv.len() >= batch * seq * 3 * d);
    (0..batch * heads).into_par_iter().for_each(|task| {
        // This thread's buffers, kept between tasks and calls: no allocation, zeroing or
        // page fault per (item, head) (384 tasks per layer at batch 32). Nothing inside runs
        // on rayon (serial packing and GEMMs), so no other task re-enters the borrow.
        SCRATCH.with_borrow_mut(
            |AttentionScratch {
                 packed,
                 keys,
                 values,
                 scores,
                 o,
             }| {
                let (b, h) = (task / heads, task % heads);
                let base = b * seq * 3 * d + h * dh;
                // scores = q·kᵀ: [queries, seq]
                pack_a_serial(&qkv[base..], queries, dh, 3 * d, packed);
                keys.refill_transposed(&qkv[base + d..], dh, seq, 3 * d);
                // The scores are written rows `stride` apart, `stride` the block of a
                // reduction of `seq`: for `seq` up to one block that is already the packed
                // `A` of p·v (row `i` at `i·stride`, whole row groups), which then needs no
                // copy; past one block they are packed as usual.
                let stride = block_units(seq);
                let in_place = seq <= stride;
                let ld = if in_place { stride } else { seq };
                let scores = buffer(scores, packed_len(queries, seq).max(queries * ld));
                gemm_packed_serial(
                    isa,
                    packed,
                    queries,
                    keys,
                    scores,
                    ld,
                    false,
                    Epilogue::None,
                );
                for i in 0..queries {
                    let row = &mut scores[i * ld..i * ld + seq];
                    ops::softmax_prefix(row, if causal { i + 1 } else { seq });
                }
                // context = p·v: [queries, dh]
                values.refill_rows(&qkv[base + 2 * d..], seq, dh, 3 * d);
                let o = buffer(o, queries * dh);
                let p: &[f32] = if in_place {
                    scores
                } else {
                    pack_a_serial(scores, queries, seq, seq, packed);
                    packed
                };
                gemm_packed_serial(isa, p, queries, values, o, dh, false, Epilogue::None);
                for (i, row) in o.chunks_exact(dh).enumerate() {
                    // SAFETY: row `b·queries + i`, columns `h·dh..(h+1)·dh` of ctx (inside it by
                    // the assertion above) are this task's alone: no other task reads or writes
                    // them, and the slice covers nothing else.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(
                            out.get().add((b * queries + i) * d + h * dh),
                            dh,
                        )
                    };
                    dst.copy_from_slice(row);
                }
            },
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Precision;

    /// A deterministic pseudo-random sequence in [-0.5, 0.5).
    fn values(seed: usize, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + 7919 * seed) * 2_654_435_761usize) % 1999) as f32 / 1999.0 - 0.5)
            .collect()
    }

    /// The class-token-only last layer leaves each item's first row exactly as the full
    /// stack does, bit for bit on the native kernel sets (to 1e-5 on the portable one), with
    /// an MLP width that is not a multiple of a panel.
    #[test]
    fn first_rows_only_equal_the_full_stack_bit_for_bit() {
        let (d, heads, inter, layers) = (48, 3, 100, 2);
        let norm = |s: usize| Norm::new(values(s, d), values(s + 1, d), 1e-5);
        let stack = Stack::new(
            (0..layers)
                .map(|l| {
                    let s = 10 * l;
                    Layer {
                        ln1: norm(s),
                        qkv: Dense::from_rows(
                            &values(s + 2, d * 3 * d),
                            d,
                            3 * d,
                            Some(values(s + 3, 3 * d)),
                            Precision::F32,
                        ),
                        out: Dense::from_rows(
                            &values(s + 4, d * d),
                            d,
                            d,
                            Some(values(s + 5, d)),
                            Precision::F32,
                        ),
                        ln2: norm(s + 6),
                        fc1: Dense::from_rows(
                            &values(s + 7, d * inter),
                            d,
                            inter,
                            Some(values(s + 8, inter)),
                            Precision::F32,
                        ),
                        fc2: Dense::from_rows(
                            &values(s + 9, inter * d),
                            inter,
                            d,
                            Some(values(s + 10, d)),
                            Precision::F32,
                        ),
                    }
                })
                .collect(),
            d,
            heads,
            Activation::QuickGelu,
        );
        for isa in Isa::available() {
            for (batch, seq) in [(3, 7), (1, 50), (14, 5)] {
                let input = values(99, batch * seq * d);
                let mut full = Workspace {
                    x: input.clone(),
                    ..Default::default()
                };
                stack.forward(isa, &mut full, batch, seq, false);
                let mut first = Workspace {
                    x: input,
                    ..Default::default()
                };
                stack.forward_first_rows(isa, &mut first, batch, seq);
                // The portable set multiplies through the `gemm` crate, whose order of sums
                // depends on the number of rows: there, to 1e-5.
                let same = |x: &f32, y: &f32| {
                    if isa == Isa::Portable {
                        (x - y).abs() <= 1e-5 * (1.0 + x.abs())
                    } else {
                        x.to_bits() == y.to_bits()
                    }
                };
                for b in 0..batch {
                    let row = b * seq * d..b * seq * d + d;
                    let (want, got) = (&full.x[row.clone()], &first.x[row]);
                    assert!(
                        want.iter().zip(got).all(|(x, y)| same(x, y)),
                        "{isa:?} batch {batch} seq {seq} item {b}: {got:?} vs {want:?}"
                    );
                }
                // And it is not a copy of the input: the last layer ran.
                assert_ne!(
                    first.x[..d],
                    values(99, d)[..],
                    "{isa:?}: first row unchanged"
                );
            }
        }
    }

    /// Attention against a naive f64 reference, on sequences within one small block (5, 50),
    /// exactly one (128), past it (130: the scores stay in place in a 768 block) and past a
    /// whole 768 block (800: the scores are packed), causal and not, on every kernel set.
    #[test]
    fn attention_matches_a_naive_reference() {
        let (batch, heads, dh) = (2, 3, 16);
        let d = heads * dh;
        for isa in Isa::available() {
            for seq in [5, 50, 128, 130, 800] {
                for causal in [false, true] {
                    let qkv: Vec<f32> = (0..batch * seq * 3 * d)
                        .map(|i| ((i * 2_654_435_761usize) % 1999) as f32 / 1000.0 - 1.0)
                        .collect();
                    let mut ctx = vec![f32::NAN; batch * seq * d];
                    attention(isa, &qkv, &mut ctx, batch, seq, seq, d, heads, causal);
                    let at = |b: usize, t: usize, part: usize, h: usize, e: usize| {
                        qkv[(b * seq + t) * 3 * d + part * d + h * dh + e] as f64
                    };
                    let mut worst = 0f64;
                    for b in 0..batch {
                        for h in 0..heads {
                            for i in (0..seq).step_by(7) {
                                let live = if causal { i + 1 } else { seq };
                                let s: Vec<f64> = (0..live)
                                    .map(|j| {
                                        (0..dh).map(|e| at(b, i, 0, h, e) * at(b, j, 1, h, e)).sum()
                                    })
                                    .collect();
                                let max = s.iter().copied().fold(f64::MIN, f64::max);
                                let w: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
                                let z: f64 = w.iter().sum();
                                for e in 0..dh {
                                    let want: f64 =
                                        (0..live).map(|j| w[j] / z * at(b, j, 2, h, e)).sum();
                                    let got = ctx[(b * seq + i) * d + h * dh + e] as f64;
                                    worst = worst.max((got - want).abs());
                                }
                            }
                        }
                    }
                    assert!(
                        worst < 1e-4,
                        "{isa:?} seq {seq} causal {causal}: worst error {worst}"
                    );
                }
            }
        }
    }
}
