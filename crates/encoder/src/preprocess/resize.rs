//! Pillow's `Image.resize` for 8-bit RGB images, reproduced bit for bit.
//!
//! Port of Pillow's `src/libImaging/Resample.c` (`ImagingResample` with the default box, 8 bits
//! per channel), which `transformers`' PIL backend calls for every resize:
//!
//! * **Coefficients** (`precompute_coeffs`): for output pixel `xx`, the centre in input
//!   coordinates is `(xx + 0.5) * scale` with `scale = in / out`; when downscaling the filter is
//!   stretched by `scale` (support `filter.support * max(scale, 1)`, argument `/ max(scale, 1)`).
//!   The window is `[(int)(center - support + 0.5), (int)(center + support + 0.5))` clipped to
//!   the image, the weights are normalised to sum to 1 (in `f64`), then converted to fixed point
//!   with 22 fractional bits (`PRECISION_BITS = 32 - 8 - 2`), rounding half away from zero.
//! * **Two passes**: horizontal first (only over the rows the vertical pass will read), then
//!   vertical; a pass is skipped when that dimension does not change. Each pass accumulates in
//!   `i32` starting from `1 << 21` (rounding), and stores `clamp(sum >> 22, 0, 255)`: the
//!   intermediate image is rounded and clamped to 8 bits, as in Pillow.
//!
//! Everything in `f64` follows the C expression order, so the fixed-point coefficients — and with
//! them every output byte — are identical to Pillow's.

use std::ops::Range;

use image::RgbImage;

/// A Pillow resampling filter (`PIL.Image.Resampling`), the ones `preprocessor_config.json`
/// can name in `resample`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `BOX` (4).
    Box,
    /// `BILINEAR` (2), a triangle filter.
    Bilinear,
    /// `HAMMING` (5).
    Hamming,
    /// `BICUBIC` (3), Keys' cubic with a = -0.5: CLIP's filter.
    Bicubic,
    /// `LANCZOS` (1), windowed sinc with 3 lobes.
    Lanczos,
}

impl Filter {
    /// The filter for a `PIL.Image.Resampling` number; `None` for `NEAREST` (0) and unknown
    /// values.
    pub fn from_pil(n: u64) -> Option<Self> {
        Some(match n {
            1 => Self::Lanczos,
            2 => Self::Bilinear,
            3 => Self::Bicubic,
            4 => Self::Box,
            5 => Self::Hamming,
            _ => return None,
        })
    }

