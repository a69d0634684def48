//! Glimpse's native CPU engine: the transformer towers as plain loops over packed weights, on
//! plain slices, with an AVX-512 GEMM (f32, or bf16 through `vdpbf16ps`) and fused
//! element-wise operations. No burn, no model files: the model crate (`glimpse-encoder`)
//! reads a checkpoint and hands the weights over as slices.
//!
//! ```
//! use glimpse_kernels::{Activation, Dense, Isa, Layer, NativeText, Norm, Precision, Stack};
//! use glimpse_kernels::{TextPooling, TextWeights, TokenTable};
//!
//! // A one-layer text tower, width 8, two heads, vocabulary 10, context 4, embedding 6.
//! let (d, heads, vocab, context, dim) = (8, 2, 10, 4, 6);
//! let w = |n: usize, seed: usize| -> Vec<f32> {
//!     (0..n).map(|i| (((i * 31 + seed * 17) % 13) as f32 - 6.0) / 10.0).collect()
//! };
//! let p = Precision::F32;
//! let norm = || Norm::new(vec![1.0; d], vec![0.0; d], 1e-5);
//! let (q, k, v) = (w(d * d, 1), w(d * d, 2), w(d * d, 3));
//! let zeros = vec![0.0; d];
//! let layer = Layer {
//!     ln1: norm(),
//!     qkv: Dense::fused_qkv([&q, &k, &v], [&zeros, &zeros, &zeros], d, heads, p),
//!     out: Dense::from_torch(&w(d * d, 4), d, d, Some(vec![0.0; d]), p),
//!     ln2: norm(),
//!     fc1: Dense::from_torch(&w(4 * d * d, 5), d, 4 * d, Some(vec![0.0; 4 * d]), p),
//!     fc2: Dense::from_torch(&w(4 * d * d, 6), 4 * d, d, Some(vec![0.0; d]), p),
//! };
//! let text = NativeText::new(
//!     TextWeights {
//!         vocab,
//!         context,
//!         pooling: TextPooling::EndOfText { eos_token_id: 9 },
//!         tokens: TokenTable::Owned(w(vocab * d, 7)),
//!         positions: w(context * d, 8),
//!         stack: Stack::new(vec![layer], d, heads, Activation::QuickGelu),
//!         final_ln: norm(),
//!         projection: Dense::from_torch(&w(dim * d, 9), d, dim, None, p),
//!     },
//!     Isa::detect(),
//! );
//! let embeddings = text.encode(&[vec![1u32, 5, 9], vec![1, 9]]).unwrap();
//! assert_eq!(embeddings.len(), 2 * dim);
//! let norm0: f32 = embeddings[..dim].iter().map(|x| x * x).sum();
//! assert!((norm0 - 1.0).abs() < 1e-4); // unit vectors
//! assert!(text.encode(&[vec![10u32]]).is_err()); // outside the vocabulary
//! ```
//!
//! # Layout
//! - [`gemm`] (f32 packing, the tiled rayon driver, per-ISA microkernels in `gemm/portable.rs`,
//!   `gemm/avx2.rs` and `gemm/avx512.rs`) and [`bf16`] (the bf16 variant); [`ops`]: fused element-wise
//!   operations (layer norm, GELUs, softmax, L2 normalisation).
//! - [`Dense`], [`Norm`]: packed layers; [`Layer`], [`Stack`]: the pre-LN transformer with its
//!   attention; [`NativeVision`] and [`NativeText`]: the two towers.
//! - [`Isa`] (run-time kernel choice) and [`Precision`].
//!
//! # Why not burn's CPU backend here
//! ViT-B/32 costs 8.8 GFLOP per image, nearly all of it in dense matrix products. burn's
//! `flex` backend multiplies through the `gemm` crate, which on stable Rust has no AVX-512
//! kernels (60–68 GFLOP/s on the 2-core Zen 4 this was tuned on, against ~220 for OpenBLAS
//! or PyTorch), and it runs each layer norm, bias, activation and attention permute as a
//! separate pass with its own allocation. This crate packs every weight matrix once, at
//! load, into the panel layout of its microkernel ([`gemm`], [`bf16`]), applies the bias and
//! activation while a tile of the product is still in cache, and runs the whole forward pass
//! ([`NativeVision`], [`NativeText`]) on the caller's rayon pool.
//!
//! # Precision
//! [`Precision::F32`] (the default) computes what the burn path computes, up to the order of
//! f32 additions (1 − cosine below 1e-6 on the test fixtures). [`Precision::Bf16`] stores the
//! weight matrices in bf16 and rounds the activations to bf16 where they enter a matrix
//! product; products accumulate in f32, and layer norms, softmax, residuals and the attention
//! products stay in f32. It halves the weight memory and, on CPUs with AVX-512 BF16, doubles
//! the multiply rate; embeddings stay within cosine 0.999 of f32 (the tests check it).
//!
//! # Where it runs
//! [`Isa::detect`] picks the kernels at run time: AVX-512 (f32, and `vdpbf16ps` where the CPU
//! has AVX-512 BF16), AVX2 + FMA (x86-64-v3: the 6 × 16 ymm microkernels of `gemm/avx2.rs` on
//! the same packed layout, and ymm compilations of the element-wise operations), or the
//! portable kernels (plain Rust for the build's baseline target; correct everywhere, slow).
//! The environment variable `GLIMPSE_ISA=portable|avx2|avx512|avx512bf16` caps the choice, so
//! one AVX-512 machine tests and times every set; [`Isa::available`] lists the sets that run
//! here. `glimpse_encoder::ClipEncoder` uses this engine by default wherever the set is
//! vectorised (AVX2 or better) and keeps burn's `flex` backend only on the portable set.
//! aarch64 compiles (`cargo check --target aarch64-unknown-linux-gnu`) and runs the portable
//! kernels; there is no NEON set yet.

#![deny(missing_docs)]

mod activation;
pub mod bf16;
#[cfg(feature = "blas")]
pub mod blas;
mod dense;
mod error;
pub mod gemm;
pub mod int8;
mod isa;
mod layer;
pub mod ops;
pub mod post_ln;
mod text;
mod vision;

pub use activation::Activation;
pub use dense::{Dense, Norm};
pub use error::{Error, Result};
pub use isa::{Isa, Precision};
pub use layer::{Layer, Stack};
pub use text::{pooled_position, NativeText, TextPooling, TextWeights, TokenTable};
pub use vision::{MapHead, MapHeadTensors, NativeVision, VisionPooling, VisionWeights};
