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

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, RgbImage};

use crate::error::{Error, Result};

/// Limits and options for decoding untrusted image files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Largest accepted width or height, in pixels.
    pub max_dimension: u32,
    /// Largest accepted `width * height` of the decoded image (for a JPEG decoded at a reduced
    /// scale, its reduced size). The default is Pillow's decompression-bomb error threshold
    /// (2 × 89 478 485 pixels).
    pub max_pixels: u64,
    /// Largest total allocation the decoder may make, in bytes (the decoded image included).
    pub max_alloc: u64,
    /// Largest accepted file, in bytes ([`decode_path`] checks it before reading).
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
/// Only a regular file is opened (a FIFO, socket or device is [`Error::NotAFile`], so a path
/// that names a pipe never blocks), and its size is checked against
/// [`DecodeOptions::max_file_bytes`] before a byte is read.
///
/// Errors: [`Error::Io`] (cannot read), [`Error::NotAFile`], [`Error::EmptyImage`],
/// [`Error::UnsupportedImage`] (not an image, whatever its extension), [`Error::ImageTooLarge`]
/// (file or declared size beyond the limits, detected before the bytes are read or any pixel
/// buffer is allocated), [`Error::ImageDecode`] (corrupt or truncated). All name the path.
pub fn decode_path(path: impl AsRef<Path>, options: &DecodeOptions) -> Result<RgbImage> {
    let path = path.as_ref();
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind: file_kind(&meta.file_type()),
        });
    }
    let too_large = |len: u64| Error::ImageTooLarge {
        path: path.to_path_buf(),
        message: format!("file is {len} bytes, limit {}", options.max_file_bytes),
    };
    if meta.len() > options.max_file_bytes {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io_err)?
        .take(options.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > options.max_file_bytes {
        return Err(too_large(bytes.len() as u64)); // it grew after the check
    }
    decode_bytes(&bytes, path, options)
}

/// The decoder that JPEGs go to first: `"libjpeg-turbo"` with the `turbojpeg` feature (files
/// it cannot take fall back to the others; `GLIMPSE_TURBOJPEG=0` turns it off), else
/// `"image+jpeg-decoder"`: `image`'s zune-jpeg for full decodes, jpeg-decoder for reduced ones.
pub fn jpeg_decoder() -> &'static str {
    #[cfg(feature = "turbojpeg")]
    if super::turbo::enabled() {
        return "libjpeg-turbo";
    }
    "image+jpeg-decoder"
}

/// What a file that is not a regular file is, in words (`"FIFO"`, `"socket"`, ...).
pub fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_char_device() {
            return "character device";
        }
    }
    if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "regular file"
    } else {
        "special file"
    }
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

/// What an image file's header declares and what decoding it will allocate, known before any
/// pixel buffer exists ([`inspect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// The format the bytes are in.
    pub format: image::ImageFormat,
    /// Declared width.
    pub width: u32,
    /// Declared height.
    pub height: u32,
    /// Width of the decoded image: the declared one, or less for a JPEG decoded at a reduced
    /// scale ([`DecodeOptions::reduced_jpeg_min_side`]).
    pub decoded_width: u32,
    /// Height of the decoded image.
    pub decoded_height: u32,
    /// Bytes of the decoder's output buffer.
    pub decoded_bytes: u64,
    /// Working memory the decoder needs besides its output, where the header tells: a
    /// progressive JPEG keeps every DCT coefficient of the full-size image (2 bytes per pixel
    /// and component), even when it is decoded at a reduced scale.
    pub scratch_bytes: u64,
}

impl Header {
    /// An estimate of the most memory decoding this file and converting it to 8-bit RGB holds
    /// at once: the decoder's output, as much again for a decoder's scratch frame or the EXIF
    /// rotation's copy, and the RGB image. A caller that runs several decodes at a time can
    /// budget them with it.
    pub fn peak_bytes(&self) -> u64 {
        let rgb = 3 * u64::from(self.decoded_width) * u64::from(self.decoded_height);
        self.decoded_bytes
            .saturating_mul(2)
            .saturating_add(rgb)
            .saturating_add(self.scratch_bytes)
            .saturating_add(self.decoded_bytes.min(1 << 20)) // small images: fixed overheads
    }
}

