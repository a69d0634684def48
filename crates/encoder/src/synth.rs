//! A generator of captioned synthetic photos: coloured shapes on textured backgrounds.
//!
//! Every picture shows one object: a [`Shape`] of some [`Colour`], [`Size`] and [`Position`] on
//! a [`Background`] texture, with anti-aliased edges, colour jitter and mid-tone, low-saturation
//! backgrounds (so that the object's colour is never the background's). Each picture comes with a
//! caption naming some or all of its attributes in varied wording ("a small red circle at the
//! top left on a striped background", "a photo of a big violet diamond", "red circle, top
//! left").
//!
//! It exists so that Glimpse can train and test a model that *understands* something without
//! any download: the demo model in `models/glimpse-shapes/` was trained on these pictures, and
//! text→image search over them can be checked semantically (does "a red circle" find red
//! circles?) rather than only numerically.
//!
//! Everything is deterministic: the same seed gives the same specs, pixels and captions on every
//! machine (the generator uses `rand`'s portable ChaCha stream, never the OS's randomness).
//!
//! ```
//! use glimpse_encoder::synth::{self, Colour, Shape};
//!
//! // A balanced validation set: every colour × shape, other attributes random.
//! let specs = synth::balanced_specs(48, 7);
//! assert_eq!(specs[0].colour, Colour::Red);
//! assert_eq!(specs[0].shape, Shape::Circle);
//! let image = synth::render(&specs[0], 64);
//! assert_eq!(image.dimensions(), (64, 64));
//! // The queries that such a set answers: "a red circle", ...
//! assert_eq!(synth::queries()[0].0, "a red circle");
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// Side in pixels of the pictures [`generate`] writes.
pub const DEFAULT_SIZE: u32 = 96;

/// Name of the caption file in a dataset folder: one `file<TAB>caption` line per picture, the
/// file relative to the folder.
pub const CAPTIONS_FILE: &str = "captions.tsv";

macro_rules! attribute {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $canonical:literal $(| $syn:literal)*,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The canonical word(s) for the value, as used in evaluation queries.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $canonical,)+
                }
            }

            /// Every wording captions may use for the value, canonical first.
            pub fn synonyms(self) -> &'static [&'static str] {
                match self {
                    $($name::$variant => &[$canonical $(, $syn)*],)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

attribute! {
    /// The object's outline.
    Shape {
        /// A filled disc.
        Circle => "circle" | "disc",
        /// An axis-aligned square.
        Square => "square",
        /// An upward-pointing triangle.
        Triangle => "triangle",
        /// A five-pointed star.
        Star => "star",
        /// A plus-shaped cross.
        Cross => "cross" | "plus sign",
        /// A square standing on a corner.
        Diamond => "diamond" | "rhombus",
    }
}

attribute! {
    /// The object's colour.
    Colour {
        /// Red.
        Red => "red",
        /// Green.
        Green => "green",
        /// Blue.
        Blue => "blue",
        /// Yellow.
        Yellow => "yellow",
        /// Purple.
        Purple => "purple" | "violet",
        /// Orange.
        Orange => "orange",
        /// White.
        White => "white",
        /// Black.
        Black => "black",
    }
}

attribute! {
    /// The object's size relative to the picture.
    Size {
        /// About a third of the picture's side across.
        Small => "small" | "little" | "tiny",
        /// More than half of the picture's side across.
        Large => "large" | "big",
    }
}

attribute! {
    /// Where the object sits, on a 3 × 3 grid.
    Position {
        /// Upper left.
        TopLeft => "at the top left" | "in the top left corner" | "in the upper left",
        /// Upper middle.
        Top => "at the top" | "at the top center",
        /// Upper right.
        TopRight => "at the top right" | "in the top right corner" | "in the upper right",
        /// Middle left.
        Left => "on the left" | "at the left",
        /// The middle.
        Center => "in the center" | "in the middle",
        /// Middle right.
        Right => "on the right" | "at the right",
        /// Lower left.
        BottomLeft => "at the bottom left" | "in the bottom left corner" | "in the lower left",
        /// Lower middle.
        Bottom => "at the bottom" | "at the bottom center",
        /// Lower right.
        BottomRight => "at the bottom right" | "in the bottom right corner" | "in the lower right",
    }
}

attribute! {
    /// The background texture.
    Background {
        /// One colour with faint grain.
        Plain => "on a plain background" | "on a uniform background",
        /// Parallel stripes of two colours.
        Striped => "on a striped background" | "against stripes",
        /// Dots of one colour on another.
        Dotted => "on a dotted background" | "on a polka-dot background",
        /// Strong per-pixel noise.
        Noisy => "on a noisy background" | "on a grainy background",
        /// A smooth blend of two colours.
        Gradient => "on a gradient background" | "on a smooth gradient",
        /// A checkerboard of two colours.
        Checkered => "on a checkered background" | "on a checkerboard",
    }
}

impl Position {
    /// Short form for terse captions ("top left", "center").
    pub fn short(self) -> &'static str {
        match self {
            Position::TopLeft => "top left",
            Position::Top => "top",
            Position::TopRight => "top right",
            Position::Left => "left",
            Position::Center => "center",
            Position::Right => "right",
            Position::BottomLeft => "bottom left",
            Position::Bottom => "bottom",
            Position::BottomRight => "bottom right",
        }
    }

    /// Grid cell: column and row in `0..3`.
    fn cell(self) -> (u32, u32) {
        let i = Position::ALL
            .iter()
            .position(|&p| p == self)
            .expect("listed") as u32;
        (i % 3, i / 3)
    }

    /// The position seen in a mirror (left ↔ right).
    pub fn mirrored(self) -> Position {
        let (col, row) = self.cell();
        Position::ALL[(row * 3 + (2 - col)) as usize]
    }
}

impl Colour {
    /// The nominal sRGB value (pictures jitter it a little).
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 30, 35],
            Colour::Green => [35, 170, 50],
            Colour::Blue => [30, 70, 220],
            Colour::Yellow => [240, 215, 30],
            Colour::Purple => [140, 40, 190],
            Colour::Orange => [250, 130, 20],
            Colour::White => [245, 245, 245],
            Colour::Black => [15, 15, 15],
        }
    }
}

