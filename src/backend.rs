//! The encoder settings a [`LibraryBuilder`](crate::LibraryBuilder) takes: compute backend and
//! arithmetic precision.
//!
//! These are the facade's own types, not re-exports of `glimpse-encoder`'s: the encoder's
//! `Backend` hands out burn devices, which must stay out of Glimpse's API (a burn upgrade would
//! otherwise be a breaking change of `glimpse`). They convert to the encoder's types inside the
//! crate.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A compute backend for the CLIP encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The CPU: the native AVX-512 kernels where the CPU has them, burn's Flex backend
    /// otherwise (`cpu` and `flex` parse to it).
    Flex,
    /// GPU compute through wgpu: Vulkan, Metal, DX12 (`wgpu` and `gpu` parse to it; needs the
    /// `wgpu` feature).
    Wgpu,
}

impl Backend {
    /// Every backend this build was compiled with, CPU first.
    pub fn compiled() -> Vec<Backend> {
        glimpse_encoder::Backend::compiled()
            .into_iter()
            .map(Backend::from_encoder)
            .collect()
    }

    /// Whether this build includes the backend (its Cargo feature was enabled).
    pub fn is_compiled(self) -> bool {
        self.to_encoder().is_compiled()
    }

    /// The backend's name: `flex` or `wgpu`.
    pub fn name(self) -> &'static str {
        self.to_encoder().name()
    }

    pub(crate) fn to_encoder(self) -> glimpse_encoder::Backend {
        match self {
            Backend::Flex => glimpse_encoder::Backend::Flex,
            Backend::Wgpu => glimpse_encoder::Backend::Wgpu,
        }
    }

    fn from_encoder(backend: glimpse_encoder::Backend) -> Backend {
        match backend {
            glimpse_encoder::Backend::Flex => Backend::Flex,
            glimpse_encoder::Backend::Wgpu => Backend::Wgpu,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    /// Parses `cpu`/`flex` or `wgpu`/`gpu` (case-insensitive); anything else is
    /// [`Error::Encoder`] with [`EncoderError::InvalidInput`](crate::EncoderError::InvalidInput).
    fn from_str(s: &str) -> Result<Self> {
        Ok(Backend::from_encoder(s.parse()?))
    }
}

/// Arithmetic precision of the CPU encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Precision {
    /// f32 weights and arithmetic (reproduces `transformers`).
    #[default]
    F32,
    /// bf16 weights, activations rounded to bf16 at matrix-product inputs, f32 accumulation.
    /// About 1.8× as fast as f32 on an AMD Zen 4, but measured 0.63–0.74× f32 on an Intel Xeon
    /// with AVX-512 BF16 (see `docs/PERFORMANCE.md`: measure on your CPU); cosine ≥ 0.999 to
    /// f32 embeddings. Without AVX-512 BF16 the encoder runs f32 instead (same speed, no
    /// memory saving).
    Bf16,
    /// int8 weights (one scale per output channel), activations quantised per row at
    /// matrix-product inputs, exact integer sums with VNNI dot products (AVX-512 VNNI or
    /// AVX-VNNI; without them the encoder runs f32 instead). Opt-in: the fastest
    /// queries and image indexing, embeddings within cosine 0.998 of f32 (see
    /// `docs/PERFORMANCE.md` for the retrieval effect measured).
    Int8,
}

impl Precision {
    pub(crate) fn to_encoder(self) -> glimpse_encoder::Precision {
        match self {
            Precision::F32 => glimpse_encoder::Precision::F32,
            Precision::Bf16 => glimpse_encoder::Precision::Bf16,
            Precision::Int8 => glimpse_encoder::Precision::Int8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_round_trip_through_the_encoders() {
        for b in [Backend::Flex, Backend::Wgpu] {
            assert_eq!(Backend::from_encoder(b.to_encoder()), b);
            assert_eq!(b.name(), b.to_encoder().name());
            assert_eq!(b.is_compiled(), b.to_encoder().is_compiled());
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert_eq!("CPU".parse::<Backend>().unwrap(), Backend::Flex);
        assert_eq!("gpu".parse::<Backend>().unwrap(), Backend::Wgpu);
        assert!(matches!(
            "tpu".parse::<Backend>(),
            Err(Error::Encoder(crate::EncoderError::InvalidInput(_)))
        ));
        assert!(Backend::compiled().iter().all(|b| b.is_compiled()));
        assert_eq!(
            Precision::default().to_encoder(),
            glimpse_encoder::Precision::F32
        );
        assert_eq!(
            Precision::Bf16.to_encoder(),
            glimpse_encoder::Precision::Bf16
        );
        assert_eq!(
            Precision::Int8.to_encoder(),
            glimpse_encoder::Precision::Int8
        );
    }
}
