//! Which instruction set the kernels use ([`Isa`]) and in which precision ([`Precision`]).

use crate::bf16;
use crate::gemm::{self, Kernel};

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
