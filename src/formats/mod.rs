//! Formats beyond what the `image` crate decodes: HEIC/HEIF and AVIF through libheif (feature
//! `heif`, on by default; needs `libheif-dev`), camera RAW through its embedded preview JPEG.
//!
//! The decoding path asks [`source`] what a file's bytes are: an image the `image` crate reads
//! (a RAW file's preview JPEG is one, as a slice of the file: nothing is copied) or a HEIF.

#[cfg(feature = "heif")]
mod heif;
pub(crate) mod raw;

use crate::read::Limits;
#[cfg(not(feature = "heif"))]
use crate::EncoderError;
use crate::{Error, Result};
use image::DynamicImage;
use std::path::Path;

/// What to decode for a file.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "heif"), allow(dead_code))]
pub(crate) enum Source<'a> {
    /// Bytes the `image` crate decodes; `orientation`: an EXIF orientation to apply after the
    /// decode (a RAW's, when its preview JPEG carries none of its own).
    Image {
        bytes: &'a [u8],
        orientation: Option<u8>,
    },
    /// A HEIF or AVIF file.
    Heif(&'a [u8]),
}

/// `"heic"`, `"heif"` or `"avif"` when `head` (at least 12 bytes) is an ISO-BMFF `ftyp` box
/// naming a HEIF brand; the compatible brands decide when the major one is the generic `mif1`.
pub(crate) fn heif_brand(head: &[u8]) -> Option<&'static str> {
    if head.get(4..8)? != b"ftyp" {
        return None;
    }
    let major = head.get(8..12)?;
    match major {
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => Some("heic"),
        b"avif" | b"avis" => Some("avif"),
        b"mif1" | b"msf1" => {
            let size = u32::from_be_bytes(head.get(..4)?.try_into().ok()?) as usize;
            let brands = head.get(16..size.min(head.len()))?;
            let has = |b: &[u8]| brands.chunks_exact(4).any(|c| c == b);
            Some(if has(b"avif") {
                "avif"
            } else if has(b"heic") || has(b"heix") {
                "heic"
            } else {
                "heif"
            })
        }
        _ => None,
    }
}

/// The format name recorded for a file Glimpse's own readers handle (`"heic"`, `"avif"`,
/// `"dng"`, `"nef"`, …), or `None` for the `image` crate's formats.
pub(crate) fn format_name(path: &Path, bytes: &[u8]) -> Option<String> {
    heif_brand(bytes)
        .map(str::to_string)
        .or_else(|| raw::raw_format(path, bytes))
}

/// What to decode for `bytes`: a RAW file's largest preview JPEG, a HEIF as such, anything else
/// as it is.
///
/// # Errors
/// [`Error::NotAnImage`] for a RAW file without a preview JPEG, and for a HEIF when this build
/// has no `heif` feature.
pub(crate) fn source<'a>(path: &Path, bytes: &'a [u8]) -> Result<Source<'a>> {
    if heif_brand(bytes).is_some() {
        if cfg!(feature = "heif") {
            return Ok(Source::Heif(bytes));
        }
        return Err(Error::NotAnImage {
            path: path.to_path_buf(),
            reason: "a HEIF/AVIF file, and this build has no `heif` feature (libheif)".into(),
        });
    }
    if let Some(format) = raw::raw_format(path, bytes) {
        let Some(preview) = raw::preview(bytes) else {
            return Err(Error::NotAnImage {
                path: path.to_path_buf(),
                reason: format!("a {format} RAW file without an embedded preview JPEG"),
            });
        };
        // The preview's own EXIF orientation, when it has one, is applied by the decoder.
        let own = exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(preview.jpeg))
            .is_ok_and(|e| {
                e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                    .is_some()
            });
        return Ok(Source::Image {
            bytes: preview.jpeg,
            orientation: preview.orientation.filter(|&o| !own && o > 1),
        });
    }
    Ok(Source::Image {
        bytes,
        orientation: None,
    })
}

/// The peak memory of decoding `bytes`: `image_peak` for what the `image` crate decodes, the
/// HEIF header's estimate otherwise. Checks the size limits; decodes no pixel.
pub(crate) fn peak_bytes(
    path: &Path,
    bytes: &[u8],
    limits: &Limits,
    image_peak: impl FnOnce(&[u8]) -> Result<u64>,
) -> Result<u64> {
    #[cfg(not(feature = "heif"))]
    let _ = limits;
    match source(path, bytes)? {
        Source::Image { bytes, .. } => image_peak(bytes),
        #[cfg(feature = "heif")]
        Source::Heif(bytes) => heif::peak_bytes(bytes, path, limits),
        #[cfg(not(feature = "heif"))]
        Source::Heif(_) => Err(Error::Encoder(EncoderError::UnsupportedImage {
            path: path.to_path_buf(),
        })),
    }
}

