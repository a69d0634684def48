//! Image preprocessing equal to `transformers`' `CLIPImageProcessor` (PIL backend).
//!
//! A pure-CPU step, separate from the forward pass (it does not touch burn), so a caller can
//! decode and resize the next batch while the model encodes this one:
//!
//! 1. **decode** ([`decode`]): `image` with limits against decompression bombs, then the
//!    reference's RGB conversion (alpha composited onto white, 16-bit handled as Pillow does);
//!    with the `turbojpeg` feature JPEGs go to the system's libjpeg-turbo, as in Pillow (`turbo`);
//! 2. **resize** ([`resize`]): shortest edge to `size`, Pillow's bicubic in 8-bit fixed point,
//!    bit-exact;
//! 3. **center crop** to `crop_size`;
//! 4. **rescale** (`u8 as f64 * rescale_factor`, then `f32`) and **normalise**
//!    (`(x - mean) / std` in `f32`, as NumPy does in the reference), channels first.
//!
//! ```no_run
//! # fn main() -> glimpse_encoder::Result<()> {
//! use glimpse_encoder::preprocess::Preprocessor;
//! let pre = Preprocessor::from_dir("models/clip-vit-base-patch32")?;
//! let pixels = pre.preprocess_path("photo.jpg")?;
//! assert_eq!((pixels.channels(), pixels.height, pixels.width), (3, 224, 224));
//! # Ok(()) }
//! ```

pub mod config;
pub mod decode;
pub mod resize;
#[cfg(feature = "turbojpeg")]
mod turbo;

use std::path::Path;

use image::{DynamicImage, RgbImage};
use rayon::prelude::*;

pub use config::{PreprocessConfig, ResizeTarget};
pub use decode::DecodeOptions;
pub use resize::Filter;

use crate::error::Result;

/// A preprocessed image: `f32` values, channels first (`[3, height, width]`, RGB).
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `3 * height * width` values, plane by plane (R, G, B), row-major within a plane.
    pub data: Vec<f32>,
}

impl Pixels {
    /// The number of channels (always 3).
    pub fn channels(&self) -> usize {
        3
    }

    /// The shape `[3, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [3, self.height, self.width]
    }
}

/// `CLIPImageProcessor` for one checkpoint: a [`PreprocessConfig`] plus decoding limits.
#[derive(Debug, Clone, Default)]
pub struct Preprocessor {
    config: PreprocessConfig,
    decode: DecodeOptions,
}

impl Preprocessor {
    /// A preprocessor with this config and the default [`DecodeOptions`].
    pub fn new(config: PreprocessConfig) -> Self {
        Self {
            config,
            decode: DecodeOptions::default(),
        }
    }