/// Reads an image file's header and checks it against every limit of `options` (the pixel
/// budget applies to the pixels that will be decoded: a large JPEG decoded at a reduced scale
/// counts its reduced size); allocates no pixel buffer. [`decode_dynamic`] makes the same
/// checks. Errors as [`decode_bytes`].
pub fn inspect(bytes: &[u8], label: impl AsRef<Path>, options: &DecodeOptions) -> Result<Header> {
    let path = label.as_ref();
    guard_panics(path, || {
        let (decoder, format) = open_decoder(bytes, path, options)?;
        plan(&decoder, format, bytes, path, options)
    })
}

/// Runs `f`, turning a panic inside a decoder into [`Error::ImageDecode`] for that file: a bug
/// in a third-party decoder costs one image, never the process.
fn guard_panics<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::ImageDecode {
            path: path.to_path_buf(),
            message: format!("the decoder panicked: {message}"),
        })
    })
}

/// The format's decoder over `bytes`, with `options`' limits set, its header read.
fn open_decoder<'a>(
    bytes: &'a [u8],
    path: &Path,
    options: &DecodeOptions,
) -> Result<(impl ImageDecoder + 'a, image::ImageFormat)> {
    if bytes.is_empty() {
        return Err(Error::EmptyImage {
            path: path.to_path_buf(),
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let Some(format) = reader.format() else {
        return Err(Error::UnsupportedImage {
            path: path.to_path_buf(),
        });
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(options.max_dimension);
    limits.max_image_height = Some(options.max_dimension);
    limits.max_alloc = Some(options.max_alloc);
    reader.limits(limits);
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder pads a truncated scan with grey; Pillow refuses such files
        // ("image file is truncated"), and so do we.
        return Err(Error::ImageDecode {
            path: path.to_path_buf(),
            message: "truncated JPEG (no end-of-image marker after the last scan)".into(),
        });
    }
    let decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, path))?;
    Ok((decoder, format))
}

/// Checks a decoder's declared size against the limits; the [`Header`] of the decode to come.
fn plan(
    decoder: &impl ImageDecoder,
    format: image::ImageFormat,
    bytes: &[u8],
    path: &Path,
    options: &DecodeOptions,
) -> Result<Header> {
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::ImageDecode {
            path: path.to_path_buf(),
            message: format!("image has no pixels ({w}x{h})"),
        });
    }
    let too_large = |message: String| Error::ImageTooLarge {
        path: path.to_path_buf(),
        message,
    };
    if w > options.max_dimension || h > options.max_dimension {
        return Err(too_large(format!(
            "declared {w}x{h}, limit {} per side",
            options.max_dimension
        )));
    }
    let reduced = match (format, options.reduced_jpeg_min_side) {
        (image::ImageFormat::Jpeg, Some(side)) if w.min(h) >= side.saturating_mul(2) => {
            reduced_jpeg(bytes, (w, h), side).map(|r| (r.width, r.height, r.channels))
        }
        _ => None,
    };
    let (dw, dh, decoded_bytes) = match reduced {
        Some((sw, sh, channels)) => (sw, sh, u64::from(sw) * u64::from(sh) * channels),
        None => (w, h, decoder.total_bytes()),
    };
    let scratch_bytes = if format == image::ImageFormat::Jpeg {
        jpeg_scratch_bytes(bytes)
    } else {
        0
    };
    let pixels = u64::from(dw) * u64::from(dh);
    if pixels > options.max_pixels {
        let decoded = if (dw, dh) == (w, h) {
            String::new()
        } else {
            format!(", decoded at {dw}x{dh}")
        };
        return Err(too_large(format!(
            "declared {w}x{h}{decoded} ({pixels} pixels), limit {} pixels",
            options.max_pixels
        )));
    }
    let needed = decoded_bytes.saturating_add(scratch_bytes);
    if needed > options.max_alloc {
        return Err(too_large(format!(
            "declared {w}x{h} needs {needed} bytes, limit {}",
            options.max_alloc
        )));
    }
    Ok(Header {
        format,
        width: w,
        height: h,
        decoded_width: dw,
        decoded_height: dh,
        decoded_bytes,
        scratch_bytes,
    })
}

