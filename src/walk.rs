//! Finding the images under a folder: a symlink-safe walk plus content sniffing.
//!
//! Symbolic links are followed while they stay inside the folder; a link whose target lies
//! outside it (a file or a folder) is skipped unless the caller asks to follow those too, so
//! indexing `~/Pictures` never wanders into `/usr/share` through a stray link. Anything that is
//! not a regular file or a folder (a FIFO, a socket, a device) is reported and never opened.

use crate::read::open_regular;
use crate::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Extensions of the formats Glimpse indexes (lower-case).
const IMAGE_EXTENSIONS: [&str; 12] = [
    "jpg", "jpeg", "png", "webp", "gif", "tif", "tiff", "bmp", "jfif", "heic", "heif", "avif",
];

/// The format a file's first bytes announce, if it is one Glimpse decodes.
pub(crate) fn sniff(head: &[u8]) -> Option<&'static str> {
    match head {
        [0xFF, 0xD8, 0xFF, ..] => Some("jpeg"),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("png"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("webp"),
        [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => Some("tiff"),
        [b'B', b'M', ..] if head.len() >= 14 => Some("bmp"),
        // Olympus ORF and Panasonic RW2: TIFF structure, their own signatures.
        [b'I', b'I', b'R', b'O' | b'S', ..] | [b'M', b'M', b'O', b'R', ..] => Some("orf"),
        [b'I', b'I', 0x55, 0x00, ..] => Some("rw2"),
        _ => crate::formats::heif_brand(head),
    }
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads up to 16 bytes from the start of a regular file (opened non-blocking).
fn read_head(path: &Path) -> crate::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(16);
    open_regular(path)?
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    Ok(head)
}

/// Whether the symlink `link` leads outside `root` (a canonical path). A link that cannot be
/// resolved (dangling) is left to the walk, which reports it.
fn leads_outside(link: &Path, root: &Path) -> bool {
    std::fs::canonicalize(link).is_ok_and(|target| !target.starts_with(root))
}

/// Walks `root` (a canonical path), following symlinks that stay inside it — and, with
/// `follow_outside`, those that leave it — (a link back to an ancestor is reported, not
/// followed) and skipping hidden folders, and returns the image files found, sorted, and the
/// failures met on the way.
///
/// A file is an image when its first bytes are a supported format's signature, whatever its
/// name. A file with an image extension whose bytes are not an image (a zero-byte file, a text
/// file named `.jpg`) is a failure, so the user learns of it, and so is every FIFO, socket or
/// device (never opened); other files are ignored.
pub(crate) fn find_images(
    root: &Path,
    follow_outside: bool,
) -> (Vec<PathBuf>, Vec<(PathBuf, Error)>) {
    let mut images = Vec::new();
    let mut failures = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name();
    // Hidden folders (".glimpse", ".thumbnails", ".git") are skipped, the root excepted, and so
    // are links that lead outside the root unless asked.
    let keep = |e: &walkdir::DirEntry| {
        if e.depth() == 0 {
            return true;
        }
        if e.file_type().is_dir() && e.file_name().to_string_lossy().starts_with('.') {
            return false;
        }
        if !follow_outside && e.path_is_symlink() && leads_outside(e.path(), root) {
            log::info!(
                "{}: a symlink leading outside {}, not followed",
                e.path().display(),
                root.display()
            );
            return false;
        }
        true
    };
    for entry in walker.into_iter().filter_entry(keep) {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                let error = if let Some(ancestor) = err.loop_ancestor() {
                    Error::SymlinkLoop {
                        path: path.clone(),
                        ancestor: ancestor.to_path_buf(),
                    }
                } else {
                    let source = err
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("directory walk failed"));
                    Error::Io {
                        path: path.clone(),
                        source,
                    }
                };
                failures.push((path, error));
                continue;
            }
        };
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        if !file_type.is_file() {
            let kind = glimpse_encoder::preprocess::decode::file_kind(&file_type);
            let path = entry.into_path();
            failures.push((path.clone(), Error::NotAFile { path, kind }));
            continue;
        }
        let path = entry.into_path();
        match read_head(&path) {
            Ok(head) if sniff(&head).is_some() => images.push(path),
            Ok(head)
                if has_image_extension(&path) || crate::formats::raw::has_raw_extension(&path) =>
            {
                let reason = if head.is_empty() {
                    "empty file".to_string()
                } else {
                    "not a JPEG, PNG, WebP, GIF, TIFF, BMP, HEIF/AVIF or RAW file".to_string()
                };
                failures.push((path.clone(), Error::NotAnImage { path, reason }));
            }
            Ok(_) => {}
            // A file swapped for a FIFO since the walk saw it is reported whatever its name.
            Err(error @ Error::NotAFile { .. }) => failures.push((path, error)),
            Err(error) if has_image_extension(&path) => failures.push((path, error)),
            Err(_) => {}
        }
    }
    (images, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_supported_format_and_rejects_others() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("png"));
        assert_eq!(sniff(b"GIF89a......"), Some("gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(sniff(b"II*\0...."), Some("tiff"));
        assert_eq!(sniff(b"BM\0\0\0\0\0\0\0\0\0\0\0\0"), Some("bmp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Some("heic"));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif\0\0\0\0"), Some("avif"));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0"), None); // an MP4 video
        assert_eq!(sniff(b"IIRO\x08\0\0\0"), Some("orf"));
        assert_eq!(sniff(b"IIU\0\x08\0\0\0"), Some("rw2"));
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"hello world, not an image"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
    }
}
