//! Decoding files into the 8-bit RGB image that `CLIPImageProcessor` (PIL backend) works on.
//!
//! The reference opens the file with `PIL.Image.open` and calls
//! `transformers.image_transforms.convert_to_rgb`, which (transformers 5.24, Pillow 13) does:
//!
//! * an image with an alpha band (RGBA, LA, …) or a `transparency` entry (palette or grey/RGB
//!   PNG with `tRNS`) is converted to RGBA and **alpha-composited onto opaque white** with
//!   Pillow's integer `alpha_composite` — reproduced exactly by [`composite_on_white`];
//! * anything else is `convert("RGB")`: grey replicated, palette expanded;
//! * 16-bit grey PNG/TIFF opens as PIL mode `I;16`, whose conversion to RGB **clips** each sample
//!   to 255 (it is not scaled); 16-bit RGB(A) and grey+alpha open as 8-bit images holding the
//!   **high byte** of each sample.
//!
//! EXIF orientation is *not* applied by the reference; [`DecodeOptions::apply_exif_orientation`]
//! offers it (off by default, so the pixels equal the reference's).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, RgbImage};

use crate::error::{Error, Result};

/// Limits and options for decoding untrusted image files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Largest accepted width or height, in pixels.
    pub max_dimension: u32,
    /// Largest accepted `width * height`. The default is Pillow's decompression-bomb error
    /// threshold (2 × 89 478 485 pixels).
    pub max_pixels: u64,
    /// Largest total allocation the decoder may make, in bytes (the decoded image included).
    pub max_alloc: u64,
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// Rotate/flip according to the EXIF orientation tag. The reference (`CLIPImageProcessor`)
    /// does not, so parity needs this off; photo libraries usually want it on.
    pub apply_exif_orientation: bool,
    /// Decode large JPEGs at a reduced scale: when set to `Some(side)`, a JPEG whose shorter
    /// side is at least twice `side` is decoded by the JPEG's own scaled inverse DCT at the
    /// smallest of 1/2, 1/4, 1/8 that keeps its shorter side at least `side` pixels. A 12 MP
    /// photo for a 224-pixel model then decodes 1/16 of the pixels, several times faster. The
    /// pixels differ slightly from the full decode (the resize that follows sees a
    /// pre-filtered image); `None` (the default) decodes every pixel, as the reference does.
    pub reduced_jpeg_min_side: Option<u32>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_dimension: 65_535,
            max_pixels: 2 * 89_478_485,
            max_alloc: 2 << 30,
            max_file_bytes: 1 << 30,
            apply_exif_orientation: false,
            reduced_jpeg_min_side: None,
        }
    }
}

/// Reads and decodes an image file into the reference's 8-bit RGB image.
///
/// Errors: [`Error::Io`] (cannot read), [`Error::EmptyImage`], [`Error::UnsupportedImage`]
/// (not an image, whatever its extension), [`Error::ImageTooLarge`] (declared size beyond the
/// limits, detected from the header before any pixel buffer is allocated),
/// [`Error::ImageDecode`] (corrupt or truncated). All name the path.
pub fn decode_path(path: impl AsRef<Path>, options: &DecodeOptions) -> Result<RgbImage> {
    let path = path.as_ref();
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io_err)?.len();
    if len > options.max_file_bytes {
        return Err(Error::ImageTooLarge {
            path: path.to_path_buf(),
            message: format!("file is {len} bytes, limit {}", options.max_file_bytes),
        });
    }
    let bytes = std::fs::read(path).map_err(io_err)?;
    decode_bytes(&bytes, path, options)
}

/// Decodes an in-memory image file into the reference's 8-bit RGB image; `label` names it in
/// errors (a path, or e.g. `<memory>`). Errors as [`decode_path`].
pub fn decode_bytes(
    bytes: &[u8],
    label: impl AsRef<Path>,
    options: &DecodeOptions,
) -> Result<RgbImage> {
    Ok(to_rgb8(decode_dynamic(bytes, label, options)?))
}

