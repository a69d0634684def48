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
    /// About 1.8× as fast as f32 on an AMD Zen 4, but measured 0.63–0.74× f32 on an Intel Xeon
    /// with AVX-512 BF16 (family 6 model 207; `docs/PERFORMANCE.md`); cosine ≥ 0.999 to f32
    /// embeddings. Without AVX-512 BF16 the kernels widen the
    /// pairs in registers and run slower than f32, so the encoder runs f32 there instead
    /// ([`Precision::runs_on`]).
    Bf16,
    /// int8 weights (one scale per output channel), activations quantised per row to u8 at
    /// matrix-product inputs, exact i32 sums (`vpdpbusd`: AVX-512 VNNI or AVX-VNNI; plain
    /// loops elsewhere, correct but slow), see [`crate::int8`]. A quarter of the f32 weight
    /// memory; layer norms, softmax, residuals and the attention products stay in f32.
    Int8,
}

impl Precision {
    /// The precision that runs when `self` is asked for on the kernel set `isa`: bf16 only
    /// where the CPU multiplies bf16 pairs natively ([`Isa::Avx512Bf16`]). Elsewhere the bf16
    /// kernels widen the pairs to f32 in registers and are slower than the f32 ones (0.56× on
    /// an AVX-512 Xeon without BF16, issue 15; ~0.6× on the AVX2 set), so f32 runs: never
    /// slower, at twice the weight memory. Likewise int8 runs only where the CPU has VNNI dot
    /// products under `isa` ([`crate::int8::Int8Kernel::for_isa`]): the portable int8 loops
    /// are correct but 40–100× slower than f32, so f32 runs instead.
    ///
    /// ```
    /// use glimpse_kernels::{Isa, Precision};
    /// assert_eq!(Precision::Bf16.runs_on(Isa::Avx2), Precision::F32);
    /// assert_eq!(Precision::Bf16.runs_on(Isa::Avx512Bf16), Precision::Bf16);
    /// assert_eq!(Precision::F32.runs_on(Isa::Avx512Bf16), Precision::F32);
    /// ```
    pub fn runs_on(self, isa: Isa) -> Precision {
        match self {
            Precision::Bf16 if isa != Isa::Avx512Bf16 => Precision::F32,
            Precision::Int8
                if crate::int8::Int8Kernel::for_isa(isa) == crate::int8::Int8Kernel::Portable =>
            {
                Precision::F32
            }
            other => other,
        }
    }
}

/// The instruction set the native kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, vectorised by the compiler for the build's baseline target.
    Portable,
    /// AVX2 + FMA (x86-64-v3: Intel since Haswell, AMD since Zen 1, the laptops and desktops
    /// without AVX-512): 6 × 16 f32 sub-tiles in ymm registers, bf16 widened in registers.
    Avx2,
    /// AVX-512F/BW/DQ/VL (f32 kernels; bf16 widened to f32 in registers, at about the f32
    /// rate).
    Avx512,
    /// AVX-512 plus AVX-512 BF16 (`vdpbf16ps`).
    Avx512Bf16,
}

impl Isa {
    /// The best instruction set of this CPU, capped by the environment variable
    /// `GLIMPSE_ISA` (`portable`, `avx2`, `avx512` or `avx512bf16`) when it is set, so that an
    /// AVX-512 machine can test and time the AVX2 and portable kernels. Detected once, then
    /// cached. A cap above what the CPU has changes nothing; an unknown value is ignored
    /// (with a message on stderr).
    pub fn detect() -> Isa {
        use std::sync::OnceLock;
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let hw = Isa::hardware();
            match std::env::var("GLIMPSE_ISA") {
                Ok(cap) if cap.trim().is_empty() => hw,
                Ok(cap) => match Isa::parse(&cap) {
                    Some(cap) => hw.min(cap),
                    None => {
                        eprintln!(
                            "glimpse: GLIMPSE_ISA={cap:?} is not one of portable, avx2, avx512, \
                             avx512bf16; ignored"
                        );
                        hw
                    }
                },
                Err(_) => hw,
            }
        })
    }

    /// The best instruction set of this CPU, ignoring `GLIMPSE_ISA`.
    pub fn hardware() -> Isa {
        use std::sync::OnceLock;
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(detect_uncached)
    }

    /// Parses a name as `GLIMPSE_ISA` takes it (case-insensitive).
    pub fn parse(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Isa::Portable),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            "avx512bf16" | "avx512_bf16" => Some(Isa::Avx512Bf16),
            _ => None,
        }
    }

    /// Every kernel set that can run here, up to [`Isa::detect`] (so `GLIMPSE_ISA` also caps
    /// it), lowest first: what the tests run.
    pub fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16]
            .into_iter()
            .filter(|&i| i <= Isa::detect())
            .collect()
    }

    /// Whether these are hand-vectorised kernels (AVX2 or AVX-512), i.e. not the portable
    /// fallback: where the native engine beats burn's `flex` backend.
    pub fn vectorised(self) -> bool {
        self != Isa::Portable
    }

    /// Whether the AVX2 + FMA kernels (or better) can run.
    pub fn avx2(self) -> bool {
        self >= Isa::Avx2
    }

    /// Whether the AVX-512 kernels can run.
    pub fn avx512(self) -> bool {
        self >= Isa::Avx512
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
        if self.avx512() && Isa::hardware().avx512() {
            return pick!(kernel_f32_avx512);
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2() && Isa::hardware().avx2() {
            return pick!(kernel_f32_avx2);
        }
        pick!(kernel_f32_portable)
    }

    pub(crate) fn bf16_kernel(self, block: usize) -> Kernel<u32> {
        #[cfg(target_arch = "x86_64")]
        macro_rules! pick_gemm {
            ($k:ident) => {
                match block {
                    gemm::KC_SMALL => gemm::$k::<{ gemm::KC_SMALL }>,
                    _ => gemm::$k::<{ gemm::KC_UNITS }>,
                }
            };
        }
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
        if self == Isa::Avx512Bf16 && Isa::hardware() == Isa::Avx512Bf16 {
            return pick!(kernel_bf16_avx512);
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx512() && Isa::hardware().avx512() {
            return pick!(kernel_bf16_avx512f);
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2() && Isa::hardware().avx2() {
            return pick_gemm!(kernel_bf16_avx2);
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
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}
