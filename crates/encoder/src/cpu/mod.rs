//! The native CPU inference path: both towers as plain loops over packed weights, with an
//! AVX-512 GEMM (f32, or bf16 through `vdpbf16ps`) and fused element-wise operations.
//!
//! # Why not burn's CPU backend here
//! ViT-B/32 costs 8.8 GFLOP per image, nearly all of it in dense matrix products. burn's
//! `flex` backend multiplies through the `gemm` crate, which on stable Rust has no AVX-512
//! kernels (60–68 GFLOP/s on the 2-core Zen 4 this was tuned on, against ~220 for OpenBLAS
//! or PyTorch), and it runs each layer norm, bias, activation and attention permute as a
//! separate pass with its own allocation. This module packs every weight matrix once, at
//! load, into the panel layout of its microkernel ([`gemm`], [`bf16`]), applies the bias and
//! activation while a tile of the product is still in cache, and runs the whole forward pass
//! ([`forward`]) on the caller's rayon pool.
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
//! [`Isa::detect`] picks the kernels at run time. Without AVX-512F the
//! [`crate::ClipEncoder`] keeps the burn path by default: the portable kernels here are plain
//! Rust vectorised for the build's baseline target (about 21 GFLOP/s per core with SSE2 on
//! the Zen 4 above, against ~30 for the `gemm` crate's runtime-dispatched AVX2 kernels). They
//! still make the native path correct everywhere ([`crate::Engine::Native`]), and the tests run
//! them on every machine.

pub mod bf16;
pub mod forward;
pub mod gemm;
pub mod ops;

pub use forward::{NativeText, NativeVision};

use gemm::Kernel;

/// Numeric precision of the native path's matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    /// f32 weights and arithmetic (matches the burn path and `transformers`).
    #[default]
    F32,
    /// bf16 weights, activations rounded to bf16 at matrix-product inputs, f32 accumulation.
    /// About twice as fast as f32 on CPUs with AVX-512 BF16 (Zen 4, Sapphire Rapids and
    /// later); cosine ≥ 0.999 to f32 embeddings. Without AVX-512 BF16 the pairs are widened in
    /// registers and it runs at about two thirds of the f32 rate: it then only saves memory.
    Bf16,
}

/// The instruction set the native kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, vectorised by the compiler for the build's baseline target.
    Portable,
    /// AVX-512F/BW/DQ/VL (f32 kernels; bf16 widened to f32 in registers, at about the f32
    /// rate).
    Avx512,
    /// AVX-512 plus AVX-512 BF16 (`vdpbf16ps`).
    Avx512Bf16,
}

impl Isa {
    /// The best instruction set of this CPU (detected once, then cached).
    pub fn detect() -> Isa {
        use std::sync::OnceLock;
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(detect_uncached)
    }

    /// Whether the AVX-512 kernels can run.
    pub fn avx512(self) -> bool {
        matches!(self, Isa::Avx512 | Isa::Avx512Bf16)
    }

    /// The instruction set for tests: `self`, or the portable kernels if `portable`.
    pub fn or_portable(self, portable: bool) -> Isa {
        if portable {
            Isa::Portable
        } else {
            self
        }
    }

    // The kernels below are chosen only if the CPU has them, whatever `self` claims, so an
    // `Isa` value can never select an instruction the CPU lacks.
    pub(crate) fn f32_kernel(self, block: usize) -> Kernel<f32> {
        macro_rules! pick {
            ($k:ident) => {
                match block {
                    gemm::KC_SMALL => gemm::$k::<{ gemm::KC_SMALL }>,
                    _ => gemm::$k::<{ gemm::KC_UNITS }>,
                }
            };
        }
        debug_assert!(block == gemm::KC_SMALL || block == gemm::KC_UNITS);
        #[cfg(target_arch = "x86_64")]
        if self.avx512() && Isa::detect().avx512() {
            return pick!(kernel_f32_avx512);
        }
        pick!(kernel_f32_portable)
    }

    pub(crate) fn bf16_kernel(self, block: usize) -> Kernel<u32> {
        macro_rules! pick {
            ($k:ident) => {
                match block {
                    gemm::KC_SMALL => bf16::$k::<{ gemm::KC_SMALL }>,
                    _ => bf16::$k::<{ gemm::KC_UNITS }>,
                }
            };
        }
        debug_assert!(block == gemm::KC_SMALL || block == gemm::KC_UNITS);
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Avx512Bf16 && Isa::detect() == Isa::Avx512Bf16 {
            return pick!(kernel_bf16_avx512);
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx512() && Isa::detect().avx512() {
            return pick!(kernel_bf16_avx512f);
        }
        pick!(kernel_bf16_portable)
    }
}

fn detect_uncached() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("fma");
        if avx512 && is_x86_feature_detected!("avx512bf16") {
            return Isa::Avx512Bf16;
        }
        if avx512 {
            return Isa::Avx512;
        }
    }
    Isa::Portable
}
