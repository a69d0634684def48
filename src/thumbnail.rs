//! Small upright JPEG renditions of photos, in every format the library reads.
//!
//! A photo app shows thumbnails beside search results; this makes them from any file the
//! library indexes (JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC/AVIF with the `heif` feature, RAW
//! through its preview), with the same bounds as indexing: a regular file only, a size limit
//! checked before reading, a pixel budget per decode, a decoder panic as an error.

use std::path::Path;

use glimpse_encoder::preprocess::decode::decode_dynamic;
use glimpse_encoder::preprocess::DecodeOptions;
use image::codecs::jpeg::JpegEncoder;

use crate::error::{Error, Result};
use crate::model::guard_panics;
use crate::read::{read_file, Limits};

/// A JPEG (quality 85) of the photo at `path`, upright (EXIF orientation, HEIF rotation and a
/// RAW's orientation applied), scaled to fit in `side` × `side` (never enlarged). Large JPEGs
/// decode at a reduced DCT scale.
///
/// Errors are the ones indexing reports for the same file ([`Error::NotAFile`],
/// [`Error::FileTooLarge`], [`Error::NotAnImage`], a decoder error, [`Error::Panic`]).
///
/// ```no_run
/// let jpeg = glimpse::thumbnail_jpeg("photos/beach.heic".as_ref(), 256)?;
/// std::fs::write("beach-256.jpg", jpeg)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn thumbnail_jpeg(path: &Path, side: u32) -> Result<Vec<u8>> {
    let limits = Limits::default();
    let bytes = read_file(path, limits.max_file_bytes)?;
    let side = side.max(1);
    guard_panics(path, || {
        let options = DecodeOptions {
            apply_exif_orientation: true,
            reduced_jpeg_min_side: Some(side),
            max_pixels: limits.max_pixels,
            max_file_bytes: limits.max_file_bytes,
            ..DecodeOptions::default()
        };
        let img = crate::formats::decode(path, &bytes, &limits, |b| {
            Ok(decode_dynamic(b, path, &options)?)
        })?;
        let small = if img.width() > side || img.height() > side {
            img.thumbnail(side, side)
        } else {
            img
        };
        let mut out = Vec::new();
        small
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 85))
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(format!("encoding a JPEG thumbnail: {e}")),
            })?;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_side_keeps_the_aspect_and_refuses_non_images() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("wide.png");
        image::RgbImage::from_pixel(400, 200, image::Rgb([200, 10, 10]))
            .save(&photo)
            .unwrap();
        let jpeg = thumbnail_jpeg(&photo, 100).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (100, 50));
        // Never enlarged.
        let jpeg = thumbnail_jpeg(&photo, 1000).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (400, 200));

        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"not a picture").unwrap();
        assert!(thumbnail_jpeg(&text, 100).is_err());
        assert!(matches!(
            thumbnail_jpeg(dir.path(), 100),
            Err(Error::NotAFile { .. } | Error::Io { .. })
        ));
    }

    #[cfg(feature = "heif")]
    #[test]
    fn heic_and_raw_photos_get_thumbnails() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats");
        let mut made = 0;
        for entry in std::fs::read_dir(&fixtures).unwrap() {
            let path = entry.unwrap().path();
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            if ["heic", "avif", "dng", "nef"].contains(&ext.as_str()) {
                let jpeg =
                    thumbnail_jpeg(&path, 64).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let img = image::load_from_memory(&jpeg).unwrap();
                assert!(img.width().max(img.height()) <= 64, "{}", path.display());
                made += 1;
            }
        }
        assert!(made >= 4, "only {made} HEIC/AVIF/RAW fixtures found");
    }
}