    /// Reads `dir/preprocessor_config.json`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::new(PreprocessConfig::from_dir(dir)?))
    }

    /// Reads a `preprocessor_config.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::new(PreprocessConfig::from_file(path)?))
    }

    /// Replaces the decoding limits and options.
    #[must_use]
    pub fn with_decode_options(mut self, options: DecodeOptions) -> Self {
        self.decode = options;
        self
    }

    /// Turns on reduced-scale decoding of large JPEGs
    /// ([`DecodeOptions::reduced_jpeg_min_side`]) with the smallest side this config's resize
    /// can use without upscaling: `margin` times the resize target (1 = exactly the target; a
    /// larger margin stays closer to the full decode). No effect when the config does not resize.
    #[must_use]
    pub fn with_reduced_jpeg(mut self, margin: u32) -> Self {
        let side = match self.config.size {
            _ if !self.config.do_resize => None,
            config::ResizeTarget::ShortestEdge(n) => Some(n),
            config::ResizeTarget::Exact { height, width } => Some(height.max(width)),
        };
        self.decode.reduced_jpeg_min_side = side.map(|s| s.saturating_mul(margin.max(1)));
        self
    }

    /// The preprocessing config.
    pub fn config(&self) -> &PreprocessConfig {
        &self.config
    }

    /// The decoding limits and options.
    pub fn decode_options(&self) -> &DecodeOptions {
        &self.decode
    }

    /// Decodes and preprocesses an image file.
    pub fn preprocess_path(&self, path: impl AsRef<Path>) -> Result<Pixels> {
        let img = decode::decode_path(path, &self.decode)?;
        Ok(self.preprocess_rgb8(&img))
    }

    /// Decodes and preprocesses an in-memory image file; `label` names it in errors.
    pub fn preprocess_bytes(&self, bytes: &[u8], label: impl AsRef<Path>) -> Result<Pixels> {
        let img = decode::decode_bytes(bytes, label, &self.decode)?;
        Ok(self.preprocess_rgb8(&img))
    }

    /// Preprocesses an already decoded image (converted to RGB as the reference does, see
    /// [`decode::to_rgb8`]; with `do_convert_rgb: false` colour images are still reduced to 8-bit
    /// RGB, since the model needs three channels).
    pub fn preprocess_image(&self, img: DynamicImage) -> Pixels {
        self.preprocess_rgb8(&decode::to_rgb8(img))
    }

    /// Preprocesses an 8-bit RGB image: resize, center crop, rescale, normalise.
    pub fn preprocess_rgb8(&self, img: &RgbImage) -> Pixels {
        let img = self.resize_and_crop(img);
        self.normalize(&img)
    }

    /// The 8-bit steps alone: the resize and the center crop (what the reference feeds to its
    /// rescale and normalisation).
    pub fn resize_and_crop(&self, img: &RgbImage) -> RgbImage {
        let c = &self.config;
        if let (true, true, ResizeTarget::ShortestEdge(s)) =
            (c.do_resize, c.do_center_crop, &c.size)
        {
            // Only the pixels the crop keeps are resized: the long side of a very thin image
            // would otherwise make the resized image unboundedly large.
            let (w, h) = resize::shortest_edge_size(img.width(), img.height(), *s);
            let (ch, cw) = c.crop_size;
            return resize::resize_center_crop_rgb8(
                img,
                (w.max(1), h.max(1)),
                c.resample,
                (cw, ch),
            );
        }
        let resized;
        let mut img = img;
        if c.do_resize {
            let (w, h) = match c.size {
                ResizeTarget::ShortestEdge(s) => {
                    resize::shortest_edge_size(img.width(), img.height(), s)
                }
                ResizeTarget::Exact { height, width } => (width, height),
            };
            resized = resize::resize_rgb8(img, w.max(1), h.max(1), c.resample);
            img = &resized;
        }
        if c.do_center_crop {
            let (ch, cw) = c.crop_size;
            resize::center_crop_rgb8(img, ch, cw)
        } else {
            img.clone()
        }
    }

    /// Rescale and normalise an 8-bit RGB image into channels-first `f32`, with the reference's
    /// arithmetic: `x = (u8 as f64 * rescale_factor) as f32`, then `(x - mean as f32) / std as
    /// f32` in `f32`.
    pub fn normalize(&self, img: &RgbImage) -> Pixels {
        let c = &self.config;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let plane = w * h;
        let mut data = vec![0f32; 3 * plane];
        // All 256 possible results per channel, computed once.
        let mut lut = [[0f32; 256]; 3];
        for (ch, table) in lut.iter_mut().enumerate() {
            let mean = c.image_mean[ch] as f32;
            let std = c.image_std[ch] as f32;
            for (v, out) in table.iter_mut().enumerate() {
                let mut x = if c.do_rescale {
                    (v as f64 * c.rescale_factor) as f32
                } else {
                    v as f32
                };
                if c.do_normalize {
                    x = (x - mean) / std;
                }
                *out = x;
            }
        }
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            for ch in 0..3 {
                data[ch * plane + i] = lut[ch][px[ch] as usize];
            }
        }
        Pixels {
            height: h,
            width: w,
            data,
        }
    }

    /// Preprocesses many files in parallel (rayon); one result per path, in order.
    pub fn preprocess_paths<P: AsRef<Path> + Sync>(&self, paths: &[P]) -> Vec<Result<Pixels>> {
        paths.par_iter().map(|p| self.preprocess_path(p)).collect()
    }

    /// Preprocesses several in-memory files in parallel (rayon); `(label, bytes)` pairs, one
    /// result per pair, in order.
    pub fn preprocess_bytes_batch<L, B>(&self, inputs: &[(L, B)]) -> Vec<Result<Pixels>>
    where
        L: AsRef<Path> + Sync,
        B: AsRef<[u8]> + Sync,
    {
        inputs
            .par_iter()
            .map(|(label, bytes)| self.preprocess_bytes(bytes.as_ref(), label))
            .collect()
    }
}