/// Decodes an in-memory image file without converting it (EXIF orientation applied if asked).
pub fn decode_dynamic(
    bytes: &[u8],
    label: impl AsRef<Path>,
    options: &DecodeOptions,
) -> Result<DynamicImage> {
    let path = label.as_ref().to_path_buf();
    if bytes.is_empty() {
        return Err(Error::EmptyImage { path });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    if reader.format().is_none() {
        return Err(Error::UnsupportedImage { path });
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(options.max_dimension);
    limits.max_image_height = Some(options.max_dimension);
    limits.max_alloc = Some(options.max_alloc);
    reader.limits(limits);
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        // The JPEG decoder pads a truncated scan with grey; Pillow refuses such files
        // ("image file is truncated"), and so do we.
        return Err(Error::ImageDecode {
            path,
            message: "truncated JPEG (no end-of-image marker after the last scan)".into(),
        });
    }
    let reader_is_jpeg = reader.format() == Some(image::ImageFormat::Jpeg);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, &path))?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if w > options.max_dimension || h > options.max_dimension || pixels > options.max_pixels {
        return Err(Error::ImageTooLarge {
            path,
            message: format!(
                "declared {w}x{h} ({pixels} pixels), limits {} per side and {} pixels",
                options.max_dimension, options.max_pixels
            ),
        });
    }
    if decoder.total_bytes() > options.max_alloc {
        return Err(Error::ImageTooLarge {
            path,
            message: format!(
                "declared {w}x{h} needs {} bytes, limit {}",
                decoder.total_bytes(),
                options.max_alloc
            ),
        });
    }
    if w == 0 || h == 0 {
        return Err(Error::ImageDecode {
            path,
            message: format!("image has no pixels ({w}x{h})"),
        });
    }
    let orientation = if options.apply_exif_orientation {
        decoder.orientation().ok()
    } else {
        None
    };
    if let Some(side) = options.reduced_jpeg_min_side {
        if reader_is_jpeg && w.min(h) >= side.saturating_mul(2) {
            if let Some(mut img) = decode_jpeg_reduced(bytes, (w, h), side) {
                if let Some(o) = orientation {
                    img.apply_orientation(o);
                }
                return Ok(img);
            }
            // Anything the reduced decoder cannot do (CMYK, 16-bit, damage) takes the full path,
            // which reports errors as usual.
        }
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, &path))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img)
}

/// Decodes a JPEG of `size` with a scaled inverse DCT so that its shorter side stays at least
/// `min_side`; `None` when the file needs the full decoder (CMYK, 16-bit, a decode error).
fn decode_jpeg_reduced(bytes: &[u8], size: (u32, u32), min_side: u32) -> Option<DynamicImage> {
    let (w, h) = size;
    let short = w.min(h);
    // jpeg-decoder picks the smallest scale whose output covers the request.
    let req = |side: u32| {
        let scaled = (u64::from(side) * u64::from(min_side)).div_ceil(u64::from(short));
        u16::try_from(scaled).ok()
    };
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    if (u32::from(info.width), u32::from(info.height)) != (w, h) {
        return None;
    }
    let (sw, sh) = decoder.scale(req(w)?, req(h)?).ok()?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    if sw.min(sh) < min_side {
        return None;
    }
    let data = decoder.decode().ok()?;
    match decoder.info()?.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(sw, sh, data).map(DynamicImage::ImageLuma8)
        }
        _ => None,
    }
}

fn map_image_error(e: ImageError, path: &Path) -> Error {
    let path: PathBuf = path.to_path_buf();
    match e {
        ImageError::Limits(l) => Error::ImageTooLarge {
            path,
            message: l.to_string(),
        },
        ImageError::Unsupported(u) => Error::ImageDecode {
            path,
            message: format!("unsupported: {u}"),
        },
        ImageError::IoError(io) => Error::ImageDecode {
            path,
            message: format!("truncated or unreadable: {io}"),
        },
        other => Error::ImageDecode {
            path,
            message: other.to_string(),
        },
    }
}

