//! Thumbnails and large views, generated once and cached in `<library>/thumbnails/<side>/`.
//!
//! A cached file is named `<id>-<size>-<mtime>.jpg` (hex): when the photo changes (its size or
//! modification time), the name changes, the old rendition is deleted and a new one made. The
//! photo is rendered by `glimpse::thumbnail_jpeg`: every format the library indexes (HEIC,
//! AVIF and RAW included), upright, bounded like indexing, large JPEGs at a reduced DCT scale.

use anyhow::Context;
use glimpse::ImageId;
#[cfg(test)]
use image::codecs::jpeg::JpegEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The folder inside the library that holds the cache.
pub const CACHE_DIR: &str = "thumbnails";

/// The cache of one library.
#[derive(Debug, Clone)]
pub struct Thumbnails {
    root: PathBuf,
}

impl Thumbnails {
    /// The cache under `library_dir`.
    pub fn new(library_dir: &Path) -> Self {
        Thumbnails {
            root: library_dir.join(CACHE_DIR),
        }
    }

    /// A JPEG of photo `id` (at `photo`) fitting in `side` × `side`: from the cache when it is
    /// up to date with the photo, else made now and cached. Returns the bytes and whether they
    /// came from the cache.
    pub fn get(&self, id: ImageId, photo: &Path, side: u32) -> anyhow::Result<(Vec<u8>, bool)> {
        let meta = std::fs::metadata(photo).with_context(|| format!("{}", photo.display()))?;
        anyhow::ensure!(meta.is_file(), "{} is not a regular file", photo.display());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let dir = self.root.join(side.to_string());
        let name = format!("{id}-{:x}-{mtime:x}.jpg", meta.len());
        let cached = dir.join(&name);
        if let Ok(bytes) = std::fs::read(&cached) {
            return Ok((bytes, true));
        }
        // Every format the library reads (HEIC, AVIF, RAW included), bounded like indexing.
        let bytes = glimpse::thumbnail_jpeg(photo, side)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        // Written whole to a temporary file, then renamed: a concurrent reader sees the old
        // state or the finished file, never half of one.
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        tmp.write_all(&bytes)?;
        tmp.persist(&cached)
            .with_context(|| format!("{}", cached.display()))?;
        remove_stale(&dir, id, &name);
        Ok((bytes, false))
    }
}

impl Thumbnails {
    /// Deletes the renditions of every photo `holds` says the library no longer has (removed
    /// photos); returns how many files went. Run at start-up and after each indexing run.
    pub fn prune(&self, holds: impl Fn(ImageId) -> bool) -> usize {
        let Ok(sides) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let mut removed = 0;
        for side in sides.flatten() {
            let Ok(files) = std::fs::read_dir(side.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let Some(name) = name.to_str() else { continue };
                let id = name
                    .strip_suffix(".jpg")
                    .and_then(|n| n.split('-').next())
                    .and_then(|id| id.parse::<ImageId>().ok());
                if id.is_some_and(|id| !holds(id)) && std::fs::remove_file(file.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Deletes the renditions of photo `id` other than `keep` (made from an older version).
fn remove_stale(dir: &Path, id: ImageId, keep: &str) {
    let prefix = format!("{id}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&prefix) && name.ends_with(".jpg") && name != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_once_and_remade_when_the_photo_changes() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("p.png");
        image::RgbImage::from_pixel(400, 200, image::Rgb([200, 10, 10]))
            .save(&photo)
            .unwrap();
        let thumbs = Thumbnails::new(&dir.path().join("lib"));
        let (first, cached) = thumbs.get(3, &photo, 100).unwrap();
        assert!(!cached);
        let img = image::load_from_memory(&first).unwrap();
        assert_eq!((img.width(), img.height()), (100, 50));
        let (again, cached) = thumbs.get(3, &photo, 100).unwrap();
        assert!(cached);
        assert_eq!(again, first);

        // A new version of the photo (another size on disk): a new rendition, the old one gone.
        image::RgbImage::from_pixel(100, 300, image::Rgb([10, 10, 200]))
            .save(&photo)
            .unwrap();
        let (new, cached) = thumbs.get(3, &photo, 100).unwrap();
        assert!(!cached);
        let img = image::load_from_memory(&new).unwrap();
        assert_eq!((img.width(), img.height()), (33, 100));
        let files = std::fs::read_dir(dir.path().join("lib/thumbnails/100"))
            .unwrap()
            .count();
        assert_eq!(files, 1);
    }

    #[test]
    fn renditions_of_removed_photos_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let thumbs = Thumbnails::new(&dir.path().join("lib"));
        for (id, name) in [(3, "a.png"), (4, "b.png")] {
            let photo = dir.path().join(name);
            image::RgbImage::from_pixel(64, 64, image::Rgb([9, 90, 200]))
                .save(&photo)
                .unwrap();
            thumbs.get(id, &photo, 32).unwrap();
            thumbs.get(id, &photo, 100).unwrap();
        }
        // Photo 4 left the library: its two renditions go, photo 3's stay.
        assert_eq!(thumbs.prune(|id| id == 3), 2);
        assert_eq!(thumbs.prune(|id| id == 3), 0);
        for side in ["32", "100"] {
            let names: Vec<String> =
                std::fs::read_dir(dir.path().join("lib/thumbnails").join(side))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
            assert_eq!(names.len(), 1, "{names:?}");
            assert!(names[0].starts_with("3-"), "{names:?}");
        }
    }

    /// A JPEG of `img` whose EXIF says "rotate 90° clockwise to view" (orientation 6).
    fn jpeg_rotated(img: &image::RgbImage) -> Vec<u8> {
        let mut plain = Vec::new();
        JpegEncoder::new_with_quality(&mut plain, 90)
            .encode_image(img)
            .unwrap();
        // APP1 "Exif": a little-endian TIFF with one IFD entry, Orientation (0x0112) = 6.
        let mut app1 = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        app1.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    #[test]
    fn thumbnails_are_upright() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("turned.jpg");
        // Wide as stored, red on the left: upright it is tall, red at the top.
        let img = image::RgbImage::from_fn(400, 200, |x, _| {
            if x < 200 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        std::fs::write(&photo, jpeg_rotated(&img)).unwrap();
        let (bytes, _) = Thumbnails::new(dir.path()).get(1, &photo, 100).unwrap();
        let thumb = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(thumb.dimensions(), (50, 100));
        let (top, bottom) = (thumb.get_pixel(25, 10), thumb.get_pixel(25, 90));
        assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
    }
}