/// The DCT coefficients a progressive JPEG's decoder keeps for the whole image (2 bytes per
/// pixel and component, at full size whatever the output scale); 0 for a baseline JPEG or a
/// header the reader cannot parse.
fn jpeg_scratch_bytes(bytes: &[u8]) -> u64 {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    if decoder.read_info().is_err() {
        return 0;
    }
    let Some(info) = decoder.info() else {
        return 0;
    };
    if info.coding_process != jpeg_decoder::CodingProcess::DctProgressive {
        return 0;
    }
    let components = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 | jpeg_decoder::PixelFormat::L16 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        jpeg_decoder::PixelFormat::CMYK32 => 4,
    };
    // Whole 8x8 blocks.
    let (bw, bh) = (
        u64::from(info.width).div_ceil(8),
        u64::from(info.height).div_ceil(8),
    );
    bw * bh * 64 * components * 2
}

/// Serialises the full decodes of JPEGs that were planned at a reduced scale but that the
/// reduced decoder could not read (damage it does not tolerate): their memory was not part
/// of the [`Header`], so at most one such decode runs at a time, whatever the thread count.
static UNPLANNED_FULL_DECODE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Decodes an in-memory image file without converting it (EXIF orientation applied if asked).
///
/// The limits are checked from the header before any pixel buffer is allocated (see
/// [`inspect`]); a panic inside a decoder is [`Error::ImageDecode`] for this file.
pub fn decode_dynamic(
    bytes: &[u8],
    label: impl AsRef<Path>,
    options: &DecodeOptions,
) -> Result<DynamicImage> {
    let path = label.as_ref();
    guard_panics(path, || decode_checked(bytes, path, options))
}

fn decode_checked(bytes: &[u8], path: &Path, options: &DecodeOptions) -> Result<DynamicImage> {
    let (mut decoder, format) = open_decoder(bytes, path, options)?;
    let header = plan(&decoder, format, bytes, path, options)?;
    let orientation = if options.apply_exif_orientation {
        decoder.orientation().ok()
    } else {
        None
    };
    #[cfg(feature = "turbojpeg")]
    if format == image::ImageFormat::Jpeg {
        let size = (header.width, header.height);
        let out = (header.decoded_width, header.decoded_height);
        if let Some(mut img) = super::turbo::decode(bytes, size, out) {
            if let Some(o) = orientation {
                img.apply_orientation(o);
            }
            return Ok(img);
        }
    }
    let planned_reduced =
        (header.decoded_width, header.decoded_height) != (header.width, header.height);
    let _unplanned = match (planned_reduced, options.reduced_jpeg_min_side) {
        (true, Some(side)) => {
            if let Some(mut img) = decode_jpeg_reduced(bytes, (header.width, header.height), side) {
                if let Some(o) = orientation {
                    img.apply_orientation(o);
                }
                return Ok(img);
            }
            // Damage the reduced decoder does not tolerate: the full decoder, which reports
            // errors as usual, within the full-size limits and one at a time.
            let full = decoder.total_bytes();
            let pixels = u64::from(header.width) * u64::from(header.height);
            if pixels > options.max_pixels || full > options.max_alloc {
                return Err(Error::ImageTooLarge {
                    path: path.to_path_buf(),
                    message: format!(
                        "the reduced-scale JPEG decoder failed, and a full decode of {}x{} \
                         needs {full} bytes ({pixels} pixels), limits {} bytes and {} pixels",
                        header.width, header.height, options.max_alloc, options.max_pixels
                    ),
                });
            }
            Some(
                UNPLANNED_FULL_DECODE
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            )
        }
        _ => None,
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, path))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img)
}

/// A JPEG decoder set to a scaled inverse DCT, with the size and channel count it will output.
struct ReducedJpeg<'a> {
    decoder: jpeg_decoder::Decoder<Cursor<&'a [u8]>>,
    width: u32,
    height: u32,
    channels: u64,
}