/// Walks a JPEG's marker segments and entropy-coded scans; true when an end-of-image marker
/// follows the last scan (data after it, e.g. a motion photo's video, is ignored). Thumbnails in
/// APP segments are skipped with their segment, so their EOI markers do not count.
fn jpeg_is_complete(b: &[u8]) -> bool {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return false;
    }
    let mut pos = 2;
    loop {
        // Expect a marker, allowing fill bytes (0xFF repeated).
        if pos >= b.len() || b[pos] != 0xFF {
            return false;
        }
        while pos < b.len() && b[pos] == 0xFF {
            pos += 1;
        }
        let Some(&m) = b.get(pos) else {
            return false;
        };
        pos += 1;
        match m {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = b
            .get(pos..pos + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        if len < 2 {
            return false;
        }
        pos += len;
        if m == 0xDA {
            // Entropy-coded data: runs until a marker that is neither a stuffed 0xFF00 nor a
            // restart marker.
            loop {
                let Some(off) = b.get(pos..).and_then(|r| r.iter().position(|&x| x == 0xFF)) else {
                    return false;
                };
                pos += off;
                match b.get(pos + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// `transformers`' `convert_to_rgb` on a decoded image, as PIL would see that file: alpha (if
/// any) composited onto white, grey replicated, 16-bit grey clipped to 255, 16-bit colour reduced
/// to its high byte. Float images (not produced by the reference's usual formats) are converted
/// with `image`'s rounding.
pub fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageLuma8(l) => {
            let (w, h) = l.dimensions();
            let raw = l.into_raw().iter().flat_map(|&v| [v, v, v]).collect();
            RgbImage::from_raw(w, h, raw).expect("size")
        }
        DynamicImage::ImageLumaA8(la) => {
            let (w, h) = la.dimensions();
            let raw = la
                .into_raw()
                .chunks_exact(2)
                .flat_map(|p| composite_on_white([p[0], p[0], p[0]], p[1]))
                .collect();
            RgbImage::from_raw(w, h, raw).expect("size")
        }
        DynamicImage::ImageRgba8(rgba) => {
            let (w, h) = rgba.dimensions();
            let raw = rgba
                .into_raw()
                .chunks_exact(4)
                .flat_map(|p| composite_on_white([p[0], p[1], p[2]], p[3]))
                .collect();
            RgbImage::from_raw(w, h, raw).expect("size")
        }
        DynamicImage::ImageLuma16(l) => {
            // PIL mode I;16 -> RGB clips (I16_RGB: values > 255 become 255).
            let (w, h) = l.dimensions();
            let raw = l
                .into_raw()
                .iter()
                .flat_map(|&v| {
                    let v = v.min(255) as u8;
                    [v, v, v]
                })
                .collect();
            RgbImage::from_raw(w, h, raw).expect("size")
        }
        DynamicImage::ImageLumaA16(la) => {
            let (w, h) = la.dimensions();
            let raw = la
                .into_raw()
                .chunks_exact(2)
                .flat_map(|p| {
                    let v = (p[0] >> 8) as u8;
                    composite_on_white([v, v, v], (p[1] >> 8) as u8)
                })
                .collect();
            RgbImage::from_raw(w, h, raw).expect("size")
        }
        DynamicImage::ImageRgb16(rgb) => {
            let (w, h) = rgb.dimensions();
            let raw = rgb.into_raw().iter().map(|&v| (v >> 8) as u8).collect();
            RgbImage::from_raw(w, h, raw).expect("size")
        }
        DynamicImage::ImageRgba16(rgba) => {
            let (w, h) = rgba.dimensions();
            let raw = rgba
                .into_raw()
                .chunks_exact(4)
                .flat_map(|p| {
                    let c = [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8];
                    composite_on_white(c, (p[3] >> 8) as u8)
                })
                .collect();
            RgbImage::from_raw(w, h, raw).expect("size")
        }
        other if other.color().has_alpha() => to_rgb8(DynamicImage::ImageRgba8(other.to_rgba8())),
        other => other.to_rgb8(),
    }
}

/// Pillow's `Image.alpha_composite(white, pixel)` for one pixel (`AlphaComposite.c`, integer
/// arithmetic with 7 extra bits), as `convert_to_rgb` uses it. With an opaque white background the
/// C code reduces to this; checked against Pillow 13 for all 65 536 (value, alpha) pairs.
#[inline]
pub fn composite_on_white(rgb: [u8; 3], alpha: u8) -> [u8; 3] {
    if alpha == 0 {
        return [255; 3];
    }
    const BITS: u32 = 7;
    let a = u32::from(alpha);
    // blend = 255 * (255 - a); outa255 = a * 255 + blend = 255 * 255
    let outa255 = a * 255 + 255 * (255 - a);
    let coef1 = a * 255 * 255 * (1 << BITS) / outa255;
    let coef2 = 255 * (1 << BITS) - coef1;
    rgb.map(|c| {
        let tmp = u32::from(c) * coef1 + 255 * coef2 + (0x80 << BITS);
        ((((tmp >> 8) + tmp) >> 8) >> BITS) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_matches_pillow_samples() {
        // Values printed by Pillow 13: alpha_composite(white, (c, c, 255 - c, a)).
        assert_eq!(composite_on_white([0, 0, 0], 255), [0, 0, 0]);
        assert_eq!(composite_on_white([10, 200, 77], 255), [10, 200, 77]);
        assert_eq!(composite_on_white([0, 0, 0], 0), [255, 255, 255]);
        assert_eq!(composite_on_white([0, 100, 255], 128), [127, 177, 255]);
        assert_eq!(composite_on_white([0, 0, 0], 1), [254, 254, 254]);
    }

    #[test]
    fn sixteen_bit_grey_clips_like_pil() {
        let l = image::ImageBuffer::from_raw(4, 1, vec![0u16, 255, 256, 65535]).unwrap();
        let rgb = to_rgb8(DynamicImage::ImageLuma16(l));
        assert_eq!(
            rgb.as_raw(),
            &[0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255]
        );
    }

    #[test]
    fn hostile_bytes_are_typed_errors() {
        let o = DecodeOptions::default();
        assert!(matches!(
            decode_bytes(b"", "a.png", &o),
            Err(Error::EmptyImage { .. })
        ));
        assert!(matches!(
            decode_bytes(b"hello, I am text", "a.jpg", &o),
            Err(Error::UnsupportedImage { .. })
        ));
    }
}