/// Everything that determines one picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The object's outline.
    pub shape: Shape,
    /// The object's colour.
    pub colour: Colour,
    /// The object's size.
    pub size: Size,
    /// Where the object is.
    pub position: Position,
    /// The background texture.
    pub background: Background,
    /// Seed of the picture's details (texture colours and phase, jitter of position, size and
    /// colour).
    pub seed: u64,
}

impl Spec {
    /// A spec with every attribute drawn uniformly from `rng`.
    pub fn random(rng: &mut impl Rng) -> Spec {
        Spec {
            shape: *Shape::ALL.choose(rng).expect("non-empty"),
            colour: *Colour::ALL.choose(rng).expect("non-empty"),
            size: *Size::ALL.choose(rng).expect("non-empty"),
            position: *Position::ALL.choose(rng).expect("non-empty"),
            background: *Background::ALL.choose(rng).expect("non-empty"),
            seed: rng.gen(),
        }
    }

    /// The canonical full caption: "a small red circle at the top left on a striped
    /// background".
    pub fn full_caption(&self) -> String {
        let noun = format!("{} {} {}", self.size, self.colour, self.shape);
        format!(
            "{} {noun} {} {}",
            article(&noun),
            self.position,
            self.background
        )
    }

    /// The colour + shape query that this picture answers: "a red circle".
    pub fn query(&self) -> String {
        colour_shape_query(self.colour, self.shape)
    }

    /// The same picture mirrored left ↔ right, as far as the caption is concerned (the shapes
    /// are all symmetric about the vertical axis).
    pub fn mirrored(&self) -> Spec {
        Spec {
            position: self.position.mirrored(),
            ..*self
        }
    }
}

fn article(next: &str) -> &'static str {
    match next.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

fn colour_shape_query(colour: Colour, shape: Shape) -> String {
    let noun = format!("{colour} {shape}");
    format!("{} {noun}", article(&noun))
}

