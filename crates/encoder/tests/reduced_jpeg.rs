//! Reduced-scale JPEG decoding (`DecodeOptions::reduced_jpeg_min_side`): large photos decode
//! through the scaled inverse DCT and still preprocess to (nearly) the exact path's pixels;
//! EXIF orientation is applied the same way; small JPEGs and other formats are untouched.

mod common;

use common::{cosine, jpeg};
use glimpse_encoder::preprocess::{PreprocessConfig, Preprocessor};
use image::{ImageFormat, Rgb, RgbImage};
use std::io::Cursor;

/// A photo-like picture: smooth gradients, hard-edged shapes and sensor-like noise.
fn photo(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 17) as i32 - 8
    };
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let mut p = [
            60.0 + 150.0 * fx,
            40.0 + 120.0 * fy,
            90.0 + 80.0 * (fx * 7.0 + fy * 3.0).sin(),
        ];
        let (dx, dy) = (fx - 0.35, fy - 0.5);
        if dx * dx + dy * dy < 0.04 {
            p = [220.0, 40.0, 30.0];
        }
        if (0.6..0.85).contains(&fx) && (0.2..0.7).contains(&fy) {
            p = [30.0, 60.0, 200.0];
        }
        // Fine stripes: detail the scaled decode has to filter away correctly.
        if fy > 0.8 && (x / 3) % 2 == 0 {
            p = [240.0, 240.0, 240.0];
        }
        let n = noise() as f32;
        Rgb(p.map(|v| (v + n).clamp(0.0, 255.0) as u8))
    })
}

fn exact() -> Preprocessor {
    Preprocessor::new(PreprocessConfig::default())
}

#[test]
fn a_large_jpeg_decodes_reduced_and_stays_close_to_the_exact_pixels() {
    let bytes = jpeg(&photo(2400, 1800, 1), None);
    let full = exact().preprocess_bytes(&bytes, "photo.jpg").unwrap();
    // Margin 1 (1/8 scale here) gives 0.9973 on this picture's 3-pixel stripes; the library
    // uses 2.
    for margin in [2, 3] {
        let reduced = exact()
            .with_reduced_jpeg(margin)
            .preprocess_bytes(&bytes, "photo.jpg")
            .unwrap();
        assert_eq!(reduced.shape(), full.shape());
        let cos = cosine(&reduced.data, &full.data);
        let max_diff = reduced
            .data
            .iter()
            .zip(&full.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("margin {margin}: cosine {cos:.6}, max |diff| {max_diff:.3}");
        assert!(cos >= 0.999, "margin {margin}: cosine {cos}");
        assert_ne!(reduced.data, full.data, "the reduced path was not taken");
    }
}

#[test]
fn the_reduced_decode_applies_exif_orientation_like_the_full_one() {
    let options = |reduced: bool| {
        let mut o = *exact().decode_options();
        o.apply_exif_orientation = true;
        o.reduced_jpeg_min_side = reduced.then_some(448);
        o
    };
    let bytes = jpeg(&photo(1200, 900, 2), Some(6));
    let full = exact()
        .with_decode_options(options(false))
        .preprocess_bytes(&bytes, "rotated.jpg")
        .unwrap();
    let reduced = exact()
        .with_decode_options(options(true))
        .preprocess_bytes(&bytes, "rotated.jpg")
        .unwrap();
    assert!(cosine(&reduced.data, &full.data) >= 0.999);
    // Orientation 6 turns the landscape picture upright: the decode is portrait.
    let img =
        glimpse_encoder::preprocess::decode::decode_bytes(&bytes, "r.jpg", &options(true)).unwrap();
    assert!(
        img.height() > img.width(),
        "{}x{}",
        img.width(),
        img.height()
    );
    assert!(
        img.width() < 900,
        "not reduced: {}x{}",
        img.width(),
        img.height()
    );
}

#[test]
fn small_jpegs_and_other_formats_decode_exactly() {
    let small = jpeg(&photo(400, 300, 3), None);
    let a = exact().preprocess_bytes(&small, "small.jpg").unwrap();
    let b = exact()
        .with_reduced_jpeg(1)
        .preprocess_bytes(&small, "small.jpg")
        .unwrap();
    assert_eq!(a.data, b.data);

    let mut png = Vec::new();
    photo(1600, 1200, 4)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let a = exact().preprocess_bytes(&png, "big.png").unwrap();
    let b = exact()
        .with_reduced_jpeg(1)
        .preprocess_bytes(&png, "big.png")
        .unwrap();
    assert_eq!(a.data, b.data);
}

#[test]
fn a_damaged_large_jpeg_is_still_a_typed_error() {
    let mut bytes = jpeg(&photo(1600, 1200, 5), None);
    let cut = bytes.len() / 2;
    bytes.truncate(cut);
    let err = exact()
        .with_reduced_jpeg(2)
        .preprocess_bytes(&bytes, "cut.jpg")
        .unwrap_err();
    assert!(err.to_string().contains("cut.jpg"), "{err}");
}