    fn support(self) -> f64 {
        match self {
            Self::Box => 0.5,
            Self::Bilinear | Self::Hamming => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Self::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Self::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // `0.54f + 0.46f * cos(x)`: the constants are C floats.
                    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
                }
            }
            Self::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Lanczos => {
                fn sinc(x: f64) -> f64 {
                    if x == 0.0 {
                        1.0
                    } else {
                        let x = x * std::f64::consts::PI;
                        x.sin() / x
                    }
                }
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point filter weights for one axis: output pixel `i` reads input pixels
/// `start[i] .. start[i] + len[i]` with weights `weights[i * ksize ..][.. len[i]]`.
#[derive(Debug, Clone)]
struct Coeffs {
    ksize: usize,
    start: Vec<usize>,
    len: Vec<usize>,
    weights: Vec<i32>,
}

/// `precompute_coeffs` + `normalize_coeffs_8bpc` for the full box `[0, in_size)`, for the
/// output pixels `outputs` only (entry `i` is output pixel `outputs.start + i`): each output
/// pixel's coefficients depend on its own index alone, so a subset is computed exactly as in
/// the full table.
fn coeffs(in_size: usize, out_size: usize, filter: Filter, outputs: Range<usize>) -> Coeffs {
    // The box is a C `float[4]`; `in1 - in0` is computed in float, then widened.
    let in0 = 0.0f32;
    let in1 = in_size as f32;
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let ss = 1.0 / filterscale;

    let mut start = Vec::with_capacity(outputs.len());
    let mut len = Vec::with_capacity(outputs.len());
    let mut weights = vec![0i32; outputs.len() * ksize];
    let mut k = vec![0f64; ksize];
    for (i, xx) in outputs.enumerate() {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        // `(int)` truncates toward zero; negative values are then clamped to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0f64;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter.eval(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        let row = &mut weights[i * ksize..(i + 1) * ksize];
        for (x, out) in row.iter_mut().enumerate().take(n) {
            let mut w = k[x];
            if ww != 0.0 {
                w /= ww;
            }
            let scaled = w * f64::from(1u32 << PRECISION_BITS);
            *out = if w < 0.0 {
                (-0.5 + scaled) as i32
            } else {
                (0.5 + scaled) as i32
            };
        }
        start.push(xmin);
        len.push(n);
    }
    Coeffs {
        ksize,
        start,
        len,
        weights,
    }
}

/// Pillow's `clip8`: the accumulator's integer part, clamped to a byte.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Resizes an 8-bit RGB image to `width` × `height` exactly as Pillow's
/// `Image.resize((width, height), resample=filter)` does.
///
/// # Panics
/// If `width` or `height` is 0, or the input is empty.
pub fn resize_rgb8(src: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    assert!(width > 0 && height > 0, "resize to an empty image");
    let (out_w, out_h) = (width as usize, height as usize);
    resize_window(src, out_w, out_h, filter, 0..out_w, 0..out_h)
}

/// [`resize_rgb8`] to `width` × `height`, then [`center_crop_rgb8`] to `crop_width` ×
/// `crop_height`, computing only the resized pixels the crop keeps: the same bytes, but the
/// memory and time are bounded by the crop, not by the resized image (an image 3 pixels tall
/// and 50 000 wide resizes to 224 × 3.7 million before CLIP's crop, 2.5 GB at full size).
///
/// # Panics
/// If `width` or `height` is 0, or the input is empty.
pub fn resize_center_crop_rgb8(
    src: &RgbImage,
    (width, height): (u32, u32),
    filter: Filter,
    (crop_width, crop_height): (u32, u32),
) -> RgbImage {
    assert!(width > 0 && height > 0, "resize to an empty image");
    let (out_w, out_h) = (i64::from(width), i64::from(height));
    let top = (out_h - i64::from(crop_height)).div_euclid(2);
    let left = (out_w - i64::from(crop_width)).div_euclid(2);
    // The part of the crop window inside the resized image, in resized coordinates.
    let ys = top.max(0) as usize..(top + i64::from(crop_height)).clamp(0, out_h) as usize;
    let xs = left.max(0) as usize..(left + i64::from(crop_width)).clamp(0, out_w) as usize;
    if top >= 0 && left >= 0 {
        return resize_window(src, out_w as usize, out_h as usize, filter, xs, ys);
    }
    // The crop is larger than the image on some side: the rest of the window is zero.
    let mut out = RgbImage::new(crop_width, crop_height);
    if xs.is_empty() || ys.is_empty() {
        return out;
    }
    let window = resize_window(src, out_w as usize, out_h as usize, filter, xs, ys);
    let (dx, dy) = ((-left).max(0) as u32, (-top).max(0) as u32);
    for (x, y, px) in window.enumerate_pixels() {
        out.put_pixel(x + dx, y + dy, *px);
    }
    out
}

/// The pixels `xs` × `ys` of `src` resized to `out_w` × `out_h` (Pillow's two passes,
/// restricted to that window; non-empty ranges within the output).
fn resize_window(
    src: &RgbImage,
    out_w: usize,
    out_h: usize,
    filter: Filter,
    xs: Range<usize>,
    ys: Range<usize>,
) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    assert!(in_w > 0 && in_h > 0, "resize of an empty image");
    let (win_w, win_h) = (xs.len(), ys.len());
    let src_raw = src.as_raw();
    // Vertical coefficients of the window's rows, and the source rows they read.
    let vert = (out_h != in_h).then(|| coeffs(in_h, out_h, filter, ys.clone()));
    let (y_first, y_last) = match &vert {
        Some(v) => (v.start[0], v.start[win_h - 1] + v.len[win_h - 1]),
        None => (ys.start, ys.end),
    };
    // Horizontal pass (or the source's columns `xs`) into rows `y_first..y_last`.
    let row_bytes = win_w * 3;
    let mut tmp = vec![0u8; (y_last - y_first) * row_bytes];
    let horiz = (out_w != in_w).then(|| coeffs(in_w, out_w, filter, xs.clone()));
    for (r, out_row) in tmp.chunks_exact_mut(row_bytes).enumerate() {
        let in_row = &src_raw[(r + y_first) * in_w * 3..(r + y_first + 1) * in_w * 3];
        match &horiz {
            Some(h) => horizontal_row(in_row, out_row, h),
            None => out_row.copy_from_slice(&in_row[xs.start * 3..xs.end * 3]),
        }
    }
    let Some(vert) = vert else {
        return RgbImage::from_raw(win_w as u32, win_h as u32, tmp).expect("buffer size matches");
    };
    let mut out = vec![0u8; win_w * win_h * 3];
    for (yy, out_row) in out.chunks_exact_mut(row_bytes).enumerate() {
        let ymin = vert.start[yy] - y_first;
        let n = vert.len[yy];
        let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + n];
        for (c, o) in out_row.iter_mut().enumerate() {
            let mut acc = HALF;
            for (y, &w) in k.iter().enumerate() {
                acc += i32::from(tmp[(ymin + y) * row_bytes + c]) * w;
            }
            *o = clip8(acc);
        }
    }
    RgbImage::from_raw(win_w as u32, win_h as u32, out).expect("buffer size matches")
}