/// A caption for `spec` in one of several wordings, with synonyms, drawn from `rng`. Some
/// wordings leave out the size, position or background; every one names the colour and shape.
pub fn caption(spec: &Spec, rng: &mut impl Rng) -> String {
    fn pick<'a>(words: &[&'a str], rng: &mut impl Rng) -> &'a str {
        words.choose(rng).copied().expect("non-empty")
    }
    let colour = pick(spec.colour.synonyms(), rng);
    let shape = pick(spec.shape.synonyms(), rng);
    let size = pick(spec.size.synonyms(), rng);
    let position = pick(spec.position.synonyms(), rng);
    let background = pick(spec.background.synonyms(), rng);
    let with_article = |noun: String| format!("{} {noun}", article(&noun));
    match rng.gen_range(0..10) {
        0 | 1 => format!(
            "{} {position} {background}",
            with_article(format!("{size} {colour} {shape}"))
        ),
        2 => format!(
            "a photo of {} {position}",
            with_article(format!("{size} {colour} {shape}"))
        ),
        3 => format!("{colour} {shape}, {}", spec.position.short()),
        4 => format!("{} {background}", with_article(format!("{colour} {shape}"))),
        5 => format!("a picture of {}", with_article(format!("{colour} {shape}"))),
        6 => format!("{size} {colour} {shape}"),
        7 => with_article(format!("{colour} {shape}")),
        8 => format!(
            "there is {} {position}",
            with_article(format!("{size} {colour} {shape}"))
        ),
        _ => format!(
            "{} {background}, {position}",
            with_article(format!("{colour} {shape}"))
        ),
    }
}

/// Whether a caption names a side, so that mirroring the picture would contradict it.
pub fn mentions_side(caption: &str) -> bool {
    caption
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| matches!(w, "left" | "right"))
}

/// The evaluation queries, one per colour × shape ("a red circle", ...), colour-major.
pub fn queries() -> Vec<(String, Colour, Shape)> {
    let mut out = Vec::with_capacity(Colour::ALL.len() * Shape::ALL.len());
    for &colour in Colour::ALL {
        for &shape in Shape::ALL {
            out.push((colour_shape_query(colour, shape), colour, shape));
        }
    }
    out
}

/// `n` specs drawn from the seeded generator (for a training set).
pub fn random_specs(n: usize, seed: u64) -> Vec<Spec> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| Spec::random(&mut rng)).collect()
}

/// `n` specs that cycle through every colour × shape in [`queries`] order (colour-major), the
/// other attributes drawn from the seeded generator: a balanced evaluation set in which every
/// colour + shape query has `n / 48` (rounded up or down) relevant pictures.
pub fn balanced_specs(n: usize, seed: u64) -> Vec<Spec> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_BA1A_4CED);
    let combos = queries();
    (0..n)
        .map(|i| {
            let (_, colour, shape) = combos[i % combos.len()];
            Spec {
                colour,
                shape,
                ..Spec::random(&mut rng)
            }
        })
        .collect()
}

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

/// One generated picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The file written.
    pub path: PathBuf,
    /// What the picture shows.
    pub spec: Spec,
    /// Its caption (also in `captions.tsv`).
    pub caption: String,
}

/// The picture file format [`generate_specs`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Lossless PNG.
    #[default]
    Png,
    /// JPEG at quality 92 (smaller files, slight artefacts, like real photos).
    Jpeg,
}

/// Writes `n` random pictures (from [`random_specs`]`(n, seed)`) of [`DEFAULT_SIZE`] pixels as
/// PNG files `00000.png`, ... into `dir` (created if missing), with their captions in
/// `dir/captions.tsv`.
///
/// # Errors
/// [`Error::Io`] if the folder or a file cannot be written.
pub fn generate(dir: impl AsRef<Path>, n: usize, seed: u64) -> Result<Vec<Sample>> {
    generate_specs(dir, &random_specs(n, seed), seed, DEFAULT_SIZE, Format::Png)
}

/// Writes one picture per spec (of `size` pixels, in `format`) into `dir` with captions drawn
/// from a generator seeded with `caption_seed`, and `dir/captions.tsv`. Pictures are rendered
/// in parallel.
///
/// # Errors
/// [`Error::Io`] if the folder or a file cannot be written.
pub fn generate_specs(
    dir: impl AsRef<Path>,
    specs: &[Spec],
    caption_seed: u64,
    size: u32,
    format: Format,
) -> Result<Vec<Sample>> {
    use rayon::prelude::*;

    let dir = dir.as_ref();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut rng = StdRng::seed_from_u64(caption_seed ^ 0xCA97_1045);
    let extension = match format {
        Format::Png => "png",
        Format::Jpeg => "jpg",
    };
    let samples: Vec<Sample> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| Sample {
            path: dir.join(format!("{i:05}.{extension}")),
            spec: *spec,
            caption: caption(spec, &mut rng),
        })
        .collect();
    samples.par_iter().try_for_each(|sample| {
        let image = render(&sample.spec, size);
        save(&image, &sample.path, format)
    })?;
    let tsv_path = dir.join(CAPTIONS_FILE);
    let mut tsv = Vec::new();
    for sample in &samples {
        let name = sample
            .path
            .file_name()
            .expect("generated names have a file name")
            .to_string_lossy();
        writeln!(tsv, "{name}\t{}", sample.caption).expect("writing to a Vec");
    }
    fs::write(&tsv_path, tsv).map_err(io(&tsv_path))?;
    Ok(samples)
}

