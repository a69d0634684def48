//! Choosing the compute backend at run time.
//!
//! burn 0.22 tensors carry no backend type parameter: the backend lives in the [`Device`], so
//! the model code is the same for every backend and the choice is a value. Cargo features decide
//! which backends are compiled in:
//!
//! | feature | [`Backend`] | device |
//! |---|---|---|
//! | `flex` (default) | [`Backend::Flex`] | burn's pure-Rust CPU backend, SIMD + rayon |
//! | `wgpu` | [`Backend::Wgpu`] | GPU compute through wgpu (Vulkan, Metal, DX12; Mesa's lavapipe in CI) |
//!
//! Asking for a backend that is not compiled in, or for wgpu on a machine without a usable
//! adapter, returns [`Error::BackendUnavailable`]: initialisation goes through burn's fallible
//! `Device::wgpu_options().init()`, never through the lazy constructor that panics on a worker
//! thread. On Linux the wgpu device is pinned to Vulkan: the only other adapter there is
//! OpenGL (llvmpipe), which deadlocks on model-sized work.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// burn's Flex CPU backend (`cpu` and `flex` parse to it).
    Flex,
    /// burn's wgpu GPU backend (`wgpu` and `gpu` parse to it).
    Wgpu,
}

impl Backend {
    /// Every backend this build was compiled with, CPU first.
    pub fn compiled() -> Vec<Backend> {
        [Backend::Flex, Backend::Wgpu]
            .into_iter()
            .filter(|b| b.is_compiled())
            .collect()
    }

    /// Whether this build includes the backend (its Cargo feature was enabled).
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backend's name: `flex` or `wgpu`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Initialises the backend and returns its device.
    ///
    /// The wgpu runtime is initialised once per process; later calls return the same device
    /// (or the same error).
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] if the backend's feature is not compiled in or (wgpu) no
    /// adapter could be acquired.
    pub fn device(self) -> Result<Device> {
        match self {
            Backend::Flex => flex_device(),
            Backend::Wgpu => wgpu_device(),
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

    /// Parses `cpu`/`flex` or `wgpu`/`gpu` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" | "flex" => Ok(Backend::Flex),
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            _ => Err(Error::InvalidInput(format!(
                "unknown backend `{s}` (expected cpu, flex, wgpu or gpu)"
            ))),
        }
    }
}

#[cfg(feature = "flex")]
fn flex_device() -> Result<Device> {
    Ok(Device::flex())
}

#[cfg(not(feature = "flex"))]
fn flex_device() -> Result<Device> {
    Err(Error::BackendUnavailable {
        backend: "flex",
        reason: "glimpse-encoder was built without the `flex` feature".into(),
    })
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    use std::sync::OnceLock;

    // burn refuses to initialise the same runtime twice: remember the outcome.
    static DEVICE: OnceLock<std::result::Result<Device, String>> = OnceLock::new();
    let outcome = DEVICE.get_or_init(|| {
        let options = Device::wgpu_options();
        #[cfg(target_os = "linux")]
        let options = options.graphics_api(burn::tensor::wgpu::WgpuBackend::Vulkan);
        // A driver that panics while probing must not take the caller down with it.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| options.init())) {
            Ok(Ok(device)) => Ok(device),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the wgpu runtime panicked during initialisation".into()),
        }
    });
    outcome.clone().map_err(|reason| Error::BackendUnavailable {
        backend: "wgpu",
        reason,
    })
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    Err(Error::BackendUnavailable {
        backend: "wgpu",
        reason: "glimpse-encoder was built without the `wgpu` feature".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!("cpu".parse::<Backend>().unwrap(), Backend::Flex);
        assert_eq!("WGPU".parse::<Backend>().unwrap(), Backend::Wgpu);
        assert!(matches!(
            "cuda".parse::<Backend>(),
            Err(Error::InvalidInput(_))
        ));
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn uncompiled_backend_is_a_typed_error() {
        assert!(matches!(
            Backend::Wgpu.device(),
            Err(Error::BackendUnavailable {
                backend: "wgpu",
                ..
            })
        ));
    }
}