/// A JPEG decoder set to the scaled inverse DCT that keeps `size`'s shorter side at least
/// `min_side`; `None` when the file needs the full decoder (CMYK, 16-bit, a header the reduced
/// decoder cannot read).
fn reduced_jpeg(bytes: &[u8], size: (u32, u32), min_side: u32) -> Option<ReducedJpeg<'_>> {
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
    let channels = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => 3,
        jpeg_decoder::PixelFormat::L8 => 1,
        _ => return None,
    };
    let (sw, sh) = decoder.scale(req(w)?, req(h)?).ok()?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    if sw.min(sh) < min_side {
        return None;
    }
    Some(ReducedJpeg {
        decoder,
        width: sw,
        height: sh,
        channels,
    })
}

/// Decodes a JPEG of `size` with a scaled inverse DCT so that its shorter side stays at least
/// `min_side`; `None` when the file needs the full decoder (CMYK, 16-bit, a decode error).
fn decode_jpeg_reduced(bytes: &[u8], size: (u32, u32), min_side: u32) -> Option<DynamicImage> {
    let ReducedJpeg {
        mut decoder,
        width: sw,
        height: sh,
        ..
    } = reduced_jpeg(bytes, size, min_side)?;
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

    /// A 16 x 12 picture in `format`, encoded by `image`.
    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img = RgbImage::from_fn(16, 12, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 77]));
        let img = match format {
            image::ImageFormat::Gif => {
                DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(img).to_rgba8())
            }
            _ => DynamicImage::ImageRgb8(img),
        };
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn every_format_is_held_to_the_pixel_budget_from_its_header() {
        use image::ImageFormat::*;
        let fits = DecodeOptions {
            max_pixels: 16 * 12,
            ..DecodeOptions::default()
        };
        let tight = DecodeOptions {
            max_pixels: 16 * 12 - 1,
            ..DecodeOptions::default()
        };
        for format in [Jpeg, Png, Gif, WebP, Tiff, Bmp] {
            let bytes = encoded(format);
            let header = inspect(&bytes, "x", &fits).unwrap();
            assert_eq!((header.width, header.height), (16, 12), "{format:?}");
            assert_eq!(header.format, format);
            assert!(header.peak_bytes() >= 3 * 16 * 12, "{format:?}");
            assert_eq!(
                decode_bytes(&bytes, "x", &fits).unwrap().dimensions(),
                (16, 12)
            );
            for e in [
                inspect(&bytes, "x", &tight).map(|_| ()),
                decode_bytes(&bytes, "x", &tight).map(|_| ()),
            ] {
                assert!(
                    matches!(e, Err(Error::ImageTooLarge { .. })),
                    "{format:?}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn a_gif_declaring_a_huge_canvas_is_refused_from_its_35_bytes() {
        let mut b = b"GIF89a".to_vec();
        b.extend_from_slice(&13000u16.to_le_bytes());
        b.extend_from_slice(&13000u16.to_le_bytes());
        b.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
        b.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B]);
        assert_eq!(b.len(), 35);
        let o = DecodeOptions {
            max_pixels: 1 << 26,
            ..DecodeOptions::default()
        };
        let e = decode_bytes(&b, "bomb.gif", &o).unwrap_err();
        assert!(matches!(e, Error::ImageTooLarge { .. }), "{e:?}");
        assert!(e.to_string().contains("13000x13000"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn decode_path_refuses_a_fifo_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.png");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: mkfifo is not available");
            return;
        }
        let e = decode_path(&fifo, &DecodeOptions::default()).unwrap_err();
        assert!(matches!(e, Error::NotAFile { kind: "FIFO", .. }), "{e:?}");
    }

    #[test]
    fn a_decoder_panic_is_that_images_error() {
        let r: Result<()> = guard_panics(Path::new("x.tiff"), || panic!("boom {}", 1));
        assert!(
            matches!(&r, Err(Error::ImageDecode { message, .. }) if message.contains("boom 1")),
            "{r:?}"
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