fn horizontal_row(input: &[u8], out: &mut [u8], coeffs: &Coeffs) {
    for (xx, px) in out.chunks_exact_mut(3).enumerate() {
        let xmin = coeffs.start[xx];
        let n = coeffs.len[xx];
        let k = &coeffs.weights[xx * coeffs.ksize..xx * coeffs.ksize + n];
        let (mut r, mut g, mut b) = (HALF, HALF, HALF);
        for (x, &w) in k.iter().enumerate() {
            let p = &input[(xmin + x) * 3..(xmin + x) * 3 + 3];
            r += i32::from(p[0]) * w;
            g += i32::from(p[1]) * w;
            b += i32::from(p[2]) * w;
        }
        px[0] = clip8(r);
        px[1] = clip8(g);
        px[2] = clip8(b);
    }
}

/// `transformers`' `get_resize_output_image_size(size, default_to_square=False)`: the
/// `(width, height)` that makes the shorter side `shortest_edge`, the longer side
/// `int(shortest_edge * long / short)` (floored). A square image counts as "width shorter".
pub fn shortest_edge_size(width: u32, height: u32, shortest_edge: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    // Python: `int(size * long / short)`, true division of exact integers (correctly rounded,
    // as f64 division of these exactly representable values is) then truncation.
    let new_long = (f64::from(shortest_edge) * f64::from(long) / f64::from(short)) as u32;
    if width <= height {
        (shortest_edge, new_long)
    } else {
        (new_long, shortest_edge)
    }
}

