//! JPEG decoding through the system's libjpeg-turbo (feature `turbojpeg`).
//!
//! Pillow decodes JPEGs with libjpeg-turbo (`jpeg_read_scanlines`, the default "islow" integer
//! inverse DCT and fancy upsampling); TurboJPEG's `tjDecompress2` with no flags runs the same
//! code, so the pixels equal `Image.open(p).convert("RGB")` byte for byte (checked against
//! Pillow's output by `tests/turbojpeg_parity.rs`). Asked for a smaller output, it scales in
//! the inverse DCT exactly as Pillow's `Image.draft` does.
//!
//! Only YCbCr, RGB and greyscale JPEGs are decoded here; CMYK/YCCK files, anything TurboJPEG
//! reports an error or a warning for, and sizes that disagree with the header already checked
//! against the limits return `None`, and the caller decodes them with the pure-Rust decoders,
//! which report errors as usual.
//!
//! `GLIMPSE_TURBOJPEG=0` in the environment turns this decoder off for the process (read once),
//! so one build can time both decoders (`examples/bench_folder.rs`).

use std::cell::RefCell;

use image::{DynamicImage, GrayImage, RgbImage};
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};

/// Whether JPEGs go to libjpeg-turbo in this process (`GLIMPSE_TURBOJPEG=0` says no).
pub(crate) fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| !matches!(std::env::var("GLIMPSE_TURBOJPEG").as_deref(), Ok("0")))
}

thread_local! {
    /// One TurboJPEG handle per thread, made on first use.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// The size libjpeg gives a `size` image scaled by `num/8` (`TJSCALED`: rounded up).
fn scaled((w, h): (u32, u32), num: u32) -> (u32, u32) {
    ((w * num).div_ceil(8), (h * num).div_ceil(8))
}

/// Decodes a JPEG of `size` (as its header declares) into exactly `out` pixels: `out == size`
/// for the full decode, or one of libjpeg's 1/2, 1/4, 1/8 scales of it. `None` when TurboJPEG
/// cannot or should not decode this file (see the module docs).
pub(crate) fn decode(bytes: &[u8], size: (u32, u32), out: (u32, u32)) -> Option<DynamicImage> {
    if !enabled() {
        return None;
    }
    let num = [8, 4, 2, 1].into_iter().find(|&n| scaled(size, n) == out)?;
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.try_borrow_mut().ok()?;
        if cell.is_none() {
            *cell = Some(Decompressor::new().ok()?);
        }
        let d = cell.as_mut()?;
        let header = d.read_header(bytes).ok()?;
        if (header.width as u32, header.height as u32) != size {
            return None;
        }
        let (format, channels) = match header.colorspace {
            Colorspace::YCbCr | Colorspace::RGB => (PixelFormat::RGB, 3),
            Colorspace::Gray => (PixelFormat::GRAY, 1),
            _ => return None,
        };
        let (w, h) = (out.0 as usize, out.1 as usize);
        let mut pixels = vec![0u8; w * h * channels];
        let image = Image {
            pixels: pixels.as_mut_slice(),
            width: w,
            pitch: w * channels,
            height: h,
            format,
        };
        // tjDecompress2 picks the largest scale whose output fits `out`: `num`/8.
        debug_assert_eq!(scaled(size, num), out);
        d.decompress(bytes, image).ok()?;
        match channels {
            3 => RgbImage::from_raw(out.0, out.1, pixels).map(DynamicImage::ImageRgb8),
            _ => GrayImage::from_raw(out.0, out.1, pixels).map(DynamicImage::ImageLuma8),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_sizes_round_up_like_libjpeg() {
        assert_eq!(scaled((4000, 3000), 8), (4000, 3000));
        assert_eq!(scaled((4000, 3000), 2), (1000, 750));
        assert_eq!(scaled((97, 61), 1), (13, 8));
        assert_eq!(scaled((97, 61), 4), (49, 31));
    }

    #[test]
    fn a_size_that_is_no_libjpeg_scale_is_refused() {
        // Not a JPEG either, but the scale is checked first.
        assert!(decode(b"", (4000, 3000), (1001, 750)).is_none());
    }
}