/// Decodes `bytes` upright: `decode_image` for what the `image` crate decodes (a RAW's
/// orientation applied after it), libheif for a HEIF.
pub(crate) fn decode(
    path: &Path,
    bytes: &[u8],
    limits: &Limits,
    decode_image: impl FnOnce(&[u8]) -> Result<DynamicImage>,
) -> Result<DynamicImage> {
    #[cfg(not(feature = "heif"))]
    let _ = limits;
    match source(path, bytes)? {
        Source::Image { bytes, orientation } => {
            let mut img = decode_image(bytes)?;
            if let Some(o) = orientation.and_then(image::metadata::Orientation::from_exif) {
                img.apply_orientation(o);
            }
            Ok(img)
        }
        #[cfg(feature = "heif")]
        Source::Heif(bytes) => heif::decode(bytes, path, limits),
        #[cfg(not(feature = "heif"))]
        Source::Heif(_) => Err(Error::Encoder(EncoderError::UnsupportedImage {
            path: path.to_path_buf(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glimpse_encoder::preprocess::decode::decode_dynamic;
    use glimpse_encoder::preprocess::DecodeOptions;

    fn fixture(name: &str) -> (std::path::PathBuf, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/formats")
            .join(name);
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    fn open(name: &str) -> (String, DynamicImage) {
        let (path, bytes) = fixture(name);
        let options = DecodeOptions {
            apply_exif_orientation: true,
            ..DecodeOptions::default()
        };
        let img = decode(&path, &bytes, &Limits::default(), |b| {
            Ok(decode_dynamic(b, &path, &options)?)
        })
        .unwrap();
        (format_name(&path, &bytes).unwrap_or_default(), img)
    }

    #[test]
    fn raw_previews_upright() {
        // The DNG's SubIFD preview (120 x 80), not its 16 x 12 IFD0 thumbnail.
        let (format, img) = open("camera.dng");
        assert_eq!(
            (format.as_str(), img.width(), img.height()),
            ("dng", 120, 80)
        );
        // The NEF's preview is stored 60 x 100 with Orientation 6 in IFD0 and no EXIF of its
        // own: shown 100 x 60.
        let (format, img) = open("camera.nef");
        assert_eq!(
            (format.as_str(), img.width(), img.height()),
            ("nef", 100, 60)
        );
        // ORF and RW2: TIFF under their own signatures; RW2's preview in JpgFromRaw.
        let (format, img) = open("camera.orf");
        assert_eq!(
            (format.as_str(), img.width(), img.height()),
            ("orf", 72, 48)
        );
        let (format, img) = open("camera.rw2");
        assert_eq!(
            (format.as_str(), img.width(), img.height()),
            ("rw2", 64, 80)
        );
        // Capture times from their EXIF, signatures notwithstanding.
        let time = |name: &str| crate::metadata::read_exif(&fixture(name).1).captured_at;
        assert_eq!(time("camera.rw2"), Some(1_671_904_800));
        assert_eq!(time("camera.orf"), Some(1_614_673_800));
    }

    #[cfg(feature = "heif")]
    #[test]
    fn heif_primary_image_upright_and_8_bit() {
        let (format, img) = open("shape.heic");
        assert_eq!(
            (format.as_str(), img.width(), img.height()),
            ("heic", 96, 96)
        );
        assert_eq!(open("shape.avif").0, "avif");
        // irot/imir for orientation 6 applied: 60 x 100 stored, 100 x 60 shown.
        let (_, img) = open("rotated.heic");
        assert_eq!((img.width(), img.height()), (100, 60));
        // EXIF inside a HEIF: capture time and camera words.
        let (_, bytes) = fixture("dated.heic");
        assert_eq!(
            crate::metadata::read_exif(&bytes).captured_at,
            Some(1_691_230_830)
        );
        let words = crate::keywords::extract::file_words(&bytes);
        assert_eq!(words, ["Apple", "iPhone 15"]);
        // Two images: the primary (96 x 64), not the other (40 x 40).
        let (_, img) = open("multi.heic");
        assert_eq!((img.width(), img.height()), (96, 64));
        // 10-bit HEVC of a 16-bit PNG: 8-bit RGB whose centre is the square's blue
        // (5000, 9000, 60000) / 257 ≈ (19, 35, 233), within the codec's loss.
        let (_, img) = open("deep.heic");
        let rgb = img.to_rgb8();
        let [r, g, b] = rgb.get_pixel(32, 24).0;
        assert!(r < 45 && g < 60 && b > 205, "{r} {g} {b}");
    }

    #[cfg(feature = "heif")]
    #[test]
    fn heif_limits_and_damage_are_typed_errors() {
        let (path, bytes) = fixture("shape.heic");
        let small = Limits {
            max_pixels: 96 * 96 - 1,
            ..Limits::default()
        };
        let e = peak_bytes(&path, &bytes, &small, |_| Ok(0)).unwrap_err();
        assert!(
            matches!(e, Error::Encoder(crate::EncoderError::ImageTooLarge { .. })),
            "{e:?}"
        );
        let cut = &bytes[..bytes.len() / 2];
        let e = decode(&path, cut, &Limits::default(), |_| unreachable!()).unwrap_err();
        assert!(
            matches!(e, Error::Encoder(crate::EncoderError::ImageDecode { .. })),
            "{e:?}"
        );
    }
}
