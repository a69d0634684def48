//! Inputs shared by `benches/encoder.rs` and `examples/encoder_bench.rs`, so that both time the
//! same pixels, token ids and JPEG (fixed patterns and a fixed xorshift seed).
#![allow(dead_code)]

/// Deterministic pixel values in [-1, 1] (fixed pattern: no seed to vary).
pub fn pixels(batch: usize, size: usize) -> Vec<Vec<f32>> {
    (0..batch)
        .map(|b| {
            (0..3 * size * size)
                .map(|i| ((i * 31 + b * 7) % 255) as f32 / 127.5 - 1.0)
                .collect()
        })
        .collect()
}

/// Start token, `n - 2` word ids, end token.
pub fn tokens(n: usize) -> Vec<u32> {
    let mut ids = vec![49_406u32];
    ids.extend((0..n.saturating_sub(2)).map(|i| 320 + i as u32 * 37));
    ids.push(49_407);
    ids
}

/// A 4000×3000 photo-like JPEG (quality 90): gradients and noise from a fixed xorshift seed.
pub fn big_jpeg() -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let mut state = 0x9E37_79B9u32;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 21) as f32 - 10.0;
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let base = [
            60.0 + 150.0 * fx,
            40.0 + 120.0 * fy,
            90.0 + 80.0 * (fx * 9.0).sin(),
        ];
        image::Rgb(base.map(|v| (v + n).clamp(0.0, 255.0) as u8))
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode");
    out
}
