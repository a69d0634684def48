//! Photo folders and models for the library tests.
#![allow(dead_code)]

use glimpse::{Hit, IndexOptions, Library};
use image::{ImageFormat, Rgb, RgbImage};
use std::path::{Path, PathBuf};

pub fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/encoder/tests/fixtures/tiny-clip")
}

pub fn other_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/encoder/tests/fixtures/tiny-clip-gelu")
}

pub fn hostile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile")
}

pub fn open(dir: &Path) -> Library {
    Library::builder()
        .model(model_dir())
        .open(dir)
        .expect("library opens")
}

/// A synthetic photo: a coloured rectangle on a striped background; `seed` varies everything.
pub fn photo(seed: u32, width: u32, height: u32) -> RgbImage {
    let palette = [
        [220, 40, 40],
        [40, 180, 60],
        [40, 80, 220],
        [230, 200, 40],
        [160, 60, 200],
    ];
    let fg = palette[(seed % 5) as usize];
    let bg = palette[((seed / 5 + 2) % 5) as usize];
    let (x0, y0) = ((seed * 7) % (width / 2), (seed * 11) % (height / 2));
    let (w, h) = (width / 3 + seed % 9, height / 3 + seed % 5);
    RgbImage::from_fn(width, height, |x, y| {
        if x >= x0 && x < x0 + w && y >= y0 && y < y0 + h {
            Rgb(fg)
        } else if ((x + y + seed) / (4 + seed % 6)).is_multiple_of(2) {
            Rgb(bg)
        } else {
            Rgb([bg[0] / 2, bg[1] / 2, bg[2] / 2])
        }
    })
}

/// Writes photo `seed` to `path` in the format its extension names.
pub fn write_photo(path: &Path, seed: u32, width: u32, height: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = photo(seed, width, height);
    let format = ImageFormat::from_path(path).unwrap();
    match format {
        ImageFormat::Gif => image::DynamicImage::ImageRgb8(img)
            .to_rgba8()
            .save(path)
            .unwrap(),
        _ => img.save_with_format(path, format).unwrap(),
    }
}

/// A folder of 12 photos in several formats, sizes and sub-folders.
pub fn make_folder(root: &Path) -> Vec<PathBuf> {
    let files = [
        ("a.jpg", 0, 320, 240),
        ("b.png", 1, 200, 300),
        ("c.webp", 2, 96, 96),
        ("d.bmp", 3, 150, 100),
        ("e.tiff", 4, 64, 128),
        ("f.gif", 5, 120, 80),
        ("trips/g.jpg", 6, 640, 427),
        ("trips/h.png", 7, 50, 40),
        ("trips/2024/i.jpg", 8, 300, 300),
        ("trips/2024/j.png", 9, 33, 77),
        ("family/k.jpeg", 10, 257, 129),
        ("family/l.png", 11, 100, 100),
    ];
    files
        .iter()
        .map(|&(name, seed, w, h)| {
            let p = root.join(name);
            write_photo(&p, seed, w, h);
            p
        })
        .collect()
}

/// Text queries used to compare libraries.
pub const QUERIES: [&str; 3] = [
    "a red square on a striped background",
    "a small blue rectangle",
    "green",
];

/// Results of every query, as (path, score rounded to 1e-5).
pub fn results(lib: &Library, k: usize) -> Vec<Vec<(PathBuf, i64)>> {
    QUERIES
        .iter()
        .map(|q| {
            lib.search_text(q, k)
                .unwrap()
                .into_iter()
                .map(|Hit { path, score, .. }| (path, (score * 1e5).round() as i64))
                .collect()
        })
        .collect()
}

pub fn index(lib: &Library, folder: &Path) -> glimpse::IndexReport {
    lib.index_folder(folder, &IndexOptions::default())
        .expect("index_folder runs")
}

/// A JPEG of photo `seed` with an XMP packet naming `keywords` (dc:subject).
pub fn write_tagged(path: &Path, seed: u32, keywords: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut jpeg = Vec::new();
    photo(seed, 90, 70)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let items: String = keywords
        .iter()
        .map(|k| format!("<rdf:li>{k}</rdf:li>"))
        .collect();
    let xmp = format!(
        "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF \
         xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:subject><rdf:Bag>{items}</rdf:Bag>\
         </dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
    );
    let mut segment = vec![0xFF, 0xE1];
    segment.extend(((xmp.len() + 2) as u16).to_be_bytes());
    segment.extend(xmp.as_bytes());
    let mut out = jpeg[..2].to_vec();
    out.extend(segment);
    out.extend(&jpeg[2..]);
    std::fs::write(path, out).unwrap();
}