/// `transformers`' `center_crop` on an 8-bit RGB image: the window starts at
/// `floor((h - crop_h) / 2)`, `floor((w - crop_w) / 2)`; parts of the window outside a too-small
/// image are zero (the reference pads with zeros before normalisation).
pub fn center_crop_rgb8(src: &RgbImage, crop_height: u32, crop_width: u32) -> RgbImage {
    let (w, h) = (i64::from(src.width()), i64::from(src.height()));
    let top = (h - i64::from(crop_height)).div_euclid(2);
    let left = (w - i64::from(crop_width)).div_euclid(2);
    if top >= 0 && left >= 0 {
        return image::imageops::crop_imm(src, left as u32, top as u32, crop_width, crop_height)
            .to_image();
    }
    let mut out = RgbImage::new(crop_width, crop_height);
    for (x, y, px) in out.enumerate_pixels_mut() {
        let (sx, sy) = (i64::from(x) + left, i64::from(y) + top);
        if (0..w).contains(&sx) && (0..h).contains(&sy) {
            *px = *src.get_pixel(sx as u32, sy as u32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_floors_the_long_side() {
        assert_eq!(shortest_edge_size(500, 333, 224), (336, 224)); // 336.33
        assert_eq!(shortest_edge_size(333, 500, 224), (224, 336));
        assert_eq!(shortest_edge_size(97, 61, 64), (101, 64)); // 101.77 floors
        assert_eq!(shortest_edge_size(40, 40, 56), (56, 56));
        assert_eq!(shortest_edge_size(3, 1000, 224), (224, 74666));
    }

    /// Outputs printed by Pillow 13 (`Image.resize(..., Image.BICUBIC)`).
    #[test]
    fn matches_pillow_on_hand_checked_cases() {
        let ramp = [0u8, 50, 100, 150, 200, 255];
        let img = RgbImage::from_fn(6, 1, |x, _| image::Rgb([ramp[x as usize]; 3]));
        let red = |w: u32, h: u32| -> Vec<u8> {
            resize_rgb8(&img, w, h, Filter::Bicubic)
                .pixels()
                .map(|p| p.0[0])
                .collect()
        };
        assert_eq!(red(3, 1), [27, 125, 225]);
        assert_eq!(red(2, 1), [56, 195]);
        assert_eq!(red(10, 1), [0, 15, 50, 80, 110, 140, 170, 200, 238, 255]);
        assert_eq!(
            red(11, 1),
            [0, 11, 42, 70, 98, 125, 152, 179, 208, 242, 255]
        );

        // 8x1 hard edge (red) and ramp (green) -> 5x3 (both passes) and 19x1.
        let edge = RgbImage::from_fn(8, 1, |x, _| {
            image::Rgb([if x < 4 { 0 } else { 255 }, x as u8 * 36, 0])
        });
        let out = resize_rgb8(&edge, 5, 3, Filter::Bicubic);
        for y in 0..3 {
            let r: Vec<u8> = (0..5).map(|x| out.get_pixel(x, y).0[0]).collect();
            let g: Vec<u8> = (0..5).map(|x| out.get_pixel(x, y).0[1]).collect();
            assert_eq!(r, [0, 0, 128, 255, 255]);
            assert_eq!(g, [12, 68, 126, 184, 240]);
        }
        let out = resize_rgb8(&edge, 19, 1, Filter::Bicubic);
        let r: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        assert_eq!(
            r,
            [0, 0, 0, 0, 0, 0, 0, 0, 12, 128, 243, 255, 255, 255, 255, 255, 255, 255, 255]
        );
    }

    #[test]
    fn identity_and_constant_images() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 200]));
        assert_eq!(resize_rgb8(&img, 7, 5, Filter::Bicubic), img);
        let flat = RgbImage::from_pixel(13, 9, image::Rgb([17, 128, 255]));
        for (w, h) in [(5, 4), (30, 20), (13, 3), (2, 9)] {
            let out = resize_rgb8(&flat, w, h, Filter::Bicubic);
            assert!(out.pixels().all(|p| p.0 == [17, 128, 255]), "{w}x{h}");
        }
    }

    #[test]
    fn two_pixel_upscale_overshoots_and_clamps() {
        // A hard 0/255 edge upscaled with bicubic rings; the ringing is clamped per pass.
        let img = RgbImage::from_fn(4, 1, |x, _| {
            image::Rgb([if x < 2 { 0 } else { 255 }, 0, 255])
        });
        let out = resize_rgb8(&img, 8, 1, Filter::Bicubic);
        let r: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        assert_eq!(r[0], 0);
        assert_eq!(r[7], 255);
        assert!(r.windows(2).all(|w| w[0] <= w[1]), "{r:?}");
    }

    #[test]
    fn crop_pads_small_images_with_zeros() {
        let img = RgbImage::from_pixel(2, 2, image::Rgb([9, 9, 9]));
        let out = center_crop_rgb8(&img, 4, 3);
        // left = floor((2-3)/2) = -1, top = floor((2-4)/2) = -1
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(1, 1).0, [9, 9, 9]);
        assert_eq!(out.get_pixel(2, 2).0, [9, 9, 9]);
        assert_eq!(out.get_pixel(2, 3).0, [0, 0, 0]);
    }

    /// A deterministic noisy image (so every coefficient matters).
    fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        RgbImage::from_fn(w, h, |_, _| {
            let mut px = [0u8; 3];
            for c in &mut px {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                *c = (state >> 24) as u8;
            }
            image::Rgb(px)
        })
    }

    #[test]
    fn resize_center_crop_equals_resize_then_crop() {
        let shapes = [
            (640, 480),
            (480, 640),
            (224, 224),
            (300, 224),
            (3, 700),
            (900, 5),
            (1, 1),
            (2, 9),
            (57, 1),
        ];
        for (k, &(w, h)) in shapes.iter().enumerate() {
            let img = noise(w, h, k as u32);
            for (edge, crop) in [(224, (224, 224)), (64, (64, 64)), (32, (40, 24))] {
                for filter in [Filter::Bicubic, Filter::Bilinear, Filter::Lanczos] {
                    let size = shortest_edge_size(w, h, edge);
                    let size = (size.0.max(1), size.1.max(1));
                    let full = resize_rgb8(&img, size.0, size.1, filter);
                    let expected = center_crop_rgb8(&full, crop.1, crop.0);
                    let got = resize_center_crop_rgb8(&img, size, filter, crop);
                    assert_eq!(
                        got, expected,
                        "{w}x{h} -> {size:?}, crop {crop:?}, {filter:?}"
                    );
                }
            }
        }
    }

    /// A 1 × 400 000 image (0.4 Mpx, under every pixel limit) resizes to 224 × 89.6 million
    /// before CLIP's crop: 60 GB if the resized image were materialised. Only the crop is.
    #[test]
    fn a_very_thin_image_resizes_within_the_crop() {
        let img = noise(1, 400_000, 7);
        let size = shortest_edge_size(1, 400_000, 224);
        assert_eq!(size, (224, 89_600_000));
        let got = resize_center_crop_rgb8(&img, size, Filter::Bicubic, (224, 224));
        assert_eq!(got.dimensions(), (224, 224));
        // Upscaling one column: every row of the crop is constant across x.
        for row in got.rows() {
            let first = *row.clone().next().unwrap();
            assert!(row.into_iter().all(|p| *p == first));
        }
    }
}
