//! The building blocks of a forward pass: packed linear layers ([`Dense`]), layer norms
//! ([`Norm`]) and the reusable buffers a tower keeps between calls.

use crate::bf16::{gemm_bf16, PackedBf16};
use crate::gemm::{gemm, gemm_from_packed, gemm_into_packed, resize_scratch, Epilogue, PackedB};
use crate::int8::{gemm_i8, Int8Scratch, PackedI8};
use crate::{ops, Activation, Isa, Precision};

/// A weight matrix packed for one precision's kernels.
#[derive(Debug)]
enum Packed {
    F32(PackedB),
    Bf16(PackedBf16),
    Int8(PackedI8),
}

/// A linear layer `y = x·W + b` with `W` packed for the kernels.
#[derive(Debug)]
pub struct Dense {
    weight: Packed,
    bias: Option<Vec<f32>>,
    k: usize,
    n: usize,
}

/// Reusable buffers for the packed activations.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    f32: Vec<f32>,
    u32: Vec<u32>,
    int8: Int8Scratch,
}

/// Every buffer of one forward pass. A tower keeps the last one for the next call: fresh
/// allocations of this size cost page faults and zeroing on every call (about 5% of a
/// batch-32 ViT-B/32 pass), at the price of holding the largest batch's activations (about
/// 90 MB for 32 images of ViT-B/32) while the tower lives.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub(crate) x: Vec<f32>,
    pub(crate) h: Vec<f32>,
    pub(crate) qkv: Vec<f32>,
    pub(crate) ctx: Vec<f32>,
    pub(crate) f: Vec<f32>,
    pub(crate) tmp: Vec<f32>,
    pub(crate) scratch: Scratch,
}

/// A buffer of `len` values with unspecified contents (every user overwrites it fully).
pub(crate) fn buffer(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    resize_scratch(v, len);
    v
}

/// The workspace a tower keeps between calls (one; concurrent callers make their own).
#[derive(Debug, Default)]
pub(crate) struct Pool(std::sync::Mutex<Option<Workspace>>);

impl Pool {
    pub(crate) fn take(&self) -> Workspace {
        self.0
            .lock()
            .map(|mut w| w.take())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub(crate) fn put(&self, workspace: Workspace) {
        if let Ok(mut w) = self.0.lock() {
            *w = Some(workspace);
        }
    }
}

impl Dense {
    /// A layer from `w` `[k, n]` row-major (inputs × outputs).
    ///
    /// # Panics
    /// If `w.len() != k * n` or the bias is not `n` long.
    pub fn from_rows(
        w: &[f32],
        k: usize,
        n: usize,
        bias: Option<Vec<f32>>,
        precision: Precision,
    ) -> Self {
        assert_eq!(w.len(), k * n, "weight size");
        let weight = match precision {
            Precision::F32 => Packed::F32(PackedB::from_rows(w, k, n, n)),
            Precision::Bf16 => Packed::Bf16(PackedBf16::from_rows(w, k, n, n)),
            Precision::Int8 => Packed::Int8(PackedI8::from_fn(k, n, |r, c| w[r * n + c])),
        };
        Self::with_weight(weight, bias, k, n)
    }

    /// A layer from PyTorch's `nn.Linear` layout: `w` is `[d_out, d_in]` row-major, packed
    /// as the transposed operand directly (no transpose pass).
    ///
    /// # Panics
    /// If `w.len() != d_in * d_out` or the bias is not `d_out` long.
    pub fn from_torch(
        w: &[f32],
        d_in: usize,
        d_out: usize,
        bias: Option<Vec<f32>>,
        precision: Precision,
    ) -> Self {
        assert_eq!(w.len(), d_in * d_out, "weight size");
        let weight = match precision {
            Precision::F32 => Packed::F32(PackedB::from_transposed(w, d_in, d_out, d_in)),
            Precision::Bf16 => {
                Packed::Bf16(PackedBf16::from_fn(d_in, d_out, |k, n| w[n * d_in + k]))
            }
            Precision::Int8 => Packed::Int8(PackedI8::from_fn(d_in, d_out, |k, n| w[n * d_in + k])),
        };
        Self::with_weight(weight, bias, d_in, d_out)
    }

