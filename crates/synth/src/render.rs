//! Drawing a [`Spec`] as pixels: textured background, anti-aliased object, colour jitter.

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::spec::*;

/// A small deterministic generator for per-pixel noise (faster than ChaCha, good enough for
/// grain).
struct Grain(u64);

impl Grain {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn signed(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// A mid-tone, low-saturation colour: never mistaken for the object's.
fn muted(rng: &mut impl Rng) -> [f32; 3] {
    let grey: f32 = rng.gen_range(85.0..170.0);
    let mut c = [0.0; 3];
    for v in &mut c {
        *v = grey + rng.gen_range(-22.0..22.0);
    }
    c
}

fn background_pixel(
    kind: Background,
    params: &BackgroundParams,
    x: f32,
    y: f32,
    grain: &mut Grain,
) -> [f32; 3] {
    let BackgroundParams {
        a,
        b,
        period,
        angle,
        phase,
    } = *params;
    let (s, c) = angle.sin_cos();
    let along = x * c + y * s; // in pixels
    let mix = |t: f32| -> [f32; 3] { [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t) };
    let base = match kind {
        Background::Plain => a,
        Background::Striped => {
            let t = ((along + phase) / period).rem_euclid(1.0);
            if t < 0.5 {
                a
            } else {
                b
            }
        }
        Background::Dotted => {
            let gx = ((x + phase) / period).rem_euclid(1.0) - 0.5;
            let gy = ((y + phase) / period).rem_euclid(1.0) - 0.5;
            if gx * gx + gy * gy < 0.07 {
                b
            } else {
                a
            }
        }
        Background::Noisy => {
            let n = grain.signed() * 45.0;
            return [a[0] + n, a[1] + n, a[2] + n].map(|v| v + grain.signed() * 12.0);
        }
        Background::Gradient => mix((along / params.extent()).clamp(0.0, 1.0)),
        Background::Checkered => {
            let cx = ((x + phase) / period).floor() as i64;
            let cy = ((y + phase) / period).floor() as i64;
            if (cx + cy).rem_euclid(2) == 0 {
                a
            } else {
                b
            }
        }
    };
    let n = grain.signed() * 4.0;
    [base[0] + n, base[1] + n, base[2] + n]
}

#[derive(Clone, Copy)]
struct BackgroundParams {
    a: [f32; 3],
    b: [f32; 3],
    period: f32,
    angle: f32,
    phase: f32,
}

impl BackgroundParams {
    /// Length over which a gradient runs (set through `period`).
    fn extent(&self) -> f32 {
        self.period
    }
}

/// Whether the point `(u, v)` (object-relative, the object spanning about `[-1, 1]²`, `v`
/// pointing down) is inside the shape.
fn inside(shape: Shape, u: f32, v: f32) -> bool {
    match shape {
        Shape::Circle => u * u + v * v <= 1.0,
        Shape::Square => u.abs() <= 0.85 && v.abs() <= 0.85,
        Shape::Diamond => u.abs() + v.abs() <= 1.0,
        Shape::Cross => (u.abs() <= 0.32 && v.abs() <= 1.0) || (v.abs() <= 0.32 && u.abs() <= 1.0),
        Shape::Triangle => {
            // Apex at (0, -1), base from (-1, 0.8) to (1, 0.8).
            (-1.0..=0.8).contains(&v) && u.abs() <= (v + 1.0) / 1.8
        }
        Shape::Star => {
            // Five points, one up; inner corners at 0.45 of the outer radius.
            let vertices: [(f32, f32); 10] = std::array::from_fn(|i| {
                let r = if i % 2 == 0 { 1.0 } else { 0.45 };
                let theta = i as f32 * std::f32::consts::TAU / 10.0;
                (r * theta.sin(), -r * theta.cos())
            });
            in_polygon(&vertices, u, v)
        }
    }
}

/// Even-odd point-in-polygon test.
fn in_polygon(vertices: &[(f32, f32)], u: f32, v: f32) -> bool {
    let mut inside = false;
    let mut j = vertices.len() - 1;
    for i in 0..vertices.len() {
        let (xi, yi) = vertices[i];
        let (xj, yj) = vertices[j];
        if (yi > v) != (yj > v) && u < (xj - xi) * (v - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Renders `spec` as a `size` × `size` picture.
pub fn render(spec: &Spec, size: u32) -> RgbImage {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let side = size as f32;
    let a = muted(&mut rng);
    let mut b = muted(&mut rng);
    // Make the two texture colours clearly different.
    let shift = if a[0] > 127.0 { -45.0 } else { 45.0 };
    for (bv, av) in b.iter_mut().zip(a) {
        *bv = (av + shift + (*bv - av) * 0.5).clamp(40.0, 215.0);
    }
    let params = BackgroundParams {
        a,
        b,
        period: match spec.background {
            Background::Gradient => side,
            _ => side * rng.gen_range(0.09..0.18),
        },
        angle: match spec.background {
            Background::Striped => {
                *[0.0f32, 90.0, 45.0, 135.0].choose(&mut rng).expect("4") * std::f32::consts::PI
                    / 180.0
            }
            _ => rng.gen_range(0.0..std::f32::consts::TAU),
        },
        phase: rng.gen_range(0.0..side),
    };
    let mut grain = Grain(rng.gen());

    // Object geometry.
    let radius = side
        * match spec.size {
            Size::Small => rng.gen_range(0.15..0.18),
            Size::Large => rng.gen_range(0.25..0.29),
        };
    let (col, row) = spec.position.cell();
    let margin = radius + side * 0.03;
    let slot = |i: u32| match i {
        0 => margin.max(side * 0.2),
        1 => side * 0.5,
        _ => side - margin.max(side * 0.2),
    };
    let jitter = side * 0.035;
    let cx = slot(col) + rng.gen_range(-jitter..jitter);
    let cy = slot(row) + rng.gen_range(-jitter..jitter);
    let nominal = spec.colour.rgb();
    let colour: [f32; 3] =
        nominal.map(|v| (v as f32 + rng.gen_range(-18.0..18.0)).clamp(0.0, 255.0));
    let shade = rng.gen_range(-0.12f32..0.12);

    let mut image = RgbImage::new(size, size);
    const SS: usize = 4; // 4 × 4 supersampling on the object's edges
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let bg = background_pixel(spec.background, &params, px, py, &mut grain);
            // Coverage of the pixel by the shape.
            let near = (px - cx).abs() <= radius + 1.0 && (py - cy).abs() <= radius + 1.0;
            let coverage = if near {
                let mut hits = 0;
                for sy in 0..SS {
                    for sx in 0..SS {
                        let qx = x as f32 + (sx as f32 + 0.5) / SS as f32;
                        let qy = y as f32 + (sy as f32 + 0.5) / SS as f32;
                        if inside(spec.shape, (qx - cx) / radius, (qy - cy) / radius) {
                            hits += 1;
                        }
                    }
                }
                hits as f32 / (SS * SS) as f32
            } else {
                0.0
            };
            // A gentle top-to-bottom shading makes the object look lit.
            let light = 1.0 + shade * ((py - cy) / radius).clamp(-1.0, 1.0);
            let pixel = [0, 1, 2].map(|i| {
                let fg = (colour[i] * light).clamp(0.0, 255.0);
                let v = bg[i] * (1.0 - coverage) + fg * coverage;
                v.round().clamp(0.0, 255.0) as u8
            });
            image.put_pixel(x, y, Rgb(pixel));
        }
    }
    image
}