fn save(image: &RgbImage, path: &Path, format: Format) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::create(path).map_err(io)?;
    let mut writer = std::io::BufWriter::new(file);
    let encoded = match format {
        Format::Png => image.write_to(&mut writer, image::ImageFormat::Png),
        Format::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, 92).encode_image(image)
        }
    };
    encoded.map_err(|e| Error::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    writer.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let a = random_specs(20, 3);
        assert_eq!(a, random_specs(20, 3));
        assert_ne!(a, random_specs(20, 4));
        assert_eq!(render(&a[0], 48), render(&a[0], 48));
        let mut rng = StdRng::seed_from_u64(1);
        let captions: std::collections::HashSet<String> =
            (0..50).map(|_| caption(&a[0], &mut rng)).collect();
        assert!(captions.len() > 5, "{captions:?}");
    }

    #[test]
    fn object_has_its_colour() {
        for spec in balanced_specs(48, 11) {
            let spec = Spec {
                size: Size::Large,
                position: Position::Center,
                ..spec
            };
            let image = render(&spec, 64);
            // Sample the centre of the object (every shape covers its centre).
            let p = image.get_pixel(32, 32).0;
            let want = spec.colour.rgb();
            let dist: i32 = (0..3).map(|i| (p[i] as i32 - want[i] as i32).abs()).sum();
            assert!(dist < 110, "{spec:?}: {p:?} vs {want:?}");
        }
    }

    #[test]
    fn shapes_differ() {
        let base = Spec {
            shape: Shape::Circle,
            colour: Colour::Red,
            size: Size::Large,
            position: Position::Center,
            background: Background::Plain,
            seed: 9,
        };
        let images: Vec<RgbImage> = Shape::ALL
            .iter()
            .map(|&shape| render(&Spec { shape, ..base }, 64))
            .collect();
        for i in 0..images.len() {
            for j in i + 1..images.len() {
                let differing = images[i]
                    .pixels()
                    .zip(images[j].pixels())
                    .filter(|(a, b)| a != b)
                    .count();
                assert!(
                    differing > 100,
                    "{:?} vs {:?}",
                    Shape::ALL[i],
                    Shape::ALL[j]
                );
            }
        }
    }

    #[test]
    fn captions_and_queries() {
        let spec = Spec {
            shape: Shape::Circle,
            colour: Colour::Orange,
            size: Size::Small,
            position: Position::TopLeft,
            background: Background::Striped,
            seed: 0,
        };
        assert_eq!(
            spec.full_caption(),
            "a small orange circle at the top left on a striped background"
        );
        assert_eq!(spec.query(), "an orange circle");
        assert!(mentions_side("red circle, top left"));
        assert!(!mentions_side("a red circle at the top"));
        assert_eq!(spec.mirrored().position, Position::TopRight);
        assert_eq!(Position::Center.mirrored(), Position::Center);
        assert_eq!(queries().len(), 48);
        let specs = balanced_specs(96, 1);
        assert_eq!(specs[47].colour, Colour::Black);
        assert_eq!(specs[47].shape, Shape::Diamond);
        assert_eq!(specs[48].colour, Colour::Red);
    }

    #[test]
    fn generate_writes_pictures_and_captions() {
        let dir = tempfile::tempdir().unwrap();
        let samples = generate(dir.path(), 5, 2).unwrap();
        let tsv = fs::read_to_string(dir.path().join(CAPTIONS_FILE)).unwrap();
        assert_eq!(tsv.lines().count(), 5);
        for (sample, line) in samples.iter().zip(tsv.lines()) {
            let (file, caption) = line.split_once('\t').unwrap();
            assert_eq!(dir.path().join(file), sample.path);
            assert_eq!(caption, sample.caption);
            let image = image::open(&sample.path).unwrap();
            assert_eq!(image.width(), DEFAULT_SIZE);
        }
    }
}