    /// The fused query-key-value projection of an attention block from PyTorch's three
    /// `[d, d]` projections and their biases: `[d, 3d]`, queries scaled by `head_dim^-½` (the
    /// attention's scale folded into the weights), then keys, then values.
    ///
    /// # Panics
    /// If a weight is not `d × d` or a bias not `d` long.
    pub fn fused_qkv(
        weights: [&[f32]; 3],
        biases: [&[f32]; 3],
        d: usize,
        heads: usize,
        precision: Precision,
    ) -> Self {
        let [q, k, v] = weights;
        assert!(weights.iter().all(|w| w.len() == d * d), "projection size");
        assert!(biases.iter().all(|b| b.len() == d), "bias size");
        let scale = ((d / heads) as f32).powf(-0.5);
        let mut bias: Vec<f32> = biases[0].iter().map(|x| x * scale).collect();
        bias.extend_from_slice(biases[1]);
        bias.extend_from_slice(biases[2]);
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
            Precision::Int8 => Packed::Int8(PackedI8::from_fn(d, 3 * d, get)),
        };
        Self::with_weight(weight, Some(bias), d, 3 * d)
    }

    fn with_weight(weight: Packed, bias: Option<Vec<f32>>, k: usize, n: usize) -> Self {
        if let Some(b) = &bias {
            assert_eq!(b.len(), n, "bias size");
        }
        Self { weight, bias, k, n }
    }

    /// Inputs (rows of `W`).
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// Outputs (columns of `W`).
    pub fn outputs(&self) -> usize {
        self.n
    }

    /// The bias and activation after the product.
    fn epilogue(&self, act: Option<Activation>) -> Epilogue<'_> {
        match (&self.bias, act) {
            (Some(b), Some(act)) => Epilogue::BiasAct(b, act),
            (Some(b), None) => Epilogue::Bias(b),
            (None, None) => Epilogue::None,
            (None, Some(_)) => unreachable!("activations follow biased layers only"),
        }
    }

    /// Whether this layer can hand its output to `next` in the packed layout
    /// ([`Dense::run_into_packed`], [`Dense::run_from_packed`]): both in f32, on a kernel set
    /// of this crate (the portable set multiplies through the `gemm` crate, on rows).
    pub(crate) fn hands_packed_to(&self, next: &Dense, isa: Isa) -> bool {
        isa != Isa::Portable
            && next.k == self.n
            && matches!(
                (&self.weight, &next.weight),
                (Packed::F32(_), Packed::F32(_))
            )
    }

    /// `c = act(a·W + b)` with `c` in the packed layout of a following layer's input
    /// ([`gemm_into_packed`]; `c` holds [`crate::gemm::packed_len`]`(m, n)` floats).
    ///
    /// # Panics
    /// If the weights are not f32 (see [`Dense::hands_packed_to`]).
    pub(crate) fn run_into_packed(
        &self,
        isa: Isa,
        a: &[f32],
        m: usize,
        c: &mut [f32],
        act: Option<Activation>,
        scratch: &mut Scratch,
    ) {
        let Packed::F32(w) = &self.weight else {
            panic!("a packed hand-off needs f32 weights");
        };
        let epilogue = self.epilogue(act);
        gemm_into_packed(isa, a, m, self.k, w, c, epilogue, &mut scratch.f32);
    }

    /// [`Dense::run`] on an `a` in the packed layout ([`Dense::run_into_packed`]'s output).
    ///
    /// # Panics
    /// If the weights are not f32 (see [`Dense::hands_packed_to`]).
    pub(crate) fn run_from_packed(
        &self,
        isa: Isa,
        packed_a: &[f32],
        m: usize,
        c: &mut [f32],
        accumulate: bool,
    ) {
        let Packed::F32(w) = &self.weight else {
            panic!("a packed hand-off needs f32 weights");
        };
        let epilogue = self.epilogue(None);
        gemm_from_packed(isa, packed_a, m, w, c, self.n, accumulate, epilogue);
    }

    /// `c = a·W + b` (`c += …` with `accumulate`), then `act`; `a` is `[m, k]`, `c` `[m, n]`,
    /// both contiguous.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &self,
        isa: Isa,
        a: &[f32],
        m: usize,
        c: &mut [f32],
        accumulate: bool,
        act: Option<Activation>,
        scratch: &mut Scratch,
    ) {
        let epilogue = self.epilogue(act);
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
            Packed::Int8(w) => gemm_i8(isa, a, m, w, c, accumulate, epilogue, &mut scratch.int8),
        }
    }
}

/// A layer norm's parameters.
#[derive(Debug)]
pub struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// A layer norm with scale `gamma`, shift `beta` and `eps`.
    ///
    /// # Panics
    /// If `gamma` and `beta` differ in length.
    pub fn new(gamma: Vec<f32>, beta: Vec<f32>, eps: f64) -> Self {
        assert_eq!(gamma.len(), beta.len(), "layer norm sizes");
        Self {
            gamma,
            beta,
            eps: eps as f32,
        }
    }

    pub(crate) fn run(&self, x: &[f32], out: &mut [f32]) {
        ops::layer_norm(x, out, &self.gamma, &self.beta, self.eps);
    }
}

/// Projection and L2 normalisation of pooled states.
pub(crate) fn project(
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
